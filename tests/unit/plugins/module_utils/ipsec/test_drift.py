"""drift.py: check-mode results -> drift records -> JSON, HTML and JUnit reports.

The results are made by hand the way ipsec_policy makes them in check mode (plan_policy with
state=overridden against a host state, reported through host.state_report and netdiag_diff), so
the records see the same shapes as in a playbook run without a host.
"""
import json
from dataclasses import replace
import os
import tempfile

import lxml.etree
import lxml.html
import pytest

from ansible_collections.winsec.ipsec.plugins.filter import drift_report as drift_filters
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, drift, host, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import HostState, OsInfo
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.plan import (
    plan_policy, policy_objects, rule_objects)
from winsim.host import SimHost

SLAMMER = "Block UDP 1434 Filter"
BASELINE_RULES = (("Block Inbound UDP 1434 Rule", "*=0:1434:UDP"), ("Block Outbound UDP 1434 Rule", "0=*:1434:UDP"))
HOSTILE = '<script>alert("x")</script>&"\'{{ lookup("pipe", "id") }}'
MODERN = OsInfo("modern", "6.3.20348", "netsh", "Windows Server 2022 Standard")


def triples(rules):
    return [rule_objects(name, [parse_filterspec(spec, name).filter], "block") for name, spec in rules]


def baseline(rules=BASELINE_RULES):
    return policy_objects(SLAMMER, triples(rules))


def store(rules=None, assigned=True, extra_policy=None):
    """A host state holding the policy with `rules` (none: no policy), and optionally another policy."""
    state = HostState(os=MODERN, policyagent="running")
    policies, objects = [], []
    for name, rule_list in ((SLAMMER, rules), (extra_policy, ())):
        if name and rule_list is not None:
            policy, objs = policy_objects(name, triples(rule_list))
            policies.append(policy)
            objects += objs
    return HostState(policies=tuple(policies), filterlists=tuple(o for o in objects if hasattr(o, "filters")),
                     filteractions=tuple({o.name: o for o in objects if hasattr(o, "action")}.values()),
                     assigned=SLAMMER if assigned and rules is not None else "", os=state.os,
                     policyagent=state.policyagent)


def check_result(before, state="overridden"):
    """What ipsec_policy(state=overridden, assigned=true, check_mode) returns for `before`."""
    policy, objects = baseline()
    plan = plan_policy(before, policy, rules_objects=objects, state=state, assign=True)
    result = {"changed": bool(plan.changes), "dialect": "netsh", "os": {"generation": "modern",
              "version": "6.3.20348", "dialect": "netsh", "caption": "Windows Server 2022 Standard"},
              "before": host.state_report(before), "warnings": [], "round_trips": 1}
    if plan.changes:
        commands = dialects.render(plan.changes, "netsh", before=before, after=plan.after)
        result.update(commands=[c.display for c in commands],
                      after=host.state_report(plan.after), diff=host.netdiag_diff(before, plan.after, "10.0.0.5"))
    else:
        result.update(commands=[], after=host.state_report(before))
    return result


UNREACHABLE = {"unreachable": True, "changed": False,
               "msg": "basic: HTTPConnectionPool(host='10.9.9.9', port=5985): Connection refused"}
FAILED = {"failed": True, "changed": False, "msg": "rules[0].filters[0]: bad filterspec",
          "os": {"generation": "xp", "dialect": "ipseccmd", "caption": "Microsoft Windows XP"}}


@pytest.fixture(scope="module")
def records():
    extra = BASELINE_RULES + (("Permit RDP", "*=0:3389:TCP"),)
    return [
        drift.host_record(check_result(store(BASELINE_RULES)), "web10", SLAMMER),
        drift.host_record(check_result(store(extra)), "web2", SLAMMER),
        drift.host_record(check_result(store(None)), "sql1", SLAMMER),
        drift.host_record(UNREACHABLE, "dc1", SLAMMER),
        drift.host_record(FAILED, "xp1", SLAMMER),
    ]


@pytest.fixture(scope="module")
def report(records):
    return drift.build_report(records, hosts=["web10", "web2", "sql1", "dc1", "xp1", "lost9"],
                              generated="2026-01-02T03:04:05Z")


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

def test_host_matching_the_baseline_is_in_sync(records):
    r = records[0]
    assert (r["status"], r["in_sync"], r["summary"], r["commands"], r["errors"]) == ("in_sync", True, [], [], [])
    assert r["assigned"] == SLAMMER and r["dialect"] == "netsh" and r["os"]["generation"] == "modern"


def test_extra_rule_is_drift_named_in_the_summary_with_diff_and_commands(records):
    r = records[1]
    assert r["status"] == "drift" and r["in_sync"] is False and not r["errors"]
    assert r["summary"] == ["- rule 'Permit RDP' in policy %r" % SLAMMER,
                            "- filter list 'Permit RDP'"]
    assert "Dest Port : 3389" in r["diff"]["before"] and "Dest Port : 3389" not in r["diff"]["after"]
    assert r["commands"] and all(c.startswith("netsh ipsec static") for c in r["commands"])


def test_missing_policy_is_drift_that_adds_and_assigns(records):
    r = records[2]
    assert r["status"] == "drift" and r["assigned"] == ""
    assert "+ policy %r" % SLAMMER in r["summary"]
    assert "assigned policy: none -> %r" % SLAMMER in r["summary"]
    assert "no policy is assigned" in r["diff"]["before"] and SLAMMER in r["diff"]["after"]


def test_extra_unassigned_policy_is_drift_and_its_removal_shows_in_the_diff():
    r = drift.host_record(check_result(store(BASELINE_RULES, extra_policy="Old test policy")), "h", SLAMMER)
    assert r["status"] == "drift"
    assert "- policy 'Old test policy'" in r["summary"]
    # netdiag itself lists only the assigned policy; the diff appends the others ([winsec] headings)
    assert "-    [winsec] Policy not in effect: 'Old test policy'" in drift.unified_diff(r)


def test_drift_netdiag_cannot_show_is_still_drift_and_the_page_says_so():
    before = store(BASELINE_RULES)
    before = replace(before, policies=(replace(before.policies[0], polling_interval=60),))
    r = drift.host_record(check_result(before), "h", SLAMMER)
    assert r["status"] == "drift"
    assert drift.unified_diff(r) == []          # a polling interval is not in netdiag's layout
    assert "netdiag shows no difference" in drift.to_html(drift.build_report([r]))


@pytest.mark.parametrize("result, expected", [
    (UNREACHABLE, "unreachable: basic: HTTPConnectionPool"),
    (FAILED, "failed: rules[0].filters[0]: bad filterspec"),
    ({"skipped": True, "changed": False, "skip_reason": "Conditional result was False"}, "skipped: "),
    (None, drift.NO_RESULT),
    ({}, drift.NO_RESULT),
    ({"changed": False, "msg": "All items completed"}, "not a check result"),
])
def test_results_without_a_comparison_are_errors(result, expected):
    r = drift.host_record(result, "h1", SLAMMER)
    assert r["status"] == "error" and r["in_sync"] is False
    assert r["errors"][0].startswith(expected)


def test_failed_result_keeps_what_the_module_learnt():
    r = drift.host_record(dict(FAILED, commands=["ipseccmd -w REG"], warnings=["w1"]), "xp1")
    assert r["commands"] == ["ipseccmd -w REG"] and r["warnings"] == ["w1"]
    assert r["os"]["caption"] == "Microsoft Windows XP"


# --------------------------------------------------------------------------------------------
# Report and JSON
# --------------------------------------------------------------------------------------------

def test_report_counts_orders_and_fills_in_missing_hosts(report):
    assert report["counts"] == {"hosts": 6, "in_sync": 1, "drift": 2, "error": 3, "emergency_block": 0}
    assert list(report["hosts"]) == ["dc1", "lost9", "sql1", "web2", "web10", "xp1"]   # web2 before web10
    assert report["hosts"]["lost9"]["errors"] == [drift.NO_RESULT]
    assert report["baselines"] == [SLAMMER]


def test_json_round_trips_with_per_host_verdicts(report):
    data = json.loads(drift.to_json(report))
    assert data == report
    verdicts = {name: (h["in_sync"], h["status"]) for name, h in data["hosts"].items()}
    assert verdicts == {"web10": (True, "in_sync"), "web2": (False, "drift"), "sql1": (False, "drift"),
                        "dc1": (False, "error"), "xp1": (False, "error"), "lost9": (False, "error")}
    assert {"summary", "diff", "commands", "errors"} <= set(data["hosts"]["web2"])


def test_later_record_for_a_host_wins_and_records_without_host_are_ignored(records):
    second = dict(records[0], status="drift")
    built = drift.build_report([records[0], second, {"status": "drift"}, None])
    assert built["counts"] == {"hosts": 1, "in_sync": 0, "drift": 1, "error": 0, "emergency_block": 0}
    malformed = drift.build_report([{"host": "h9", "in_sync": True}])
    assert malformed["hosts"]["h9"]["status"] == "error"
    assert malformed["hosts"]["h9"]["errors"][0].startswith("not a drift record")


# --------------------------------------------------------------------------------------------
# JUnit XML
# --------------------------------------------------------------------------------------------

def test_junit_parses_and_counts(report):
    root = lxml.etree.fromstring(drift.to_junit(report).encode("utf-8"))
    suite = root.find("testsuite")
    assert root.tag == "testsuites"
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("6", "2", "3")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == set(report["hosts"])
    assert len(root.findall(".//failure")) == 2 and len(root.findall(".//error")) == 3
    assert cases["web10"].find("failure") is None and cases["web10"].find("error") is None
    failure = cases["web2"].find("failure")
    assert failure.get("type") == "drift" and failure.get("message") == "2 differences from the baseline"
    assert "- rule 'Permit RDP'" in failure.text and "Dest Port : 3389" in failure.text
    assert "netsh ipsec static" in failure.text
    assert cases["dc1"].find("error").get("type") == "unreachable"
    assert cases["xp1"].find("error").get("type") == "error"
    assert suite.find("properties/property").get("value") == SLAMMER


def test_junit_survives_hostile_and_control_characters(records):
    nasty = dict(records[1], host=HOSTILE + "\x01\x1b[31m", summary=["- rule 'a\x00b' </failure>]]>"])
    text = drift.to_junit(drift.build_report([nasty]))
    root = lxml.etree.fromstring(text.encode("utf-8"))
    case = root.find("testsuite/testcase")
    assert case.get("name").startswith(HOSTILE)
    assert "</failure>]]>" in case.find("failure").text


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

def test_html_has_a_row_per_host_with_its_badge(report):
    page = lxml.html.fromstring(drift.to_html(report))
    rows = page.xpath("//table[@id='hosts']/tbody/tr")
    assert {r.get("data-host"): r.get("data-status") for r in rows} == {
        name: h["status"] for name, h in report["hosts"].items()}
    assert [r.get("data-status") for r in rows] == ["drift"] * 2 + ["error"] * 3 + ["in_sync"]
    for row in rows:
        assert row.xpath(".//span[contains(@class, 'badge')]")[0].text == drift.BADGES[row.get("data-status")]
    cards = {c.get("class").split()[1]: c.xpath("string(div[@class='n'])") for c in page.xpath("//div[@class='cards']/div")}
    assert cards == {"hosts": "6", "in_sync": "1", "drift": "2", "error": "3", "emergency_block": "0"}


def test_html_shows_each_drifting_hosts_diff_coloured(report):
    page = lxml.html.fromstring(drift.to_html(report))
    sections = {s.xpath("string(h2/span[@class='host'])"): s for s in page.xpath("//section[@class='hostdetail']")}
    assert set(sections) == {"web2", "sql1", "dc1", "lost9", "xp1"}     # in-sync hosts have no section
    removed = sections["web2"].xpath(".//pre[@class='diff']/span[@class='del']/text()")
    assert any("Dest Port : 3389" in line for line in removed)
    added = sections["sql1"].xpath(".//pre[@class='diff']/span[@class='add']/text()")
    assert any(SLAMMER in line for line in added)
    assert "Connection refused" in sections["dc1"].text_content()


def test_html_escapes_hostile_names_and_is_self_contained(records):
    hostile = dict(records[1], host=HOSTILE, summary=["- rule %r" % HOSTILE], commands=[HOSTILE],
                   errors=[], warnings=[HOSTILE], baseline=HOSTILE, assigned=HOSTILE)
    text = drift.to_html(drift.build_report([hostile, dict(records[3], errors=[HOSTILE])]))
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;script&gt;" in text
    page = lxml.html.fromstring(text)
    assert page.xpath("//tr/@data-host")[0] == HOSTILE     # attributes come back intact
    assert not page.xpath("//script | //link | //img | //iframe | //*[@src] | //*[@onerror]")
    assert all(href.startswith("#") for href in page.xpath("//a/@href"))
    assert "url(" not in text and "@import" not in text


def test_all_in_sync_says_so(records):
    page = drift.to_html(drift.build_report([records[0]]))
    assert "all 1 hosts match the baseline" in page
    assert "hostdetail" not in page.split("</table>")[1]


# --------------------------------------------------------------------------------------------
# The filter plugin
# --------------------------------------------------------------------------------------------

def test_drift_record_filter_takes_ansible_mappings():
    class Lazy:                                     # Ansible hands filters mapping-like objects
        def __init__(self, data):
            self.data = data

        def items(self):
            return self.data.items()

    filters = drift_filters.FilterModule().filters()
    assert set(filters) == {"drift_record", "drift_enforce_steps"}
    record = filters["drift_record"](Lazy(check_result(store(None))), "sql1", SLAMMER)
    assert record["status"] == "drift" and record["host"] == "sql1" and record["baseline"] == SLAMMER
    assert filters["drift_record"](None, "gone")["errors"] == [drift.NO_RESULT]


def test_report_files_are_rewritten_only_when_their_content_changes(tmp_path):
    from ansible_collections.winsec.ipsec.plugins.plugin_utils.files import write_if_changed
    path = str(tmp_path / "drift.json")
    assert write_if_changed(path, "one\n") is True
    assert write_if_changed(path, "one\n") is False
    assert write_if_changed(path, "two\n") is True
    assert open(path, encoding="utf-8").read() == "two\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path) == ["drift.json"]          # no temporary file left behind


def test_warnings_of_an_in_sync_host_show_in_its_row(records):
    warning = "a domain (GPO) IPsec policy 'Corp <b>' is assigned to this host and overrides the local store"
    page = lxml.html.fromstring(drift.to_html(drift.build_report([dict(records[0], warnings=[warning])])))
    row = page.xpath("//table[@id='hosts']/tbody/tr")[0]
    assert row.get("data-status") == "in_sync"
    assert row.xpath("string(.//div[@class='warn'])") == "warning: " + warning


# --------------------------------------------------------------------------------------------
# Emergency blocks (objects named `winsec-emergency ...`, module ipsec_block) are not drift
# --------------------------------------------------------------------------------------------

EMERGENCY_RULE = "winsec-emergency block TCP 445 in"
EMERGENCY_ACTION = "winsec-emergency block"


def with_emergency_rules(state, policy_name=SLAMMER, assign=False):
    """`state` plus the emergency block's rule in `policy_name` (created when missing, then assigned
    when `assign`), its filter list and its own filter action, as ipsec_block adds them."""
    rule, flist, faction = rule_objects(EMERGENCY_RULE, [parse_filterspec("*=0:445:TCP", "r").filter], "block",
                                        filteraction_name=EMERGENCY_ACTION)
    policy = state.policy(policy_name)
    if policy is None:
        policies = state.policies + (policy_objects(policy_name, [])[0],)
    else:
        policies = ()
    policies = tuple(replace(p, rules=p.rules + (rule,)) if p.name == policy_name else p
                     for p in (policies or state.policies))
    return replace(state, policies=policies, filterlists=state.filterlists + (flist,),
                   filteractions=state.filteractions + (faction,),
                   assigned=policy_name if assign else state.assigned)


def test_emergency_rules_in_the_baseline_policy_are_in_sync_with_the_block_in_place():
    r = drift.host_record(check_result(with_emergency_rules(store(BASELINE_RULES))), "sql1", SLAMMER)
    assert (r["status"], r["in_sync"], r["emergency_block"]) == ("in_sync", True, True)
    assert r["emergency"] == ["rule %r in policy %r" % (EMERGENCY_RULE, SLAMMER),
                              "filter list %r" % EMERGENCY_RULE, "filter action %r" % EMERGENCY_ACTION]
    assert r["commands"] == [] and r["summary"] == []
    report = drift.build_report([r])
    assert report["counts"] == {"hosts": 1, "in_sync": 1, "drift": 0, "error": 0, "emergency_block": 1}
    page = lxml.html.fromstring(drift.to_html(report))
    row = page.xpath("//table[@id='hosts']/tbody/tr")[0]
    assert (row.get("data-status"), row.get("data-emergency")) == ("in_sync", "yes")
    assert [b.text for b in row.xpath(".//span[contains(@class, 'badge')]")] == ["in sync", "emergency block in place"]
    detail = page.xpath("//section[@class='hostdetail']")[0]       # listed in full, linked from the row
    assert EMERGENCY_RULE in detail.text_content() and row.xpath(".//a/@href") == ["#" + detail.get("id")]
    case = lxml.etree.fromstring(drift.to_junit(report).encode()).find("testsuite/testcase")
    assert case.find("failure") is None and case.find("error") is None
    assert "emergency block in place (not drift): rule %r" % EMERGENCY_RULE in case.find("system-out").text


def test_real_drift_beside_an_emergency_block_names_only_the_drift():
    extra = BASELINE_RULES + (("Permit RDP", "*=0:3389:TCP"),)
    r = drift.host_record(check_result(with_emergency_rules(store(extra))), "sql1", SLAMMER)
    assert (r["status"], r["emergency_block"]) == ("drift", True)
    assert r["summary"] == ["- rule 'Permit RDP' in policy %r" % SLAMMER, "- filter list 'Permit RDP'"]
    unfiltered = check_result(with_emergency_rules(store(extra)))["commands"]
    assert len(unfiltered) > len(r["commands"]) > 0      # the block's deletes are not the fix
    assert r["notes"][0].startswith("%d command(s) touching the emergency block left out"
                                    % (len(unfiltered) - len(r["commands"])))
    assert r["notes"][1] == drift.EMERGENCY_DIFF_NOTE     # the netdiag texts are the check's, block included
    page = lxml.html.fromstring(drift.to_html(drift.build_report([r])))
    assert page.xpath("string(//table[@id='hosts']//div[@class='emergency'])") == (
        "emergency block in place (not drift): rule %r in policy %r" % (EMERGENCY_RULE, SLAMMER))
    assert "show as removed" in page.xpath("string(//section[@class='hostdetail'])")


def test_emergency_policy_assigned_instead_of_the_baseline_is_drift():
    r = drift.host_record(check_result(with_emergency_rules(store(BASELINE_RULES, assigned=False),
                                                            "winsec-emergency block", assign=True)), "h", SLAMMER)
    assert r["status"] == "drift" and r["emergency_block"]
    assert r["emergency"][0] == "policy 'winsec-emergency block' (assigned)"
    assert "assigned policy: 'winsec-emergency block' -> %r" % SLAMMER in r["summary"]


def test_emergency_remove_counts_the_block_as_drift_and_names_are_case_insensitive():
    state = with_emergency_rules(store(BASELINE_RULES))
    r = drift.host_record(check_result(state), "h", definition={"name": SLAMMER, "emergency": "remove"})
    assert (r["status"], r["emergency_block"]) == ("drift", False)
    assert "- rule %r in policy %r" % (EMERGENCY_RULE, SLAMMER) in r["summary"]
    assert drift.is_emergency_name("WinSec-Emergency x") and not drift.is_emergency_name("winsec-emergencyx")


def test_other_policies_allowed_are_listed_not_drift():
    definition = {"name": SLAMMER, "other_policies": "allow"}
    state = store(BASELINE_RULES, extra_policy="Server isolation")
    r = drift.host_record(check_result(state, "replaced"), "h", definition=definition)
    assert (r["status"], r["other_policies"]) == ("in_sync", ["Server isolation"])
    page = drift.to_html(drift.build_report([r]))
    assert "other policies (allowed): Server isolation" in lxml.html.fromstring(page).text_content()
    strict = drift.host_record(check_result(state), "h", definition=dict(definition, other_policies="drift"))
    assert strict["status"] == "drift" and strict["other_policies"] == []


# --------------------------------------------------------------------------------------------
# What an auditor asks: the baseline in full, who ran it, when each host was read, which version
# --------------------------------------------------------------------------------------------

DEFINITION = {"name": SLAMMER, "assigned": True, "store": "local", "other_policies": "drift", "emergency": "keep",
              "rules": [{"name": "Block Inbound UDP 1434 Rule", "filters": ["*=0:1434:UDP"], "action": "block"},
                        {"name": "Tunnel", "action": "negotiate", "filteraction": "T", "filters": ["0=*:500:UDP"],
                         "auth": [{"kind": "psk", "value": "hunter2-secret"}]}]}
RUN = drift.run_info("ctl.example", "auditor", {"name": "winsec.ipsec", "version": "1.2.3", "source": "MANIFEST.json"},
                     ansible="2.19.0")


def test_read_time_comes_from_the_state_fact_or_says_it_is_the_arrival():
    fact = {"ansible_facts": {"winsec_ipsec_state": {"version": 1, "read_at": "2026-12-04T10:00:01Z"}}}
    r = drift.host_record(dict(check_result(store(BASELINE_RULES)), **fact), "h", SLAMMER, received_at="X")
    assert (r["read_at"], r["read_at_source"]) == ("2026-12-04T10:00:01Z", "host read (winsec_ipsec_state.read_at)")
    r = drift.host_record(check_result(store(BASELINE_RULES)), "h", SLAMMER, received_at="2026-12-04T10:00:09Z")
    assert r["read_at"] == "2026-12-04T10:00:09Z" and r["read_at_source"].startswith("result received")
    assert drift.host_record(None, "h")["read_at"] == ""        # never read: no time claimed


def test_report_carries_the_run_and_the_baseline_in_full_keys_masked():
    records = [drift.host_record(check_result(store(BASELINE_RULES)), h, definition=DEFINITION, received_at="T")
               for h in ("a", "b")]
    report = drift.build_report(records, run=RUN, generated="G")
    text = drift.to_json(report) + drift.to_html(report) + drift.to_junit(report)
    assert "hunter2" not in text
    (entry,) = report["baseline_definitions"]
    assert entry["hosts"] == ["a", "b"] and entry["definition"]["rules"][1]["auth"] == [
        {"kind": "psk", "value": "********"}]
    assert {h["baseline_digest"] for h in report["hosts"].values()} == {entry["digest"]}
    assert "definition" not in report["hosts"]["a"]               # listed once, not per host
    other = drift.host_record(check_result(store(BASELINE_RULES)), "c", definition=dict(DEFINITION, assigned=False))
    assert other["baseline_digest"] != entry["digest"]

    page = lxml.html.fromstring(drift.to_html(report))
    run = page.xpath("string(//section[@id='run'])")
    for expected in ("ctl.example", "auditor", "winsec.ipsec 1.2.3", "MANIFEST.json", "2.19.0"):
        assert expected in run
    baseline_text = page.xpath("string(//div[@id='baselines'])")
    assert "*=0:1434:UDP" in baseline_text and "Tunnel" in baseline_text and entry["digest"] in baseline_text
    assert page.xpath("//table[@id='hosts']/tbody/tr[1]/td[5]")[0].text_content().startswith("T")
    props = {p.get("name"): p.get("value") for p in
             lxml.etree.fromstring(drift.to_junit(report).encode()).iter("property")}
    assert props["run.controller"] == "ctl.example" and props["run.user"] == "auditor"
    assert "version=1.2.3" in props["run.collection"] and "*=0:1434:UDP" in props["baseline_definition"]


# --------------------------------------------------------------------------------------------
# Enforce: what role ipsec_baseline sends, leaving an emergency block alone
# --------------------------------------------------------------------------------------------

def gathered(state):
    return host.state_report(state)


def test_enforce_without_an_emergency_block_is_one_overridden_or_replaced_task():
    state = store(BASELINE_RULES, extra_policy="Old")
    assert drift.enforce_steps(gathered(state), {"name": SLAMMER}) == {
        "state": "overridden", "delete_rules": [], "delete_policies": [], "kept": [], "refuse": ""}
    assert drift.enforce_steps(gathered(state), {"name": SLAMMER, "other_policies": "allow"})["state"] == "replaced"


def test_enforce_keeps_the_emergency_rules_and_deletes_the_rest():
    extra = BASELINE_RULES + (("Permit RDP", "*=0:3389:TCP"),)
    state = with_emergency_rules(store(extra, extra_policy="Old"))
    steps = drift.enforce_steps(gathered(state), {"name": SLAMMER, "rules": [{"name": n} for n, _ in BASELINE_RULES]})
    assert (steps["state"], steps["delete_rules"], steps["delete_policies"], steps["refuse"]) == (
        "merged", ["Permit RDP"], ["Old"], "")
    assert steps["kept"][0] == "rule %r in policy %r" % (EMERGENCY_RULE, SLAMMER)
    allow = drift.enforce_steps(gathered(state), {"name": SLAMMER, "other_policies": "allow"})
    assert allow["delete_policies"] == []
    removed = drift.enforce_steps(gathered(state), {"name": SLAMMER, "emergency": "remove"})
    assert (removed["state"], removed["kept"]) == ("overridden", [])


def test_enforce_refuses_to_lift_an_assigned_emergency_policy():
    state = with_emergency_rules(store(BASELINE_RULES, assigned=False), "winsec-emergency block", assign=True)
    steps = drift.enforce_steps(gathered(state), {"name": SLAMMER, "assigned": True})
    assert "would lift the block" in steps["refuse"] and "ipsec_baseline_emergency: remove" in steps["refuse"]
    assert drift.enforce_steps(gathered(state), {"name": SLAMMER, "assigned": False})["refuse"] == ""
    # an older ansible-core templates the role's booleans to text
    assert drift.enforce_steps(gathered(state), {"name": SLAMMER, "assigned": "False"})["refuse"] == ""
    assert drift.enforce_steps(gathered(state), {"name": SLAMMER, "assigned": "True"})["refuse"]


def test_a_host_never_read_has_no_read_time():
    assert drift.host_record(UNREACHABLE, "dc1", SLAMMER, received_at="T")["read_at"] == ""
    assert drift.host_record(FAILED, "xp1", SLAMMER, received_at="T")["read_at"] == ""
    fact = {"ansible_facts": {"winsec_ipsec_state": {"read_at": "2026-12-04T10:00:01Z"}}}
    assert drift.host_record(dict(FAILED, **fact), "xp1", SLAMMER)["read_at"] == "2026-12-04T10:00:01Z"


def test_collection_version_comes_from_the_installed_manifest_else_galaxy_yml(tmp_path):
    from ansible_collections.winsec.ipsec.plugins.action.drift_report import collection_version
    (tmp_path / "galaxy.yml").write_text("namespace: winsec\nname: ipsec\nversion: 9.8.7\n")
    found = collection_version(str(tmp_path))
    assert (found["name"], found["version"]) == ("winsec.ipsec", "9.8.7") and found["source"].startswith("galaxy.yml")
    (tmp_path / "MANIFEST.json").write_text(json.dumps(
        {"collection_info": {"namespace": "winsec", "name": "ipsec", "version": "1.0.0"}}))
    found = collection_version(str(tmp_path))
    assert found["version"] == "1.0.0" and found["source"].startswith("MANIFEST.json")
    assert collection_version(str(tmp_path / "nowhere"))["version"] == "unknown"


# --------------------------------------------------------------------------------------------
# Dynamic rules that could not be read: unknown, never "in sync"
# --------------------------------------------------------------------------------------------

def german_fact():
    """The state fact a German host's read leaves: its dynamic listings as winsim's modern_de prints them."""
    sim = SimHost("de1", "127.0.0.9", "modern_de", tempfile.mkdtemp())
    for words in ("add mmpolicy name=AdminBlock", "add rule srcaddr=any dstaddr=me protocol=tcp dstport=445 "
                  "mmpolicy=AdminBlock actioninbound=block actionoutbound=block"):
        assert sim.run_tool(["netsh", "ipsec", "dynamic"] + words.split()).rc == 0
    listing = {"dynamic-netsh": "rule", remote.MMPOLICY_SECTION: "mmpolicy all"}
    sections = {name: {"text": sim.run_tool(["netsh", "ipsec", "dynamic", "show"] + what.split()).stdout, "rc": 0}
                for name, what in listing.items()}
    sections["policyagent"] = {"text": "        STATE              : 4  RUNNING\n", "rc": 0}
    return {"winsec_ipsec_state": {"version": 1, "read_at": "2026-01-02T03:04:05Z", "sections": sections}}


def test_unreadable_dynamic_rules_are_unknown_with_a_warning():
    """A host whose static store matches but whose dynamic listing the engine cannot read (the module
    reported [] for it before) is in sync for the baseline, and its dynamic rules are unknown, with a
    warning in the JSON, JUnit and HTML reports."""
    result = dict(check_result(store(BASELINE_RULES)), ansible_facts=german_fact())
    record = drift.host_record(result, "de1", SLAMMER)
    assert record["status"] == "in_sync" and record["dynamic"] == drift.UNKNOWN
    assert record["warnings"] == [drift.DYNAMIC_UNKNOWN_WARNING]
    report = drift.build_report([record], generated="2026-01-02T03:04:05Z")
    assert report["counts"]["dynamic_unknown"] == 1
    assert drift.DYNAMIC_UNREAD in drift.to_junit(report)
    page = drift.to_html(report)
    assert "dynamic rules could not be read (unknown)" in page and drift.DYNAMIC_UNREAD in page


@pytest.mark.parametrize("result", [
    {"before": {"dynamic": None}},
    {"before": {"dynamic": [], "mmpolicies": None}},        # only the main-mode policy listing was unreadable
    {"warnings": ["the dynamic rules could not be read, so they are reported as unknown (null), not as none: x"]},
])
def test_null_dynamic_or_the_modules_warning_mean_unknown(result):
    assert drift.dynamic_status(result) == drift.UNKNOWN


def test_read_dynamic_rules_add_nothing(records):
    assert records[0]["dynamic"] == drift.READ and records[0]["warnings"] == []
    english = german_fact()
    english["winsec_ipsec_state"]["sections"]["dynamic-netsh"]["text"] = ""
    english["winsec_ipsec_state"]["sections"][remote.MMPOLICY_SECTION]["text"] = ""
    assert drift.dynamic_status({"ansible_facts": english}) == drift.READ


def test_an_emergency_block_on_a_host_whose_dynamic_rules_are_unknown_is_still_not_drift():
    """The module reports a German host's dynamic rules as null in `before` and `after`; the comparison
    without the block's objects covered them and failed on the null, so the host showed as drifting."""
    result = check_result(with_emergency_rules(store(BASELINE_RULES)))
    for name in ("before", "after"):
        result[name] = dict(result[name], dynamic=None, mmpolicies=None)
    r = drift.host_record(result, "de1", SLAMMER)
    assert (r["status"], r["emergency_block"], r["dynamic"]) == ("in_sync", True, drift.UNKNOWN)


def test_warnings_as_ansible_registers_them_are_their_text():
    """ansible-core 2.19 hands a registered result's warnings to the drift report as WarningSummary
    objects: the report showed their repr ("WarningSummary(event=Event(msg=...") and read the
    dynamic-unknown warning only by accident of that repr holding its text."""
    from ansible.module_utils._internal._messages import Event, WarningSummary
    text = drift.DYNAMIC_UNREAD + ", so they are reported as unknown (null): line 1 is not in the layout"
    result = dict(check_result(store(BASELINE_RULES)), warnings=[WarningSummary(event=Event(msg=text))])
    record = drift.host_record(result, "de1", SLAMMER)
    assert record["warnings"] == [text]
    assert drift.dynamic_status({"warnings": [WarningSummary(event=Event(msg=text))]}) == drift.UNKNOWN
