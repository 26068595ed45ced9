"""RegTree, `reg query` text and .reg exports read, and the store decoded from what winsim's
independent registry writer (winsim/state/store.py) leaves on a host."""
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import registry
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, AuthMethod, DomainAssignment, Filter, FilterAction, FilterList, HostState, IPsecError,
    Policy, QmOffer, Rule)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import RegTree, RegValue
from tests.unit.plugins.module_utils.ipsec import winsim_side as W
from winsim.state.registry import CACHE_ROOT

LOCAL = registry.LOCAL_ROOT
SZ = lambda text: RegValue("REG_SZ", text)          # noqa: E731


# ---------------------------------------------------------------------------------- RegTree

def test_regtree_is_case_insensitive_and_keeps_first_spelling():
    tree = RegTree()
    tree.set(r"HKLM\Software\Policies\Microsoft\Windows\IPSec\Policy\Local", "ActivePolicy", SZ("x"))
    assert tree.get(LOCAL.upper(), "activepolicy") == SZ("x")
    tree.set(LOCAL.lower(), "ACTIVEPOLICY", SZ("y"))
    assert list(tree.values(LOCAL)) == ["ActivePolicy"] and tree.get(LOCAL, "ActivePolicy") == SZ("y")
    assert r"HKEY_LOCAL_MACHINE\Software\Policies" in tree.keys()           # ancestors exist, first spelling
    assert tree.subkeys(r"HKLM\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy") == [
        r"HKEY_LOCAL_MACHINE\Software\Policies\Microsoft\Windows\IPSec\Policy\Local"]


def test_regtree_rejects_bad_values_and_hives():
    tree = RegTree()
    with pytest.raises(IPsecError, match="REG_DWORD data must be int"):
        tree.set(LOCAL, "x", RegValue("REG_DWORD", "1"))
    with pytest.raises(IPsecError, match="out of range"):
        tree.set(LOCAL, "x", RegValue("REG_DWORD", 1 << 32))
    with pytest.raises(IPsecError, match="type 'REG_LINK'"):
        tree.set(LOCAL, "x", RegValue("REG_LINK", b""))
    with pytest.raises(IPsecError, match="unknown hive 'HKXX'"):
        tree.add_key(r"HKXX\Software")


# -------------------------------------------------------------------------------- reg query

VISTA_QUERY = (
    "\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\r\n"
    "    (Default)    REG_SZ    \r\n"
    "    ActivePolicy    REG_SZ    SOFTWARE\\Policies\\Microsoft\\Windows\\IPSEC\\Policy\\Local\\ipsecPolicy{1}\r\n"
    "\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\\ipsecFilter{2}\r\n"
    "    ipsecData    REG_BINARY    B520DC80\r\n"
    "    ipsecDataType    REG_DWORD    0x100\r\n"
    "    ipsecOwnersReference    REG_MULTI_SZ    A\\0B\r\n"
    "    Empty List    REG_MULTI_SZ    \r\n"
    "    Big    REG_QWORD    0x10000000000\r\n"
    "    Path    REG_EXPAND_SZ    %SystemRoot%\\x  y \r\n"
    "\r\n")


def test_parse_vista_query():
    tree = registry.parse_reg_query(VISTA_QUERY)
    key = LOCAL + r"\ipsecFilter{2}"
    assert tree.get(LOCAL, "") == SZ("")
    assert tree.get(key, "ipsecData") == RegValue("REG_BINARY", b"\xb5\x20\xdc\x80")
    assert tree.get(key, "ipsecDataType") == RegValue("REG_DWORD", 256)
    assert tree.get(key, "ipsecOwnersReference") == RegValue("REG_MULTI_SZ", ("A", "B"))
    assert tree.get(key, "Empty List") == RegValue("REG_MULTI_SZ", ())
    assert tree.get(key, "Big") == RegValue("REG_QWORD", 1 << 40)
    assert tree.get(key, "Path") == RegValue("REG_EXPAND_SZ", "%SystemRoot%\\x  y ")


def test_parse_xp_query_lf_banner_tabs_and_footer():
    text = ("\n! REG.EXE VERSION 3.0\n\n" + LOCAL + "\n"
            "    <NO NAME>\tREG_SZ\t\n    ActivePolicy\tREG_SZ\tx\n    Refs\tREG_MULTI_SZ\ta\\0b\\0\\0\n"
            "\nEnd of search: 3 match(es) found.\n")
    tree = registry.parse_reg_query(text)
    assert tree.values(LOCAL) == {"": SZ(""), "ActivePolicy": SZ("x"), "Refs": RegValue("REG_MULTI_SZ", ("a", "b"))}


@pytest.mark.parametrize("label", ["(Standard)", "(par défaut)", "(既定)"])
def test_parse_tolerates_localized_default_labels(label):
    tree = registry.parse_reg_query("\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\X\r\n    %s    REG_SZ    v\r\n" % label)
    assert tree.values(r"HKLM\SOFTWARE\X") == {"": SZ("v")}


@pytest.mark.parametrize("text, bad", [
    ("\r\nHKEY_LOCAL_MACHINE\\X\r\n    ipsecData    REG_BINARY    B5Z0\r\n", "B5Z0"),
    ("\r\nHKEY_LOCAL_MACHINE\\X\r\n    x    REG_RESOURCE_LIST    00\r\n", "REG_RESOURCE_LIST"),
    ("ERROR: The system was unable to find the specified registry key or value.\r\n", "ERROR"),
    ("    x    REG_SZ    y\r\n", "value before any key"),
    ("\r\nHKEY_LOCAL_MACHINE\\X\r\n    just some text\r\n", "just some text"),
])
def test_parse_names_the_bad_line(text, bad):
    with pytest.raises(IPsecError, match="reg query output") as err:
        registry.parse_reg_query(text)
    assert bad in str(err.value)


def sample_tree():
    tree = RegTree()
    tree.set(LOCAL, "ActivePolicy", SZ("SOFTWARE\\x\\ipsecPolicy{b}"))
    tree.set(LOCAL + r"\ipsecPolicy{b}", "ipsecData", RegValue("REG_BINARY", b"\x63\x21"))
    tree.set(LOCAL + r"\ipsecFilter{a}", "ipsecNFAReference", RegValue("REG_MULTI_SZ", ("p\\1", "p\\2")))
    tree.set(LOCAL + r"\ipsecFilter{a}", "", SZ("dflt"))
    tree.set(LOCAL + r"\ipsecFilter{a}", "whenChanged", RegValue("REG_DWORD", 0x62B114D8))
    tree.add_key(LOCAL + r"\ipsecFilter{a}\deeper")
    return tree


@pytest.mark.parametrize("style", ["modern", "xp"])
def test_parse_reads_what_winsim_reg_query_prints(style):
    # winsim's reg.exe prints each key of /s with its values; XP's reg.exe 3.0 adds its banner, tabs,
    # <NO NAME> for the default value and \0\0 after a REG_MULTI_SZ (tests/fixtures/captures/reg_query_xp_*).
    text = W.reg_query(W.winsim_copy(sample_tree()), LOCAL, style=style)
    if style == "xp":
        assert "    <NO NAME>\tREG_SZ\tdflt\r\n" in text and "p\\1\\0p\\2\\0\\0\r\n" in text
    assert registry.parse_reg_query(text) == sample_tree()


# ------------------------------------------------------------------------------ .reg files

REG5 = r'''Windows Registry Editor Version 5.00

; a comment
[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Local]
@=""
"ActivePolicy"="SOFTWARE\\Policies\\Microsoft\\Windows\\IPSEC\\Policy\\Local\\ipsecPolicy{1}"
"Quote \"me\""="a \"b\" c\\"

[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Local\ipsecFilter{2}]
"ipsecData"=hex:b5,20,dc,\
  80,c8
"ipsecDataType"=dword:00000100
"Owners"=hex(7):41,00,00,00,42,00,43,00,00,00,00,00
"Path"=hex(2):25,00,53,00,52,00,25,00,00,00
"Big"=hex(b):00,00,00,00,00,01,00,00
"Nothing"=hex(0):
"Gone"=-

[-HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Old]
"ignored"="x"
'''


def check_reg5(tree):
    filt = LOCAL + r"\ipsecFilter{2}"
    assert tree.values(LOCAL) == {
        "": SZ(""), "ActivePolicy": SZ(r"SOFTWARE\Policies\Microsoft\Windows\IPSEC\Policy\Local\ipsecPolicy{1}"),
        'Quote "me"': SZ('a "b" c\\')}
    assert tree.values(filt) == {
        "ipsecData": RegValue("REG_BINARY", b"\xb5\x20\xdc\x80\xc8"), "ipsecDataType": RegValue("REG_DWORD", 256),
        "Owners": RegValue("REG_MULTI_SZ", ("A", "BC")), "Path": RegValue("REG_EXPAND_SZ", "%SR%"),
        "Big": RegValue("REG_QWORD", 1 << 40), "Nothing": RegValue("REG_NONE", b"")}
    assert not tree.has_key(LOCAL.rsplit("\\", 1)[0] + r"\Old")


def test_parse_reg_file_unicode_with_bom_and_crlf():
    deletions = []
    data = b"\xff\xfe" + REG5.replace("\n", "\r\n").encode("utf-16-le")
    check_reg5(registry.parse_reg_file(data, deletions))
    assert deletions == [(LOCAL + r"\ipsecFilter{2}", "Gone"),
                         (LOCAL.rsplit("\\", 1)[0] + r"\Old", None)]


def test_parse_reg_file_text_and_regedit4():
    check_reg5(registry.parse_reg_file(REG5, []))
    ansi = ("REGEDIT4\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\X]\r\n\"caf\xe9\"=\"na\xefve\"\r\n"
            "\"M\"=hex(7):61,00,62,00,00\r\n").encode("cp1252")
    tree = registry.parse_reg_file(ansi)
    assert tree.values(r"HKLM\SOFTWARE\X") == {"café": SZ("naïve"), "M": RegValue("REG_MULTI_SZ", ("a", "b"))}


@pytest.mark.parametrize("text, bad", [
    ("REGEDIT5\n", "first line"),
    ('Windows Registry Editor Version 5.00\n"x"="y"\n', "outside any key"),
    ("Windows Registry Editor Version 5.00\n[HKEY_LOCAL_MACHINE\\X]\n\"x\"=hex(99):00\n", "hex(99)"),
    ("Windows Registry Editor Version 5.00\n[HKEY_LOCAL_MACHINE\\X]\n\"x\"=dword:zz\n", "bad dword"),
    ("Windows Registry Editor Version 5.00\n[HKEY_LOCAL_MACHINE\\X]\n\"x=\"y\"\n", "expected '='"),
])
def test_parse_reg_file_errors(text, bad):
    with pytest.raises(IPsecError, match=".reg file") as err:
        registry.parse_reg_file(text)
    assert bad in str(err.value)


# --------------------------------------------------------------------------- store round trip

def kb_state():
    """KB 813878's Slammer block plus enough variety to touch every field the store carries."""
    slammer = FilterList("Block UDP 1434 Filter List", (
        Filter(ANY, ME, 17, 0, 1434, True, "in", "{aaaaaaaa-0000-4000-8000-000000000001}"),
        Filter(ME, ANY, 17, 0, 1434, True, "out", "{aaaaaaaa-0000-4000-8000-000000000002}")),
        "the KB example", "{aaaaaaaa-0000-4000-8000-0000000000f1}")
    lan = FilterList("LAN", (Filter(Address("ip", "10.0.0.0", "255.0.0.0"), ME, 6, 0, 445, False,
                                    guid="{aaaaaaaa-0000-4000-8000-000000000003}"),),
                     guid="{aaaaaaaa-0000-4000-8000-0000000000f2}")
    block = FilterAction("Block", "block", guid="{bbbbbbbb-0000-4000-8000-000000000001}")
    permit = FilterAction("Permit", "permit", "let it be", guid="{bbbbbbbb-0000-4000-8000-000000000002}")
    secure = FilterAction("Require Security", "negotiate", "", True, True, True,
                          (QmOffer("", "3DES", "SHA1", 100000, 3600), QmOffer("MD5")),
                          "{bbbbbbbb-0000-4000-8000-000000000003}")
    response = FilterAction("{bbbbbbbb-0000-4000-8000-000000000004}", "negotiate",
                            offers=(QmOffer("", "3DES", "SHA1"), QmOffer("SHA1")),
                            guid="{bbbbbbbb-0000-4000-8000-000000000004}")
    policy = Policy("Block UDP 1434 Filter", "Slammer", 60, (
        Rule("Block Inbound UDP 1434 Rule", slammer.name, "Block", guid="{cccccccc-0000-4000-8000-000000000001}"),
        Rule("", "LAN", "Require Security", "psk rule", True, "lan", (AuthMethod("psk", "pw"), AuthMethod("kerberos")),
             "192.0.2.7", guid="{cccccccc-0000-4000-8000-000000000002}"),
        Rule("", "", response.name, active=False, default_response=True, guid="{cccccccc-0000-4000-8000-000000000003}"),
    ), "{dddddddd-0000-4000-8000-000000000001}")
    other = Policy("Spare", rules=(Rule("permit lan", "LAN", "Permit", conntype="dialup",
                                        auth=(AuthMethod("cert", "CN=Root"),),
                                        guid="{cccccccc-0000-4000-8000-000000000004}"),),
                   guid="{dddddddd-0000-4000-8000-000000000002}")
    return HostState((policy, other), (slammer, lan), (block, permit, secure, response), "block udp 1434 filter")


@pytest.mark.parametrize("flavor", ["modern", "legacy"])
def test_decodes_the_store_winsim_writes(flavor):
    # winsim's writer: the Windows 10 capture's layout (modern) or the Windows 2000 one (legacy)
    state = kb_state()
    decoded = registry.decode_store(W.store_tree(state, flavor=flavor, now=1700000000))
    assert decoded.assigned == "Block UDP 1434 Filter"         # the stored name, not the asked spelling
    assert decoded == replace(state, assigned="Block UDP 1434 Filter")
    assert [p.guid for p in decoded.policies] == [p.guid for p in state.policies]
    assert [f.guid for fl in decoded.filterlists for f in fl.filters] == \
        [f.guid for fl in state.filterlists for f in fl.filters]
    # ... and through the text winsim's reg.exe prints for the read script's `reg query /s`
    text = W.reg_query(W.winsim_tree(state, flavor=flavor, now=1700000000))
    assert registry.decode_store(registry.parse_reg_query(text)) == decoded


def test_decode_tolerates_windows_variants():
    written = W.winsim_tree(kb_state())
    prefix = r"SOFTWARE\Policies\Microsoft\Windows\IPSEC\Policy\Local"
    nfa = LOCAL + r"\ipsecNFA{cccccccc-0000-4000-8000-000000000001}"
    assert written.delete_value(nfa, "className")           # Windows 2000 spells it ClassName
    tree = W.engine_tree(written)
    tree.set(nfa, "ipsecFilterReference", SZ(prefix + r"\IPSECFILTER{AAAAAAAA-0000-4000-8000-0000000000F1}"))
    tree.set(nfa, "ClassName", SZ("IPSECNFA"))
    tree.set(LOCAL, "ActivePolicy", SZ(""))
    state = registry.decode_store(tree, root=LOCAL.replace("IPSec", "IPSEC").replace("HKEY_LOCAL_MACHINE", "HKLM"))
    assert state.policies[0].rules[0].filterlist == "Block UDP 1434 Filter List"
    assert state.assigned == ""


def test_domain_assignment_and_empty_store():
    tree = RegTree()
    assert registry.decode_store(tree) == HostState()
    tree.set(registry.GPT_ROOT, "DSIPSECPolicyPath", SZ("LDAP://CN=ipsecPolicy{1},CN=IP Security,CN=System,DC=x"))
    tree.set(registry.GPT_ROOT, "DSIPSECPolicyName", SZ("Domain Isolation"))
    assert registry.decode_store(tree).domain == DomainAssignment(
        "Domain Isolation", "LDAP://CN=ipsecPolicy{1},CN=IP Security,CN=System,DC=x")
    tree.set(registry.GPT_ROOT, "DSIPSECPolicyPath", SZ(""))
    assert registry.decode_store(tree).domain is None


def test_decode_errors_name_the_key():
    tree = W.store_tree(kb_state())
    filt = LOCAL + r"\ipsecFilter{aaaaaaaa-0000-4000-8000-0000000000f1}"
    tree.set(filt, "ipsecData", RegValue("REG_BINARY", tree.get(filt, "ipsecData").data[:60]))
    with pytest.raises(IPsecError, match=r"ipsecFilter\{aaaaaaaa-0000-4000-8000-0000000000f1\}: truncated"):
        registry.decode_store(tree)
    tree = W.store_tree(kb_state())
    nfa = LOCAL + r"\ipsecNFA{cccccccc-0000-4000-8000-000000000001}"
    tree.set(nfa, "ipsecNegotiationPolicyReference", SZ(r"SOFTWARE\x\ipsecNegotiationPolicy{00000000-dead}"))
    with pytest.raises(IPsecError, match=r"ipsecNFA\{cccccccc.*points to no ipsecNegotiationPolicy"):
        registry.decode_store(tree)
    tree = W.store_tree(kb_state())
    neg = LOCAL + r"\ipsecNegotiationPolicy{bbbbbbbb-0000-4000-8000-000000000001}"
    tree.set(neg, "ipsecNegotiationPolicyAction", SZ("{00000000-0000-0000-0000-000000000000}"))
    with pytest.raises(IPsecError, match="unknown ipsecNegotiationPolicyAction"):
        registry.decode_store(tree)


_names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=10)


@st.composite
def states(draw):
    fl_names = draw(st.lists(_names, min_size=1, max_size=3, unique_by=str.casefold))
    fa_names = draw(st.lists(_names, min_size=1, max_size=3, unique_by=str.casefold))
    filterlists = tuple(FilterList(n, tuple(draw(st.lists(st.builds(
        Filter, st.sampled_from([ANY, ME, Address("ip", "10.1.2.0", "255.255.255.0")]),
        st.sampled_from([ANY, ME, Address("dns", "h.example.com")]), st.integers(0, 255),
        st.integers(0, 65535), st.integers(0, 65535), st.booleans()), max_size=3))),
        draw(st.text(max_size=5).filter(lambda s: "\x00" not in s))) for n in fl_names)
    filteractions = tuple(FilterAction(n, draw(st.sampled_from(["block", "permit"]))) for n in fa_names)
    policies = []
    for p in draw(st.lists(_names, max_size=3, unique_by=str.casefold)):
        rules = tuple(Rule(draw(st.sampled_from(["", "r"])), draw(st.sampled_from(fl_names)),
                           draw(st.sampled_from(fa_names)), active=draw(st.booleans()),
                           conntype=draw(st.sampled_from(["all", "lan", "dialup"])))
                      for _ in range(draw(st.integers(0, 3))))
        policies.append(Policy(p, polling_interval=draw(st.integers(1, 10000)), rules=rules))
    assigned = draw(st.sampled_from([""] + [p.name for p in policies]))
    return HostState(tuple(policies), filterlists, filteractions, assigned)


@settings(max_examples=60, deadline=None)
@given(states(), st.sampled_from(["modern", "legacy"]))
def test_decodes_any_store_winsim_writes_property(state, flavor):
    assert registry.decode_store(W.store_tree(state, flavor=flavor)) == state


def test_decode_store_speed_figure(capsys):
    """Not a timed assertion: 10k filters through reg query text -> RegTree -> HostState."""
    filters = tuple(Filter(Address("ip", "10.%d.%d.0" % (i // 250, i % 250), "255.255.255.0"), ME, 17, 0, 1434)
                    for i in range(10000))
    state = HostState((Policy("P", rules=(Rule("r", "L", "A"),)),), (FilterList("L", filters),), (FilterAction("A"),))
    text = W.reg_query(W.winsim_tree(state))
    start = time.perf_counter()
    tree = registry.parse_reg_query(text)
    parsed = time.perf_counter()
    decoded = registry.decode_store(tree)
    done = time.perf_counter()
    assert decoded.filterlists[0].filters == filters
    with capsys.disabled():
        print("\n[figure] 10000 filters: parse_reg_query %.1f ms, decode_store %.1f ms"
              % ((parsed - start) * 1000, (done - parsed) * 1000))


def test_domain_assignment_round_trips_and_cache_store_accepts_ldap_references():
    state = replace(kb_state(), assigned="Block UDP 1434 Filter",
                    domain=DomainAssignment("Corp", "LDAP://CN=ipsecPolicy{9},CN=IP Security,CN=System,DC=corp"))
    tree = W.store_tree(state)
    # written by the Group Policy extension on a domain member (docs/policy-store.md 2.4)
    tree.set(registry.GPT_ROOT, "DSIPSECPolicyPath", SZ(state.domain.path))
    tree.set(registry.GPT_ROOT, "DSIPSECPolicyName", SZ(state.domain.name))
    assert registry.decode_store(tree) == state
    # Policy\Cache may hold directory-style references (docs/policy-store.md 2.4 [?]): match on the last component.
    cache = W.store_tree(replace(state, domain=None, assigned=""), root=CACHE_ROOT)
    for key in cache.subkeys(CACHE_ROOT):
        for name, value in cache.values(key).items():
            if name.endswith("Reference") and value.type == "REG_MULTI_SZ":
                ldap = tuple("CN=%s,CN=IP Security,CN=System,DC=corp" % v.rsplit("\\", 1)[1] for v in value.data)
                cache.set(key, name, RegValue("REG_MULTI_SZ", ldap))
    assert registry.decode_store(cache, root=CACHE_ROOT) == replace(state, domain=None, assigned="")


@pytest.mark.parametrize("action", ["block", "permit"])
def test_a_block_or_permit_action_decodes_without_offers(action):
    # winsim writes the Windows 10 capture's 25-byte "Block" blob for both, whatever the object says
    state = HostState(filteractions=(FilterAction("B", action, soft=True, qmpfs=True, offers=(QmOffer("MD5"),)),))
    assert registry.decode_store(W.store_tree(state)).filteractions == (FilterAction("B", action),)


def test_parse_microsoft_doc_copy_of_xp_output_with_expanded_tabs():
    # Microsoft's PowerShell doc "Working with registry entries" shows reg.exe 3.0 output with
    # its tabs expanded to spaces.
    text = ("! REG.EXE VERSION 3.0\n\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\n"
            "    DevicePath  REG_EXPAND_SZ   %SystemRoot%\\inf\n")
    tree = registry.parse_reg_query(text)
    assert tree.values(r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion") == {
        "DevicePath": RegValue("REG_EXPAND_SZ", "%SystemRoot%\\inf")}


def test_parse_reg_file_utf16_without_bom_and_deleted_keys_without_a_report_list():
    data = REG5.encode("utf-16-le")
    check_reg5(registry.parse_reg_file(data))


_value_names = st.from_regex(r"[A-Za-z0-9_.{}\-]{1,8}( [A-Za-z0-9_.{}\-]{1,8}){0,2}", fullmatch=True)
_reg_values = st.one_of(
    st.builds(lambda t: RegValue("REG_SZ", t), st.from_regex(r"[^\r\n\x00]{0,12}", fullmatch=True)),
    st.builds(lambda t: RegValue("REG_EXPAND_SZ", t), st.from_regex(r"%?[A-Za-z ]{0,8}%?", fullmatch=True)),
    st.builds(lambda items: RegValue("REG_MULTI_SZ", tuple(items)),
              st.lists(st.from_regex(r"[A-Za-z0-9 {}]{1,8}", fullmatch=True), max_size=3)),
    st.builds(lambda n: RegValue("REG_DWORD", n), st.integers(0, 0xFFFFFFFF)),
    st.builds(lambda n: RegValue("REG_QWORD", n), st.integers(0, 2 ** 64 - 1)),
    st.builds(lambda b: RegValue("REG_BINARY", b), st.binary(max_size=16)),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", r"\a", r"\a\b", r"\c d"]), _value_names, _reg_values), max_size=8),
       st.sampled_from(["modern", "xp"]))
def test_parse_reads_winsim_reg_query_property(entries, style):
    tree = RegTree()
    tree.add_key(LOCAL)
    for sub, name, value in entries:
        tree.set(LOCAL + sub, name, value)
    assert registry.parse_reg_query(W.reg_query(W.winsim_copy(tree), LOCAL, style=style)) == tree


def test_duplicate_names_in_a_store_stay_distinct():
    tree = W.store_tree(kb_state())
    lan = LOCAL + r"\ipsecFilter{aaaaaaaa-0000-4000-8000-0000000000f2}"
    tree.set(lan, "ipsecName", SZ("Block UDP 1434 Filter List"))
    decoded = registry.decode_store(tree)
    assert [f.name for f in decoded.filterlists] == [
        "Block UDP 1434 Filter List", "Block UDP 1434 Filter List {aaaaaaaa-0000-4000-8000-0000000000f2}"]
    assert decoded.policies[0].rules[1].filterlist == decoded.filterlists[1].name


def regedit_export(tree: RegTree, key: str) -> str:
    """`key` and its subtree as regedit exports them ('Windows Registry Editor Version 5.00', CRLF):
    hex data comma-separated and wrapped before column 80 with ',\\' and a two-space indent (as in
    the exports under tests/fixtures/registry/); strings holding a line break as hex(1) [I]. The
    input the property test below feeds to parse_reg_file; the engine itself writes no .reg file."""
    def hex_lines(prefix, raw):
        parts = ["%02x" % b for b in raw]
        lines, line = [], prefix
        for index, part in enumerate(parts):
            piece = part + ("," if index < len(parts) - 1 else "")
            if len(line) + len(piece) > 77 and line.strip():
                lines.append(line + "\\")
                line = "  "
            line += piece
        return lines + [line]

    def escape(text):
        return text.replace("\\", "\\\\").replace('"', '\\"')

    out = ["Windows Registry Editor Version 5.00", ""]
    walked = W.winsim_copy(tree)
    for current in walked.walk(key):
        out.append("[%s]" % current)
        for name, (kind, data) in walked.values(current).items():
            shown = "@" if name == "" else '"%s"' % escape(name)
            if kind == "REG_SZ" and not any(c in data for c in "\r\n\x00"):
                out.append('%s="%s"' % (shown, escape(data)))
            elif kind == "REG_DWORD":
                out.append("%s=dword:%08x" % (shown, data))
            else:
                code = {"REG_BINARY": "", "REG_NONE": "(0)", "REG_SZ": "(1)", "REG_EXPAND_SZ": "(2)",
                        "REG_MULTI_SZ": "(7)", "REG_QWORD": "(b)"}[kind]
                if kind in ("REG_SZ", "REG_EXPAND_SZ"):
                    raw = (data + "\x00").encode("utf-16-le")
                elif kind == "REG_MULTI_SZ":
                    raw = "".join(item + "\x00" for item in data).encode("utf-16-le") + b"\x00\x00"
                elif kind == "REG_QWORD":
                    raw = data.to_bytes(8, "little")
                else:
                    raw = data
                out += hex_lines("%s=hex%s:" % (shown, code), raw)
        out.append("")
    return "\r\n".join(out) + "\r\n"


def test_parse_reg_file_joins_wrapped_hex_and_unescapes():
    key = LOCAL + r"\ipsecFilter{a}"
    text = ("Windows Registry Editor Version 5.00\r\n\r\n[" + key + "]\r\n"
            '"ipsecData"=hex:00,01,02,03,04,05,06,07,08,09,0a,0b,0c,0d,0e,0f,10,11,12,13,\\\r\n'
            "  14,15,16,17,18,19,1a,1b,1c,1d\r\n"
            '@="say \\"hi\\" \\\\ there"\r\n\r\n')
    assert registry.parse_reg_file(text).values(key) == {
        "ipsecData": RegValue("REG_BINARY", bytes(range(30))), "": SZ('say "hi" \\ there')}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", r"\a", r"\a\b"]), st.text(max_size=6).filter(
    lambda s: "\x00" not in s and "\r" not in s and "\n" not in s), _reg_values | st.builds(
        lambda t: RegValue("REG_SZ", t), st.text(max_size=8).filter(lambda s: "\x00" not in s))), max_size=8))
def test_reg_file_round_trip_property(entries):
    tree = RegTree()
    tree.add_key(LOCAL)
    for sub, name, value in entries:
        tree.set(LOCAL + sub, name, value)
    text = regedit_export(tree, LOCAL)
    again = registry.parse_reg_file(b"\xff\xfe" + text.encode("utf-16-le"))
    assert again.values(LOCAL) == tree.values(LOCAL) and again == tree
