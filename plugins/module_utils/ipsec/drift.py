# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Compliance drift reports: per-host check-mode results -> JSON, one HTML page, JUnit XML.

The input is what `ipsec_policy` returns in check mode against the baseline (state=overridden):
`changed` says the host differs, `before`/`after` are the structured states, `diff` the
netdiag-style text, `commands` what would bring the host in line. A host that was unreachable or
whose task failed is an error in the report, never a reason not to write it.

Everything shown comes from hosts (policy, rule and host names), so the HTML escapes every string
and the XML writer strips characters XML 1.0 cannot carry. Standard library only.
"""
from __future__ import annotations

import datetime
import difflib
import hashlib
import html
import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from . import remote
from .host import read_dynamic
from .netdiag import summary as netdiag_summary
from .plan import converged
from .block import EMERGENCY_PREFIX, is_emergency_name
from .model import unknown_as_empty
from .report import SECRET_MASK, message_text, plain, state_from_dict

REPORT_FORMAT = 2
STATUSES = ("drift", "error", "in_sync")          # also the order problems are shown in
NO_RESULT = ("no check result: the host was not reached or failed before the check ran "
             "(see the ansible-playbook output)")
# XML 1.0 Char production: tab, newline, carriage return and everything from U+0020 but surrogates
# and U+FFFE/U+FFFF. Control characters from a host would make the JUnit file unreadable.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --------------------------------------------------------------------------------------------
# Records: one host's check result, normalised
# --------------------------------------------------------------------------------------------

KEEP, REMOVE = "keep", "remove"            # what enforce does with an emergency block (its objects)
ALLOW, DRIFT = "allow", "drift"             # whether other policies than the baseline are drift


def host_record(result: Optional[Mapping[str, Any]], host: str, baseline: str = "", *,
                definition: Optional[Mapping[str, Any]] = None, received_at: Optional[str] = None
                ) -> Dict[str, Any]:
    """One host's drift record from its check-mode task result (None: the check never ran).

    status is `in_sync`, `drift` or `error`; in_sync is true only when the host is known to match.
    `definition` is the baseline as the role declared it (name, rules, assigned, ..., `emergency`
    keep|remove, `other_policies` drift|allow). `received_at` is when the controller got the result,
    the read time given when the module did not return the host fact winsec_ipsec_state.
    """
    definition = baseline_definition(definition or {"name": baseline})
    baseline = str(baseline or definition.get("name") or "")
    record: Dict[str, Any] = {
        "host": str(host), "baseline": baseline, "status": "error", "in_sync": False,
        "summary": [], "diff": {"before": "", "after": ""}, "commands": [], "errors": [],
        "warnings": [], "os": {}, "dialect": "", "assigned": None,
        "emergency_block": False, "emergency": [], "other_policies": [], "notes": [],
        "read_at": "", "read_at_source": "", "baseline_digest": definition_digest(definition),
        "definition": definition, "dynamic": "",
    }
    if not isinstance(result, Mapping) or not result:
        record["errors"] = [NO_RESULT]
        return record
    record["warnings"] = [message_text(w) for w in result.get("warnings") or ()]
    record["os"] = {k: str(v) for k, v in (result.get("os") or {}).items() if v is not None}
    record["dialect"] = str(result.get("dialect") or "")
    record["commands"] = [str(c) for c in result.get("commands") or ()]
    before = result.get("before")
    if isinstance(before, Mapping):
        record["assigned"] = str(before.get("assigned") or "")
    if result.get("unreachable"):
        record["errors"] = ["unreachable: %s" % (result.get("msg") or "no reason given")]
        return record
    if result.get("failed"):
        record["errors"] = ["failed: %s" % (result.get("msg") or "no reason given")]
        if _state_fact(result).get("read_at"):         # read, then failed: say when it was read
            record.update(_read_time(result, received_at))
        return record
    if result.get("skipped"):
        record["errors"] = ["skipped: the check did not run on this host (%s)"
                            % (result.get("skip_reason") or "condition false")]
        return record
    if "changed" not in result or not isinstance(before, Mapping):
        record["errors"] = ["not a check result of winsec.ipsec.ipsec_policy (no changed/before)"]
        return record
    record.update(_read_time(result, received_at))
    record["dynamic"] = dynamic_status(result)
    if record["dynamic"] == UNKNOWN and not any(DYNAMIC_UNREAD in w for w in record["warnings"]):
        record["warnings"].append(DYNAMIC_UNKNOWN_WARNING)
    keep = definition.get("emergency") != REMOVE
    record["emergency"] = emergency_objects(before)
    record["emergency_block"] = keep and bool(record["emergency"])
    if definition.get("other_policies") == ALLOW:
        record["other_policies"] = [str(p.get("name")) for p in before.get("policies") or ()
                                    if not _same(p.get("name"), baseline) and not is_emergency_name(p.get("name"))]
    after = result.get("after")
    if record["emergency_block"]:
        # The check plans enforce without an emergency block (state=overridden/replaced delete its
        # objects); enforce keeps them, so the commands that would touch them are not the fix.
        shown = [c for c in record["commands"] if EMERGENCY_PREFIX.casefold() not in c.casefold()]
        if len(shown) != len(record["commands"]):
            record["notes"].append("%d command(s) touching the emergency block left out: enforce keeps it "
                                   "(ipsec_baseline_emergency: keep)" % (len(record["commands"]) - len(shown)))
        record["commands"] = shown
    if not result["changed"] or (record["emergency_block"] and isinstance(after, Mapping)
                                 and _same_state(without_emergency(before), without_emergency(after))):
        record.update(status="in_sync", in_sync=True, commands=[])
        return record
    diff = result.get("diff") or {}
    if record["emergency_block"]:
        before, after = without_emergency(before), (without_emergency(after) if isinstance(after, Mapping) else after)
        record["notes"].append(EMERGENCY_DIFF_NOTE)
    record.update(status="drift",
                  diff={"before": str(diff.get("before") or ""), "after": str(diff.get("after") or "")},
                  summary=differences(before, after))
    return record


# The netdiag texts come from the module as the host showed them (with its filter and policy ids),
# so they cannot be re-rendered here without the block; the page says so where the diff is.
EMERGENCY_DIFF_NOTE = ("the netdiag view below is the check's: it shows the emergency block's filters as "
                       "removed, which enforce (ipsec_baseline_emergency: keep) does not do")


UNKNOWN, READ = "unknown", "read"
DYNAMIC_UNREAD = "dynamic rules could not be read"
DYNAMIC_UNKNOWN_WARNING = ("the %s (a listing in a layout the engine does not read; the display language may "
                           "not be English): they are unknown, so this host is not known to be free of dynamic "
                           "rules, whatever its static store shows" % DYNAMIC_UNREAD)


def dynamic_status(result: Mapping[str, Any]) -> str:
    """`unknown` when the host's dynamic rules could not be read (reported as null, warned about by the
    module, or a listing in the state fact the engine does not read); `read` otherwise."""
    before = result.get("before")
    if isinstance(before, Mapping) and any(key in before and before[key] is None for key in ("dynamic", "mmpolicies")):
        return UNKNOWN
    if any(DYNAMIC_UNREAD in message_text(w) for w in result.get("warnings") or ()):
        return UNKNOWN
    sections = _state_fact(result).get("sections")
    if isinstance(sections, Mapping):
        transcript = remote.Transcript()
        for name, value in sections.items():
            if isinstance(value, Mapping) and isinstance(value.get("text"), str):
                transcript.sections[str(name)] = remote.Section(str(name), value["text"], value.get("rc"))
        if read_dynamic(transcript)[2]:
            return UNKNOWN
    return READ


def _true(value: Any) -> bool:
    """A boolean that may have been templated to text by an older ansible-core."""
    return value.strip().casefold() in ("true", "yes", "1", "on") if isinstance(value, str) else bool(value)


def _same(a: Any, b: Any) -> bool:
    return str(a or "").casefold() == str(b or "").casefold()


def _read_time(result: Mapping[str, Any], received_at: Optional[str]) -> Dict[str, str]:
    """When the host was read: the read_at of the state fact the module returned (contract: every
    module returns ansible_facts.winsec_ipsec_state), else when the controller got the result."""
    fact = _state_fact(result)
    if fact.get("read_at"):
        return {"read_at": str(fact["read_at"]), "read_at_source": "host read (winsec_ipsec_state.read_at)"}
    return {"read_at": str(received_at or _now()),
            "read_at_source": "result received by the controller (the module returned no read time)"}


def _state_fact(result: Mapping[str, Any]) -> Mapping[str, Any]:
    facts = result.get("ansible_facts")
    fact = facts.get("winsec_ipsec_state") if isinstance(facts, Mapping) else None
    return fact if isinstance(fact, Mapping) else {}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def emergency_objects(state: Mapping[str, Any]) -> List[str]:
    """The emergency block's objects in a reported state, one line each (names by the block's prefix)."""
    found = []
    assigned = state.get("assigned") or ""
    for policy in state.get("policies") or ():
        if is_emergency_name(policy.get("name")):
            found.append("policy %r (%s)" % (policy["name"], "assigned" if _same(policy["name"], assigned)
                                              else "not assigned"))
            continue
        found += ["rule %r in policy %r" % (r["name"], policy["name"])
                  for r in policy.get("rules") or () if is_emergency_name(r.get("name"))]
    found += ["filter list %r" % fl["name"] for fl in state.get("filterlists") or ()
              if is_emergency_name(fl.get("name"))]
    found += ["filter action %r" % fa["name"] for fa in state.get("filteractions") or ()
              if is_emergency_name(fa.get("name"))]
    return found


def without_emergency(state: Mapping[str, Any]) -> Dict[str, Any]:
    """A reported state without the emergency block's objects (the assignment is left as it is:
    an assigned emergency policy means the baseline is not the policy in force)."""
    out = dict(state)
    out["policies"] = [dict(p, rules=[r for r in p.get("rules") or () if not is_emergency_name(r.get("name"))])
                       for p in state.get("policies") or () if not is_emergency_name(p.get("name"))]
    for key in ("filterlists", "filteractions"):
        out[key] = [o for o in state.get(key) or () if not is_emergency_name(o.get("name"))]
    return out


def _same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    try:
        # the comparison covers what was read: dynamic rules unknown on both sides do not differ
        return converged(*(unknown_as_empty(state_from_dict(s)) for s in (a, b)))
    except (ValueError, TypeError, KeyError):
        return False


# --------------------------------------------------------------------------------------------
# The baseline as declared (role ipsec_baseline), for the report and for enforce
# --------------------------------------------------------------------------------------------

def baseline_definition(definition: Mapping[str, Any]) -> Dict[str, Any]:
    """The baseline's declared content as plain data, pre-shared keys masked (it goes into reports)."""
    out = plain(definition)
    rules = []
    for rule in out.get("rules") or ():
        rule = dict(rule) if isinstance(rule, Mapping) else {"value": rule}
        if isinstance(rule.get("auth"), list):
            rule["auth"] = [dict(a, value=SECRET_MASK) if isinstance(a, Mapping) and a.get("kind") == "psk" and
                            a.get("value") else a for a in rule["auth"]]
        rules.append(rule)
    if "rules" in out:
        out["rules"] = rules
    return out


def definition_digest(definition: Mapping[str, Any]) -> str:
    """A short SHA-256 of the declared baseline (keys masked), so a report shows which hosts were
    checked against the very same content."""
    text = json.dumps(definition, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def enforce_steps(gathered: Mapping[str, Any], definition: Mapping[str, Any]) -> Dict[str, Any]:
    """How role ipsec_baseline enforces `definition` on a host whose store reads `gathered`
    (ipsec_policy state=gathered) without touching an emergency block (contract: objects named
    `winsec-emergency ...` belong to ipsec_block) and, with other_policies=allow, other policies.

    Returns `state` for the baseline's ipsec_policy task (overridden, replaced, or merged when an
    emergency block must stay), `delete_rules` (rules of the baseline policy the baseline does not
    have) and `delete_policies` (policies that go) for the tasks after it, `kept` (the emergency
    block's objects left alone) and `refuse` (why enforcing would lift the block: empty when fine).
    """
    name = str(definition.get("name") or "")
    allow = definition.get("other_policies") == ALLOW
    kept = emergency_objects(gathered) if definition.get("emergency") != REMOVE else []
    steps = {"state": "replaced" if allow else "overridden", "delete_rules": [], "delete_policies": [],
             "kept": kept, "refuse": ""}
    if not kept:
        return steps
    assigned = str(gathered.get("assigned") or "")
    if _true(definition.get("assigned", True)) and is_emergency_name(assigned) and not _same(assigned, name):
        steps["refuse"] = (
            "the emergency block's own policy %r is the assigned policy on this host; assigning baseline %r "
            "would lift the block (only one local policy is assigned at a time, KB 813878). Undo the block "
            "first (playbooks/unblock.yml), or set ipsec_baseline_emergency: remove to replace it"
            % (assigned, name))
        return steps
    wanted = {str(r.get("name") or "").casefold() for r in definition.get("rules") or () if isinstance(r, Mapping)}
    steps["state"] = "merged"
    for policy in gathered.get("policies") or ():
        if _same(policy.get("name"), name):
            steps["delete_rules"] = [r["name"] for r in policy.get("rules") or ()
                                     if not r.get("default_response") and not is_emergency_name(r["name"])
                                     and r["name"].casefold() not in wanted]
        elif not allow and not is_emergency_name(policy.get("name")):
            steps["delete_policies"].append(policy["name"])
    return steps


def differences(before: Mapping[str, Any], after: Optional[Mapping[str, Any]]) -> List[str]:
    """`+ rule ...`, `- policy ...`, `~ ...` lines between two reported states (netdiag.summary).

    The netdiag-style diff shows filters; these lines also name drift in settings it has no place
    for (descriptions, polling intervals, assignment).
    """
    if not isinstance(after, Mapping):
        return ["(the predicted state was not returned; see the commands)"]
    try:
        lines = netdiag_summary(state_from_dict(before), state_from_dict(after))
    except (ValueError, TypeError, KeyError) as err:
        return ["(the states could not be compared: %s; see the diff)" % err]
    return lines or ["(settings that netdiag does not show differ; see the commands)"]


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------

def build_report(records: Iterable[Optional[Mapping[str, Any]]], hosts: Sequence[str] = (),
                 generated: Optional[str] = None, run: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Records (host_record output) -> the report: counts and one entry per host, by name.

    `hosts` are the hosts the check was meant to cover; one without a record is an error (it was
    unreachable or failed before recording). `generated` is an ISO time (default: now, UTC). `run`
    says who ran the check where, and with which collection (run_info).
    The baselines' declared content is listed once each (`baseline_definitions`, by digest); each
    host names its own by `baseline_digest`.
    """
    by_host: Dict[str, Dict[str, Any]] = {}
    for record in records:
        if not isinstance(record, Mapping) or not record.get("host"):
            continue
        name = str(record["host"])
        if record.get("status") in STATUSES:
            by_host[name] = dict(record)
        else:
            by_host[name] = dict(host_record(None, name, str(record.get("baseline") or "")),
                                 errors=["not a drift record (no valid status): made by winsec.ipsec.drift_record?"])
    for host in hosts:
        by_host.setdefault(str(host), host_record(None, str(host)))
    ordered = {name: by_host[name] for name in sorted(by_host, key=_natural)}
    definitions: Dict[str, Dict[str, Any]] = {}
    for name, record in ordered.items():
        definition = record.pop("definition", None)
        if not definition or set(definition) == {"name"}:
            continue                    # no content known (a host that never reached the check)
        digest = record.get("baseline_digest") or definition_digest(definition)
        entry = definitions.setdefault(digest, {"digest": digest, "name": definition.get("name") or "",
                                                "definition": definition, "hosts": []})
        entry["hosts"].append(name)
    counts = {"hosts": len(ordered)}
    counts.update({status: sum(1 for r in ordered.values() if r["status"] == status)
                   for status in ("in_sync", "drift", "error")})
    counts["emergency_block"] = sum(1 for r in ordered.values() if r.get("emergency_block"))
    unknown = sum(1 for r in ordered.values() if r.get("dynamic") == UNKNOWN)
    if unknown:                 # only then: the counts of a report with every host read stay as they were
        counts["dynamic_unknown"] = unknown
    return {
        "format": REPORT_FORMAT,
        "generated": generated or _now(),
        "run": dict(run or {}),
        "baselines": sorted({r.get("baseline") or "" for r in ordered.values()} - {""}),
        "baseline_definitions": sorted(definitions.values(), key=lambda d: (d["name"].casefold(), d["digest"])),
        "counts": counts,
        "hosts": ordered,
    }


def run_info(controller: str, user: str, collection: Mapping[str, Any], **extra: Any) -> Dict[str, Any]:
    """Who ran the check: the controller's host name, the user, the collection (name, version and
    where the version was read), and anything else worth keeping (ansible-core version, playbook)."""
    return dict({"controller": str(controller), "user": str(user), "collection": dict(collection)},
                **{k: v for k, v in extra.items() if v not in (None, "")})


def _natural(name: str):
    """win2 before win10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
            for part in re.split(r"(\d+)", name) if part]


def to_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def unified_diff(record: Mapping[str, Any]) -> List[str]:
    """The netdiag before/after as unified diff lines (empty when netdiag shows no difference)."""
    diff = record.get("diff") or {}
    return list(difflib.unified_diff(str(diff.get("before") or "").splitlines(),
                                     str(diff.get("after") or "").splitlines(),
                                     "netdiag /test:ipsec /debug (now)",
                                     "netdiag /test:ipsec /debug (baseline)", n=3, lineterm=""))


def problem_text(record: Mapping[str, Any]) -> str:
    """A drifting or failed host in plain text: what differs, the netdiag diff, the fixing commands."""
    parts: List[str] = []
    if record.get("errors"):
        parts += list(record["errors"])
    if record.get("emergency_block"):
        parts += ["Emergency block in place (not drift): " + "; ".join(record.get("emergency") or ())]
    parts += list(record.get("notes") or ())
    if record.get("summary"):
        parts += ["Differences from baseline %r:" % record.get("baseline", "")] + \
                 ["  " + line for line in record["summary"]]
    diff_lines = unified_diff(record)
    if diff_lines:
        parts += ["", "netdiag view:"] + diff_lines
    if record.get("commands"):
        parts += ["", "Commands that would bring the host in line:"] + ["  " + c for c in record["commands"]]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# JUnit XML
# --------------------------------------------------------------------------------------------

def _xml(text: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def to_junit(report: Mapping[str, Any], suite: str = "ipsec baseline drift") -> str:
    """JUnit XML: one testcase per host; drift is a failure, an unreachable or failed host an error."""
    counts = report["counts"]
    attrs = {"tests": str(counts["hosts"]), "failures": str(counts["drift"]),
             "errors": str(counts["error"]), "skipped": "0", "time": "0"}
    root = ET.Element("testsuites", dict(attrs, name=_xml(suite)))
    testsuite = ET.SubElement(root, "testsuite", dict(attrs, name=_xml(suite), timestamp=_xml(report["generated"])))
    properties = ET.SubElement(testsuite, "properties")
    for baseline in report.get("baselines") or ():
        ET.SubElement(properties, "property", name="baseline", value=_xml(baseline))
    for definition in report.get("baseline_definitions") or ():
        ET.SubElement(properties, "property", name="baseline_definition",
                      value=_xml(json.dumps(definition["definition"], sort_keys=True, ensure_ascii=False)))
    for key, value in _run_lines(report.get("run") or {}):
        ET.SubElement(properties, "property", name=key, value=_xml(value))
    for name, record in report["hosts"].items():
        case = ET.SubElement(testsuite, "testcase", name=_xml(name), time="0",
                             classname=_xml("ipsec_baseline." + (record.get("baseline") or "unknown")))
        if record["status"] == "drift":
            count = len(record.get("summary") or ())
            failure = ET.SubElement(case, "failure", type="drift", message=_xml(
                "%d difference%s from the baseline" % (count, "" if count == 1 else "s")))
            failure.text = _xml(problem_text(record))
        elif record["status"] == "error":
            error = ET.SubElement(case, "error", type="unreachable" if _unreachable(record) else "error",
                                  message=_xml((record.get("errors") or ["error"])[0][:500]))
            error.text = _xml(problem_text(record))
        out = ["read at %s (%s)" % (record["read_at"], record.get("read_at_source") or "")] if record.get("read_at") else []
        if record.get("emergency_block"):
            out += ["emergency block in place (not drift): " + "; ".join(record.get("emergency") or ())]
        if record.get("other_policies"):
            out += ["other policies (allowed, not drift): " + ", ".join(record["other_policies"])]
        out += ["warning: " + w for w in record.get("warnings") or ()]
        if out:
            ET.SubElement(case, "system-out").text = _xml("\n".join(out))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _run_lines(run: Mapping[str, Any]):
    """The run's facts as (key, text) pairs: run.controller, run.user, run.collection, ..."""
    for key, value in run.items():
        if isinstance(value, Mapping):
            value = " ".join("%s=%s" % item for item in value.items())
        yield "run." + key, str(value)


def _unreachable(record: Mapping[str, Any]) -> bool:
    return any(str(e).startswith("unreachable") for e in record.get("errors") or ())


# --------------------------------------------------------------------------------------------
# HTML: one self-contained page
# --------------------------------------------------------------------------------------------

BADGES = {"in_sync": "in sync", "drift": "drift", "error": "error"}
EMERGENCY_BADGE = "emergency block in place"

_CSS = """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--drift:#9a6700;--drift-bg:#fff1b8;--err:#b42318;--err-bg:#fee4e2;
--emg:#0550ae;--emg-bg:#ddf4ff;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--add:#e6ffec;--add-ink:#116329;--del:#ffebe9;--del-ink:#a40e26}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:#f6f8fa}
main{max-width:1200px;margin:0 auto}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 10px}
h3{font-size:15px;margin:16px 0 6px}
.meta{color:var(--muted);margin:0 0 18px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin-bottom:22px}
.card{flex:1 1 150px;background:#fff;border:1px solid var(--line);border-left:6px solid var(--muted);border-radius:8px;padding:12px 16px}
.card .n{font-size:32px;font-weight:700;line-height:1.1}
.card.in_sync{border-left-color:var(--ok)} .card.in_sync .n{color:var(--ok)}
.card.drift{border-left-color:var(--drift)} .card.drift .n{color:var(--drift)}
.card.error{border-left-color:var(--err)} .card.error .n{color:var(--err)}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:8px 12px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-size:13px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tr:last-child td{border-bottom:0}
tr.drift td:first-child{box-shadow:inset 4px 0 var(--drift)}
tr.error td:first-child{box-shadow:inset 4px 0 var(--err)}
tr.in_sync td:first-child{box-shadow:inset 4px 0 var(--ok)}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:700;font-size:13px;white-space:nowrap}
.badge.in_sync{color:var(--ok);background:var(--ok-bg)}
.badge.drift{color:var(--drift);background:var(--drift-bg)}
.badge.error{color:var(--err);background:var(--err-bg)}
.host{font-weight:600;overflow-wrap:anywhere}
td.host{min-width:8em}
a{color:#0969da}
ul.changes{margin:0;padding:0;list-style:none;font-family:ui-monospace,"DejaVu Sans Mono",Consolas,monospace;font-size:13px}
ul.changes li{padding:1px 0;word-break:break-word}
.add{color:var(--add-ink)} .del{color:var(--del-ink)} .mod{color:var(--drift)}
section.hostdetail{background:#fff;border:1px solid var(--line);border-radius:8px;padding:4px 20px 16px;margin-top:18px}
section.hostdetail h2{display:flex;gap:12px;align-items:center;margin-top:14px}
pre{margin:0;padding:10px 12px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;overflow-x:auto;
font:12.5px/1.45 ui-monospace,"DejaVu Sans Mono",Consolas,monospace;white-space:pre}
pre.diff span{display:block}
pre.diff .add{background:var(--add)} pre.diff .del{background:var(--del)} pre.diff .hunk{color:#8250df}
pre.diff .file{color:var(--muted);font-weight:700}
.error-text{color:var(--err);white-space:pre-wrap;overflow-wrap:anywhere}
.legend{color:var(--muted);font-size:13px;margin:8px 0 0}
.warn{color:#7d4e00}
.muted{color:var(--muted)}
.badge.emergency{color:var(--emg);background:var(--emg-bg);margin-left:6px}
.card.emergency_block{border-left-color:var(--emg)} .card.emergency_block .n{color:var(--emg)}
.emergency{color:var(--emg)}
section.run,section.baseline{background:#fff;border:1px solid var(--line);border-radius:8px;padding:4px 20px 14px;margin:18px 0}
section.run h2,section.baseline h2{margin-top:12px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}
dl.facts dt{color:var(--muted)} dl.facts dd{margin:0;overflow-wrap:anywhere}
table.rules{margin-top:6px} table.rules td{font-size:13.5px}
code{font:12.5px ui-monospace,"DejaVu Sans Mono",Consolas,monospace}
"""


def _e(text: Any) -> str:
    """Escaped text for HTML (quotes too: some of it lands in attributes)."""
    return html.escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def _change_class(line: str) -> str:
    """+ added, - removed, ~ changed (netdiag.summary's marks); its `assigned policy: a -> b` is a change."""
    if line.startswith("assigned policy:"):
        return "mod"
    return {"+": "add", "-": "del", "~": "mod"}.get(line[:1], "")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _os_text(record: Mapping[str, Any]) -> str:
    os_info = record.get("os") or {}
    return os_info.get("caption") or os_info.get("generation") or ""


def _first_lines(record: Mapping[str, Any], limit: int = 4) -> str:
    """The table's "what differs" cell; warnings show here too (an in-sync host has no detail section,
    yet a warning such as a domain policy overriding the local store matters most there)."""
    warnings = "".join('<div class="warn">warning: %s</div>' % _e(_shorten(w, 200))
                       for w in record.get("warnings") or ())
    if record["status"] == "error":
        return '<span class="error-text">%s</span>%s' % (
            _e(_shorten((record.get("errors") or ["error"])[0], 160)), warnings)
    extra = ""
    if record.get("emergency_block"):
        # the row names the block's rules and policies; its detail section lists every object
        main = [e for e in record.get("emergency") or () if e.startswith(("rule ", "policy "))]
        extra += '<div class="emergency">emergency block in place (not drift): %s</div>' % _e(
            _shorten("; ".join(main or record.get("emergency") or ()), 300))
    if record.get("other_policies"):
        extra += '<div class="muted">other policies (allowed): %s</div>' % _e(
            _shorten(", ".join(record["other_policies"]), 300))
    warnings = extra + warnings
    if record["status"] == "in_sync":
        return '<span class="muted">matches the baseline</span>' + warnings
    lines = list(record.get("summary") or ())
    items = ['<li class="%s">%s</li>' % (_change_class(line), _e(line)) for line in lines[:limit]]
    if len(lines) > limit:
        items.append('<li class="muted">… %d more</li>' % (len(lines) - limit))
    return '<ul class="changes">%s</ul>%s' % ("".join(items), warnings)


def _assigned_html(record: Mapping[str, Any]) -> str:
    assigned = record.get("assigned")
    if assigned is None:
        return '<span class="muted">unknown</span>'
    return _e(assigned) if assigned else '<span class="muted">none</span>'


def _diff_html(lines: List[str]) -> str:
    """Unified diff lines, each a block span coloured by its kind (+ added, - removed)."""
    spans = []
    for line in lines:
        if line.startswith(("+++", "---")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        else:
            css = _change_class(line) if line[:1] in "+-" else "ctx"
        spans.append('<span class="%s">%s</span>' % (css, _e(line) or " "))
    return '<pre class="diff">%s</pre>' % "".join(spans)


def _detail(anchor: str, record: Mapping[str, Any]) -> str:
    status = record["status"]
    out = ['<section class="hostdetail" id="%s">' % anchor,
           '<h2><span class="host">%s</span> %s</h2>' % (_e(record["host"]), _badges(record))]
    facts = [part for part in (_os_text(record), record.get("dialect") and "writes with " + record["dialect"],
                               record.get("baseline") and "baseline: " + record["baseline"]) if part]
    if facts:
        out.append('<p class="meta">%s</p>' % _e(" · ".join(facts)))
    if record.get("read_at"):
        out.append('<p class="meta">read at %s · %s</p>'
                   % (_e(record["read_at"]), _e(record.get("read_at_source") or "")))
    for error in record.get("errors") or ():
        out.append('<p class="error-text">%s</p>' % _e(error))
    if record.get("emergency_block"):
        out.append("<h3>Emergency block in place (not drift; enforce leaves it alone)</h3>")
        out.append('<ul class="changes emergency">%s</ul>' % "".join(
            "<li>%s</li>" % _e(item) for item in record.get("emergency") or ()))
    if record.get("other_policies"):
        out.append("<h3>Other policies (allowed, not drift)</h3>")
        out.append('<ul class="changes">%s</ul>' % "".join(
            "<li>%s</li>" % _e(name) for name in record["other_policies"]))
    for note in record.get("notes") or ():
        out.append('<p class="muted">%s</p>' % _e(note))
    for warning in record.get("warnings") or ():
        out.append('<p class="warn">warning: %s</p>' % _e(warning))
    if record.get("summary"):
        out.append("<h3>Differences from the baseline</h3>")
        out.append('<ul class="changes">%s</ul>' % "".join(
            '<li class="%s">%s</li>' % (_change_class(line), _e(line)) for line in record["summary"]))
    if status == "drift":
        lines = unified_diff(record)
        out.append("<h3>netdiag view: now (−) and with the baseline (+)</h3>")
        if record.get("emergency_block"):
            out.append('<p class="emergency">The emergency block\'s filters show as removed (−) in this view; '
                       "enforce leaves them in place.</p>")
        out.append(_diff_html(lines) if lines else
                   '<p class="muted">netdiag shows no difference: the differences are in settings its '
                   'filter layout does not show (see above).</p>')
    if record.get("commands"):
        out.append("<h3>Commands that would bring the host in line</h3>")
        out.append("<pre>%s</pre>" % _e("\n".join(record["commands"])))
    out.append("</section>")
    return "\n".join(out)


def _badges(record: Mapping[str, Any]) -> str:
    status = record["status"]
    out = '<span class="badge %s">%s</span>' % (status, BADGES[status])
    if record.get("emergency_block"):
        out += '<span class="badge emergency">%s</span>' % EMERGENCY_BADGE
    return out


def _facts(pairs) -> str:
    return '<dl class="facts">%s</dl>' % "".join("<dt>%s</dt><dd>%s</dd>" % (_e(k), v) for k, v in pairs)


def _run_html(report: Mapping[str, Any]) -> str:
    """Who ran the check, where, when, with which collection: what an auditor asks first."""
    run = report.get("run") or {}
    collection = run.get("collection") or {}
    pairs = [("generated", _e(report["generated"]))]
    if run:
        pairs += [("controller", _e(run.get("controller") or "unknown")), ("user", _e(run.get("user") or "unknown")),
                  ("collection", _e("%s %s" % (collection.get("name") or "winsec.ipsec",
                                               collection.get("version") or "unknown"))
                   + (' <span class="muted">(from %s)</span>' % _e(collection["source"])
                      if collection.get("source") else ""))]
        pairs += [(key.replace("_", " "), _e(value)) for key, value in run.items()
                  if key not in ("controller", "user", "collection")]
    else:
        pairs.append(("controller", '<span class="muted">not recorded</span>'))
    return '<section class="run" id="run"><h2>Run</h2>%s</section>' % _facts(pairs)


def _rule_filters(rule: Mapping[str, Any]) -> str:
    filters = rule.get("filters") or ()
    return "<br>".join("<code>%s</code>" % _e(f if isinstance(f, str) else json.dumps(f, sort_keys=True))
                       for f in filters)


def _definition_html(entry: Mapping[str, Any]) -> str:
    """One declared baseline in full: its settings and every rule as given."""
    definition = entry["definition"]
    settings = [(key.replace("_", " "), _e(json.dumps(value) if not isinstance(value, str) else value))
                for key, value in definition.items() if key not in ("name", "rules")]
    settings += [("digest", "<code>%s</code>" % _e(entry["digest"])),
                 ("hosts", _e(", ".join(entry.get("hosts") or ())))]
    rows = []
    for rule in definition.get("rules") or ():
        rule = rule if isinstance(rule, Mapping) else {"name": str(rule)}
        rest = {k: v for k, v in rule.items() if k not in ("name", "filters", "action") and v not in (None, "", [])}
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            _e(rule.get("name") or ""), _e(rule.get("action") or "block"), _rule_filters(rule),
            _e(json.dumps(rest, sort_keys=True)) if rest else ""))
    table = ('<table class="rules"><thead><tr><th>Rule</th><th>Action</th><th>Filters</th><th>Other settings</th>'
             "</tr></thead><tbody>%s</tbody></table>" % "".join(rows)) if rows else '<p class="muted">no rules</p>'
    return ('<section class="baseline" data-digest="%s"><h2>Baseline <span class="host">%s</span></h2>%s%s</section>'
            % (_e(entry["digest"]), _e(definition.get("name") or ""), _facts(settings), table))


def to_html(report: Mapping[str, Any], title: str = "IPsec baseline drift report") -> str:
    """One self-contained page: the run and the baseline, counts, a row per host with its badge, then
    each problem host's detail (and each host's emergency block)."""
    counts = report["counts"]
    records = list(report["hosts"].values())
    order = sorted(range(len(records)), key=lambda i: STATUSES.index(records[i]["status"]))
    anchors = {i: "host-%d" % (i + 1) for i in range(len(records))}
    baselines = report.get("baselines") or []
    if counts["drift"] or counts["error"]:
        verdict = "%d of %d hosts differ from the baseline or could not be checked" % (
            counts["drift"] + counts["error"], counts["hosts"])
    else:
        verdict = "all %d hosts match the baseline" % counts["hosts"]
    if counts.get("emergency_block"):
        verdict += "; %d with an emergency block in place" % counts["emergency_block"]
    if counts.get("dynamic_unknown"):
        verdict += "; %d whose dynamic rules could not be read (unknown)" % counts["dynamic_unknown"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title>" % _e(title), "<style>%s</style></head><body><main>" % _CSS,
           "<h1>%s</h1>" % _e(title),
           '<p class="meta">Baseline %s · generated %s · <strong>%s</strong></p>' % (
               (", ".join("<strong>%s</strong>" % _e(b) for b in baselines) or "(none recorded)")
               + (' (<a href="#baselines">full content</a>)' if report.get("baseline_definitions") else ""),
               _e(report["generated"]), _e(verdict)),
           _run_html(report), '<div class="cards">']
    for key, label in (("hosts", "hosts checked"), ("in_sync", "in sync"), ("drift", "drifting"),
                       ("error", "errors"), ("emergency_block", EMERGENCY_BADGE)):
        out.append('<div class="card %s"><div class="n">%d</div>%s</div>' % (key, counts.get(key, 0), label))
    out.append("</div>")
    out.append('<table id="hosts"><thead><tr><th>Host</th><th>Status</th><th>Windows</th><th>Assigned now</th>'
               "<th>Read at</th><th>What differs</th></tr></thead><tbody>")
    detailed = [i for i in order if records[i]["status"] != "in_sync" or records[i].get("emergency_block")]
    for i in order:
        record = records[i]
        status = record["status"]
        name = _e(record["host"])
        if i in detailed:
            name = '<a href="#%s">%s</a>' % (anchors[i], name)
        read_at = record.get("read_at") or ""
        out.append('<tr class="%s" data-host="%s" data-status="%s" data-emergency="%s"><td class="host">%s</td>'
                   '<td>%s</td><td>%s</td><td>%s</td><td title="%s">%s</td><td>%s</td></tr>' % (
                       status, _e(record["host"]), status, "yes" if record.get("emergency_block") else "no", name,
                       _badges(record), _e(_os_text(record)), _assigned_html(record),
                       _e(record.get("read_at_source") or ""),
                       _e(read_at) + ("" if not read_at or record.get("read_at_source", "").startswith("host")
                                      else ' <span class="muted">*</span>'),
                       _first_lines(record)))
    out.append("</tbody></table>")
    out.append('<p class="legend"><span class="add">+ missing on the host</span> (the baseline adds it) · '
               '<span class="del">− not in the baseline</span> (it would be removed) · '
               '<span class="mod">~ differs</span> (it would be changed) · '
               '<span class="emergency">emergency block in place</span>: objects named "winsec-emergency …" '
               "(module winsec.ipsec.ipsec_block), not drift · "
               "* read time not returned by the host: when the controller received the result</p>")
    for i in detailed:
        out.append(_detail(anchors[i], records[i]))
    if report.get("baseline_definitions"):
        out.append('<div id="baselines">%s</div>' % "".join(
            _definition_html(entry) for entry in report["baseline_definitions"]))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


__all__ = ["REPORT_FORMAT", "STATUSES", "NO_RESULT", "KEEP", "REMOVE", "ALLOW", "DRIFT", "is_emergency_name",
           "host_record", "emergency_objects", "without_emergency", "baseline_definition", "definition_digest",
           "enforce_steps", "differences", "build_report", "run_info", "to_json", "unified_diff", "problem_text",
           "to_junit", "to_html"]
