"""winsim's ipseccmd/ipsecpol and netdiag: KB 813878's whole procedure on 2003 and XP."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import netdiag, toolout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ANY, ME
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import (
    LOCAL_ROOT, decode_store, parse_reg_query)
from winsim.host import SimHost

POLICY = "Block UDP 1434 Filter"
INBOUND = ["-w", "REG", "-p", POLICY, "-r", "Block Inbound UDP 1434 Rule", "-f", "*=0:1434:UDP", "-n", "BLOCK", "-x"]
OUTBOUND = ["-w", "REG", "-p", POLICY, "-r", "Block Outbound UDP 1434 Rule", "-f", "0=*:1434:UDP", "-n", "BLOCK"]


@pytest.fixture(params=["2003", "xp"])
def host(request, tmp_path):
    return SimHost("sql1", "127.0.0.5", request.param, str(tmp_path / "sql1"))


def ok(result):
    assert (result.rc, result.stderr) == (0, ""), result.stdout + result.stderr
    return result.stdout


def ipseccmd(host, *args):
    return host.run_tool(["IPSeccmd.exe"] + list(args))


def stored(host):
    text = ok(host.run_tool(["reg", "query", LOCAL_ROOT, "/s"]))
    assert text.startswith("\r\n! REG.EXE VERSION 3.0\r\n")       # reg.exe 3.0 of XP/2003
    return decode_store(parse_reg_query(text), LOCAL_ROOT)


def diag(host, *switches):
    return netdiag.parse(ok(host.run_tool(["netdiag", "/test:ipsec"] + list(switches))))


def test_kb_whole_procedure(host):
    # Determine whether a policy is assigned.
    first = diag(host)
    assert (first.status, first.service_active, first.policy) == ("Passed", True, "")
    # Create, assign, add the outbound rule.
    assert ok(ipseccmd(host, *INBOUND)) == ""
    assert ok(ipseccmd(host, *OUTBOUND)) == ""
    state = stored(host)
    assert state.assigned == POLICY
    rules = [r for r in state.policy(POLICY).rules if not r.default_response]
    assert [r.name for r in rules] == ["Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"]
    for rule, (src, dst) in zip(rules, ((ANY, ME), (ME, ANY))):
        (flt,) = state.filterlist(rule.filterlist).filters
        assert (flt.src, flt.dst, flt.protocol, flt.dst_port, flt.mirrored) == (src, dst, 17, 1434, False)
        assert state.filteraction(rule.filteraction).action == "block"
    # Verify with netdiag /debug: two filters, me expanded to the host's address ([V] KB layout).
    report = diag(host, "/debug")
    assert report.policy == POLICY and report.filter_count == 2
    assert [(f.direction, f.action) for f in report.filters] == [("Inbound", "block"), ("Outbound", "block")]
    assert report.filters[0].dst_addr == "127.0.0.5" and report.filters[1].src_addr == "127.0.0.5"
    assert report.filters[0].policy_id != report.filters[1].policy_id     # as in the KB's sample
    # Unassign, then delete the policy and both rules.
    ok(ipseccmd(host, "-w", "REG", "-p", POLICY, "-y"))
    assert diag(host).policy == "" and stored(host).policy(POLICY) is not None
    ok(ipseccmd(host, "-w", "REG", "-p", POLICY, "-r", "Block Inbound UDP 1434 Rule",
                "-r", "Block Outbound UDP 1434 Rule", "-o"))
    state = stored(host)
    assert (state.policies, state.filterlists, state.filteractions) == ((), (), ())


def test_kb_add_rule_to_existing_policy_and_x_switches_assignment(host):
    ok(ipseccmd(host, *INBOUND))
    ok(ipseccmd(host, "-p", POLICY, "-w", "REG", "-r", "Block Inbound TCP 80 Rule", "-f", "*=0:80:TCP", "-n", "BLOCK"))
    assert len([r for r in stored(host).policy(POLICY).rules if not r.default_response]) == 2
    ok(ipseccmd(host, "-w", "REG", "-p", "Block TCP 80 Filter", "-r", "Block Inbound TCP 80 Rule",
                "-f", "*=0:80:TCP", "-n", "BLOCK", "-x"))
    assert stored(host).assigned == "Block TCP 80 Filter"        # KB: the other policy is unassigned
    assert diag(host).policy == "Block TCP 80 Filter"


def test_rerunning_a_rule_replaces_its_filters(host):
    ok(ipseccmd(host, *INBOUND))
    ok(ipseccmd(host, "-w", "REG", "-p", POLICY, "-r", "Block Inbound UDP 1434 Rule", "-f", "*=0:1433:UDP",
                "*=0:1434:UDP", "-n", "BLOCK"))
    state = stored(host)
    assert [f.dst_port for f in state.filterlist("Block Inbound UDP 1434 Rule").filters] == [1433, 1434]
    assert len([r for r in state.policy(POLICY).rules if not r.default_response]) == 1


def test_polling_interval_and_pass_filters(host):
    ok(ipseccmd(host, "-w", "REG", "-p", "P:30", "-r", "Allow", "-f", "(10.1.0.0/255.255.0.0+0:445:TCP)"))
    state = stored(host)
    assert state.policy("P").polling_interval == 30
    assert state.filteraction("Allow").action == "permit"
    assert state.filterlist("Allow").filters[0].mirrored


def test_dynamic_block_and_show_filters(host):
    ok(ipseccmd(host, "-f", "[*=0:1434:UDP]"))
    ok(ipseccmd(host, "-f", "10.1.0.0/255.255.0.0+0:445:TCP", "-n", "PASS", "-lan"))
    shown = toolout.parse_ipseccmd_show_filters(ok(ipseccmd(host, "show", "filters")))
    assert shown == host.state().dynamic
    assert [(r.filter.dst_port, r.inbound, r.conntype, r.filter.mirrored) for r in shown] == \
        [(1434, "block", "all", False), (445, "permit", "lan", True)]
    assert ipseccmd(host, "-f", "[*=0:1434:UDP]").rc == 1            # already there
    report = diag(host, "/debug")
    assert report.policy == "" and report.filter_count == 3          # no static policy: all dynamic


def test_dynamic_policy_is_lost_on_u_service_stop_and_reboot(host):
    ok(ipseccmd(host, "-f", "[*=0:1434:UDP]"))
    ok(ipseccmd(host, "-u"))
    assert host.state().dynamic == ()
    ok(ipseccmd(host, "-f", "[*=0:1434:UDP]"))
    ok(host.run_tool(["net", "stop", "policyagent"]))
    assert host.state().dynamic == ()
    stopped = diag(host)
    assert not stopped.service_active
    assert ipseccmd(host, "-f", "[*=0:1434:UDP]").rc == 1
    ok(host.run_tool(["net", "start", "policyagent"]))
    ok(ipseccmd(host, "-f", "[*=0:1434:UDP]"))
    ok(ipseccmd(host, *INBOUND))
    ok(host.run_tool(["shutdown", "-r", "-t", "0"]))
    assert host.state().dynamic == () and stored(host).assigned == POLICY


@pytest.mark.parametrize("args", [
    ["-p", POLICY, "-x"],                                   # static flags without -w
    ["-w", "REG", "-p", POLICY, "-y"],                      # no such policy
    ["-w", "REG", "-p", POLICY, "-r", "R", "-f", "*0=:1434:UDP", "-n", "BLOCK"],   # the KB's typo
    ["-w", "REG", "-p", POLICY, "-r", "R", "-f", "*=0:1434:UDP", "\u2013x"],        # the KB's en dash
    ["-w", "NTDS", "-p", POLICY, "-r", "R", "-f", "*=0:1434:UDP"],
    ["-w", "DS", "-p", POLICY, "-r", "R", "-f", "*=0:1434:UDP"],                    # not a domain member
    ["-w", "REG", "-p", POLICY, "-r", "R", "-f", "*=0:1434:UDP", "-confirm"],
    ["show", "stats"],
    ["-bogus"],
])
def test_errors_change_nothing(host, args):
    ok(ipseccmd(host, "-w", "REG", "-p", "Other", "-r", "R", "-f", "0+*::ICMP", "-n", "PASS"))
    before = stored(host)
    result = ipseccmd(host, *args)
    assert result.rc == 1 and result.stderr.startswith("ERROR: ")
    assert stored(host) == before


def test_ipsecpol_on_windows_2000(tmp_path):
    w2k = SimHost("old", "127.0.0.9", "2000", str(tmp_path / "old"))
    assert w2k.run_tool(["ipseccmd", "-u"]).rc == 1                  # not on 2000
    ok(w2k.run_tool([r"C:\Program Files\Resource Kit\ipsecpol.exe"] + INBOUND))
    assert diag(w2k).policy == POLICY
