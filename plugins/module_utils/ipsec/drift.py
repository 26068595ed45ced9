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
import html
import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from .netdiag import summary as netdiag_summary
from .report import state_from_dict

REPORT_FORMAT = 1
STATUSES = ("drift", "error", "in_sync")          # also the order problems are shown in
NO_RESULT = ("no check result: the host was not reached or failed before the check ran "
             "(see the ansible-playbook output)")
# XML 1.0 Char production: tab, newline, carriage return and everything from U+0020 but surrogates
# and U+FFFE/U+FFFF. Control characters from a host would make the JUnit file unreadable.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --------------------------------------------------------------------------------------------
# Records: one host's check result, normalised
# --------------------------------------------------------------------------------------------

def host_record(result: Optional[Mapping[str, Any]], host: str, baseline: str = "") -> Dict[str, Any]:
    """One host's drift record from its check-mode task result (None: the check never ran).

    status is `in_sync`, `drift` or `error`; in_sync is true only when the host is known to match.
    """
    record: Dict[str, Any] = {
        "host": str(host), "baseline": str(baseline or ""), "status": "error", "in_sync": False,
        "summary": [], "diff": {"before": "", "after": ""}, "commands": [], "errors": [],
        "warnings": [], "os": {}, "dialect": "", "assigned": None,
    }
    if not isinstance(result, Mapping) or not result:
        record["errors"] = [NO_RESULT]
        return record
    record["warnings"] = [str(w) for w in result.get("warnings") or ()]
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
        return record
    if result.get("skipped"):
        record["errors"] = ["skipped: the check did not run on this host (%s)"
                            % (result.get("skip_reason") or "condition false")]
        return record
    if "changed" not in result or not isinstance(before, Mapping):
        record["errors"] = ["not a check result of winsec.ipsec.ipsec_policy (no changed/before)"]
        return record
    if not result["changed"]:
        record.update(status="in_sync", in_sync=True)
        return record
    diff = result.get("diff") or {}
    record.update(status="drift",
                  diff={"before": str(diff.get("before") or ""), "after": str(diff.get("after") or "")},
                  summary=differences(before, result.get("after")))
    return record


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
                 generated: Optional[str] = None) -> Dict[str, Any]:
    """Records (host_record output) -> the report: counts and one entry per host, by name.

    `hosts` are the hosts the check was meant to cover; one without a record is an error (it was
    unreachable or failed before recording). `generated` is an ISO time (default: now, UTC).
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
    counts = {"hosts": len(ordered)}
    counts.update({status: sum(1 for r in ordered.values() if r["status"] == status)
                   for status in ("in_sync", "drift", "error")})
    return {
        "format": REPORT_FORMAT,
        "generated": generated or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "baselines": sorted({r.get("baseline") or "" for r in ordered.values()} - {""}),
        "counts": counts,
        "hosts": ordered,
    }


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
        if record.get("warnings"):
            ET.SubElement(case, "system-out").text = _xml("\n".join("warning: " + w for w in record["warnings"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _unreachable(record: Mapping[str, Any]) -> bool:
    return any(str(e).startswith("unreachable") for e in record.get("errors") or ())


# --------------------------------------------------------------------------------------------
# HTML: one self-contained page
# --------------------------------------------------------------------------------------------

BADGES = {"in_sync": "in sync", "drift": "drift", "error": "error"}

_CSS = """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--drift:#9a6700;--drift-bg:#fff1b8;--err:#b42318;--err-bg:#fee4e2;
--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--add:#e6ffec;--add-ink:#116329;--del:#ffebe9;--del-ink:#a40e26}
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
           '<h2><span class="host">%s</span> <span class="badge %s">%s</span></h2>'
           % (_e(record["host"]), status, BADGES[status])]
    facts = [part for part in (_os_text(record), record.get("dialect") and "writes with " + record["dialect"],
                               record.get("baseline") and "baseline: " + record["baseline"]) if part]
    if facts:
        out.append('<p class="meta">%s</p>' % _e(" · ".join(facts)))
    for error in record.get("errors") or ():
        out.append('<p class="error-text">%s</p>' % _e(error))
    for warning in record.get("warnings") or ():
        out.append('<p class="warn">warning: %s</p>' % _e(warning))
    if record.get("summary"):
        out.append("<h3>Differences from the baseline</h3>")
        out.append('<ul class="changes">%s</ul>' % "".join(
            '<li class="%s">%s</li>' % (_change_class(line), _e(line)) for line in record["summary"]))
    if status == "drift":
        lines = unified_diff(record)
        out.append("<h3>netdiag view: now (−) and with the baseline (+)</h3>")
        out.append(_diff_html(lines) if lines else
                   '<p class="muted">netdiag shows no difference: the differences are in settings its '
                   'filter layout does not show (see above).</p>')
    if record.get("commands"):
        out.append("<h3>Commands that would bring the host in line</h3>")
        out.append("<pre>%s</pre>" % _e("\n".join(record["commands"])))
    out.append("</section>")
    return "\n".join(out)


def to_html(report: Mapping[str, Any], title: str = "IPsec baseline drift report") -> str:
    """One self-contained page: counts, a row per host with its badge, then each problem host's detail."""
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
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title>" % _e(title), "<style>%s</style></head><body><main>" % _CSS,
           "<h1>%s</h1>" % _e(title),
           '<p class="meta">Baseline %s · generated %s · <strong>%s</strong></p>' % (
               ", ".join("<strong>%s</strong>" % _e(b) for b in baselines) or "(none recorded)",
               _e(report["generated"]), _e(verdict)),
           '<div class="cards">']
    for key, label in (("hosts", "hosts checked"), ("in_sync", "in sync"), ("drift", "drifting"),
                       ("error", "errors")):
        out.append('<div class="card %s"><div class="n">%d</div>%s</div>' % (key, counts[key], label))
    out.append("</div>")
    out.append('<table id="hosts"><thead><tr><th>Host</th><th>Status</th><th>Windows</th><th>Assigned now</th>'
               "<th>What differs</th></tr></thead><tbody>")
    for i in order:
        record = records[i]
        status = record["status"]
        name = _e(record["host"])
        if status != "in_sync":
            name = '<a href="#%s">%s</a>' % (anchors[i], name)
        out.append('<tr class="%s" data-host="%s" data-status="%s"><td class="host">%s</td>'
                   '<td><span class="badge %s">%s</span></td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                       status, _e(record["host"]), status, name, status, BADGES[status],
                       _e(_os_text(record)), _assigned_html(record), _first_lines(record)))
    out.append("</tbody></table>")
    out.append('<p class="legend"><span class="add">+ missing on the host</span> (the baseline adds it) · '
               '<span class="del">− not in the baseline</span> (it would be removed) · '
               '<span class="mod">~ differs</span> (it would be changed)</p>')
    for i in order:
        if records[i]["status"] != "in_sync":
            out.append(_detail(anchors[i], records[i]))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


__all__ = ["REPORT_FORMAT", "STATUSES", "NO_RESULT", "host_record", "differences", "build_report",
           "to_json", "unified_diff", "problem_text", "to_junit", "to_html"]
