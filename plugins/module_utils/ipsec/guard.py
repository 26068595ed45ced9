# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Compare and swap: a write batch first proves the store is still the one its plan was made from.

The plan was made from the store as the read trip saw it. Before the first command of the write
trip, the script reads the store again and compares a *fingerprint* with the one the controller
computed from the read; when they differ, no step runs (`$failed = -1`: every step and undo is
skipped), the script prints what it found between `stale` markers and still ends with the read
sections, so the controller can say what changed.

The fingerprint is the data of every `whenChanged` value (one per policy, rule, filter list,
filter action and ISAKMP object: MS-GPIPSEC factsheet "whenChanged", Unix seconds written by
the tool [C]) and of `ActivePolicy`, in `reg query /s` order, joined by commas. Not the store
itself: Ansible strips every script line and the command line holds at most 32767 characters
(remote.MAX_COMMAND_LINE), so a compact string is embedded and compared with `-ne`.

What it catches and what it cannot:
- an object added or deleted, a policy assigned or unassigned: always (the list changes);
- an object modified: when its whenChanged changed. whenChanged has one-second resolution, so a
  modification made within the same second as the object's previous write, and before our read,
  leaves the fingerprint as it was and goes unnoticed;
- a store whose fingerprint exceeds `MAX_FINGERPRINT` characters is compared by the count of
  values and the length of the joined list only (a modification of an existing object that keeps
  every stamp's length is then missed; stamps are 0x + 8 hex digits until 2106);
- dynamic (volatile) filters live outside the registry and are not covered;
- a batch split over several scripts (remote.write_scripts) is checked before its first script only.

Only PowerShell 2.0 and 5.1 constructs that winsim's subset also runs: `@()`, `-match` and
`-replace` on arrays (they filter/map), `-join`, `.Count`/`.Length`, `-ne`. Standard library only.
"""
from __future__ import annotations

import re
from typing import List, Optional

from .remote import IPSEC_KEY, MARK, Transcript

# Values that make the fingerprint (indented value lines of reg.exe output: 4 spaces or tabs).
_VALUE_LINE = r"^\s+(whenChanged|ActivePolicy)\s"
# Applied in order to the matched lines joined by commas (none of whose data holds a comma):
# each line's name and type column go, then the blanks before each comma and at the end.
# On the joined string: three replacements of one string, which every PowerShell does alike.
_REDUCE = (r"[^,]*REG_\w+\s+", r"\s+,", r"\s+$")
_REDUCE_WITH = ("", ",", "")
MAX_FINGERPRINT = 4000
STALE = "stale"


def _reduced(store_text: str) -> str:
    lines = store_text.replace("\r\n", "\n").split("\n")
    joined = ",".join(line for line in lines if re.match(_VALUE_LINE, line, re.IGNORECASE))
    for pattern, replacement in zip(_REDUCE, _REDUCE_WITH):
        joined = re.sub(pattern, replacement, joined)
    return joined


def _long(joined: str) -> bool:
    return len(joined) > MAX_FINGERPRINT


def fingerprint(store_text: str) -> str:
    """The fingerprint of `reg query <IPSec> /s` output, as the write script computes it."""
    joined = _reduced(store_text)
    return "%d/%d" % (joined.count(",") + 1 if joined else 0, len(joined)) if _long(joined) else joined


def _quote(text: str) -> str:
    return "'%s'" % text.replace("'", "''")


def precheck_lines(store_text: Optional[str]) -> List[str]:
    """Script lines that set `$failed = -1` and print the store's fingerprint between `stale`
    markers when it differs from the one of `store_text` (the read trip's store section).
    `None` (the read had no store section): no check."""
    if store_text is None:
        return []
    expected = fingerprint(store_text)
    lines = [
        '$casout = reg query "%s" /s 2>&1' % IPSEC_KEY,
        "$casv = @($casout) -match %s" % _quote(_VALUE_LINE),
        "$cas = @($casv) -join ','",
    ]
    lines += ["$cas = $cas -replace %s,%s" % (_quote(p), _quote(r)) for p, r in zip(_REDUCE, _REDUCE_WITH)]
    if _long(_reduced(store_text)):
        lines += ["$casn = @($casv).Count", "$casl = $cas.Length", '$cas = "$casn/$casl"']
    return lines + [
        "if ($cas -ne %s) {" % _quote(expected),
        "$failed = -1",
        "Write-Output '%s begin %s'" % (MARK, STALE),
        "Write-Output $cas",
        "Write-Output '%s end %s rc=1'" % (MARK, STALE),
        "}",
    ]


def stale(transcript: Transcript) -> Optional[str]:
    """The fingerprint the write script found, when it differed from the expected one."""
    section = transcript.sections.get(STALE)
    return None if section is None else section.text.strip()


__all__ = ["MAX_FINGERPRINT", "fingerprint", "precheck_lines", "stale"]
