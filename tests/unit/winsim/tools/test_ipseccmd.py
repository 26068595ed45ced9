"""winsim's ipseccmd/ipsecpol and netdiag: KB 813878's whole procedure on 2003 and XP."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import netdiag, toolout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ANY, ME, QmOffer
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


RULE = ["-w", "REG", "-p", "Partners", "-r", "SQL", "-f", "10.9.0.0/255.255.0.0+0:1433:TCP"]


def auth_of(host, rule="SQL"):
    """The rule's methods as the engine decodes them from the stored NFA blob."""
    return [(a.kind, a.value) for a in stored(host).policy("Partners").rule(rule).auth]


@pytest.mark.parametrize("items, expected", [
    (["P:k3y", "K"], [("psk", "k3y"), ("kerberos", "")]),                      # what the dialect writes
    (['PRESHARE:"two words"', "KERBEROS"], [("psk", "two words"), ("kerberos", "")]),
    (["kerberos", "c:CN=Root CA", 'cert:"CN=Other CA"'],
     [("kerberos", ""), ("cert", "CN=Root CA"), ("cert", "CN=Other CA")]),
    (["p:Key:With:Colons"], [("psk", "Key:With:Colons")]),
])
def test_a_takes_a_list_of_methods_kept_in_order_in_the_rule(host, items, expected):
    ok(ipseccmd(host, *(RULE + ["-n", "PASS", "-a"] + items + ["-lan"])))
    assert auth_of(host) == expected
    assert host.state().policy("Partners").rule("SQL").auth == stored(host).policy("Partners").rule("SQL").auth


def test_without_a_a_rule_authenticates_with_kerberos_and_a_rerun_replaces_the_methods(host):
    ok(ipseccmd(host, *RULE))
    assert auth_of(host) == [("kerberos", "")]
    ok(ipseccmd(host, *(RULE + ["-a", "P:k3y", "K"])))
    assert auth_of(host) == [("psk", "k3y"), ("kerberos", "")]
    ok(ipseccmd(host, *RULE))                               # -a left out: the default again
    assert auth_of(host) == [("kerberos", "")]


@pytest.mark.parametrize("items", [
    ["ESP[3DES,SHA] 3600S/100000K", "AH[MD5]"],            # the dialect's form: one argument per offer
    ["ESP[3DES,SHA]", "3600S/100000K", "AH[MD5]"],          # lifetimes as their own item
    ["esp[3des,sha] 3600S/100000K AH[MD5]"],                # the whole list in one quoted argument
    ["ESP[3DES,SHA]100000K/3600S", "AH[MD5]"],              # lifetimes attached, either order
])
def test_n_takes_a_list_of_offers(host, items):
    ok(ipseccmd(host, *(RULE + ["-n"] + items + ["-1s", "3DES-SHA-2", "-a", "K"])))
    action = stored(host).filteraction("SQL")
    assert action.action == "negotiate"
    assert action.offers == (QmOffer("", "3DES", "SHA1", 100000, 3600), QmOffer("MD5"))


def test_a_single_lifetime_belongs_to_its_offer(host):
    ok(ipseccmd(host, *(RULE + ["-n", "ESP[DES,MD5] 900S", "AH[SHA]+ESP[3DES,None] 5000K"])))
    assert stored(host).filteraction("SQL").offers == (QmOffer("", "DES", "MD5", 0, 900),
                                                       QmOffer("SHA1", "3DES", "None", 5000, 0))


@pytest.mark.parametrize("args, says", [
    (RULE + ["-a", "X:S3cret"], "unknown authentication method 'X'"),
    (RULE + ["-a", "NTLM"], "unknown authentication method 'NTLM'"),
    (RULE + ["-a", "P:"], "P needs a value"),
    (RULE + ["-a", 'PRESHARE:""'], "PRESHARE needs a value"),
    (RULE + ["-a", "C:"], "C needs a value"),
    (RULE + ["-a", "K:S3cret"], "K takes no value"),
    (RULE + ["-a", "-lan"], "-a needs at least one item"),
    (RULE + ["-a"], "-a needs at least one item"),
    (RULE + ["-a", "K", "-a", "P:k"], "-a given twice"),
    (RULE + ["-n", "BLOCK", "AH[MD5]"], "stand alone"),
    (RULE + ["-n", "3600S/100000K"], "invalid negotiation policy list"),
    (RULE + ["-n", "ESP[RC4,SHA]"], "invalid negotiation policy list"),
    (RULE + ["-1s"], "-1s needs at least one item"),
    (["-f", "[*=0:1434:UDP]", "-a", "Q"], "unknown authentication method 'Q'"),     # dynamic mode checks -a too
])
def test_bad_list_items_are_refused_without_echoing_a_key(host, args, says):
    ok(ipseccmd(host, *(RULE + ["-a", "P:k3y"])))
    before, dynamic = stored(host), host.state().dynamic
    result = ipseccmd(host, *args)
    assert result.rc == 1 and result.stderr.startswith("ERROR: ") and says in result.stderr, result.stderr
    assert "S3cret" not in result.stderr and "k3y" not in result.stderr
    if "authentication" in says or "value" in says:
        assert 'PRESHARE:"key" (P:"key"), KERBEROS (K) or CERT:"CA" (C:"CA")' in result.stderr   # what is accepted
    assert (stored(host), host.state().dynamic) == (before, dynamic)


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
