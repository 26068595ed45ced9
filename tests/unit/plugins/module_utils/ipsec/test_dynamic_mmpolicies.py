"""The read trip's main-mode policy listing (netsh hosts) -> HostState.mmpolicies: a listing that fails
(or answers with an error) lists none and never fails a task, and the rules' own main-mode policies
always show; one the strict reader does not understand is unknown (test_host_unknown_dynamic.py)."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host, remote
from tests.unit.plugins.module_utils.ipsec.test_toolout import fixture

OS_MODERN = ("\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n"
             "    CurrentVersion    REG_SZ    6.3\n    CurrentBuildNumber    REG_SZ    20348\n")
SC_RUNNING = "\nSERVICE_NAME: PolicyAgent\n        STATE              : 4  RUNNING\n"

RULES = fixture("netsh_dynamic_show_rule.txt")
RULES = RULES[RULES.index("Rules\n-----"):]                   # what `show rule` prints: winsec-ipsec rules
LISTED = "Main Mode Policies\n------------------\n\nPolicy Name            : %s\nQM Per MM              : 0\n"
STOPPED = SC_RUNNING.replace("4  RUNNING", "1  STOPPED")


def section(name, text, rc=0):
    return "%s begin %s\n%s\n%s end %s rc=%s\n" % (remote.MARK, name, text, remote.MARK, name, rc)


def read(dynamic, listing, rc=0, agent=SC_RUNNING, need_dynamic=False):
    text = (section("os", OS_MODERN) + section("store", "ERROR: unable to find the key", 1)
            + section("policyagent", agent) + section("dynamic-netsh", dynamic)
            + (section(remote.MMPOLICY_SECTION, listing, rc) if listing is not None else ""))
    return host.state_from_transcript(remote.parse_transcript(text), need_dynamic=need_dynamic)


def test_the_read_script_lists_main_mode_policies_on_netsh_hosts_only():
    assert "show mmpolicy all" in remote.read_script(dialect="netsh")
    assert "mmpolicy" not in remote.read_script(dialect="ipseccmd")
    auto = remote.read_script()
    assert auto.index("show mmpolicy all") > auto.index("else {")    # in the netsh branch (not XP)


def test_an_orphan_is_listed_beside_the_policies_rules_use():
    state = read("", LISTED % "winsec-ipsec")
    assert state.dynamic == () and state.mmpolicies == ("winsec-ipsec",)
    two = (LISTED % "zeta") + "\nPolicy Name            : Alpha\nQM Per MM              : 0\n"
    assert read("", two).mmpolicies == ("Alpha", "zeta")


@pytest.mark.parametrize("listing, rc", [
    ("ERR IPsec[05072] : There are no main mode policies\n", 1),
    ("ERR IPsec[05072] : There are no main mode policies\n", 0),
    ("anything at all", 5),
    (None, 0),                       # the section missing altogether
])
@pytest.mark.parametrize("need_dynamic", [False, True])
def test_a_listing_that_fails_never_fails_the_task(listing, rc, need_dynamic):
    assert read("", listing, rc, need_dynamic=need_dynamic).mmpolicies == ()
    # the rules still name theirs
    with_rules = read(RULES, listing, rc, need_dynamic=need_dynamic)
    assert len(with_rules.dynamic) == 4 and with_rules.mmpolicies == ("winsec-ipsec",)


def test_names_compare_without_case_and_a_stopped_agent_lists_none():
    assert read(RULES, LISTED % "WINSEC-IPSEC").mmpolicies == ("WINSEC-IPSEC",)
    assert read("", LISTED % "winsec-ipsec", agent=STOPPED).mmpolicies == ()


def test_mmpolicies_leave_equality_alone():
    a, b = read("", LISTED % "winsec-ipsec"), read("", "")
    assert a == b and a.mmpolicies != b.mmpolicies
