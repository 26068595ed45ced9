# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Strict readers of the dynamic listings, and whether a read's dynamic rules were understood.

Static state is read from the registry, which is the same in every display language. The dynamic
rules and main-mode policies exist only in the PolicyAgent and are read as tool text, whose labels
Windows translates ([D] "netsh ipsec" on learn.microsoft.com prints no sample; the engine knows one
English layout, [I], tests/fixtures/toolout/). Text these readers do not recognise is *unknown*,
never "none": host.read_dynamic reads a host's listings with them once, and the state it returns holds
null dynamic rules with a warning (`problem` says why) instead of an empty list.

Standard library only.
"""
from __future__ import annotations

import re
from typing import Tuple

from .. import toolout
from ..model import DynamicRule, IPsecError
from ..toolout import ToolOutputError

MMPOLICY_TOOL = "netsh ipsec dynamic show mmpolicy"
MMPOLICY_HEADING = "Main Mode Policies"
# The labels of a main-mode policy block in the one layout known ([I], the toolout fixture).
MMPOLICY_LABELS = ("Policy Name", "Soft SA Expiration Time", "Main Mode Life Time", "QM Per MM")
# `show all` ends with a statistics part (printed also when there is no policy, [I] layout): it holds
# counters, never rules, and is cut off before the rules are read.
STATISTICS_HEADING = "IPsec Statistics"
_UNDERLINE = re.compile(r"^-+$")
UNREADABLE = ("the dynamic rules could not be read, so they are reported as unknown (null), not as none: %s")
MMPOLICY_UNREADABLE = ("the dynamic main-mode policies could not be read, so they are reported as unknown (null), "
                       "not as none: %s")
# The rules are read only while the service runs; a state line the engine does not read (another
# display language, say) leaves them unread, which is not the same as none.
AGENT_UNREAD = ("the PolicyAgent service's state could not be read from its `sc query` output, so its dynamic "
                "rules were not read")


def parse_mmpolicy_names(text: str) -> Tuple[str, ...]:
    """The main-mode policy names of `netsh ipsec dynamic show mmpolicy all` output.

    Strict: empty output is no policy; otherwise every line must be the section heading, its
    underline, or a `Label : value` line with a known label. Anything else (another listing, a
    sentence, another display language) raises ToolOutputError naming the line.
    """
    names = []
    lines = text.splitlines()
    seen_heading = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if toolout.parse_netsh_error(line):
            raise ToolOutputError(MMPOLICY_TOOL, lineno, line, "the tool reported an error instead of a listing")
        if line == MMPOLICY_HEADING and not seen_heading:
            seen_heading = True
            continue
        if _UNDERLINE.match(line) and seen_heading and lines[lineno - 2].strip() == MMPOLICY_HEADING:
            continue
        label, colon, value = line.partition(":")
        if not seen_heading or not colon or label.strip() not in MMPOLICY_LABELS:
            known = "known: the heading %r and the labels %s" % (MMPOLICY_HEADING, ", ".join(MMPOLICY_LABELS))
            raise ToolOutputError(MMPOLICY_TOOL, lineno, line, "not a line of the main mode policy listing (%s)" % known)
        if label.strip() == "Policy Name":
            if not value.strip():
                raise ToolOutputError(MMPOLICY_TOOL, lineno, line, "a policy without a name")
            names.append(value.strip())
    return tuple(names)


def without_statistics(text: str) -> str:
    """`show all` output without its statistics part (from its heading to the end)."""
    lines = text.splitlines(True)
    for index, line in enumerate(lines):
        if line.strip() == STATISTICS_HEADING:
            return "".join(lines[:index])
    return text


def parse_dynamic_rules(text: str) -> Tuple[DynamicRule, ...]:
    """The rules of `netsh ipsec dynamic show rule` or `show all` output (statistics left aside);
    ToolOutputError on text of another layout or language."""
    return toolout.parse_netsh_dynamic_show(without_statistics(text))


def problem(err: IPsecError) -> str:
    """Why a listing could not be read, from its reader's error. A ToolOutputError's line is not
    repeated: a listing may hold what must not reach a log (a key)."""
    if isinstance(err, ToolOutputError):
        return ("%s output, line %d, is not in the layout the engine reads (the tool's display language "
                "may not be English)" % (err.tool, err.lineno))
    return str(err)


__all__ = ["parse_mmpolicy_names", "parse_dynamic_rules", "without_statistics", "problem", "UNREADABLE",
           "MMPOLICY_UNREADABLE", "AGENT_UNREAD", "STATISTICS_HEADING", "MMPOLICY_LABELS"]
