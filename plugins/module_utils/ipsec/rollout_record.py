# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The rollout record of an emergency block (playbooks/emergency_block.yml, unblock.yml).

Input: each targeted host's registered `winsec.ipsec.ipsec_block` result, or nothing for a host the
rollout never reached. Output: one record (JSON, for a ticket) and one self-contained HTML page (for
the person handling the incident) that say per host: the result, when the host was read and
written, what the run added or removed, what stays in force (the host's own assigned policy, the
block's own policy, a domain policy) and why a host failed. The same code decides which hosts
failed (host_failure) for the wave stop (filter worm_block_failures) and for the summary, so they cannot disagree.

Everything shown comes from hosts or from the user (policy and host names, messages), so the HTML
escapes every string. Standard library only.
"""
from __future__ import annotations

import datetime
import functools
import html
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .model import HostState
from .netdiag import summary as netdiag_summary
from .report import message_text, state_from_dict

RECORD_FORMAT = 1
STATUSES = ("failed", "not_reached", "done")        # also the order the page lists hosts in
NOT_REACHED = "not reached: the rollout stopped after a failed wave"
REASON_LIMIT = 300
# XML 1.0 / HTML text: no C0 controls but tab and newline (a host's text could carry them).
_CONTROL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _one_line(text: Any, limit: int = REASON_LIMIT) -> str:
    """A message on one line (its non-empty lines joined by ' / '), at most `limit` characters."""
    lines = [line.strip() for line in str(text or "").splitlines()]
    joined = " / ".join(line for line in lines if line)
    joined = re.sub(r"^Task failed: ", "", joined)
    return joined if len(joined) <= limit else joined[:limit - 3].rstrip() + "..."


def host_failure(result: Any) -> Optional[str]:
    """Why this host counts as failed, on one line; None when its block ran and was verified.

    Failed: no result, unreachable, a failed task, a skipped task, or a result that is not verified
    or names problems (what the host enforces after the run is not what was asked)."""
    if not isinstance(result, Mapping) or not result:
        return "no result: the task did not run on this host"
    msg = _one_line(result.get("msg")) or "no reason given"
    if result.get("unreachable"):
        return "unreachable: " + msg
    problems = [_one_line(p) for p in result.get("problems") or () if str(p).strip()]
    if result.get("failed"):
        return msg if not problems or msg in problems else "%s (%s)" % (msg, "; ".join(problems))
    if result.get("skipped"):
        return "skipped: %s" % _one_line(result.get("skip_reason") or "condition false")
    if problems:
        return _one_line("; ".join(problems))
    if not result.get("verified"):
        return "not verified: the result does not say the host enforces the block (no `verified`)"
    return None


def _fact(result: Mapping[str, Any]) -> Mapping[str, Any]:
    facts = result.get("ansible_facts") or {}
    state = facts.get("winsec_ipsec_state") if isinstance(facts, Mapping) else None
    return state if isinstance(state, Mapping) else {}


@functools.lru_cache(maxsize=256)
def _state(text: str) -> HostState:
    """A state from its JSON text: the hosts of an estate often share a state, converted once."""
    return state_from_dict(json.loads(text))


def _changes(result: Mapping[str, Any], check: bool) -> List[str]:
    """`+ rule ...`, `- dynamic rule ...`, `assigned policy: a -> b` between the state the task read
    first and the state it read back (check mode: the state it predicts)."""
    before = result.get("before")
    after = result.get("planned") if check else result.get("after")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    try:
        return netdiag_summary(_state(json.dumps(before, sort_keys=True)), _state(json.dumps(after, sort_keys=True)))
    except (ValueError, TypeError, KeyError) as err:
        return ["(the states could not be compared: %s; see the commands)" % err]


def _in_force(result: Mapping[str, Any], present: bool) -> List[str]:
    """What stays (or becomes) in force on the host, from the module's placement and read-back."""
    lines = []
    placement = result.get("placement") if isinstance(result.get("placement"), Mapping) else {}
    static, policy = placement.get("static"), placement.get("policy") or ""
    if static == "assigned_policy":
        lines.append("the host's assigned policy %r stays assigned and in force; the block's rules %s it"
                     % (policy, "are in" if present else "were taken out of"))
    elif static == "own_policy":
        lines.append("no other policy was assigned: the block's own policy %r %s"
                     % (policy, "is assigned and in force" if present else "was unassigned and deleted"))
    elif placement.get("reason"):
        lines.append(_one_line(placement["reason"], 600))
    dynamic = placement.get("dynamic")
    if present and isinstance(dynamic, int) and not isinstance(dynamic, bool):
        lines.append("%d dynamic filter%s of the block in force now (volatile: gone when PolicyAgent restarts "
                     "or the host reboots, unless reapplied at startup)" % (dynamic, "" if dynamic == 1 else "s"))
    after = result.get("after")
    if isinstance(after, Mapping):
        domain = after.get("domain")
        if isinstance(domain, Mapping) and domain.get("name"):
            lines.append("domain policy %r is in force (Group Policy overrides the local store)" % domain["name"])
        if static not in ("assigned_policy", "own_policy"):
            assigned = after.get("assigned") or ""
            lines.append("assigned local policy: %s" % (repr(assigned) if assigned else "none"))
    return lines


def host_record(host: str, result: Any, present: bool = True, check: bool = False) -> Dict[str, Any]:
    """One host's entry: status done | failed | not_reached, its summary line and the details."""
    done = "blocked" if present else "unblocked"
    record: Dict[str, Any] = {
        "host": str(host), "status": "not_reached", "line": "NOT %s, %s" % (done, NOT_REACHED),
        "reason": NOT_REACHED, "changed": False, "read_at": None, "written_at": None, "changes": [],
        "in_force": [], "problems": [], "warnings": [], "commands": [], "summary": "", "dialect": "",
        "placement": {},
    }
    if not isinstance(result, Mapping) or not result:
        return record
    fact = _fact(result)
    record.update(
        changed=bool(result.get("changed")),
        read_at=result.get("read_at") or fact.get("read_at"),
        summary=_one_line(result.get("summary"), 600),
        problems=[_one_line(p, 600) for p in result.get("problems") or ()],
        warnings=[_one_line(message_text(w), 600) for w in result.get("warnings") or ()],
        commands=[str(c) for c in result.get("commands") or ()],
        dialect=str(fact.get("dialect") or ""),
        placement={str(k): v for k, v in (result.get("placement") or {}).items()}
        if isinstance(result.get("placement"), Mapping) else {},
    )
    # A write script reads the host back in the same WinRM command (one command on the host), so
    # a change was written when that read-back was taken.
    if record["changed"] and not check:
        record["written_at"] = result.get("written_at") or record["read_at"]
    reason = host_failure(result)
    if reason is not None:
        record.update(status="failed", reason=reason, line="NOT %s, failed: %s" % (done, reason))
    else:
        # ipsec_block's summary starts with the verdict ("blocked and verified; static: ...")
        line = record["summary"] or "%s%s and verified" % ("check mode, would be " if check else "", done)
        record.update(status="done", reason="", line=line)
    if not result.get("unreachable"):
        record["changes"] = _changes(result, check)
        record["in_force"] = _in_force(result, present)
    return record


def build(hosts: Sequence[str], results: Mapping[str, Any], present: bool = True, check: bool = False,
          about: Optional[Mapping[str, Any]] = None, generated: Optional[str] = None) -> Dict[str, Any]:
    """The record of one run over `hosts` (listed in natural order: win2 before win10); `results` by host name."""
    entries = {str(h): host_record(str(h), results.get(h), present, check) for h in hosts}
    return assemble(entries, present, check, about, generated)


def assemble(entries: Mapping[str, Mapping[str, Any]], present: bool = True, check: bool = False,
             about: Optional[Mapping[str, Any]] = None, generated: Optional[str] = None) -> Dict[str, Any]:
    """The record around host entries (host_record output, by host name): headline, counts, failed hosts.
    One run (build) and a merge of sliced runs (merge) both end here, so they cannot word it differently."""
    done = "blocked" if present else "unblocked"
    entries = {h: dict(entries[h]) for h in sorted(entries, key=_natural)}
    counts = {"hosts": len(entries)}
    counts.update({s: sum(1 for e in entries.values() if e["status"] == s) for s in STATUSES})
    headline = "%s%d %s: %d %s and verified, %d failed, %d not reached" % (
        "check mode, nothing written: " if check else "", counts["hosts"],
        "host" if counts["hosts"] == 1 else "hosts", counts["done"], done, counts["failed"],
        counts["not_reached"])
    return {
        "format": RECORD_FORMAT,
        "generated": generated or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "action": "block" if present else "unblock",
        "check_mode": bool(check),
        "about": {str(k): v for k, v in (about or {}).items()},
        "headline": headline,
        "counts": counts,
        "failed": [h for h, e in entries.items() if e["status"] == "failed"],
        "hosts": entries,
    }


# How a run was staged: a canary job and the sliced job after it legitimately differ in these.
STAGING = ("waves", "max_fail_percentage")


def merge(runs: Sequence[Any], hosts: Sequence[str] = (), generated: Optional[str] = None) -> Dict[str, Any]:
    """The records of runs over disjoint parts of an estate (AWX job slices, a canary job) -> the record
    one run over all of them writes. The host entries are taken as the runs made them (host_record);
    a host in `hosts` that no run covered is not reached. Raises ValueError, naming the run, when the
    runs are not parts of one rollout: another action or check mode, other ports or block name, or a
    host in two runs (a canary job's host must be left out of the sliced job: --limit 'all:!canary')."""
    if not isinstance(runs, (list, tuple)) or not runs:
        raise ValueError("runs: expected a non-empty list of rollout records (the `record` of winsec.ipsec."
                         "rollout_record, published by set_stats), got %r" % (type(runs).__name__,))
    for index, run in enumerate(runs):
        if not isinstance(run, Mapping) or run.get("format") != RECORD_FORMAT \
                or run.get("action") not in ("block", "unblock") or not isinstance(run.get("hosts"), Mapping):
            raise ValueError("runs[%d]: not a rollout record of format %d (keys format, action, hosts expected)"
                             % (index, RECORD_FORMAT))
    first = runs[0]
    about: Dict[str, Any] = {}
    for index, run in enumerate(runs[1:], 1):
        for key in ("action", "check_mode"):
            if run.get(key) != first.get(key):
                raise ValueError("runs[%d]: %s is %r, runs[0] says %r: not parts of one rollout; merge them separately"
                                 % (index, key, run.get(key), first.get(key)))
    for key in dict.fromkeys(k for run in runs for k in run.get("about") or {}):
        values = []
        for run in runs:
            value = (run.get("about") or {}).get(key)
            if value not in values:
                values.append(value)
        if len(values) > 1 and key not in STAGING:
            raise ValueError("runs: about.%s differs between the runs (%s): not parts of one rollout; "
                             "merge them separately" % (key, ", ".join(json.dumps(v, default=str) for v in values)))
        about[key] = values[0] if len(values) == 1 else values
    entries: Dict[str, Any] = {}
    owner: Dict[str, int] = {}
    for index, run in enumerate(runs):
        for name, entry in run["hosts"].items():
            if name in owner:
                raise ValueError("runs[%d] and runs[%d] both hold host %s: a host belongs to one slice; leave the "
                                 "canary host out of the sliced job (--limit 'all:!%s')" % (owner[name], index, name, name))
            if not isinstance(entry, Mapping) or entry.get("status") not in STATUSES or entry.get("host") != name:
                raise ValueError("runs[%d].hosts.%s: not a host entry of that host (host, status done, failed or "
                                 "not_reached)" % (index, name))
            owner[name] = index
            entries[str(name)] = dict(host_record(str(name), None), **entry)
    present, check = first["action"] == "block", bool(first.get("check_mode"))
    for name in hosts:
        if str(name) not in entries:
            entries[str(name)] = host_record(str(name), None, present, check)
    record = assemble(entries, present, check, about, generated)
    # Which run (its set_stats key: the AWX job id) had which hosts: where to read a host's job output.
    record["merged_from"] = [{"published_as": run.get("published_as"), "generated": run.get("generated"),
                              "headline": run.get("headline"), "hosts": list(run["hosts"])} for run in runs]
    return record


def _natural(name: Any):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
            for part in re.split(r"(\d+)", str(name)) if part]


def lines(record: Mapping[str, Any]) -> List[str]:
    """The console summary: the headline, then `host: line` per host."""
    return [record["headline"]] + ["%s: %s" % (h, e["line"]) for h, e in record["hosts"].items()]


def to_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n"


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

_CSS = """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--err:#b42318;--err-bg:#fee4e2;--skip:#6e7781;--skip-bg:#eaeef2;
--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--add:#116329;--del:#a40e26;--mod:#9a6700}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:#f6f8fa}
main{max-width:1200px;margin:0 auto}
h1{font-size:24px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 10px} h3{font-size:15px;margin:14px 0 6px}
.meta{color:var(--muted);margin:0 0 16px}
.headline{font-size:17px;font-weight:600;margin:0 0 16px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin-bottom:22px}
.card{flex:1 1 150px;background:#fff;border:1px solid var(--line);border-left:6px solid var(--muted);border-radius:8px;padding:12px 16px}
.card .n{font-size:32px;font-weight:700;line-height:1.1}
.card.done{border-left-color:var(--ok)} .card.done .n{color:var(--ok)}
.card.failed{border-left-color:var(--err)} .card.failed .n{color:var(--err)}
.card.not_reached{border-left-color:var(--skip)} .card.not_reached .n{color:var(--skip)}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line)}
th,td{text-align:left;padding:8px 12px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-size:13px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tr.done td:first-child{box-shadow:inset 4px 0 var(--ok)}
tr.failed td:first-child{box-shadow:inset 4px 0 var(--err)}
tr.not_reached td:first-child{box-shadow:inset 4px 0 var(--skip)}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:700;font-size:13px;white-space:nowrap}
.badge.done{color:var(--ok);background:var(--ok-bg)} .badge.failed{color:var(--err);background:var(--err-bg)}
.badge.not_reached{color:var(--skip);background:var(--skip-bg)}
.host{font-weight:600;overflow-wrap:anywhere} td.host{white-space:nowrap}
.time{white-space:nowrap;font-variant-numeric:tabular-nums}
a{color:#0969da}
ul{margin:0;padding-left:18px} ul.changes{padding:0;list-style:none;font:13px/1.5 ui-monospace,"DejaVu Sans Mono",Consolas,monospace}
ul.changes li{word-break:break-word}
.add{color:var(--add)} .del{color:var(--del)} .mod{color:var(--mod)}
section.hostdetail{background:#fff;border:1px solid var(--line);border-radius:8px;padding:4px 20px 16px;margin-top:18px}
section.hostdetail h2{display:flex;gap:12px;align-items:center;margin-top:14px}
pre{margin:0;padding:10px 12px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;overflow-x:auto;
font:12.5px/1.45 ui-monospace,"DejaVu Sans Mono",Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
.reason{color:var(--err);white-space:pre-wrap;overflow-wrap:anywhere;font-weight:600}
.warn{color:#7d4e00} .muted{color:var(--muted)}
dl.about{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0 0 18px}
dl.about dt{color:var(--muted)} dl.about dd{margin:0;font-family:ui-monospace,"DejaVu Sans Mono",Consolas,monospace;font-size:13px;overflow-wrap:anywhere}
"""
BADGES = {"done": "done", "failed": "FAILED", "not_reached": "not reached"}
CARDS = {"done": "done and verified", "failed": "failed", "not_reached": "not reached"}


def _e(text: Any) -> str:
    """Escaped text for HTML (quotes too: some of it lands in attributes)."""
    return html.escape(_CONTROL.sub("\ufffd", str(text)), quote=True)


def _change_class(line: str) -> str:
    if line.startswith("assigned policy:"):
        return "mod"
    return {"+": "add", "-": "del", "~": "mod"}.get(line[:1], "")


def _time(value: Any) -> str:
    return '<span class="time">%s</span>' % _e(value) if value else '<span class="muted">—</span>'


def _list(items: Sequence[str], css: str = "") -> str:
    if not items:
        return '<span class="muted">—</span>'
    return '<ul%s>%s</ul>' % (' class="%s"' % css if css else "",
                              "".join('<li class="%s">%s</li>' % (_change_class(i) if css == "changes" else "", _e(i))
                                      for i in items))


def _detail(anchor: str, entry: Mapping[str, Any], check: bool) -> str:
    status = entry["status"]
    out = ['<section class="hostdetail" id="%s" data-host="%s">' % (anchor, _e(entry["host"])),
           '<h2><span class="host">%s</span> <span class="badge %s">%s</span></h2>'
           % (_e(entry["host"]), status, BADGES[status])]
    if entry.get("reason"):
        out.append('<p class="reason">%s</p>' % _e(entry["reason"]))
    elif entry.get("summary"):
        out.append("<p>%s</p>" % _e(entry["summary"]))
    out.append('<p class="meta">read back at %s · written at %s%s</p>' % (
        _time(entry.get("read_at")), _time(entry.get("written_at")),
        " · writes with " + _e(entry["dialect"]) if entry.get("dialect") else ""))
    for warning in entry.get("warnings") or ():
        out.append('<p class="warn">warning: %s</p>' % _e(warning))
    if entry.get("in_force"):
        out.append("<h3>In force on the host</h3>" + _list(entry["in_force"]))
    if entry.get("changes"):
        out.append("<h3>%s</h3>" % ("What the run would change" if check else "What the run changed")
                   + _list(entry["changes"], "changes"))
    if entry.get("problems"):
        out.append("<h3>Problems</h3>" + _list(entry["problems"]))
    if entry.get("commands"):
        out.append("<h3>Commands (as netsh or the host's tool would run them)</h3>")
        out.append("<pre>%s</pre>" % _e("\n".join(entry["commands"])))
    out.append("</section>")
    return "\n".join(out)


def to_html(record: Mapping[str, Any], title: str = "") -> str:
    """One self-contained page: headline and counts, a row per host, then each reached host's detail."""
    check = bool(record.get("check_mode"))
    title = title or "Emergency %s: rollout record" % record.get("action", "block")
    entries = list(record["hosts"].values())
    order = sorted(range(len(entries)), key=lambda i: STATUSES.index(entries[i]["status"]))
    anchors = {i: "host-%d" % (i + 1) for i in range(len(entries))}
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title>" % _e(title), "<style>%s</style></head><body><main>" % _CSS,
           "<h1>%s</h1>" % _e(title),
           '<p class="meta">generated %s UTC%s%s</p>' % (
               _e(record["generated"]), " · <strong>check mode: nothing was written</strong>" if check else "",
               " · merged from %d run%s" % (len(record["merged_from"]), "" if len(record["merged_from"]) == 1 else "s")
               if record.get("merged_from") else ""),
           '<p class="headline" id="headline">%s</p>' % _e(record["headline"])]
    about = record.get("about") or {}
    if about:
        out.append('<dl class="about">%s</dl>' % "".join(
            "<dt>%s</dt><dd>%s</dd>" % (_e(k), _e(v if isinstance(v, str) else json.dumps(v, default=str)))
            for k, v in about.items()))
    out.append('<div class="cards">')
    for status in ("done", "failed", "not_reached"):
        out.append('<div class="card %s"><div class="n">%d</div>%s</div>'
                   % (status, record["counts"][status], CARDS[status]))
    out.append("</div>")
    out += ['<table id="hosts"><thead><tr><th>host</th><th>result</th><th>what happened</th>'
            "<th>read back at</th><th>written at</th><th>in force</th></tr></thead><tbody>"]
    for i in order:
        entry = entries[i]
        status = entry["status"]
        text = entry["reason"] if status != "done" else (entry.get("summary") or entry["line"])
        host = _e(entry["host"])
        if status != "not_reached":
            host = '<a href="#%s">%s</a>' % (anchors[i], host)
        out.append('<tr class="%s" data-host="%s" data-status="%s"><td class="host">%s</td>'
                   '<td><span class="badge %s">%s</span></td><td%s>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>'
                   % (status, _e(entry["host"]), status, host, status, BADGES[status],
                      ' class="reason"' if status == "failed" else "", _e(text),
                      _time(entry.get("read_at")), _time(entry.get("written_at")),
                      _list(entry.get("in_force") or ())))
    out.append("</tbody></table>")
    for i in order:
        if entries[i]["status"] != "not_reached":
            out.append(_detail(anchors[i], entries[i], check))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
