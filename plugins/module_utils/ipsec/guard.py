# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Fingerprints and the precheck: a write runs only on the state its plan was made from.

Every read section's text gets a fingerprint on the host, the SHA-1 of its UTF-8 text as the host
itself printed it (remote.py `fingerprint` section; Microsoft docs "SHA1CryptoServiceProvider
Class"). The controller never computes one: it echoes what the host printed, so code pages, line
ends and tool output quirks never matter. A value edited by hand (`reg add` of any byte of any
IPsec registry value) changes the store section's text and so its fingerprint; so does a dynamic
filter added by another tool, another policy assigned, or PolicyAgent stopped.

The write script (remote.write_script) first runs the read commands of the plan's *scope* into
variables, silently, and compares their fingerprints with the expected ones (from the read trip,
or from a fact of an earlier task: `state_fact`). On any difference it sets `$failed = -1`, so
that no step and no undo runs, and prints a `stale` section with what it found; the read-back
that follows is then the fresh state to plan from. All of this happens while the script holds the
host-side lock (remote.lock_lines), so nothing winsec.ipsec runs can change the host between the
precheck and the steps.

Scope: `store` when the plan changes static objects or the assignment (the registry store also
holds the domain GPO pointer); the dynamic filters and main-mode policies when it changes dynamic
filters; `exempt` for NoDefaultExempt; the domain store's sections for store=domain; `os` and
`policyagent` always. Changes outside the scope do not stop the write: a dynamic task is not
failed by a change to the static store.

The state fact (`ansible_facts.winsec_ipsec_state`, version 1) is the read sections, their
fingerprints and where they came from. Its `sections` are null when the state holds a pre-shared
key (facts may go to a fact cache on disk or in redis) and for the domain store; such a fact
serves no plan. Standard library only.
"""
from __future__ import annotations

import datetime
from typing import Dict, Iterable, List, Optional, Sequence

from . import remote

STALE = "stale"
FACT = "winsec_ipsec_state"
FACT_VERSION = 1

_DYNAMIC = ("dynamic-netsh", remote.MMPOLICY_SECTION, "dynamic-ipseccmd")
_STATIC_OPS = ("policy", "filterlist", "filter", "filteraction", "rule", "assign")


def scope(changes: Iterable, store: str = "local", exempt: bool = False, from_fact: bool = False) -> List[str]:
    """The sections a plan's changes depend on (see the module doc), in read order.

    `from_fact`: a plan made from a fact also checks the store for a dynamic-only change, because
    the safety checks made on it (when_domain_policy: the GPO pointer is in the store) were made on
    the fact rather than on a fresh read."""
    names = {"os", "policyagent"}
    ops = [c.op for c in changes]
    static = any(op.endswith(_STATIC_OPS) for op in ops if not op.endswith("_dynamic"))
    dynamic = any(op.endswith("_dynamic") for op in ops)
    if store == "domain":
        names |= {"directory", "directory-gpos"}
        if dynamic:
            names |= set(_DYNAMIC)
        return [n for n in remote.SECTIONS if n in names]
    if static or (dynamic and from_fact):
        names.add("store")
    if dynamic:
        names |= set(_DYNAMIC)
    if exempt:
        names.add("exempt")
    return [n for n in remote.SECTIONS if n in names]


def _quote(text: str) -> str:
    return "'%s'" % text.replace("'", "''")


def precheck_lines(expected: Dict[str, str], names: Sequence[str], dialect: str = "",
                   directory: Optional[str] = None) -> List[str]:
    """Script lines that read the sections `names` silently and set `$failed = -1`, printing a
    `stale` section of `name=HEX` lines found, when any fingerprint differs from `expected`
    (a section expected but not read now, or read now but not expected, differs too)."""
    lines = remote.read_lines(dialect, directory, emit=False, only=names)
    for name in names:
        lines += ["if (%s -ne %s) { $failed = -1 }" % (remote.fingerprint_var(name), _quote(expected.get(name, "")))]
    lines += ["if ($failed -eq -1) {", "Write-Output '%s begin %s'" % (remote.MARK, STALE)]
    lines += ['Write-Output "%s=%s"' % (name, remote.fingerprint_var(name)) for name in names]
    return lines + ["Write-Output '%s end %s rc=1'" % (remote.MARK, STALE), "}"]


def stale(transcript: remote.Transcript) -> Optional[Dict[str, str]]:
    """The fingerprints the write script found when its precheck failed (None: it passed)."""
    section = transcript.sections.get(STALE)
    return None if section is None else remote.parse_fingerprints(section.text)


def differing(expected: Dict[str, str], found: Dict[str, str]) -> List[str]:
    """Names of the sections a precheck compared (`found`) whose fingerprints differ."""
    return [n for n in remote.SECTIONS if n in found and expected.get(n, "") != found[n]]


# --------------------------------------------------------------------------------------------
# The state fact
# --------------------------------------------------------------------------------------------

def state_fact(transcript: remote.Transcript, os: Optional[dict], dialect: str, host: str,
               keep_sections: bool) -> dict:
    """The fact of the state a transcript printed. `keep_sections` False (a pre-shared key in the
    state, or the domain store): fingerprints only."""
    sections = None
    if keep_sections:
        sections = {name: {"text": s.text, "rc": s.rc} for name, s in transcript.sections.items()
                    if name in remote.SECTIONS}
    return {"version": FACT_VERSION, "host": host,
            "read_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dialect": dialect, "os": os, "fingerprint": dict(transcript.fingerprint), "sections": sections}


def usable_fact(fact, host: str, dialect: str = "") -> Optional[remote.Transcript]:
    """The transcript a fact recorded, when a plan may be made from it: version 1, this inventory
    host, the dialect the task asks for (if any), sections and their fingerprints present.
    None otherwise (the task then reads the host as usual)."""
    if not isinstance(fact, dict) or fact.get("version") != FACT_VERSION or not host or fact.get("host") != host:
        return None
    if dialect and fact.get("dialect") != dialect:
        return None
    sections, prints = fact.get("sections"), fact.get("fingerprint")
    if not isinstance(sections, dict) or not isinstance(prints, dict):
        return None
    transcript = remote.Transcript()
    for name, value in sections.items():
        if name not in remote.SECTIONS or not isinstance(value, dict) or not isinstance(value.get("text"), str):
            return None
        rc = value.get("rc")
        if rc is not None and (isinstance(rc, bool) or not isinstance(rc, int)):
            return None
        if name not in prints:
            return None         # a section without a fingerprint cannot be checked
        transcript.sections[name] = remote.Section(name, value["text"], rc)
    if "os" not in transcript.sections or "store" not in transcript.sections:
        return None
    lines = "\n".join("%s=%s" % (k, v) for k, v in prints.items() if isinstance(k, str) and isinstance(v, str))
    transcript.sections[remote.FINGERPRINT] = remote.Section(remote.FINGERPRINT, lines, 0)
    return transcript


__all__ = ["STALE", "FACT", "FACT_VERSION", "scope", "precheck_lines", "stale", "differing", "state_fact",
           "usable_fact"]
