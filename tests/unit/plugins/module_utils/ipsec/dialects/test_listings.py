"""The strict dynamic-listing readers: what they do not recognise is unknown, never "none".

Fed with winsim's output (English and the German personality's) and with the real `netsh ipsec
static show` captures (tests/fixtures/captures/), which are not dynamic listings at all.
"""
import os
import re

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import listings
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.toolout import ToolOutputError
from tests.unit.plugins.module_utils.ipsec.test_toolout import fixture
from winsim.host import SimHost

CAPTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..", "fixtures", "captures")
STATIC_CAPTURES = ("netsh_static_show_policy_all_kb4471134.txt", "netsh_static_show_filterlist_verbose_kb4471134.txt",
                   "netsh_static_show_all_filterlist_win10.txt")
RULE = "add rule srcaddr=any dstaddr=me protocol=tcp dstport=445 mmpolicy=%s actioninbound=block actionoutbound=block"


def capture(name):
    with open(os.path.join(CAPTURES, name), encoding="ascii") as handle:
        return handle.read()


def host_with_rules(tmp_path, personality, mmpolicies=("AdminBlock",)):
    host = SimHost("h", "127.0.0.2", personality, str(tmp_path / personality))
    for name in mmpolicies:
        assert host.run_tool(["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=" + name]).rc == 0
    if mmpolicies:
        assert host.run_tool(["netsh", "ipsec", "dynamic"] + (RULE % mmpolicies[0]).split()).rc == 0
    return host


def show(host, what):
    result = host.run_tool(["netsh", "ipsec", "dynamic", "show"] + what.split())
    assert result.rc == 0
    return result.stdout


def test_mmpolicy_names_of_the_known_layout(tmp_path):
    host = host_with_rules(tmp_path, "modern", ("AdminBlock", "winsec-ipsec"))
    assert listings.parse_mmpolicy_names(show(host, "mmpolicy all")) == ("AdminBlock", "winsec-ipsec")
    assert listings.parse_mmpolicy_names("") == ()


def test_mmpolicy_names_of_the_fixture_layout_and_an_error_answer():
    """The toolout fixture's Main Mode Policies section (the layout winsim prints); an `ERR IPsec[`
    answer is an error, never an empty listing (toolout's tolerant reader, which this one replaced,
    said the same)."""
    text = fixture("netsh_dynamic_show_rule.txt")
    assert listings.parse_mmpolicy_names(text[:text.index("Rules\n-----")]) == ("winsec-ipsec",)
    with pytest.raises(ToolOutputError, match="reported an error"):
        listings.parse_mmpolicy_names("ERR IPsec[05092] : Main mode policy does not exist\r\n")


@pytest.mark.parametrize("name", STATIC_CAPTURES)
def test_mmpolicy_names_refuse_real_static_listings(name):
    """Real `show policy` / `show filterlist` output has `Policy Name:` and `FilterList Name:` lines;
    the tolerant reader took them for main-mode policies (netbc, block, exampleFilterData)."""
    with pytest.raises(ToolOutputError):
        listings.parse_mmpolicy_names(capture(name))


def test_mmpolicy_names_refuse_german_labels(tmp_path):
    host = host_with_rules(tmp_path, "modern_de")
    with pytest.raises(ToolOutputError, match="line 1"):
        listings.parse_mmpolicy_names(show(host, "mmpolicy all"))


def test_mmpolicy_names_refuse_a_sentence_or_the_rules_listing(tmp_path):
    host = host_with_rules(tmp_path, "modern")
    for text in ("No main mode policies found.\n", show(host, "rule")):
        with pytest.raises(ToolOutputError):
            listings.parse_mmpolicy_names(text)


def test_show_all_statistics_are_not_rules(tmp_path):
    """`show all` prints its statistics part with and without rules: only the rules are read."""
    empty = SimHost("e", "127.0.0.3", "modern", str(tmp_path / "e"))
    text = show(empty, "all")
    assert listings.STATISTICS_HEADING in text
    assert listings.parse_dynamic_rules(text) == ()
    host = host_with_rules(tmp_path, "modern")
    rules = listings.parse_dynamic_rules(show(host, "all"))
    assert [(r.filter.dst_port, r.inbound, r.mmpolicy) for r in rules] == [(445, "block", "AdminBlock")]
    assert rules == listings.parse_dynamic_rules(show(host, "rule"))


@pytest.mark.parametrize("what", ["rule", "all"])
def test_german_rules_are_unknown_not_none(tmp_path, what):
    host = host_with_rules(tmp_path, "modern_de")
    with pytest.raises(ToolOutputError):
        listings.parse_dynamic_rules(show(host, what))


@pytest.mark.parametrize("name", STATIC_CAPTURES)
def test_dynamic_rules_refuse_real_static_listings(name):
    with pytest.raises(ToolOutputError):
        listings.parse_dynamic_rules(capture(name))


def test_labels_are_read_whatever_their_padding(tmp_path):
    """Microsoft's published samples collapse netsh's padding (`Label: value`, KB 4471134) or keep a
    space of it (`Destination Port : 445`): the readers take either, as netsh's padded layout."""
    host = host_with_rules(tmp_path, "modern", ("AdminBlock", "winsec-ipsec"))
    for what, read in (("rule", listings.parse_dynamic_rules), ("all", listings.parse_dynamic_rules),
                       ("mmpolicy all", listings.parse_mmpolicy_names)):
        padded = show(host, what)
        collapsed = re.sub(r"^(\S[^:\n]*?) +: ", r"\1: ", padded, flags=re.M)
        one_space = re.sub(r"^(\S[^:\n]*?) +: ", r"\1 : ", padded, flags=re.M)
        assert collapsed != padded and read(collapsed) == read(one_space) == read(padded)
    assert "Destination Port: 445" in re.sub(r"^(\S[^:\n]*?) +: ", r"\1: ", show(host, "rule"), flags=re.M)
