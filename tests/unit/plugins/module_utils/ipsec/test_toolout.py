"""toolout: netsh error lines and the assumed ([I]) dynamic-filter layouts, read strictly."""
import os

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import toolout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, DynamicRule, Filter)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.toolout import ToolOutputError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "fixtures", "toolout")


def fixture(name):
    """The fixture's output text; its '#' header lines are documentation, not tool output."""
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0].startswith("# [I] layout assumed, not a real capture")
    return "\n".join(line for line in lines if not line.startswith("#"))


# --- parse_netsh_error ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("ERR IPsec[05072] : No Policies in Policy Store\r\n", (5072, "No Policies in Policy Store")),
    ("\r\nERR IPsec[05049] : Filter List with name \"X\" does not exist\r\n",
     (5049, 'Filter List with name "X" does not exist')),
    ("ERR IPSec[05073]\r\n  The store cannot be opened\r\n", (5073, "The store cannot be opened")),
    ("ERR IPsec[05005]", (5005, "")),
])
def test_netsh_error_code_and_message(text, expected):
    assert toolout.parse_netsh_error(text) == expected


@pytest.mark.parametrize("text", ["", "\r\n", "Ok.\r\n", "IPsec[05072] without the ERR prefix"])
def test_netsh_no_error(text):
    assert toolout.parse_netsh_error(text) is None


def test_netsh_first_error_wins():
    assert toolout.parse_netsh_error("ERR IPsec[05010] : a\nERR IPsec[05014] : b\n")[0] == 5010


# --- netsh ipsec dynamic show -----------------------------------------------------------------------------

def test_netsh_dynamic_fixture():
    rules = toolout.parse_netsh_dynamic_show(fixture("netsh_dynamic_show_rule.txt"))
    assert rules == (
        DynamicRule(Filter(ANY, ME, 17, 0, 1434, mirrored=False), "block", "block", "all"),
        DynamicRule(Filter(Address("ip", "10.1.0.0", "255.255.0.0"), ME, 6, 0, 445, True),
                    "permit", "permit", "lan"),
        DynamicRule(Filter(Address("range", "192.168.1.10", end="192.168.1.20"), ANY, 47, 0, 0, True),
                    "block", "block", "all"),
        DynamicRule(Filter(Address("ip", "fe80::1", "64"), ME, 1, 0, 0, True), "block", "permit", "dialup"),
    )


def test_netsh_dynamic_rules_carry_their_mmpolicy():
    # equality leaves mmpolicy out (desired rules name none), so it is checked by itself
    assert [r.mmpolicy for r in toolout.parse_netsh_dynamic_show(fixture("netsh_dynamic_show_rule.txt"))] == [
        "winsec-ipsec"] * 4
    foreign = _netsh_text("Main Mode Policy       : winsec-ipsec\nQuick Mode Policy      : NONE\n"
                          "Inbound Action         : PERMIT",
                          "Main Mode Policy       : Admin block 1434\nQuick Mode Policy      : NONE\n"
                          "Inbound Action         : PERMIT")
    assert [r.mmpolicy for r in toolout.parse_netsh_dynamic_show(foreign)] == [
        "winsec-ipsec", "Admin block 1434", "winsec-ipsec", "winsec-ipsec"]


@pytest.mark.parametrize("old, new", [
    ("Main Mode Policy       : winsec-ipsec", "Main Mode Policy       : NONE"),
    ("Main Mode Policy       : winsec-ipsec\n", ""),
])
def test_netsh_dynamic_rule_without_mmpolicy_names_none(old, new):
    assert toolout.parse_netsh_dynamic_show(_netsh_text(old, new))[0].mmpolicy == ""


def test_netsh_dynamic_empty_output_means_no_rules():
    assert toolout.parse_netsh_dynamic_show("\r\n") == ()


def test_netsh_dynamic_crlf_and_rules_section_only():
    text = fixture("netsh_dynamic_show_rule.txt")
    rules_only = text[text.index("Rules"):].replace("\n", "\r\n")
    assert toolout.parse_netsh_dynamic_show(rules_only) == toolout.parse_netsh_dynamic_show(text)


def _netsh_text(replace_from, replace_to):
    text = fixture("netsh_dynamic_show_rule.txt")
    assert replace_from in text
    return text.replace(replace_from, replace_to, 1)


@pytest.mark.parametrize("old, new, words, shown", [
    ("Inbound Action         :", "Eingehende Aktion      :",
     "a label the 'Rules' section does not have (known: Rule Type, ", "Eingehende Aktion"),
    ("Rules\n-----", "Regeln\n------", "neither a known heading nor a `Label : value` line", "Regeln"),
    ("Protocol               : UDP", "Protocol               : UDPX", "expected a number", "UDPX"),
    ("Mirrored               : NO", "Mirrored               : NEIN", "unknown value", "NEIN"),
    ("Destination Port       : 1434", "Destination Port       : 70000", "expected a number 0-65535", "70000"),
    ("Source Address         : <Any IP Address>", "Source Address         : <Alle IP-Adressen>",
     "unknown special address", "<Alle IP-Adressen>"),
    ("Source Address         : 10.1.0.0", "Source Address         : 10.1.0.300", "IPv4 or IPv6", "10.1.0.300"),
    ("Source Mask            : 255.255.0.0", "Source Mask            : wide", "mask", "wide"),
    ("Rule Type              : Transport\nConnection Type        : LAN",
     "Rule Type              : Tunnel\nConnection Type        : LAN", "unknown value", "Tunnel"),
    ("Connection Type        : LAN\n", "", "lacks Connection Type", None),
    ("Mirrored               : NO\n", "Mirrored               : NO\nMirrored               : NO\n", "repeated", "Mirrored"),
])
def test_netsh_dynamic_strict(old, new, words, shown):
    """The message says what was expected and shows the offending line once (it repeated the label or
    the value in its problem: an address three times)."""
    with pytest.raises(ToolOutputError) as err:
        toolout.parse_netsh_dynamic_show(_netsh_text(old, new))
    message = str(err.value)
    assert words in message and "display language may not be English" in message
    if shown is None:
        assert ", in '" not in message                # the line is missing: nothing to show
    else:
        assert message.count(shown) == 1, message


@pytest.mark.parametrize("line", ["Preshared Key          : s3cret", "Authentication: PSK s3cret"])
def test_a_line_that_mentions_a_key_is_never_shown(line):
    with pytest.raises(ToolOutputError) as err:
        toolout.parse_netsh_dynamic_show(_netsh_text("Mirrored               : NO", line))
    assert "s3cret" not in str(err.value) and "not shown: it mentions a key" in str(err.value)
    assert err.value.lineno > 0 and not hasattr(err.value, "line")


def test_netsh_dynamic_error_listing_is_refused():
    with pytest.raises(ToolOutputError, match="reported an error"):
        toolout.parse_netsh_dynamic_show("ERR IPsec[05072] : No Policies\r\n")


def test_netsh_dynamic_field_before_heading():
    with pytest.raises(ToolOutputError, match="before any section heading"):
        toolout.parse_netsh_dynamic_show("Mirrored               : NO\n")


# --- ipseccmd show filters -----------------------------------------------------------------------------

def test_ipseccmd_fixture():
    rules = toolout.parse_ipseccmd_show_filters(fixture("ipseccmd_show_filters.txt"))
    assert rules == (
        DynamicRule(Filter(ANY, ME, 17, 0, 1434, mirrored=False), "block", "block", "all"),
        DynamicRule(Filter(ME, ANY, 17, 0, 1434, mirrored=False), "block", "block", "all"),
        DynamicRule(Filter(Address("ip", "10.1.0.0", "255.255.0.0"), ME, 6, 0, 445, True),
                    "permit", "permit", "lan"),
    )
    assert {r.mmpolicy for r in rules} == {""}      # ipseccmd's listing names no main-mode policy


@pytest.mark.parametrize("old, new, words", [
    ("Src Port         : 0", "Quellport        : 0", "a label the 'Quick Mode Filters' section does not have"),
    ("Protocol         : 17", "Protocol         : UDP", "expected a number 0-255"),
    ("Inbound Action   : Pass", "Inbound Action   : Durchlassen", "unknown value"),
    ("Quick Mode Filters:", "Schnellmodusfilter:", "neither a known heading"),
])
def test_ipseccmd_strict(old, new, words):
    text = fixture("ipseccmd_show_filters.txt")
    assert old in text
    with pytest.raises(ToolOutputError) as err:
        toolout.parse_ipseccmd_show_filters(text.replace(old, new, 1))
    assert words in str(err.value)
    assert "display language may not be English" in str(err.value)
