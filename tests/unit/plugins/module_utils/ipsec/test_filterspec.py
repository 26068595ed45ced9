# -*- coding: utf-8 -*-
"""The ipseccmd/ipsecpol filterspec grammar and pasted KB 813878 command lines."""
import pytest
from hypothesis import given, strategies as st

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import filters_option
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import (
    FilterSpec, KbCommand, KbRule, format_filterspec, parse_filterspec, parse_kb_command,
)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, Filter, ValidationError,
)


def rejects(func, *args):
    with pytest.raises(ValidationError) as err:
        func(*args)
    return str(err.value)


# ---- the grammar ----

@pytest.mark.parametrize("text,expected", [
    # KB 813878 inbound and outbound Slammer filters.
    ("*=0:1434:UDP", FilterSpec(Filter(ANY, ME, 17, 0, 1434, False))),
    ("0=*:1434:UDP", FilterSpec(Filter(ME, ANY, 17, 0, 1434, False))),
    ("0+*::ICMP", FilterSpec(Filter(ME, ANY, 1, 0, 0, True))),
    ("10.1.0.0/255.255.0.0=0:445:TCP",
     FilterSpec(Filter(Address("ip", "10.1.0.0", "255.255.0.0"), ME, 6, 0, 445, False))),
    ("0:80+*::TCP", FilterSpec(Filter(ME, ANY, 6, 80, 0, True))),
    ("[*=0:1434:UDP]", FilterSpec(Filter(ANY, ME, 17, 0, 1434, False), "block")),
    ("(0+*::ICMP)", FilterSpec(Filter(ME, ANY, 1, 0, 0, True), "pass")),
    ("0+*", FilterSpec(Filter(ME, ANY, 0, 0, 0, True))),
    ("192.168.1.5=0::47", FilterSpec(Filter(Address("ip", "192.168.1.5", "255.255.255.255"), ME, 47, 0, 0, False))),
    ("10.0.0.0/8+Server.Example.com:25:tcp",
     FilterSpec(Filter(Address("ip", "10.0.0.0", "255.0.0.0"), Address("dns", "server.example.com"), 6, 0, 25, True))),
    (" *=0:1434:17 ", FilterSpec(Filter(ANY, ME, 17, 0, 1434, False))),
    ("0.0.0.0/0.0.0.0=0", FilterSpec(Filter(ANY, ME, 0, 0, 0, False))),
])
def test_parse(text, expected):
    assert parse_filterspec(text) == expected


@pytest.mark.parametrize("text", ["*=0:1434:UDP", "0=*:1434:UDP", "0+*::ICMP", "10.1.0.0/255.255.0.0=0:445:TCP",
                                  "[*=0:1434:UDP]", "(0:80+*::TCP)", "0+*", "a.example=0::RAW", "*=0::47"])
def test_format_gives_the_canonical_text_back(text):
    spec = parse_filterspec(text)
    assert format_filterspec(spec.filter, spec.kind) == text


@pytest.mark.parametrize("text,reason", [
    ("*0=:PortNumber:Protocol", "probably means 0=*:PORT:PROTOCOL"),
    ("*0=:1434:UDP", "probably means 0=*:1434:UDP"),
    ("*=0:PortNumber:UDP", "PortNumber is a placeholder"),
    ("*=0:1434:Protocol", "Protocol is a placeholder"),
    ("*=0:1434", "ports apply only to TCP and UDP"),
    ("0=*:80:ICMP", "protocol is ICMP"),
    ("*=0:99999:TCP", "destination port '99999'"),
    ("*=0:1434:UDPX", "protocol 'UDPX'"),
    ("*0", "exactly one '=' or '+'"),
    ("*=0=1", "exactly one '=' or '+'"),
    ("*=+0", "exactly one '=' or '+'"),
    ("fe80::1=0", "IPv6"),
    ("10.0.0.1-10.0.0.5=0", "ranges"),
    ("DNS=0", "netsh syntax"),
    ("me=any", "netsh syntax"),
    ("*/24=0", "takes no mask"),
    ("=0:80:TCP", "source address is missing"),
    ("10.0.0.0/7.0.0.0=0", "source mask"),
    ("10.0.0.300=0", "source"),
    ('"*=0:1434:UDP"', "double quotes"),
    ("[*=0:1434:UDP", "unbalanced"),
    ("*=0:1434:UDP)", "unbalanced"),
    ("*:1:2=0", "too many ':'"),
    ("", "exactly one"),
])
def test_malformed_specs_get_clear_errors(text, reason):
    message = rejects(parse_filterspec, text, "rules[0].filters[1]")
    assert message.startswith("rules[0].filters[1]: %r is not valid" % text[:77])
    assert reason in message
    assert "expected a filterspec SRC[/MASK][:PORT]=DST" in message


def test_non_text_spec():
    rejects(parse_filterspec, {"src": "any"})


@pytest.mark.parametrize("flt,reason", [
    (Filter(Address("range", "1.1.1.1", end="1.1.1.9"), ME), "range"),
    (Filter(Address("ip", "2001:db8::1", "128"), ME), "IPv6"),
    (Filter(ME, Address("server", "DNS")), "server"),
])
def test_format_refuses_what_the_grammar_lacks(flt, reason):
    assert reason in rejects(format_filterspec, flt)


def test_format_refuses_unknown_kind():
    rejects(format_filterspec, Filter(ANY, ME), "deny")


OCTET = st.integers(0, 255)
IPV4 = st.tuples(OCTET, OCTET, OCTET, OCTET).map(lambda t: "%d.%d.%d.%d" % t)
MASKS = st.integers(0, 32).map(lambda n: ".".join(str((0xFFFFFFFF << (32 - n) >> s) & 0xFF) for s in (24, 16, 8, 0)))
SIDES = st.one_of(
    st.just(ANY), st.just(ME),
    st.builds(lambda ip, mask: Address("ip", ip, mask), IPV4, MASKS).filter(
        lambda a: (a.value, a.mask) != ("0.0.0.0", "0.0.0.0")),      # that one is `any`
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z]{2,6}){1,2}", fullmatch=True).map(lambda n: Address("dns", n)),
)


@st.composite
def filters(draw):
    protocol = draw(st.sampled_from([0, 1, 6, 17, 47, 255]))
    ports = st.integers(0, 65535) if protocol in (6, 17) else st.just(0)
    return Filter(draw(SIDES), draw(SIDES), protocol, draw(ports), draw(ports), draw(st.booleans()))


@given(filters(), st.sampled_from(["", "block", "pass"]))
def test_round_trip(flt, kind):
    text = format_filterspec(flt, kind)
    assert parse_filterspec(text) == FilterSpec(flt, kind)
    assert format_filterspec(parse_filterspec(text).filter, kind) == text


# ---- pasted KB commands ----

SLAMMER_IN = Filter(ANY, ME, 17, 0, 1434, False)


def test_kb_inbound_command():
    cmd = parse_kb_command('IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" '
                           '-f *=0:1434:UDP -n BLOCK -x')
    assert cmd == KbCommand(tool="ipseccmd", store="REG", policy="Block UDP 1434 Filter",
                            rules=(KbRule("Block Inbound UDP 1434 Rule", (FilterSpec(SLAMMER_IN),)),),
                            action="block", assign=True)
    assert not cmd.dynamic


def test_kb_outbound_command_for_ipsecpol():
    cmd = parse_kb_command('ipsecpol -w REG -p "Block UDP 1434 Filter" -r "Block Outbound UDP 1434 Rule" '
                           '-f 0=*:1434:UDP -n BLOCK')
    assert cmd.tool == "ipsecpol" and not cmd.assign
    assert cmd.rules[0].filters[0].filter == Filter(ME, ANY, 17, 0, 1434, False)


def test_kb_delete_unassign_and_dynamic_commands():
    delete = parse_kb_command('IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" '
                              '-r "Block Outbound UDP 1434 Rule" -o')
    assert delete.delete and [r.name for r in delete.rules] == ["Block Inbound UDP 1434 Rule",
                                                                "Block Outbound UDP 1434 Rule"]
    assert parse_kb_command('IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -y').unassign
    assert parse_kb_command("IPSeccmd.exe -u").delete_dynamic
    dynamic = parse_kb_command("ipsecpol -f [*=0:1434:UDP]")
    assert dynamic.dynamic and dynamic.rules == (KbRule("", (FilterSpec(SLAMMER_IN, "block"),)),)


def test_kb_command_details():
    cmd = parse_kb_command('"C:\\Program Files\\Support Tools\\ipseccmd.exe" \\\\sql01 -w DS:corp.example '
                           '-p "Web:60" -r Web -f "0+10.0.0.1:445:TCP" "0+10.0.0.1:139:TCP" '
                           '-n "esp[3des,sha] 3600S/100000K" -a p:"secret" -soft -lan')
    assert (cmd.computer, cmd.store, cmd.domain, cmd.policy, cmd.poll_interval) == (
        "\\\\sql01", "DS", "corp.example", "Web", 60)
    assert len(cmd.rules[0].filters) == 2
    assert (cmd.action, cmd.negotiation) == ("negotiate", "esp[3des,sha] 3600S/100000K")
    assert cmd.options == (("-a", "p:secret"), ("-soft", ""), ("-lan", ""))
    assert parse_kb_command('ipseccmd -w reg -p "a:b" -r r -f 0+* -n pass').policy == "a:b"
    assert parse_kb_command('ipseccmd -w reg -p "a:b" -r r -f 0+* -n pass').action == "permit"


@pytest.mark.parametrize("line,reason", [
    ('IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -f *=0:1434:UDP -n BLOCK \u2013x',
     "'\u2013x' starts with an en dash (U+2013), as KB 813878 prints it; type -x"),
    ("Ipsecpol \u2013u", "type -u"),
    ('IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" \u2014y', "dash-like"),
    ('IPSeccmd.exe -w REG -p "Block ProtocolPortNumber Filter" -r "x" -f *=0:1434:UDP', "placeholder"),
    ('ipsecpol -p "Existing_IPSec_Policy_Name" -w REG -r "r" -f *=0:80:TCP -n BLOCK', "placeholder"),
    ('IPSeccmd.exe -w REG -p "P" -r "R" -f *0=:PortNumber:Protocol -n BLOCK', "probably means 0=*:PORT:PROTOCOL"),
    ("IPSeccmd.exe -w REG -p \u201cBlock\u201d", "typographic quote"),
    ("netsh ipsec static show all", "starting with ipseccmd or ipsecpol"),
    ("ipseccmd show filters", "query mode"),
    ("ipseccmd -x", "works only on a stored policy"),
    ("ipseccmd -w REG -p", "-p is the last word"),
    ("ipseccmd -w REG -p P -r R -f", "-f has no filterspec"),
    ("ipseccmd -w REG -p P -z", "unknown flag '-z'"),
    ("ipseccmd -w FILE -p P", "REG (local registry) or DS"),
    ("ipseccmd -w REG -p P -r A -r B -f 0+*", "one -r rule name"),
    ("", "an ipseccmd or ipsecpol command line"),
])
def test_kb_traps(line, reason):
    assert reason in rejects(parse_kb_command, line)


def test_kb_command_list_flags_take_every_item_up_to_the_next_flag():
    """-n, -a and -1s take "one or more ... separated by spaces" (XP command-line reference, Ipseccmd)."""
    cmd = parse_kb_command('ipseccmd -w REG -p P -r R -f 0+* -n ESP[3DES,SHA] AH[MD5] -a P:"k 1" K '
                           '-1s 3DES-SHA-2 DES-MD5-1 -x')
    assert cmd.action == "negotiate" and cmd.negotiation == "ESP[3DES,SHA] AH[MD5]"
    assert dict(cmd.options) == {"-a": "P:k 1 K", "-1s": "3DES-SHA-2 DES-MD5-1"}
    assert cmd.assign and cmd.rules[0].name == "R"
    assert parse_kb_command('ipseccmd -w REG -p P -r R -f 0=*:1434:UDP -n BLOCK').action == "block"
    with pytest.raises(ValidationError, match="no item after it"):
        parse_kb_command("ipseccmd -w REG -p P -r R -f 0=* -a -x")


# ---- a KB command pasted where a filterspec goes (README: "Filterspecs are ...") ----

KB_INBOUND = ('IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" '
              '-f *=0:1434:UDP -n BLOCK')


def test_a_pasted_kb_command_names_the_filterspecs_it_holds():
    message = rejects(filters_option, "filters", [KB_INBOUND + " -x"])
    assert message.startswith("filters[0]: ")
    assert "a whole ipseccmd command line" in message and "*=0:1434:UDP" in message


def test_a_pasted_kb_command_with_the_kb_en_dash_says_to_type_a_hyphen():
    message = rejects(filters_option, "filters", [KB_INBOUND + " \u2013x"])
    assert "en dash (U+2013), as KB 813878 prints it; type -x" in message


@pytest.mark.parametrize("item,reason", [
    ("-f *=0:1434:UDP", "give the filterspec without -f: *=0:1434:UDP"),
    ("\u2013f 0=*:1434:UDP", "en dash (U+2013), as KB 813878 prints it; give the filterspec without -f: 0=*:1434:UDP"),
])
def test_a_pasted_f_flag_names_the_filterspec(item, reason):
    assert reason in rejects(parse_filterspec, item)


def test_a_pasted_kb_command_never_shows_its_pre_shared_key():
    line = 'ipseccmd -a P:"s3cr3t key" -w REG -p P -r R -f 0+10.0.0.1:445:TCP -n ESP[3DES,SHA] -x'
    message = rejects(parse_filterspec, line)
    assert "s3cr3t" not in message and "0+10.0.0.1:445:TCP" in message
    message = rejects(parse_filterspec, line.replace(" -x", " \u2013x"))
    assert "s3cr3t" not in message and "type -x" in message
