# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Strict readers of the dynamic listings, and whether a read's dynamic rules were understood.

Static state is read from the registry, which is the same in every display language. The dynamic
rules and main-mode policies exist only in the PolicyAgent and are read as tool text, whose labels
Windows translates ([D] "netsh ipsec" on learn.microsoft.com prints no sample; the engine knows one
English layout, [I], tests/fixtures/toolout/). Text these readers do not recognise is *unknown*,
never "none": `dynamic_problem` says why, and the callers report the dynamic rules as null with a
warning instead of an empty list.

Standard library only.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

from .. import remote, toolout
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


def dynamic_problem(transcript: remote.Transcript) -> Optional[str]:
    """Why a read's dynamic rules could not be understood, or None when they were (or were not to be
    read: no dynamic section, the tool missing, the service not running)."""
    section = remote.dynamic_section(transcript)
    if section is None or remote.tool_missing(section):
        return None
    agent = transcript.sections.get("policyagent")
    state = remote.policyagent_state(agent)
    if agent is not None and not state:
        # The rules are read only while the service runs; a state line the engine does not read (another
        # display language, say) leaves them unread, which is not the same as none.
        return ("the PolicyAgent service's state could not be read from its `sc query` output, so its "
                "dynamic rules were not read")
    if state != "running":
        return None
    netsh = section.name == "dynamic-netsh"
    tool = "netsh ipsec dynamic show rule" if netsh else "ipseccmd show filters"
    if section.rc not in (0, None) or toolout.parse_netsh_error(section.text):
        return "%s failed (rc=%s)" % (tool, section.rc)
    return _problem(parse_dynamic_rules if netsh else toolout.parse_ipseccmd_show_filters, section.text)


def mmpolicy_problem(transcript: remote.Transcript) -> Optional[str]:
    """Why a read's main-mode policy listing could not be understood, or None. A listing that failed
    or answered with an `ERR IPsec[` line is not a problem here: the engine counts it as listing none,
    since real netsh may answer so when there is no policy ([I])."""
    listing = remote.mmpolicy_section(transcript)
    if listing is None or listing.rc not in (0, None) or toolout.parse_netsh_error(listing.text):
        return None
    if remote.policyagent_state(transcript.sections.get("policyagent")) != "running":
        return None
    return _problem(parse_mmpolicy_names, listing.text)


def _problem(parse, text: str) -> Optional[str]:
    try:
        parse(text)
    except ToolOutputError as err:
        # The line itself is not repeated: a listing may hold what must not reach a log (a key).
        return ("%s output, line %d, is not in the layout the engine reads (the tool's display language "
                "may not be English)" % (err.tool, err.lineno))
    except IPsecError as err:
        return str(err)
    return None


def unreadable_warning(problem: str) -> str:
    return UNREADABLE % problem


__all__ = ["parse_mmpolicy_names", "parse_dynamic_rules", "without_statistics", "dynamic_problem",
           "mmpolicy_problem", "unreadable_warning", "MMPOLICY_UNREADABLE", "STATISTICS_HEADING", "MMPOLICY_LABELS"]
