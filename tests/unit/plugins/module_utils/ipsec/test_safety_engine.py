"""The pure parts of issue 6 sections 2 and 3: which filters cut the management connection
(lockout.py), what a commit-confirmed change schedules (confirm.py), and winsim's filtering and
Task Scheduler (winsim/firewall.py, winsim/scheduler.py, winsim/tools/schtasks.py)."""
import base64

import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import confirm, host, lockout, remote, safety, startup
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import DynamicRule, ValidationError
from winsim.state import firewall
from winsim.host import SimHost

CONTROLLER = "192.168.10.5"


@pytest.mark.parametrize("spec,port,cut", [
    ("*=0:5985:TCP", 5985, True),                       # any source
    ("192.168.10.0/255.255.255.0=0:5985:TCP", 5985, True),    # the controller's subnet
    ("192.168.20.0/255.255.255.0=0:5985:TCP", 5985, False),   # another subnet
    ("192.168.10.5=0:5985:TCP", 5985, True),            # the controller itself
    ("192.168.10.5+0:5985:TCP", 5985, True),
    ("0+192.168.10.5::TCP", 5986, True),                # written from the host's side, mirrored
    ("0=192.168.10.5::TCP", 22, True),                  # the replies only
    ("0=192.168.10.6::TCP", 22, False),
    ("*=0:5985:UDP", 5985, False),
    ("*+0", 40000, True),                               # protocol any, port any
])
def test_which_filters_cut_the_controllers_connection(spec, port, cut):
    assert lockout.filter_cuts(parse_filterspec(spec).filter, port, CONTROLLER, "10.0.0.9") is cut


def test_without_a_known_controller_only_any_source_counts():
    subnet = parse_filterspec("192.168.10.0/255.255.255.0=0:5985:TCP").filter
    assert not lockout.filter_cuts(subnet, 5985)
    assert lockout.filter_cuts(parse_filterspec("*=0:5985:TCP").filter, 5985)


def test_controller_address_is_the_routes_source():
    assert lockout.controller_address("127.64.0.2", 5985) == "127.0.0.1"
    assert lockout.controller_address("not an address", 5985) == ""


def steps():
    add = remote.Step(("netsh", "ipsec", "dynamic", "add", "rule", "dstport=5985"),
                      undo=(remote.Step(("netsh", "ipsec", "dynamic", "delete", "rule", "dstport=5985")),),
                      display="netsh ipsec dynamic add rule dstport=5985")
    return [add]


def test_confirm_schedules_the_undo_before_the_change():
    c = confirm.Confirm(60)
    wrapped = c.steps(steps(), "modern")
    assert [s.argv[:2] for s in wrapped[:2]] == [("schtasks", "/create"), ("schtasks", "/run")]
    assert wrapped[2:] == steps() and "/st" in wrapped[0].argv and "00:00" in wrapped[0].argv
    assert c.batch()[2] == "ping -n 61 127.0.0.1 > nul"
    assert c.batch()[3] == "netsh ipsec dynamic delete rule dstport=5985"
    assert c.batch()[-1] == "schtasks /delete /tn %s /f" % c.name
    assert "00:00:00" in confirm.Confirm(60).steps(steps(), "xp")[0].argv       # XP wants seconds
    assert c.name == confirm.Confirm(30).steps(steps(), "xp")[0].argv[3]         # same change, same task


@pytest.mark.parametrize("value", [0, 9, 86401, True, "60"])
def test_confirm_timeout_bounds(value):
    with pytest.raises(ValidationError, match="confirm_timeout"):
        confirm.check_timeout(value)


def test_a_lost_connection_during_the_write_is_reported_as_such():
    c = confirm.Confirm(20, lost_errors=(OSError,), sleep=lambda s: None)

    def execute(script):
        raise ConnectionResetError("reset by peer")
    watched = c.watch(lambda script: (0, "", ""))
    watched("read")
    c2 = confirm.Confirm(20, lost_errors=(OSError,))
    with pytest.raises(confirm.LostConnection, match="reset by peer"):
        c2.watch(execute)("write")
    c.name = "winsec-confirm-x"
    assert c.confirm(execute, "netsh") is None and "undoes the change by itself" in c.unreachable_message()


@pytest.fixture
def sim(tmp_path):
    return SimHost("win001", "10.0.0.9", "2003", str(tmp_path / "h"))


def block(sim, rule):
    """A dynamic block rule added as an administrator would, with netsh on the host (`rule`: its
    filter's netsh arguments)."""
    for words in ("add mmpolicy name=Admin", "add rule %s mmpolicy=Admin actioninbound=block actionoutbound=block" % rule):
        assert sim.run_tool(["netsh", "ipsec", "dynamic"] + words.split()).rc == 0


def test_winsim_drops_blocked_management_traffic_and_caches_per_state(sim):
    assert firewall.blocked_reason(sim, "10.0.0.1", 50000, 5985) is None
    block(sim, "srcaddr=10.0.0.0 srcmask=255.255.255.0 dstaddr=me protocol=tcp dstport=5985 mirrored=yes")
    assert "dynamic filter" in firewall.blocked_reason(sim, "10.0.0.1", 50000, 5985)
    assert firewall.blocked_reason(sim, "10.0.1.1", 50000, 5985) is None
    assert firewall.blocked_reason(sim, "10.0.0.1", 50000, 5986) is None
    sim.configure(stop_service=True)            # no PolicyAgent, no filtering
    assert firewall.blocked_reason(sim, "10.0.0.1", 50000, 5985) is None


def test_default_exemptions_per_value():
    kerberos = firewall.Packet("10.0.0.1", "10.0.0.9", 6, 50000, 88)
    ike = firewall.Packet("10.0.0.1", "10.0.0.9", 17, 500, 500)
    me = "10.0.0.9"         # the host both packets go to
    assert firewall.exempt(kerberos, "xp", None, me) and not firewall.exempt(kerberos, "xp", 1, me)
    assert not firewall.exempt(kerberos, "2003", None, me) and firewall.exempt(kerberos, "2003", 0, me)
    assert firewall.exempt(kerberos, "modern", 2, me) and not firewall.exempt(kerberos, "modern", 3, me)
    assert all(firewall.exempt(ike, g, 3, me) for g in ("xp", "2003", "modern"))


def test_schtasks_once_onstart_run_end_delete(sim):
    sim.fs[r"C:\WINDOWS\TEMP\w.cmd"] = "@echo off\r\nping -n 11 127.0.0.1 > nul\r\nnetsh ipsec dynamic delete all\r\n"
    create = ["schtasks", "/create", "/tn", "t", "/sc", "once", "/st", "00:00:00", "/ru", "SYSTEM",
              "/tr", r"cmd /c %SystemRoot%\TEMP\w.cmd"]
    assert sim.run_tool(create).rc == 0
    assert "already exists" in sim.run_tool(create).stderr
    assert "Invalid Start Time" in sim.run_tool(create[:7] + ["00:00"] + create[8:]).stderr    # 2003 wants seconds
    assert "ONCE and ONSTART only" in sim.run_tool(["schtasks", "/create", "/tn", "d", "/sc", "daily",
                                                     "/tr", "x"]).stderr
    block(sim, "srcaddr=any dstaddr=me protocol=tcp dstport=5985 mirrored=no")
    assert sim.run_tool(["schtasks", "/run", "/tn", "t"]).rc == 0
    sim.advance_time(9)
    assert sim.dynamic
    sim.advance_time(1)
    assert not sim.dynamic and not sim.scheduler.running
    assert sim.run_tool(["schtasks", "/end", "/tn", "t"]).rc == 1           # no longer running
    assert sim.run_tool(["schtasks", "/delete", "/tn", "t", "/f"]).rc == 0
    assert "cannot find" in sim.run_tool(["schtasks", "/query", "/tn", "t"]).stderr
    rules = [DynamicRule(parse_filterspec("*=0:1434:UDP").filter)]
    sim.fs[r"C:\WINDOWS\boot.cmd"] = "\r\n".join(startup.batch_lines(rules, sim.os_info(), "netsh"))
    assert sim.run_tool(["schtasks", "/create", "/tn", "b", "/sc", "onstart", "/ru", "SYSTEM",
                         "/tr", r"cmd /c %SystemRoot%\boot.cmd"]).rc == 0
    sim.reboot()
    assert [e.rule.filter.dst_port for e in sim.dynamic] == [1434]


def test_a_long_undo_batch_goes_in_the_one_write_script_after_its_precheck():
    # The command line used to limit the batch file (a refusal); the body on stdin has no such limit.
    c = confirm.Confirm(60)
    wrapped = c.steps(steps(), "modern")
    c.undo_lines = ["netsh ipsec dynamic delete rule dstport=%d" % n for n in range(2000)]
    script = remote.write_script(wrapped, precheck=["$failed = -1"], prelude=lambda stdin: [c.preamble(stdin)])
    body = script.body
    assert len(ShellModule()._encode_script(script, strict_mode=False, preserve_rc=False)) < 1000 and "dstport=1999" in body
    # written only once the precheck passed: a stale write leaves no batch file behind
    assert body.index("$failed = -1") < body.index("if ($failed -eq 0) {\nSet-Content") < body.index("schtasks")


# -- safety.run against a winsim host, its connection cut where a test says ----------------------

class Ctx:
    def __init__(self, execute, **params):
        self.params = dict({"allow_lockout": False, "confirm_timeout": 10, "when_domain_policy": "warn"}, **params)
        self.check_mode = False
        self.execute = execute
        self.task_vars = {}
        self.guard_ports = lockout.MANAGEMENT_PORTS
        self.local_address = ""


def over_winrm(sim, cut_at=(), after_call=None):
    """execute() as WinRM would run it; the n-th calls in `cut_at` raise as a cut connection does
    (after the host ran them when `after_call` says so)."""
    calls = []

    def execute(script):
        calls.append(script)
        n = len(calls)
        if n in cut_at and not (after_call and after_call(n)):
            raise ConnectionResetError("connection reset (call %d)" % n)
        stripped = "\n".join(ln.strip() for ln in script.splitlines() if ln.strip())
        encoded = base64.b64encode(stripped.encode("utf-16-le")).decode()
        stdin = "".join(line + "\r\n" for line in getattr(script, "stdin", ())).encode("ascii")
        r = sim.run("PowerShell", ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded], stdin)
        if n in cut_at:
            raise ConnectionResetError("connection reset after call %d ran" % n)
        return r.rc, r.stdout, r.stderr
    return execute, calls


def slammer(actual):
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan
    triples = [plan.rule_objects("Block 1434", [parse_filterspec("*=0:1434:UDP").filter])]
    policy, objects = plan.policy_objects("Slammer", triples)
    return plan.plan_policy(actual, policy, rules_objects=objects, assign=True)


@pytest.fixture
def modern(tmp_path):
    return SimHost("win001", "10.0.0.9", "modern", str(tmp_path / "m"))


def test_safety_run_confirms_over_a_third_trip(modern):
    execute, calls = over_winrm(modern)
    result = safety.run(Ctx(execute), slammer)
    assert result["round_trips"] == len(calls) == 3 and result["confirm"]["status"] == "confirmed"
    assert modern.state().assigned == "Slammer" and not modern.scheduler.tasks and not modern.scheduler.running


def test_unreachable_after_the_write_the_host_undoes_by_itself(modern):
    execute, _calls = over_winrm(modern, cut_at=(3, 4, 5))
    with pytest.raises(host.HostError, match="undoes the change by itself") as err:
        safety.run(Ctx(execute), slammer)
    assert err.value.result["confirm"]["status"] == "unreachable" and err.value.result["round_trips"] == 2
    assert modern.state().assigned == "Slammer"
    modern.advance_time(10)
    assert modern.state().policies == () and not modern.scheduler.tasks


def test_too_late_the_host_had_undone_it(modern):
    def late(n):
        if n == 3:
            modern.advance_time(10)
        return True
    execute, _calls = over_winrm(modern, cut_at=(3,), after_call=late)
    # call 3 runs after the deadline but its answer is lost; call 4 finds the task gone
    with pytest.raises(host.HostError) as err:
        safety.run(Ctx(execute), slammer)
    assert err.value.result["confirm"]["status"] == "undone" and "already undone" in str(err.value)
    assert modern.state().policies == ()


def test_a_lost_write_answer_then_the_host_answers_again(modern):
    execute, _calls = over_winrm(modern, cut_at=(2,), after_call=lambda n: True)     # ran, answer lost
    with pytest.raises(host.HostError, match="run the task again") as err:
        safety.run(Ctx(execute), slammer)
    result = err.value.result
    assert result["confirm"]["status"] == "cancelled" and result["after"]["assigned"] == "Slammer"
    assert not modern.scheduler.running


def test_a_write_that_never_arrived(modern):
    execute, _calls = over_winrm(modern, cut_at=(2,), after_call=lambda n: False)   # cut before it ran
    with pytest.raises(host.HostError, match="the write never ran, or") as err:
        safety.run(Ctx(execute), slammer)
    assert err.value.result["confirm"]["status"] == "absent" and err.value.result["after"]["policies"] == []
