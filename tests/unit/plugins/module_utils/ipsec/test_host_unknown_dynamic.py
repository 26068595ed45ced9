"""Dynamic rules whose listing the engine cannot read are unknown (None), never none: host.read_dynamic
reads a host's listings once with the strict readers (dialects/listings.py), the state carries None
(state_and_unread also says why, for the task's warnings), and everything downstream (results, netdiag, comparisons, the lockout guard) takes
that None. Fed with winsim's English and German (modern_de) netsh output."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host, netdiag, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import listings
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import HostState, Policy, unknown_as_empty
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.plan import plan_policy
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import state_to_dict
from tests.unit.plugins.module_utils.ipsec.test_host_flow import FakeHost, correct_write, slammer_planner
from winsim.host import SimHost

RULE = "add rule srcaddr=any dstaddr=me protocol=tcp dstport=445 mmpolicy=AdminBlock actioninbound=block actionoutbound=block"
OS = ("\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n"
      "    ProductName    REG_SZ    Windows Server 2022 Standard\n    CurrentVersion    REG_SZ    6.3\n"
      "    CurrentBuildNumber    REG_SZ    20348\n")


def sim(tmp_path, personality, rules=True):
    machine = SimHost("h", "127.0.0.2", personality, str(tmp_path / personality))
    if rules:
        for words in ("add mmpolicy name=AdminBlock", RULE):
            assert machine.run_tool(["netsh", "ipsec", "dynamic"] + words.split()).rc == 0
    return machine


def show(machine, what):
    result = machine.run_tool(["netsh", "ipsec", "dynamic", "show"] + what.split())
    assert result.rc == 0
    return result.stdout


def transcript(machine, agent="4  RUNNING", mmpolicies_from=None):
    """The read sections a read of `machine` prints (the store empty), the main-mode policy listing
    from `mmpolicies_from` when given."""
    t = remote.Transcript()
    for name, text, rc in (("os", OS, 0), ("store", "ERROR: The system was unable to find the specified registry key", 1),
                           ("policyagent", "SERVICE_NAME: PolicyAgent\n        STATE              : %s\n" % agent, 0),
                           ("dynamic-netsh", show(machine, "rule"), 0),
                           (remote.MMPOLICY_SECTION, show(mmpolicies_from or machine, "mmpolicy all"), 0)):
        t.sections[name] = remote.Section(name, text, rc)
    return t


def test_a_german_hosts_dynamic_rules_are_unknown_and_the_state_says_why(tmp_path):
    """The read used to leave them (), which results showed as "none" until Flow.finish parsed the
    listing a second time; the state itself now carries the unknown."""
    state, unread = host.state_and_unread(transcript(sim(tmp_path, "modern_de")))
    assert state.dynamic is None and state.mmpolicies is None
    (warning,) = unread
    assert warning.startswith("the dynamic rules could not be read") and "line 1" in warning
    assert "display language" in warning and "Regeln" not in warning      # the listing's text is not repeated
    report = host.state_report(state)
    assert report["dynamic"] is None and report["mmpolicies"] is None


def test_an_english_host_is_read(tmp_path):
    state, unread = host.state_and_unread(transcript(sim(tmp_path, "modern")))
    assert [d.filter.dst_port for d in state.dynamic] == [445]
    assert state.mmpolicies == ("AdminBlock",) and unread == ()


def test_the_main_mode_listing_has_its_own_problem(tmp_path):
    english = sim(tmp_path, "modern")
    t = transcript(english, mmpolicies_from=sim(tmp_path, "modern_de"))
    rules, names, problem = host.read_dynamic(t)
    assert [d.filter.dst_port for d in rules] == [445]                    # the rules were read
    assert names is None and "mmpolicy" in problem and "line 1" in problem
    assert host.state_and_unread(t)[1] == (listings.MMPOLICY_UNREADABLE % problem,)
    # an error answer is what the engine takes for "none" ([I] real netsh with no policy): not unknown
    t.sections[remote.MMPOLICY_SECTION] = remote.Section(remote.MMPOLICY_SECTION, "ERR IPsec[05063]\n", 0)
    assert host.read_dynamic(t) == (rules, ("AdminBlock",), "")


def test_nothing_unknown_when_nothing_was_to_be_read(tmp_path):
    german = sim(tmp_path, "modern_de")
    assert host.read_dynamic(transcript(german, agent="1  STOPPED")) == ((), (), "")
    assert host.read_dynamic(remote.Transcript()) == ((), (), "")
    assert host.read_dynamic(transcript(sim(tmp_path / "empty", "modern_de", rules=False))) == ((), (), "")


def test_a_service_state_the_engine_cannot_read_leaves_the_rules_unknown(tmp_path):
    """The engine reads the dynamic rules only when `sc query` says RUNNING; a state line it does not
    read (here a made-up translated label, [I]) must not pass for a stopped service with no rules."""
    t = transcript(sim(tmp_path, "modern"))
    t.sections["policyagent"] = remote.Section("policyagent", "        ZUSTAND            : 4  RUNNING\n", 0)
    rules, names, problem = host.read_dynamic(t)
    assert rules is None and names is None and "PolicyAgent" in problem


def test_a_task_that_changes_dynamic_filters_refuses_an_unknown_listing(tmp_path):
    """It used to fail with the reader's own error, which quoted the listing's line."""
    with pytest.raises(host.UnreadableListing) as err:
        host.state_from_transcript(transcript(sim(tmp_path, "modern_de")), need_dynamic=True)
    assert "line 1" in err.value.problem and "planned and wrote nothing" in str(err.value)
    assert "Regeln" not in str(err.value)
    # the main-mode policies too: the plan would add winsec's own again, or leave an orphan
    english = sim(tmp_path, "modern")
    with pytest.raises(host.UnreadableListing, match="main-mode policies could not be read"):
        host.state_from_transcript(transcript(english, mmpolicies_from=sim(tmp_path, "modern_de")), need_dynamic=True)
    assert host.state_and_unread(transcript(english), need_dynamic=True)[1] == ()


def test_a_static_plan_on_unknown_dynamic_rules_keeps_them_unknown(tmp_path):
    """What a static task does with a German host's state: plan, render, compare, show, guard the
    connection; the null stays in `before` and `planned`, netdiag shows what was read."""
    before = host.state_from_transcript(transcript(sim(tmp_path, "modern_de")))
    plan = plan_policy(before, Policy("Corp"))
    assert plan.after.dynamic is None and host.state_report(plan.after)["dynamic"] is None
    assert [c.argv[:4] for c in host.render_commands(plan, before, "netsh")] == [("netsh", "ipsec", "static", "add")]
    assert not host.same_store(before, plan.after, dynamic=False)
    assert host.same_store(before, before, dynamic=False)
    # netdiag shows the static part it read and says the dynamic filters are unknown (not none, as on a
    # host without any)
    empty = HostState(os=before.os, policyagent="running")
    shown, none = host.netdiag_diff(before, plan.after), host.netdiag_diff(empty, plan_policy(empty, Policy("Corp")).after)
    head = "    IPSec policy service is active, but no policy is assigned.\n"
    unknown = "\n    There are 0 filters\n\n    " + netdiag.DYNAMIC_UNKNOWN + "\n"
    for side in ("before", "after"):
        assert head in none[side] and shown[side] == none[side].replace(head, head + unknown, 1)
    assert host.connection_blocks(plan.after, ports=(5985,)) == []
    assert unknown_as_empty(before).dynamic == () and unknown_as_empty(before).mmpolicies == ()
    assert state_to_dict(HostState(dynamic=None))["dynamic"] is None


@pytest.mark.parametrize("text, rc, said", [
    ("ERR IPsec[05072] : The service is busy\r\n", 0, "ERR IPsec[05072] The service is busy"),
    ("\r\nAccess is denied.\r\nmore\r\n", 5, "Access is denied."),
    ("", 1, ""),
])
def test_a_listing_that_failed_is_unknown_and_says_the_tools_error_line(tmp_path, text, rc, said):
    t = transcript(sim(tmp_path, "modern"))
    t.sections["dynamic-netsh"] = remote.Section("dynamic-netsh", text, rc)
    rules, names, problem = host.read_dynamic(t)
    assert rules is None and names is None
    assert problem == "netsh ipsec dynamic show rule failed (rc=%s)%s" % (rc, ": " + said if said else "")


def test_a_static_task_on_unknown_dynamic_rules_says_so_once_also_when_planned_from_a_fact(tmp_path):
    """host.run on a host whose `netsh ipsec dynamic show rule` is German: the states hold null and the
    warning says why, from the read (check mode) and from an earlier task's state fact (one command)."""
    fake = FakeHost()
    fake.dynamic_text = show(sim(tmp_path, "modern_de"), "rule")
    planner = slammer_planner()
    check = host.run(fake.execute, planner, check_mode=True, host_name="win01")
    fake.write = correct_write(planner)
    fake.scripts.clear()
    written = host.run(fake.execute, planner, check_mode=False, fact=check["ansible_facts"]["winsec_ipsec_state"],
                       host_name="win01")
    assert len(fake.scripts) == 1 and written["changed"]                  # planned from the fact
    for result in (check, written):
        assert [result[k]["dynamic"] for k in ("before", "planned", "after")] == [None] * 3
        assert [w for w in result["warnings"] if w.startswith("the dynamic rules could not be read")] == [
            listings.UNREADABLE % "netsh ipsec dynamic show output, line 1, is not in the layout the engine "
            "reads (the tool's display language may not be English)"]
