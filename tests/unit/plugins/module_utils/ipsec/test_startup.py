"""startup.py: reapply_at_startup as part of the task's one transaction (host.Flow's side changes),
run against a winsim host through its PowerShell and tools (the scripts as the host runs them)."""
import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import guard, host, remote, startup
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import DynamicRule, HostState, ValidationError
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.plan import NETSH_MMPOLICY, plan_dynamic
from winsim.shell import machine as shell
from winsim.host import SimHost


@pytest.fixture
def sim(tmp_path):
    return SimHost("win001", "10.0.0.9", "modern", str(tmp_path / "h"))


def executor(sim, sent):
    def execute(script):
        sent.append(script)
        command = ShellModule()._encode_script(str(script), strict_mode=False, preserve_rc=False)
        stdin = "".join(line + "\r\n" for line in getattr(script, "stdin", ())).encode()
        result = shell.execute(sim, command, stdin)
        return result.rc, result.stdout, result.stderr
    return execute


def rules(*specs):
    return tuple(DynamicRule(parse_filterspec(s).filter) for s in specs)


def run(sim, sent, specs, state="present", check=False, fact=None):
    wanted = rules(*specs)
    return host.run(executor(sim, sent), lambda actual: plan_dynamic(actual, wanted, state=state), check,
                    dynamic=True, sides=(startup.Startup,), fact=fact, host_name="win001")


def startup_file(sim):
    found = [text for path, text in sim.fs.items() if path.lower().endswith("winsec-reapply-dynamic.cmd")]
    return found[0] if found else None


def test_check_mode_plans_the_startup_task_in_the_diff_and_writes_nothing(sim):
    sent = []
    result = run(sim, sent, ["*=0:1434:UDP"], check=True)
    assert result["changed"] and result["round_trips"] == 1 and len(sent) == 1
    assert result["startup_task"]["state"] == "present" and result["startup_task"]["changed"]
    assert any(c.startswith("write %SystemRoot%\\winsec-reapply-dynamic.cmd") for c in result["commands"])
    assert any(c.startswith("schtasks /create /tn winsec-reapply-dynamic") for c in result["commands"])
    assert "startup task winsec-reapply-dynamic: absent" in result["diff"]["before"]
    assert "startup task winsec-reapply-dynamic: present" in result["diff"]["after"]
    assert startup_file(sim) is None and not sim.scheduler.tasks and not sim.dynamic


def test_a_change_with_its_startup_task_is_one_write_command_after_the_read(sim):
    sent = []
    result = run(sim, sent, ["*=0:1434:UDP"])
    assert result["round_trips"] == 2 and [s.kind for s in sent] == ["read", "write"]
    assert "winsec-reapply-dynamic" in sim.scheduler.tasks
    assert startup_file(sim).replace("\r\n", "\n").rstrip("\n").split("\n") == result["startup_task"]["commands"]
    # the next task plans from the fact, which holds the file and the task: the host is read once
    again = run(sim, sent, ["*=0:1434:UDP"], fact=result["ansible_facts"][guard.FACT])
    assert not again["changed"] and not again["startup_task"]["changed"] and again["round_trips"] == 1
    sim.reboot()
    assert [d.rule.filter.dst_port for d in sim.dynamic] == [1434]      # the task re-added it at boot


def test_a_failure_after_the_startup_file_was_written_undoes_it_and_the_filters(sim):
    sent = []
    plan = run(sim, [], ["*=0:1434:UDP"], check=True)
    steps = len(plan["commands"])
    assert plan["commands"][-1].startswith("schtasks /create")
    sim.configure(fail_step=steps - 1)      # the tools before it: the filter's netsh steps; Set-Content is no tool
    with pytest.raises(host.HostError, match="step %d of %d failed" % (steps, steps)) as err:
        run(sim, sent, ["*=0:1434:UDP"])
    assert "the host is as it was before the task" in str(err.value)
    assert len(sent) == 2 and startup_file(sim) is None and not sim.scheduler.tasks and not sim.dynamic


def test_a_failure_restores_the_file_the_host_had(sim):
    run(sim, [], ["*=0:1434:UDP"])
    before = startup_file(sim)
    sim.run_tool(["schtasks", "/delete", "/tn", "winsec-reapply-dynamic", "/f"])
    plan = run(sim, [], ["*=0:1434:UDP", "*=0:135:TCP"], check=True)
    sim.configure(fail_step=len(plan["commands"]) - 1)
    with pytest.raises(host.HostError, match="as it was before the task"):
        run(sim, [], ["*=0:1434:UDP", "*=0:135:TCP"])
    assert startup_file(sim) == before and not sim.scheduler.tasks


def test_clearing_deletes_the_task_then_the_file_each_with_its_undo(sim):
    run(sim, [], ["*=0:1434:UDP"])
    sent = []
    result = run(sim, sent, [], state="cleared")
    assert result["startup_task"]["state"] == "absent" and result["round_trips"] == 2
    assert startup_file(sim) is None and not sim.scheduler.tasks and not sim.dynamic
    assert result["commands"][-2:] == ["schtasks /delete /tn winsec-reapply-dynamic /f",
                                       "delete %SystemRoot%\\winsec-reapply-dynamic.cmd"]


def test_only_the_startup_task_missing_is_a_change_of_its_own(sim):
    run(sim, [], ["*=0:1434:UDP"])
    sim.run_tool(["schtasks", "/delete", "/tn", "winsec-reapply-dynamic", "/f"])
    sent = []
    result = run(sim, sent, ["*=0:1434:UDP"])
    assert result["changed"] and result["commands"] == [
        "schtasks /create /tn winsec-reapply-dynamic /sc onstart /ru SYSTEM /tr \"cmd /c %SystemRoot%\\winsec-reapply-dynamic.cmd\""]
    assert len(sent) == 2 and "winsec-reapply-dynamic" in sim.scheduler.tasks


def test_a_startup_file_changed_by_another_writer_after_the_read_writes_nothing_on_the_old_plan(sim):
    sent = []
    execute = executor(sim, sent)

    def racing(script):
        if script.kind == "write" and len(sent) == 1:
            sim.fs[r"C:\Windows\winsec-reapply-dynamic.cmd"] = "@echo off\r\nrem someone else\r\n"
        return execute(script)
    wanted = rules("*=0:1434:UDP")
    result = host.run(racing, lambda actual: plan_dynamic(actual, wanted), False, dynamic=True,
                      sides=(startup.Startup,))
    assert any("startup-file" in n for n in result["notes"]) and len(sent) == 3    # read, stale write, write
    assert "rem someone else" not in startup_file(sim)


def test_a_fact_without_the_startup_sections_is_read_again(sim):
    sent = []
    plain = host.run(executor(sim, sent), lambda actual: plan_dynamic(actual, ()), False, dynamic=True,
                     host_name="win001")
    fact = plain["ansible_facts"][guard.FACT]
    assert "startup-file" not in fact["sections"]
    sent.clear()
    result = run(sim, sent, ["*=0:1434:UDP"], fact=fact)
    assert [s.kind for s in sent] == ["read", "write"] and result["startup_task"]["state"] == "present"


def test_plan_steps_and_their_undo():
    os = HostState().os
    have = ["@echo off", "old"]
    transcript = remote.Transcript(sections={
        "startup-file": remote.Section("startup-file", "\r\n".join(have), 0),
        "startup-task": remote.Section("startup-task", "TaskName winsec-reapply-dynamic", 0)})
    cleared = startup.plan(transcript, HostState(os=os), "netsh")
    [delete_task, delete_file] = cleared.steps
    assert delete_task.argv[:2] == ("schtasks", "/delete") and delete_task.undo[0].argv[:2] == ("schtasks", "/create")
    assert delete_file.file == (startup.PS_FILE, None) and delete_file.undo[0].file == (startup.PS_FILE, tuple(have))
    assert cleared.verify(transcript) is not None       # the read-back still shows the file and task
    mine = DynamicRule(parse_filterspec("*=0:1434:UDP").filter, mmpolicy=NETSH_MMPOLICY)
    theirs = DynamicRule(parse_filterspec("*=0:135:TCP").filter, mmpolicy="someone else's")
    present = startup.plan(transcript, HostState(os=os, dynamic=(mine, theirs)), "netsh")
    [write] = present.steps         # the task exists: only the file differs
    assert write.file[1][:2] == tuple(startup.HEADER) and write.undo[0].file == (startup.PS_FILE, tuple(have))
    lines = write.file[1]       # only winsec's own rule comes back at boot
    assert "dstport=1434" in lines[-1] and not any("dstport=135 " in ln for ln in lines)
    assert "left out" in present.notes[0] and "135" in present.notes[0]


def test_confirm_timeout_with_reapply_at_startup_is_refused_before_any_connection():
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import safety

    class Ctx:
        params = {"confirm_timeout": 60}

        def execute(self, script):
            raise AssertionError("no connection")
    with pytest.raises(ValidationError, match="confirm_timeout"):
        safety.run(Ctx(), lambda actual: None, dynamic=True, sides=(startup.Startup,))
