"""winsim's netsh: `ipsec static` and `ipsec dynamic` semantics, scripts, errors (docs/windows-tools.md)."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import netdiag, toolout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import listings
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ANY, ME, Address
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import (
    LOCAL_ROOT, decode_store, parse_reg_query)
from winsim.host import SimHost

KB_POLICY = "Block UDP 1434 Filter"


@pytest.fixture
def host(tmp_path):
    return SimHost("web1", "127.0.0.2", "modern", str(tmp_path / "web1"))


def netsh(host, *words, stdin=""):
    return host.run_tool(["netsh"] + list(words), stdin)


def ok(result):
    assert (result.rc, result.stderr) == (0, ""), result.stdout + result.stderr
    return result.stdout


def stored(host):
    """The local store as the engine reads it: `reg query /s` text -> RegTree -> HostState."""
    text = ok(host.run_tool(["reg", "query", LOCAL_ROOT, "/s"]))
    return decode_store(parse_reg_query(text), LOCAL_ROOT)


def kb_policy(host):
    """KB 813878's Slammer policy, in netsh form: inbound *=0 and outbound 0=* UDP 1434 blocks."""
    for line in (
        ["add", "policy", "name=" + KB_POLICY, "description=KB 813878"],
        ["add", "filteraction", "name=Block", "action=block"],
        ["add", "filter", "filterlist=Block Inbound UDP 1434 Rule", "srcaddr=any", "dstaddr=me",
         "protocol=UDP", "dstport=1434", "mirrored=no"],
        ["add", "filter", "filterlist=Block Outbound UDP 1434 Rule", "srcaddr=me", "dstaddr=any",
         "protocol=UDP", "dstport=1434", "mirrored=no"],
        ["add", "rule", "name=Block Inbound UDP 1434 Rule", "policy=" + KB_POLICY,
         "filterlist=Block Inbound UDP 1434 Rule", "filteraction=Block"],
        ["add", "rule", "name=Block Outbound UDP 1434 Rule", "policy=" + KB_POLICY,
         "filterlist=Block Outbound UDP 1434 Rule", "filteraction=Block"],
        ["set", "policy", "name=" + KB_POLICY, "assign=yes"],
    ):
        assert ok(netsh(host, "ipsec", "static", *line)) == ""     # success prints nothing [E]


def test_kb_procedure_with_netsh_lands_in_the_registry(host):
    kb_policy(host)
    state = stored(host)
    assert state.assigned == KB_POLICY
    policy = state.policy(KB_POLICY)
    named = [r for r in policy.rules if not r.default_response]
    assert [r.name for r in named] == ["Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"]
    assert all(r.filteraction == "Block" for r in named)
    assert [r for r in policy.rules if r.default_response], "netsh writes a default response rule"
    inbound = state.filterlist("Block Inbound UDP 1434 Rule").filters
    assert [(f.src, f.dst, f.protocol, f.dst_port, f.mirrored) for f in inbound] == [(ANY, ME, 17, 1434, False)]
    assert state.filteraction("Block").action == "block"


def test_kb_procedure_reads_back_through_netdiag(host):
    kb_policy(host)
    report = netdiag.parse(netdiag.render(host.state(), local_address=host.address, debug=True))
    assert report.policy == KB_POLICY
    flags = sorted((f.direction, f.action, f.dst_port, f.protocol) for f in report.filters)
    assert flags == [("Inbound", "block", 1434, 17), ("Outbound", "block", 1434, 17)]
    assert {f.dst_addr for f in report.filters if f.direction == "Inbound"} == {"127.0.0.2"}


@pytest.mark.parametrize("words, code", [
    (["add", "policy", "name=" + KB_POLICY], 5005),
    (["add", "filterlist", "name=Block Inbound UDP 1434 Rule"], 5010),
    (["add", "filteraction", "name=block"], 5014),         # names compare case-insensitively
    (["add", "rule", "name=Block Inbound UDP 1434 Rule", "policy=" + KB_POLICY,
      "filterlist=Block Inbound UDP 1434 Rule", "filteraction=Block"], 5020),
    (["add", "rule", "name=New", "policy=" + KB_POLICY, "filterlist=Nope", "filteraction=Block"], 5049),
])
def test_errors_for_existing_and_missing_names(host, words, code):
    kb_policy(host)
    before = stored(host)
    result = netsh(host, "ipsec", "static", *words)
    assert result.rc == 1
    assert toolout.parse_netsh_error(result.stdout)[0] == code
    assert stored(host) == before


def test_empty_store_errors(host):
    for noun, code in (("policy", 5072), ("filterlist", 5067), ("filteraction", 5068)):
        result = netsh(host, "ipsec", "static", "show", noun, "all")
        assert result.rc == 1 and toolout.parse_netsh_error(result.stdout)[0] == code


def test_add_filter_creates_the_list_and_accepts_duplicates(host):
    for _ in range(2):
        ok(netsh(host, "ipsec", "static", "add", "filter", "filterlist=L", "srcaddr=any", "dstaddr=me",
                 "protocol=TCP", "dstport=445"))
    filters = stored(host).filterlist("L").filters
    assert len(filters) == 2 and filters[0].key() == filters[1].key()
    assert filters[0].mirrored      # netsh's default
    assert filters[0].guid != filters[1].guid


def test_delete_filter_matches_the_given_parameters(host):
    add = ["ipsec", "static", "add", "filter", "filterlist=L", "srcaddr=10.0.0.0", "srcmask=8", "dstaddr=me"]
    ok(netsh(host, *add, "protocol=TCP", "dstport=445"))
    ok(netsh(host, *add, "protocol=TCP", "dstport=139"))
    missing = netsh(host, "ipsec", "static", "delete", "filter", "filterlist=L", "srcaddr=10.0.0.0",
                    "srcmask=255.0.0.0", "dstaddr=me", "protocol=UDP")
    assert missing.rc == 1 and "ERR IPsec[" in missing.stdout
    ok(netsh(host, "ipsec", "static", "delete", "filter", "filterlist=L", "srcaddr=10.0.0.0",
             "srcmask=255.0.0.0", "dstaddr=me", "protocol=TCP", "dstport=445"))
    assert [f.dst_port for f in stored(host).filterlist("L").filters] == [139]


def test_assigning_one_policy_unassigns_the_other(host):
    ok(netsh(host, "ipsec", "static", "add", "policy", "name=A", "assign=yes"))
    ok(netsh(host, "ipsec", "static", "add", "policy", "name=B", "assign=y"))
    assert stored(host).assigned == "B"
    ok(netsh(host, "ipsec", "static", "set", "policy", "name=B", "assign=n"))
    assert stored(host).assigned == ""


def test_delete_policy_keeps_lists_and_actions(host):
    kb_policy(host)
    ok(netsh(host, "ipsec", "static", "delete", "policy", "name=" + KB_POLICY))
    state = stored(host)
    assert state.policies == () and state.assigned == ""
    assert {f.name for f in state.filterlists} == {"Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"}
    assert [f.name for f in state.filteractions] == ["Block"]      # the default response action went with it


def test_delete_filterlist_in_use_is_refused(host):
    kb_policy(host)
    result = netsh(host, "ipsec", "static", "delete", "filterlist", "name=Block Inbound UDP 1434 Rule")
    assert result.rc == 1 and "ERR IPsec[" in result.stdout


def test_tags_abbreviated_positional_and_spaced(host):
    ok(netsh(host, "ipsec", "static", "add", "policy", "P", "desc=d"))
    ok(netsh(host, "ipsec", "static", "add", "filter", "filterlist", "=", "L", "srca=Any", "dsta", "=Me",
             "proto=udp", "dstp=53", "mir=n"))
    ok(netsh(host, "ipsec", "static", "add", "filteraction", "A", "act=permit"))
    ok(netsh(host, "ipsec", "static", "add", "rule", "R", "P", "L", "A", "conn=lan", "kerb=yes"))
    state = stored(host)
    assert state.policy("P").description == "d"
    assert state.policy("P").rule("R").conntype == "lan"
    assert state.filterlist("L").filters[0].key() == (ANY, ME, 17, 0, 53, False)
    assert state.filteraction("A").action == "permit"


def test_ambiguous_or_unknown_tags_and_values_fail_loudly(host):
    for words in (["add", "policy", "name=P", "m=yes"],           # mmpfs or mmlifetime or mmsecmethods
                  ["add", "policy", "name=P", "colour=red"],
                  ["add", "policy", "name=P", "assign=maybe"],
                  ["add", "filter", "filterlist=L", "srcaddr=any", "dstaddr=me", "protocol=ICMP", "dstport=1"],
                  ["add", "filter", "filterlist=L", "srcaddr=any"]):
        result = netsh(host, "ipsec", "static", *words)
        assert result.rc == 1 and result.stdout.strip(), words
    assert stored(host).policies == () and stored(host).filterlists == ()


def test_masks_prefixes_ranges_and_server_types(host):
    ok(netsh(host, "ipsec", "static", "add", "filter", "filterlist=L", "srcaddr=192.168.0.0", "srcmask=16",
             "dstaddr=10.0.0.1-10.0.0.9"))
    ok(netsh(host, "ipsec", "static", "add", "filter", "filterlist=L", "srcaddr=DNS", "dstaddr=any"))
    filters = stored(host).filterlist("L").filters
    assert filters[0].src == Address("ip", "192.168.0.0", "255.255.0.0")
    assert filters[0].dst == Address("range", "10.0.0.1", end="10.0.0.9")
    assert (filters[1].src.kind, filters[1].src.value, filters[1].dst) == ("server", "DNS", ME)


def test_unknown_commands_and_exportpolicy(host):
    result = netsh(host, "ipsec", "static", "frobnicate", "policy")
    assert result.rc == 1 and "The following command was not found: ipsec static frobnicate policy." in result.stdout
    assert netsh(host, "ipsec", "static", "exportpolicy", "file=x.ipsec").rc == 1
    assert netsh(host, "advfirewall", "show").rc == 1


def test_xp_has_no_ipsec_context(tmp_path):
    xp = SimHost("xp1", "127.0.0.3", "xp", str(tmp_path / "xp"))
    result = netsh(xp, "ipsec", "static", "add", "policy", "name=P")
    assert result.rc == 1 and result.stdout.startswith("The following command was not found: ipsec")


def test_show_output_is_labelled(host):
    kb_policy(host)
    text = ok(netsh(host, "ipsec", "static", "show", "policy", "name=" + KB_POLICY, "level=verbose"))
    assert "Policy Name            : %s" % KB_POLICY in text
    assert "Assigned               : YES" in text
    assert "Destination Port       : 1434" in text
    assert "Store                  : Local Store <WEB1>" in text


def test_script_keeps_the_store_for_its_own_process_only(tmp_path):
    domain = str(tmp_path / "domain")
    host = SimHost("web1", "127.0.0.2", "modern", str(tmp_path / "web1"), domain_store=domain)
    host.fs[r"C:\Windows\Temp\ipsec.txt"] = "\n".join([
        "# domain policy for all members",
        "pushd ipsec static",
        "set store location=domain",
        'add policy name="Domain Block" assign=yes',
        "popd",
        "",
    ])
    ok(netsh(host, "-f", r"c:\windows\temp\IPSEC.txt"))
    assert stored(host).policies == ()                             # nothing went to the local store
    assert host.domain.load().policy("Domain Block") is not None
    ok(netsh(host, "ipsec", "static", "add", "policy", "name=Local"))    # a new process starts on local
    assert [p.name for p in stored(host).policies] == ["Local"]


def test_exec_and_stdin_scripts_stop_at_the_first_error(host):
    host.fs["s.txt"] = "ipsec static add policy name=A\nipsec static add policy name=A\nipsec static add policy name=B\n"
    result = netsh(host, "exec", "s.txt")
    assert result.rc == 1 and "ERR IPsec[05005]" in result.stdout
    assert [p.name for p in stored(host).policies] == ["A"]
    ok(netsh(host, stdin="ipsec static\nadd policy name=C\n"))
    assert sorted(p.name for p in stored(host).policies) == ["A", "C"]    # the registry sorts by GUID
    assert netsh(host, "-f", "missing.txt").rc == 1


def test_set_store_domain_without_a_domain_fails(host):
    result = netsh(host, "ipsec", "static", "set", "store", "location=domain")
    assert result.rc == 1 and "ERR IPsec[05073]" in result.stdout


# -- dynamic -------------------------------------------------------------------------------------

def dynamic_block(host, port="1434"):
    return netsh(host, "ipsec", "dynamic", "add", "rule", "srcaddr=any", "dstaddr=me", "mmpolicy=mm",
                 "protocol=UDP", "dstport=" + port, "mirrored=no", "actioninbound=block",
                 "actionoutbound=block")


def test_dynamic_rules_show_in_the_fixture_layout(host):
    ok(netsh(host, "ipsec", "dynamic", "add", "mmpolicy", "name=mm"))
    ok(dynamic_block(host))
    ok(netsh(host, "ipsec", "dynamic", "add", "rule", "srcaddr=10.1.0.0", "srcmask=255.255.0.0", "dstaddr=me",
             "mmpolicy=mm", "protocol=TCP", "dstport=445", "conntype=lan", "actioninbound=permit",
             "actionoutbound=permit"))
    assert toolout.parse_netsh_dynamic_show(ok(netsh(host, "ipsec", "dynamic", "show", "rule"))) == host.state().dynamic
    # `show all` ends with its statistics part, which the engine's reader leaves aside
    assert listings.parse_dynamic_rules(ok(netsh(host, "ipsec", "dynamic", "show", "all"))) == host.state().dynamic
    assert [(r.filter.dst_port, r.inbound, r.conntype) for r in host.state().dynamic] == \
        [(1434, "block", "all"), (445, "permit", "lan")]


def test_dynamic_rule_needs_its_mmpolicy_and_is_unique(host):
    assert dynamic_block(host).rc == 1
    ok(netsh(host, "ipsec", "dynamic", "add", "mmpolicy", "name=mm"))
    ok(dynamic_block(host))
    assert dynamic_block(host).rc == 1
    assert len(host.state().dynamic) == 1


def test_dynamic_delete_rule_and_all(host):
    ok(netsh(host, "ipsec", "dynamic", "add", "mmpolicy", "name=mm"))
    ok(dynamic_block(host))
    ok(dynamic_block(host, "1433"))
    ok(netsh(host, "ipsec", "dynamic", "delete", "rule", "srcaddr=any", "dstaddr=me", "protocol=UDP",
             "srcport=0", "dstport=1434", "mirrored=no", "conntype=all"))
    assert [r.filter.dst_port for r in host.state().dynamic] == [1433]
    assert netsh(host, "ipsec", "dynamic", "delete", "mmpolicy", "name=mm").rc == 1    # in use
    ok(netsh(host, "ipsec", "dynamic", "delete", "all"))
    assert host.state().dynamic == () and ok(netsh(host, "ipsec", "dynamic", "show", "rule")) == ""
    # `show all` keeps its statistics part with nothing else
    assert ok(netsh(host, "ipsec", "dynamic", "show", "all")).startswith("IPsec Statistics\n")


def test_dynamic_rules_vanish_when_policyagent_stops(host):
    ok(netsh(host, "ipsec", "dynamic", "add", "mmpolicy", "name=mm"))
    ok(dynamic_block(host))
    ok(host.run_tool(["net", "stop", "policyagent"]))
    stopped = netsh(host, "ipsec", "dynamic", "show", "all")
    assert stopped.rc == 1 and "ERR IPsec[" in stopped.stdout
    ok(host.run_tool(["net", "start", "PolicyAgent"]))
    assert host.state().dynamic == () and ok(netsh(host, "ipsec", "dynamic", "show", "rule")) == ""


def test_dynamic_set_config_ipsecexempt_writes_nodefaultexempt(host):
    ok(netsh(host, "ipsec", "dynamic", "set", "config", "property=ipsecexempt", "value=3"))
    assert host.state().no_default_exempt == 3
    text = ok(host.run_tool(["reg", "query", r"HKLM\SYSTEM\CurrentControlSet\Services\PolicyAgent",
                             "/v", "NoDefaultExempt"]))
    assert "REG_DWORD    0x3" in text


def test_command_words_abbreviate_like_netsh(host):
    ok(netsh(host, "ipsec", "st", "a", "po", "name=P"))
    assert "Policy Name            : P" in ok(netsh(host, "ipsec", "static", "sh", "po", "all"))
    assert netsh(host, "ipsec", "static", "s", "po", "name=P").rc == 1      # set or show: ambiguous


def test_context_commands_inside_a_script(host):
    host.fs["ctx.txt"] = "\n".join([
        "ipsec static", "add policy name=A", "ipsec dynamic add mmpolicy name=mm", "..", "static",
        "add policy name=B", "exit", "add policy name=C"])
    ok(netsh(host, "-f", "ctx.txt"))
    assert sorted(p.name for p in host.state().policies) == ["A", "B"]
    assert list(host.mmpolicies) == ["mm"]


def test_set_defaultrule_and_unemulated_dynamic_commands(host):
    ok(netsh(host, "ipsec", "static", "add", "policy", "name=P"))
    ok(netsh(host, "ipsec", "static", "set", "defaultrule", "policy=P", "activate=yes", "qmpfs=yes"))
    state = stored(host)
    (default,) = [r for r in state.policy("P").rules if r.default_response]
    assert default.active and state.filteraction(default.filteraction).qmpfs
    result = netsh(host, "ipsec", "dynamic", "show", "stats")
    assert result.rc == 1 and "not emulated" in result.stdout


def test_server_2003_netsh_takes_no_ipv6_or_ranges(tmp_path):
    old = SimHost("s", "127.0.0.6", "2003", str(tmp_path / "s"))
    for addr in ("fe80::1", "10.0.0.1-10.0.0.9"):
        result = netsh(old, "ipsec", "static", "add", "filter", "filterlist=L", "srcaddr=" + addr, "dstaddr=me")
        assert result.rc == 1 and "ERR IPsec[" in result.stdout
    ok(netsh(old, "ipsec", "static", "add", "filter", "filterlist=L", "srcaddr=10.0.0.1", "dstaddr=me"))


def test_random_commands_never_crash_and_the_store_stays_decodable(host):
    """Whatever netsh is given, it answers as a tool (exit code, text) and the registry store it
    leaves behind decodes."""
    import random
    from winsim.tools.netsh_dynamic import HANDLERS as DYNAMIC
    from winsim.tools.netsh_static import HANDLERS as STATIC
    params = ["name=P", "P", "L", "A", "R", "filterlist=L", "srcaddr=any", "dstaddr=me", "srcaddr=10.0.0.1",
              "dstaddr=WINS", "srcaddr=10.0.0.1-10.0.0.2", "srcmask=24", "srcmask=33", "protocol=300",
              "protocol=tcp", "protocol=icmp", "dstport=80", "dstport=99999", "mirrored=no", "action=block",
              "action=negotiate", "qmsec=AH[MD5]:1k/2s ESP[3DES,SHA1]", "qmsec=ESP[None,None]", "policy=P",
              "filteraction=A", "id=1", "id=0", "all", "mmpolicy=mm", "kerberos=no", "psk=x", "assign=y",
              "newname=Z", "activate=no", "level=verbose", "actioninbound=block", "description=d", "rule=R"]
    rng = random.Random(813878)
    ok(netsh(host, "ipsec", "dynamic", "add", "mmpolicy", "name=mm"))
    for _ in range(300):
        context, table = rng.choice([("static", STATIC), ("dynamic", DYNAMIC)])
        verb, noun = rng.choice(sorted(table))
        result = netsh(host, "ipsec", context, verb, noun, *rng.sample(params, rng.randint(0, 6)))
        assert result.rc in (0, 1) and (result.rc == 0 or result.stdout.strip())
    stored(host)
