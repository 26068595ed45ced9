"""The strict dynamic-listing readers: what they do not recognise is unknown, never "none".

Fed with winsim's output (English and the German personality's) and with the real `netsh ipsec
static show` captures (tests/fixtures/captures/), which are not dynamic listings at all.
"""
import os
import re

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import listings
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.toolout import ToolOutputError
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


def transcript(host, agent="4  RUNNING"):
    t = remote.Transcript()
    for name, text in (("policyagent", "SERVICE_NAME: PolicyAgent\n        STATE              : %s\n" % agent),
                       ("dynamic-netsh", show(host, "rule")), (remote.MMPOLICY_SECTION, show(host, "mmpolicy all"))):
        t.sections[name] = remote.Section(name, text, 0)
    return t


def test_dynamic_problem_on_a_german_host(tmp_path):
    t = transcript(host_with_rules(tmp_path, "modern_de"))
    for problem in (listings.dynamic_problem(t), listings.mmpolicy_problem(t)):
        assert problem and "line 1" in problem and "display language" in problem
        assert "Regeln" not in problem and "Hauptmodus" not in problem     # the listing's text is not repeated


def test_the_main_mode_listing_has_its_own_problem(tmp_path):
    t = transcript(host_with_rules(tmp_path, "modern"))
    assert listings.dynamic_problem(t) is None and listings.mmpolicy_problem(t) is None
    german = host_with_rules(tmp_path, "modern_de")
    t.sections[remote.MMPOLICY_SECTION] = remote.Section(remote.MMPOLICY_SECTION, show(german, "mmpolicy all"), 0)
    assert listings.dynamic_problem(t) is None                  # the rules were read
    assert "mmpolicy" in listings.mmpolicy_problem(t)
    # an error answer is what the engine takes for "none" ([I] real netsh with no policy): not unknown
    t.sections[remote.MMPOLICY_SECTION] = remote.Section(remote.MMPOLICY_SECTION, "ERR IPsec[05063]\n", 0)
    assert listings.mmpolicy_problem(t) is None


def test_no_problem_when_nothing_was_to_be_read(tmp_path):
    german = host_with_rules(tmp_path, "modern_de")
    assert listings.dynamic_problem(transcript(german, agent="1  STOPPED")) is None
    assert listings.dynamic_problem(remote.Transcript()) is None
    assert listings.dynamic_problem(transcript(SimHost("e", "127.0.0.3", "modern_de", str(tmp_path / "e")))) is None


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


def test_a_service_state_the_engine_cannot_read_leaves_the_rules_unknown(tmp_path):
    """The engine reads the dynamic rules only when `sc query` says RUNNING; a state line it does not
    read (here a made-up translated label, [I]) must not pass for a stopped service with no rules."""
    t = transcript(host_with_rules(tmp_path, "modern"), agent="4  RUNNING")
    t.sections["policyagent"] = remote.Section("policyagent", "        ZUSTAND            : 4  RUNNING\n", 0)
    assert "PolicyAgent" in listings.dynamic_problem(t)
