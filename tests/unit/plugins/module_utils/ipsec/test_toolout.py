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


@pytest.mark.parametrize("old, new, words", [
    ("Inbound Action         :", "Eingehende Aktion      :", "unknown label 'Eingehende Aktion'"),
    ("Rules\n-----", "Regeln\n------", "unknown heading"),
    ("Protocol               : UDP", "Protocol               : UDPX", "expected a number"),
    ("Mirrored               : NO", "Mirrored               : NEIN", "unknown value"),
    ("Destination Port       : 1434", "Destination Port       : 70000", "expected a number 0-65535"),
    ("Source Address         : <Any IP Address>", "Source Address         : <Alle IP-Adressen>",
     "unknown special address"),
    ("Source Address         : 10.1.0.0", "Source Address         : 10.1.0.300", "IPv4 or IPv6"),
    ("Source Mask            : 255.255.0.0", "Source Mask            : wide", "mask"),
    ("Rule Type              : Transport\nConnection Type        : LAN",
     "Rule Type              : Tunnel\nConnection Type        : LAN", "unknown value"),
    ("Connection Type        : LAN\n", "", "lacks Connection Type"),
    ("Mirrored               : NO\n", "Mirrored               : NO\nMirrored               : NO\n", "repeated"),
])
def test_netsh_dynamic_strict(old, new, words):
    with pytest.raises(ToolOutputError) as err:
        toolout.parse_netsh_dynamic_show(_netsh_text(old, new))
    assert words in str(err.value)
    assert "display language may not be English" in str(err.value)


def test_netsh_dynamic_error_listing_is_refused():
    with pytest.raises(ToolOutputError, match="reported an error"):
        toolout.parse_netsh_dynamic_show("ERR IPsec[05072] : No Policies\r\n")


def test_netsh_dynamic_field_before_heading():
    with pytest.raises(ToolOutputError, match="before any section heading"):
        toolout.parse_netsh_dynamic_show("Mirrored               : NO\n")


# --- netsh ipsec dynamic show mmpolicy all (tolerant) ----------------------------------------------------

def test_mmpolicy_names_from_the_fixture_layout_that_winsim_prints():
    text = fixture("netsh_dynamic_show_rule.txt")
    mm_only = text[:text.index("Rules\n-----")]
    assert toolout.parse_netsh_mmpolicy_names(mm_only) == ("winsec-ipsec",)
    # the rules' "Main Mode Policy" lines name policies in use, not the policies listed
    rules_only = text[text.index("Rules\n-----"):]
    assert toolout.parse_netsh_mmpolicy_names(rules_only) == ()


@pytest.mark.parametrize("text, names", [
    ("", ()),
    ("\r\n", ()),
    ("Main Mode Policies\r\n------------------\r\n\r\nPolicy Name            : AdminBlock\r\n"
     "Soft SA Expiration Time: 0\r\n\r\nPolicy Name            : winsec-ipsec\r\n",
     ("AdminBlock", "winsec-ipsec")),
    # other wordings of the label, and lines that are not understood, are taken or skipped
    ("Main Mode Policy Name : Block SMB now \nIKE Main Mode Life Time: 480\nsomething else\n", ("Block SMB now",)),
    ("There are no main mode policies.\r\n", ()),
])
def test_mmpolicy_names_are_read_tolerantly(text, names):
    assert toolout.parse_netsh_mmpolicy_names(text) == names


def test_mmpolicy_listing_that_is_an_error_is_not_an_empty_one():
    with pytest.raises(ToolOutputError, match="reported an error"):
        toolout.parse_netsh_mmpolicy_names("ERR IPsec[05092] : Main mode policy does not exist\r\n")


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
    ("Src Port         : 0", "Quellport        : 0", "unknown label 'Quellport'"),
    ("Protocol         : 17", "Protocol         : UDP", "expected a number 0-255"),
    ("Inbound Action   : Pass", "Inbound Action   : Durchlassen", "unknown value"),
    ("Quick Mode Filters:", "Schnellmodusfilter:", "unknown heading"),
])
def test_ipseccmd_strict(old, new, words):
    text = fixture("ipseccmd_show_filters.txt")
    assert old in text
    with pytest.raises(ToolOutputError) as err:
        toolout.parse_ipseccmd_show_filters(text.replace(old, new, 1))
    assert words in str(err.value)
    assert "display language may not be English" in str(err.value)
