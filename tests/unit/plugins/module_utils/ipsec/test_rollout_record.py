"""The emergency block's rollout record (module_utils/ipsec/rollout_record.py) and the filter
worm_block_failures: which hosts count as failed, what the record says per host, and the page
escapes what hosts and users supply."""
import json

import lxml.html
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winsec.ipsec.plugins.filter.worm_block import worm_block_failures
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import rollout_record as rr
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, DynamicRule, Filter, FilterAction, FilterList, HostState, Policy, Rule)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import state_to_dict

BASELINE = "Corp <b>baseline</b>"
TELNET = Filter(ANY, ME, protocol=6, dst_port=23, mirrored=False)
SLAMMER_IN = Filter(ANY, ME, protocol=17, dst_port=1434, mirrored=False)
BLOCK = FilterAction("winsec-emergency Block", "block")


def state(policies=(), lists=(), actions=(), assigned="", dynamic=()):
    return state_to_dict(HostState(policies=tuple(policies), filterlists=tuple(lists), filteractions=tuple(actions),
                                   assigned=assigned, dynamic=tuple(dynamic), policyagent="running"))


BEFORE = state([Policy(BASELINE, rules=(Rule("Block Telnet", "Telnet", "Block"),))],
               [FilterList("Telnet", (TELNET,))], [FilterAction("Block", "block")], assigned=BASELINE)
AFTER = state([Policy(BASELINE, rules=(Rule("Block Telnet", "Telnet", "Block"),
                                       Rule("winsec-emergency Block Inbound UDP 1434", "winsec-emergency In", BLOCK.name)))],
              [FilterList("Telnet", (TELNET,)), FilterList("winsec-emergency In", (SLAMMER_IN,))],
              [FilterAction("Block", "block"), BLOCK], assigned=BASELINE, dynamic=[DynamicRule(SLAMMER_IN)])
READ_AT = "2026-12-04T16:00:01Z"
SUMMARY = "blocked and verified; static: 1 rule added to the assigned policy %s; dynamic filters: 1" % BASELINE


def blocked(**extra):
    result = {"changed": True, "verified": True, "problems": [], "summary": SUMMARY,
              "before": BEFORE, "after": AFTER, "planned": AFTER, "commands": ["netsh ipsec static add rule ..."],
              "placement": {"static": "assigned_policy", "policy": BASELINE, "reason": "kept", "dynamic": 1},
              "ansible_facts": {"winsec_ipsec_state": {"version": 1, "read_at": READ_AT, "dialect": "netsh"}}}
    result.update(extra)
    return result


@pytest.mark.parametrize("result, reason", [
    (None, "no result: the task did not run on this host"),
    ({"unreachable": True, "msg": "Task failed: ssl: connection refused\n  retry later"},
     "unreachable: ssl: connection refused / retry later"),
    ({"failed": True, "msg": "step 1 of 3 failed"}, "step 1 of 3 failed"),
    ({"failed": True, "msg": "verification failed", "problems": ["dynamic filters: 0 of 2"]},
     "verification failed (dynamic filters: 0 of 2)"),
    ({"changed": True, "verified": False, "problems": ["policy X lacks rule Y"]}, "policy X lacks rule Y"),
    ({"changed": False, "problems": []}, "not verified: the result does not say the host enforces the block "
                                         "(no `verified`)"),
    ({"skipped": True, "skip_reason": "Conditional result was False"}, "skipped: Conditional result was False"),
])
def test_a_host_fails_for_each_reason_and_says_it_on_one_line(result, reason):
    assert rr.host_failure(result) == reason
    assert worm_block_failures([blocked(), result]) == [reason]


def test_a_verified_block_is_no_failure_and_long_reasons_are_cut():
    assert rr.host_failure(blocked()) is None and worm_block_failures([blocked(), blocked()]) == []
    reason = rr.host_failure({"failed": True, "msg": "x" * 1000})
    assert len(reason) == rr.REASON_LIMIT and reason.endswith("...")
    with pytest.raises(AnsibleFilterError, match="expected a list of task results"):
        worm_block_failures({"failed": True})


def test_the_record_of_a_block_that_kept_the_assigned_policy():
    record = rr.build(["win3", "win1", "win2"], {"win1": blocked(), "win2": {"unreachable": True, "msg": "refused"}},
                      about={"ports": [{"protocol": "UDP", "port": 1434}]}, generated="2026-12-04T16:00:05Z")
    assert record["headline"] == "3 hosts: 1 blocked and verified, 1 failed, 1 not reached"
    assert record["counts"] == {"hosts": 3, "failed": 1, "not_reached": 1, "done": 1} and record["failed"] == ["win2"]
    assert rr.lines(record) == [record["headline"], "win1: " + SUMMARY,
                                "win2: NOT blocked, failed: unreachable: refused",
                                "win3: NOT blocked, not reached: the rollout stopped after a failed wave"]
    win1 = record["hosts"]["win1"]
    assert win1["read_at"] == win1["written_at"] == READ_AT and win1["dialect"] == "netsh"
    # what was added: the rule in the baseline policy, its filter list and action, the dynamic filter
    assert win1["changes"] == [
        "+ rule 'winsec-emergency Block Inbound UDP 1434' in policy 'Corp <b>baseline</b>'",
        "+ filter list 'winsec-emergency In' (any -> me:1434 UDP)",
        "+ filter action 'winsec-emergency Block'",
        "+ dynamic rule any -> me:1434 UDP (inbound block, outbound block)"]
    assert win1["in_force"] == ["the host's assigned policy 'Corp <b>baseline</b>' stays assigned and in force; "
                                "the block's rules are in it",
                                "1 dynamic filter of the block in force now (volatile: gone when PolicyAgent "
                                "restarts or the host reboots, unless reapplied at startup)"]
    assert record["hosts"]["win2"]["changes"] == [] and record["hosts"]["win2"]["read_at"] is None
    assert json.loads(rr.to_json(record)) == record


def test_nothing_to_do_has_no_write_time_and_check_mode_compares_with_the_prediction():
    same = blocked(changed=False, after=AFTER, before=AFTER)
    entry = rr.build(["h"], {"h": same})["hosts"]["h"]
    assert entry["status"] == "done" and entry["written_at"] is None and entry["changes"] == []
    check = rr.build(["h"], {"h": blocked(after=None, summary="check mode, would be " + SUMMARY)}, check=True)
    assert check["headline"] == "check mode, nothing written: 1 host: 1 blocked and verified, 0 failed, 0 not reached"
    entry = check["hosts"]["h"]
    assert entry["line"] == "check mode, would be " + SUMMARY
    assert entry["written_at"] is None and len(entry["changes"]) == 4


def test_a_host_whose_dynamic_rules_could_not_be_read_still_lists_its_static_changes():
    # A host whose dynamic listing is in a language the engine does not read: its states carry null
    # dynamic rules. The static changes are listed and the dynamic part says unknown; before the fix
    # the whole comparison failed into "(the states could not be compared: ...)".
    unknown = dict(blocked(), before=dict(BEFORE, dynamic=None), after=dict(AFTER, dynamic=None))
    changes = rr.build(["h"], {"h": unknown})["hosts"]["h"]["changes"]
    assert changes == [
        "+ rule 'winsec-emergency Block Inbound UDP 1434' in policy 'Corp <b>baseline</b>'",
        "+ filter list 'winsec-emergency In' (any -> me:1434 UDP)",
        "+ filter action 'winsec-emergency Block'",
        "? dynamic rules: unknown (the host's listing of them could not be read)"]


def test_unblock_own_policy_and_domain_wording():
    own = blocked(before=AFTER, after=BEFORE, summary="", placement={"static": "own_policy", "dynamic": 0,
                                                                    "policy": "winsec-emergency Slammer"})
    entry = rr.build(["h"], {"h": own}, present=False)["hosts"]["h"]
    assert entry["line"] == "unblocked and verified"
    assert entry["in_force"] == ["no other policy was assigned: the block's own policy 'winsec-emergency Slammer' "
                                 "was unassigned and deleted"]
    assert entry["changes"][0].startswith("- rule 'winsec-emergency Block Inbound UDP 1434'")
    domain = dict(AFTER, domain={"name": "GPO IPsec", "path": "LDAP://CN=ipsecPolicy{1}"})
    entry = rr.build(["h"], {"h": blocked(after=domain, placement={
        "static": "none", "dynamic": 2, "reason": "a domain policy is in force: the persistent block belongs in "
                                                  "the domain store (playbooks/domain_rollout.yml)"})})["hosts"]["h"]
    assert entry["in_force"] == [
        "a domain policy is in force: the persistent block belongs in the domain store (playbooks/domain_rollout.yml)",
        "2 dynamic filters of the block in force now (volatile: gone when PolicyAgent restarts or the host reboots, "
        "unless reapplied at startup)",
        "domain policy 'GPO IPsec' is in force (Group Policy overrides the local store)",
        "assigned local policy: 'Corp <b>baseline</b>'"]


def test_the_page_escapes_hostile_text_and_lists_every_host():
    hostile = blocked(summary="<script>alert(1)</script>", warnings=["<img src=x onerror=alert(2)>"])
    failing = {"failed": True, "msg": "bad \x1b[31m <b>thing</b>"}
    record = rr.build(["a<1>", "b", "c"], {"a<1>": hostile, "b": failing})
    text = rr.to_html(record)
    page = lxml.html.fromstring(text)
    assert not page.xpath("//script") and not page.xpath("//img") and not page.xpath("//main//b")
    rows = {r.get("data-host"): r.get("data-status") for r in page.xpath("//table[@id='hosts']/tbody/tr")}
    assert rows == {"a<1>": "done", "b": "failed", "c": "not_reached"}
    assert "<script>alert(1)</script>" in page.text_content() and "\x1b" not in text
    assert page.xpath("//p[@id='headline']")[0].text == record["headline"]
    # failed hosts first, each reached host has a detail section that the table links to
    assert [r.get("data-status") for r in page.xpath("//table[@id='hosts']/tbody/tr")] == ["failed", "not_reached", "done"]
    assert sorted(s.get("data-host") for s in page.xpath("//section[@class='hostdetail']")) == ["a<1>", "b"]
    assert "Corp <b>baseline</b>" in page.text_content()


# --------------------------------------------------------------------------------------------
# merge: the records of sliced runs -> the record of one run (playbooks/merge_results.yml)
# --------------------------------------------------------------------------------------------

RESULTS = {"win1": blocked(), "win2": {"unreachable": True, "msg": "refused"}, "win3": blocked(),
           "win10": {"failed": True, "msg": "step 1 of 3 failed"}}
ABOUT = {"ports": [{"protocol": "UDP", "port": 1434}], "waves": [1, "10%", "100%"], "max_fail_percentage": 0}


def sliced(shares, about=ABOUT, present=True, check=False):
    """The record each slice's run writes, as it publishes it (JSON text and back)."""
    return [json.loads(rr.to_json(rr.build(share, RESULTS, present, check, about))) for share in shares]


def test_merged_slices_are_the_record_of_one_run():
    one = rr.build(list(RESULTS) + ["win11"], RESULTS, about=ABOUT, generated="t")
    merged = rr.merge(sliced([["win1", "win10"], ["win2"], ["win3"]]), hosts=list(RESULTS) + ["win11"],
                      generated="t")
    assert [m["hosts"] for m in merged.pop("merged_from")] == [["win1", "win10"], ["win2"], ["win3"]]
    assert merged == one                     # win11, in no run, is not reached as in the one run
    assert rr.lines(merged)[0] == "5 hosts: 2 blocked and verified, 2 failed, 1 not reached"
    assert list(merged["hosts"]) == ["win1", "win2", "win3", "win10", "win11"]
    assert merged["failed"] == ["win2", "win10"]
    page = lxml.html.fromstring(rr.to_html(rr.merge(sliced([["win1"], ["win2"]]))))
    assert "merged from 2 runs" in page.xpath("string(//p[@class='meta'])")


def test_a_canary_job_may_be_staged_otherwise_but_must_block_the_same():
    canary, rest = sliced([["win1"]], about=dict(ABOUT, waves=[1])) + sliced([["win2", "win3"]])
    merged = rr.merge([canary, rest])
    assert merged["about"]["waves"] == [[1], [1, "10%", "100%"]]       # each run's staging, in run order
    assert merged["about"]["ports"] == ABOUT["ports"]
    other = sliced([["win3"]], about=dict(ABOUT, ports=[{"protocol": "TCP", "port": 445}]))[0]
    with pytest.raises(ValueError, match=r"about\.ports differs between the runs .*merge them separately"):
        rr.merge([canary, other])


@pytest.mark.parametrize("runs, message", [
    ([], r"runs: expected a non-empty list"),
    ([{"format": 1, "action": "block"}], r"runs\[0\]: not a rollout record"),
    (sliced([["win1"]]) + sliced([["win1", "win3"]]), r"runs\[0\] and runs\[1\] both hold host win1: .*all:!win1"),
    (sliced([["win1"]]) + sliced([["win3"]], present=False), r"runs\[1\]: action is 'unblock', runs\[0\] says 'block'"),
    (sliced([["win1"]]) + sliced([["win3"]], check=True), r"runs\[1\]: check_mode is True"),
])
def test_runs_that_are_not_parts_of_one_rollout_are_refused(runs, message):
    with pytest.raises(ValueError, match=message):
        rr.merge(runs)


def test_a_host_entry_must_be_the_hosts_own():
    (run,) = sliced([["win1"]])
    run["hosts"]["win1"]["status"] = "fine"
    with pytest.raises(ValueError, match=r"runs\[0\]\.hosts\.win1: not a host entry"):
        rr.merge([run])
    (run,) = sliced([["win1"]])
    run["hosts"]["win9"] = run["hosts"].pop("win1")
    with pytest.raises(ValueError, match=r"runs\[0\]\.hosts\.win9: not a host entry of that host"):
        rr.merge([run])


def test_warnings_as_ansible_registers_them_are_their_text():
    # ansible-core 2.19 registers a result's warnings as WarningSummary objects; the record showed
    # their repr, "WarningSummary(event=Event(msg=...), formatted_source_context=None, ...)".
    from ansible.module_utils._internal._messages import Event, WarningSummary
    warned = dict(blocked(), warnings=[WarningSummary(event=Event(msg="the dynamic rules could not be read\nat all"))])
    assert rr.build(["h"], {"h": warned})["hosts"]["h"]["warnings"] == ["the dynamic rules could not be read / at all"]
