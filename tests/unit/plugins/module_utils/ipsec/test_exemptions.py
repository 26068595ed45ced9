"""exemptions.py: NoDefaultExempt as a side change of the task's one transaction (host.Flow), run
against winsim hosts through their PowerShell and reg.exe."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import exemptions, guard, host
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ValidationError
from winsim.host import SimHost

from tests.unit.plugins.module_utils.ipsec.test_startup import executor


@pytest.fixture(params=["modern", "xp"])
def sim(request, tmp_path):
    return SimHost("win001", "10.0.0.9", request.param, str(tmp_path / "h"))


def run(sim, sent, value, state="present", check=False, fact=None):
    return exemptions.run(executor(sim, sent), value, state, check, host_name="win001", fact=fact)


def test_check_mode_predicts_and_writes_nothing(sim):
    sent = []
    result = run(sim, sent, 1, check=True)
    assert result["changed"] and result["before"] is None and result["after"] == 1 and result["reboot_required"]
    assert result["commands"] == [r"reg add HKLM\SYSTEM\CurrentControlSet\Services\%s /v NoDefaultExempt /t REG_DWORD "
                                  r"/d 1 /f" % ("IPSEC" if sim.personality.name == "xp" else "PolicyAgent")]
    assert "NoDefaultExempt: None" in result["diff"]["before"] and "NoDefaultExempt: 1" in result["diff"]["after"]
    assert len(sent) == 1 and sim.no_default_exempt() is None


def test_a_change_is_one_write_after_the_read_and_from_a_fact_the_write_alone(sim):
    sent = []
    result = run(sim, sent, 1)
    assert result["changed"] and result["after"] == 1 and result["round_trips"] == 2 and sim.no_default_exempt() == 1
    assert [s.kind for s in sent] == ["read", "write"]
    sent.clear()
    back = run(sim, sent, None, state="absent", fact=result["ansible_facts"][guard.FACT])
    assert back["changed"] and back["before"] == 1 and back["after"] is None and [s.kind for s in sent] == ["write"]
    assert sim.no_default_exempt() is None
    again = run(sim, [], None, state="absent", fact=back["ansible_facts"][guard.FACT])
    assert not again["changed"] and not again["reboot_required"] and again["round_trips"] == 1


def test_a_value_another_writer_set_after_the_read_makes_it_plan_again_not_overwrite_blindly(sim):
    sent = []
    execute = executor(sim, sent)

    def racing(script):
        if script.kind == "write" and len(sent) == 1:
            sim.run_tool(["reg", "add", exemptions.key_for(sim.personality.name), "/v", "NoDefaultExempt",
                          "/t", "REG_DWORD", "/d", "1", "/f"])
        return execute(script)
    result = exemptions.run(racing, 1, "present", False)
    # planned again from the value the stale write command read: it is already 1, nothing is written
    assert not result["changed"] and result["before"] == 1 and len(sent) == 2


def test_a_failed_reg_add_leaves_the_value_and_says_so(sim):
    sim.configure(fail_step=1)
    with pytest.raises(host.HostError, match="step 1 of 1 failed") as err:
        run(sim, [], 1)
    assert err.value.result["before"] is None and err.value.result["after"] is None and sim.no_default_exempt() is None


def test_a_value_the_os_does_not_know_is_refused_after_the_read_naming_it(sim):
    if sim.personality.name != "xp":
        pytest.skip("2003 and later know 0 to 3")
    with pytest.raises(host.HostError, match="0 or 1") as err:
        run(sim, [], 2)
    assert err.value.result["round_trips"] == 1 and sim.no_default_exempt() is None


def test_bad_values_are_refused_before_any_connection():
    def execute(script):
        raise AssertionError("no connection")
    with pytest.raises(ValidationError, match="absent"):
        exemptions.run(execute, 1, "absent", False)
    with pytest.raises(ValidationError, match="0, 1, 2 or 3"):
        exemptions.run(execute, 4, "present", False)
