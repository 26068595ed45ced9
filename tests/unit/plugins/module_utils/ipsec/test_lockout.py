"""The lockout guard against disguised forms of the management traffic (issue 12, item 4).

Each form of LOCKOUT_CORPUS describes TCP from the controller (CONTROLLER) to the host's WinRM port,
or its replies, in another notation. Every one must be stopped before anything is written: either
the option is refused while the task's arguments are validated (a notation the policy store cannot
hold or Windows reads differently), or the guard (lockout.connection_blocks) names it. SPARED are
forms that leave the connection alone and must not be refused.
"""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import lockout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import filters_option
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    Address, DynamicRule, Filter, FilterAction, FilterList, HostState, Policy, Rule, ValidationError)

CONTROLLER = "127.0.0.1"        # where winsim's clients connect from
HOST = "127.64.0.2"
PORT = 5985
PORTS = (PORT, 5986, 22)

# (id, how the rule carries it, filter as a module takes it). `how`: block | negotiate (static, in the
# assigned policy) | dynamic (ipsec_dynamic_block, a [block] spec or a dict).
LOCKOUT_CORPUS = [
    ("any to me, the port", "block", "*=0:5985:TCP"),
    ("negotiate over all TCP", "negotiate", "*+0::TCP"),
    ("negotiate of the port only", "negotiate", "*=0:5985:TCP"),
    ("DNS name of the controller", "block", "localhost=0:5985:TCP"),
    ("DNS name, upper case, trailing dot", "block", "LOCALHOST.=0:5985:TCP"),
    ("DNS name on the host's side", "block", "*=localhost:5985:TCP"),
    ("DNS name in a dict", "negotiate", {"src": "ansible-controller.example", "protocol": "TCP"}),
    ("IPv4-mapped IPv6 controller", "block", {"src": "::ffff:127.0.0.1", "protocol": "TCP", "dst_port": 5985}),
    ("IPv4-mapped IPv6, long form", "block", {"src": "0:0:0:0:0:ffff:7f00:1", "protocol": "TCP"}),
    ("IPv4-mapped IPv6 host", "block", {"src": "any", "dst": "::ffff:127.64.0.2", "protocol": "TCP"}),
    ("IPv4-compatible IPv6", "block", {"src": "::127.0.0.1", "protocol": "TCP"}),
    ("IPv4-mapped subnet", "block", {"src": "::ffff:127.0.0.0", "src_mask": 104, "protocol": "TCP"}),
    ("hex dotted", "block", "0x7f.0.0.1=0:5985:TCP"),
    ("hex, one number", "block", "0x7f000001=0:5985:TCP"),
    ("hex labels throughout", "block", "0x7f.0x0.0x0.0x1=0:5985:TCP"),
    ("decimal, one number", "block", "2130706433=0:5985:TCP"),
    ("octal", "block", "0177.0.0.1=0:5985:TCP"),
    ("short dotted", "block", "127.1=0:5985:TCP"),
    ("0.0.0.0 as the source", "block", "0.0.0.0=0:5985:TCP"),
    ("0.0.0.0 in a dict", "block", {"src": "0.0.0.0", "protocol": "TCP", "dst_port": 5985}),
    ("prefix", "block", {"src": "127.0.0.0/8", "protocol": "TCP", "dst_port": 5985}),
    ("dotted mask", "block", "127.0.0.0/255.0.0.0=0:5985:TCP"),
    ("the controller with a host mask", "block", "127.0.0.1/255.255.255.255=0:5985:TCP"),
    ("the controller, mask 0", "block", {"src": "127.0.0.1", "src_mask": "0", "protocol": "TCP"}),
    ("zero network, zero mask", "block", {"src": "0.0.0.0", "src_mask": "0.0.0.0", "protocol": "TCP"}),
    ("a range holding the controller", "block", {"src": "127.0.0.0-127.0.0.255", "protocol": "TCP",
                                                  "dst_port": 5985}),
    ("a wide range", "block", {"src": "1.0.0.0-200.0.0.0", "protocol": "TCP"}),
    ("server type DNS", "block", {"src": "DNS", "dst": "me", "protocol": "TCP", "dst_port": 5985}),
    ("server type GATEWAY", "negotiate", {"src": "GATEWAY", "dst": "me", "protocol": "TCP"}),
    ("from the host, mirrored, any port", "block", "0+*::TCP"),
    ("the replies only", "block", "0:5985=*::TCP"),
    ("everything out of the host", "block", "0=*"),
    ("everything into the host", "block", "*=0"),
    ("protocol by number", "block", "*=0::6"),
    ("port 0 spelt out", "block", "*=0:0:TCP"),
    ("a port range", "block", "*=0:5980-5990:TCP"),
    ("a port range in a dict", "block", {"protocol": "TCP", "dst_port": "5980-5990"}),
    ("protocol ANY by name", "block", "*=0::ANY"),
    ("protocol in lower case", "block", "*=0:5985:tcp"),
    ("a prefix of 1", "block", {"src": "0.0.0.0/1", "protocol": "TCP"}),
    ("WinRM HTTPS", "block", "*=0:5986:TCP"),
    ("SSH", "block", "*=0:22:TCP"),
    ("the host's own address", "block", "*=127.64.0.2:5985:TCP"),
    ("the host's subnet", "block", "*=127.64.0.0/255.255.0.0:5985:TCP"),
    ("dict, protocol any", "block", {"src": "any", "dst": "me", "protocol": "any"}),
    ("unmirrored dict to the controller", "block", {"src": "me", "dst": "127.0.0.1", "mirrored": False}),
    ("dynamic block of the port", "dynamic", "[*=0:5985:TCP]"),
    ("dynamic, from the host, mirrored", "dynamic", "[0+*::TCP]"),
    ("dynamic DNS name", "dynamic", "[localhost=0:5985:TCP]"),
    ("dynamic IPv4-mapped", "dynamic", {"src": "::ffff:127.0.0.1", "protocol": "TCP"}),
    ("dynamic 0.0.0.0", "dynamic", "[0.0.0.0=0:5985:TCP]"),
    ("dynamic controller subnet", "dynamic", "[127.0.0.0/255.0.0.0+0::TCP]"),
]

SPARED = [
    ("another subnet", "block", "10.0.0.0/255.0.0.0=0:5985:TCP"),
    ("another port", "block", "*=0:1434:UDP"),
    ("UDP on the port", "block", "*=0:5985:UDP"),
    ("ICMP", "block", "*+0::ICMP"),
    ("a source port on the controller's side", "block", "*:5985=0::TCP"),
    ("another host", "block", "*=10.1.2.3:5985:TCP"),
    ("a range without the controller", "block", {"src": "10.0.0.1-10.0.0.9", "protocol": "TCP"}),
    ("IPv6 any", "block", {"src": "::", "src_mask": 0, "dst": "::1", "protocol": "TCP"}),
    ("permit", "permit", "*+0::TCP"),
    ("negotiate, soft", "soft", "*+0::TCP"),
    ("dynamic, another port", "dynamic", "[*=0:445:TCP]"),
]


def parse(how, item):
    """The filter as the module's option parsing gives it (ValidationError when refused)."""
    if how == "dynamic" and isinstance(item, str):
        return filters_option("filters", [item], dynamic=True)[0]
    return filters_option("rules[0].filters", [item])[0]


def state_with(how, f):
    if how == "dynamic":
        return HostState(dynamic=(DynamicRule(f),))
    action = {"block": FilterAction("Block"), "permit": FilterAction("Permit", "permit"),
              "negotiate": FilterAction("Secure", "negotiate"),
              "soft": FilterAction("Secure", "negotiate", soft=True)}[how]
    rule = Rule("R", "L", action.name)
    return HostState(policies=(Policy("Cut", rules=(rule,)),), filterlists=(FilterList("L", (f,)),),
                     filteractions=(action,), assigned="Cut")


def stopped(how, item):
    """'refused' (before connecting), 'guard' (lockout.connection_blocks names it) or ''."""
    try:
        f = parse(how, item)
    except ValidationError as err:
        assert err.option.startswith(("filters", "rules[0].filters")), err
        return "refused"
    return "guard" if lockout.connection_blocks(state_with(how, f), PORTS, CONTROLLER, HOST) else ""


def test_the_corpus_is_big_enough():
    assert len(LOCKOUT_CORPUS) >= 30
    assert len({form_id for form_id, _, _ in LOCKOUT_CORPUS}) == len(LOCKOUT_CORPUS)


@pytest.mark.parametrize("form_id, how, item", LOCKOUT_CORPUS, ids=[c[0] for c in LOCKOUT_CORPUS])
def test_every_disguised_form_is_stopped(form_id, how, item):
    assert stopped(how, item), (form_id, item)


@pytest.mark.parametrize("form_id, how, item", SPARED, ids=[c[0] for c in SPARED])
def test_forms_that_spare_the_connection_pass(form_id, how, item):
    assert stopped(how, item) == "", (form_id, item)


def test_figures():
    """The figures issue 12 asks for: forms tried, refused before connecting, named by the guard."""
    outcome = [stopped(how, item) for _, how, item in LOCKOUT_CORPUS]
    print("\n[figure] lockout forms tried %d: refused by validation %d, by the guard %d, missed %d"
          % (len(outcome), outcome.count("refused"), outcome.count("guard"), outcome.count("")))
    assert "" not in outcome


def test_negotiate_is_named_as_such():
    f = parse("negotiate", "*+0::TCP")
    [first, *_] = lockout.connection_blocks(state_with("negotiate", f), (PORT,), CONTROLLER, HOST)
    assert "requires IPsec negotiation, which the controller cannot answer" in first and "'R'" in first


def test_dns_name_counts_as_the_controller_even_when_the_controller_is_unknown():
    f = parse("block", "ansible.example=0:5985:TCP")
    [found] = lockout.connection_blocks(state_with("block", f), (PORT,))
    assert "ansible.example may be the controller or this host" in found and "write the address" in found


@pytest.mark.parametrize("address", [
    Address("ip", "127.0.0.1", "255.0.255.0"),         # a non-contiguous mask read from a host
    Address("ip", "::ffff:127.0.0.1", "128"),           # an IPv4-mapped address another tool stored
    Address("ip", "::ffff:127.0.0.0", "104"),
    Address("range", "::ffff:127.0.0.0", end="::ffff:127.0.0.9"),
])
def test_addresses_read_from_a_host_in_any_notation(address):
    f = Filter(address, Address("me"), 6, 0, PORT, False)
    assert lockout.connection_blocks(state_with("block", f), (PORT,), CONTROLLER, HOST)


@pytest.mark.parametrize("inbound, outbound", [("negotiate", "negotiate"), ("permit", "negotiate"),
                                               ("block", "permit")])
def test_dynamic_rules_that_negotiate_or_block_either_way(inbound, outbound):
    f = parse("block", "*+0::TCP")
    state = HostState(dynamic=(DynamicRule(f, inbound, outbound),))
    assert lockout.connection_blocks(state, (PORT,), CONTROLLER, HOST)
    assert not lockout.connection_blocks(HostState(dynamic=(DynamicRule(f, "permit", "permit"),)), (PORT,),
                                         CONTROLLER, HOST)


@pytest.mark.parametrize("spec,port,cut", [
    ("*=0:5985:TCP", 5985, True), ("*=0::TCP", 5986, True), ("*=0:5985:UDP", 5985, False),
    ("*=0:80:TCP", 5985, False), ("0=*::TCP", 22, True), ("10.0.0.1=0:5985:TCP", 5985, False),
    ("0=*:5985:TCP", 5985, False), ("0+*:5985:TCP", 5985, False), ("*+0:5985:TCP", 5985, True), ("*=0", 22, True),
])
def test_which_filters_cut_a_port_when_the_controller_is_unknown(spec, port, cut):
    """Only traffic from any address counts then (and its replies to any address)."""
    assert lockout.filter_cuts(parse_filterspec(spec).filter, port) is cut
