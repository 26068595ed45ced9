# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""reapply_at_startup: a startup task that re-adds the host's dynamic filters at every boot.

Dynamic filters vanish when PolicyAgent restarts or the host reboots (KB 813878: dynamic policy
is not kept across a restart of the IPsec service). With `reapply_at_startup`, ipsec_dynamic_block
keeps one batch file, `%SystemRoot%\\winsec-reapply-dynamic.cmd`, holding the commands that add
winsec's own dynamic filters the host has after the task, and one scheduled task that runs it at
boot as SYSTEM ([D] learn.microsoft.com/windows-server/administration/windows-commands/schtasks-create,
/sc ONSTART):

    schtasks /create /tn winsec-reapply-dynamic /sc onstart /ru SYSTEM /tr "cmd /c %SystemRoot%\\winsec-reapply-dynamic.cmd"

Only winsec's own rules are re-added (`is_own`): on netsh those of its main-mode policy,
winsec-ipsec; rules that other tools or administrators added with main-mode policies of their own
are theirs to restore (re-added here they would come back under winsec-ipsec). ipseccmd shows no
main-mode policy, so on XP every rule counts as winsec's. When no own dynamic filter is left, the
task and the file are deleted.

Part of the task's one transaction (host.Flow, `sides`): the read script reads the file and the
task (remote.STARTUP_SECTIONS), `plan` turns the difference from the predicted dynamic filters
into write steps that run after the filters' own, each undone when a later step fails, the
precheck covers both sections, and the read-back must show the planned file and task.

Standard library only.
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from . import dialects, remote
from .host import SideChange
from .model import DynamicRule, HostState, IPsecError, filter_text, name_key
from .plan import NETSH_MMPOLICY, plan_dynamic
from .quoting import cmd_safe, join_command_line

TASK = remote.STARTUP_TASK
FILE = remote.STARTUP_FILE
PS_FILE = "$env:SystemRoot\\winsec-reapply-dynamic.cmd"
HEADER = ["@echo off", "rem winsec.ipsec: re-add the dynamic IPsec filters at startup (reapply_at_startup)"]
# What the plan depends on: the file, the task, and the dynamic filters the file's commands come from.
_KEY = re.compile(r"psk=|\bp:", re.IGNORECASE)
SECTIONS = remote.STARTUP_SECTIONS + ("dynamic-netsh", remote.MMPOLICY_SECTION, "dynamic-ipseccmd")


def is_own(rule: DynamicRule, dialect: str) -> bool:
    """Whether winsec made the rule: its main-mode policy on netsh, none ('') on ipseccmd (the mark
    plan_dynamic gives the rules it adds)."""
    return name_key(rule.mmpolicy) == name_key(NETSH_MMPOLICY if dialect == "netsh" else "")


def _commands(rules: Sequence[DynamicRule], os, dialect: str):
    empty = HostState(os=os, policyagent="running")
    plan = plan_dynamic(empty, tuple(rules), state="present")
    return dialects.render(list(plan.changes), dialect, before=empty, after=plan.after)


def _line(argv) -> str:
    return join_command_line([cmd_safe("filters", a) for a in argv], option="filters")


def batch_lines(rules: Sequence[DynamicRule], os, dialect: str) -> List[str]:
    """The commands that add `rules` to an empty SPD, as batch lines."""
    return HEADER + [_line(c.argv) for c in _commands(rules, os, dialect)]


def _batch(rules, os, dialect) -> Tuple[List[str], List[str], List[str]]:
    """(lines, the same with secrets masked, the lines that hold a secret)."""
    lines, shown, hidden = list(HEADER), list(HEADER), []
    for command in _commands(rules, os, dialect):
        line, masked = _line(command.argv), _line(command.shown_argv or command.argv)
        lines.append(line)
        shown.append(masked)
        if line != masked:
            hidden.append(line)
    return lines, shown, hidden


def _lines(text: str) -> List[str]:
    return [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]


def on_host(transcript: remote.Transcript) -> Tuple[Optional[List[str]], bool]:
    """(the file's lines or None when it is missing, whether the task exists), as read."""
    file_section, task_section = (transcript.sections.get(n) for n in remote.STARTUP_SECTIONS)
    if file_section is None or task_section is None:
        raise IPsecError("internal: the startup task's sections were not read")
    return (_lines(file_section.text) if file_section.rc == 0 else None), task_section.rc == 0


def _file_step(lines, undo_lines, hidden=()) -> remote.Step:
    """Write (lines) or delete (None) the batch file; its undo puts back what was there."""
    undo = remote.Step((), file=(PS_FILE, None if undo_lines is None else tuple(undo_lines)),
                       display=("restore " if undo_lines is not None else "delete ") + FILE,
                       hidden=tuple(h for h in hidden if undo_lines and h in undo_lines))
    return remote.Step((), file=(PS_FILE, None if lines is None else tuple(lines)), undo=(undo,),
                       display=("write " if lines is not None else "delete ") + FILE,
                       hidden=tuple(h for h in hidden if lines and h in lines))


def _task_step(create: bool) -> remote.Step:
    make = ("schtasks", "/create", "/tn", TASK, "/sc", "onstart", "/ru", "SYSTEM", "/tr", "cmd /c " + FILE)
    delete = ("schtasks", "/delete", "/tn", TASK, "/f")
    do, undo = (make, delete) if create else (delete, make)
    return remote.Step(do, undo=(remote.Step(undo, display=join_command_line(undo)),), display=join_command_line(do))


def plan(transcript: remote.Transcript, predicted: HostState, dialect: str) -> SideChange:
    """The startup task for the dynamic filters `predicted` holds, against the file and task read."""
    effective = dialect or predicted.os.dialect
    own = [d for d in predicted.dynamic if is_own(d, effective)]
    others = [d for d in predicted.dynamic if not is_own(d, effective)]
    have, task_exists = on_host(transcript)
    wanted, shown, hidden = _batch(own, predicted.os, effective) if own else (None, [], [])
    # The file's old lines may hold an old key (netsh psk=..., ipseccmd -a p:"..."): they go back
    # through stdin as well, and show masked.
    old_hidden = [ln for ln in (have or ()) if ln not in (wanted or ()) and _KEY.search(ln)]
    steps: List[remote.Step] = []
    if wanted is not None:
        if have != wanted:
            steps.append(_file_step(wanted, have, hidden + old_hidden))
        if not task_exists:
            steps.append(_task_step(create=True))
    else:
        if task_exists:
            steps.append(_task_step(create=False))
        if have is not None:
            steps.append(_file_step(None, have, old_hidden))
    notes = []
    if others:
        notes.append("the startup task re-adds only the dynamic rules winsec.ipsec made; left out: %s" % "; ".join(
            "%s (main-mode policy %r)" % (filter_text(d.filter), d.mmpolicy) for d in others))
    report = {"task": TASK, "file": FILE, "state": "present" if wanted else "absent", "changed": bool(steps),
              "commands": shown}

    def described(lines, exists):
        return "startup task %s: %s\n" % (TASK, "present" if exists else "absent") + "".join(
            "  %s\n" % ln for ln in (lines or ()))

    def verify(after: remote.Transcript) -> Optional[str]:
        now, exists = on_host(after)
        if now != wanted or exists != (wanted is not None):
            return "the startup task reads back as %s with %s, planned %s" % (
                "present" if exists else "absent", "its file missing" if now is None else "a file of %d lines" % len(now),
                "present with a file of %d lines" % len(wanted) if wanted else "absent")
        return None

    masked_have = ["********" if ln in old_hidden else ln for ln in (have or ())] if have is not None else None
    return SideChange("startup_task", report, steps, SECTIONS,
                      (described(masked_have, task_exists), described(shown, wanted is not None)), verify, notes,
                      hidden + old_hidden)


class Startup:
    """What host.Flow takes as a side change: the sections to read, and `plan`."""
    sections = SECTIONS

    @staticmethod
    def plan(transcript: remote.Transcript, predicted: HostState, dialect: str) -> SideChange:
        return plan(transcript, predicted, dialect)


__all__ = ["TASK", "FILE", "SECTIONS", "Startup", "is_own", "batch_lines", "on_host", "plan"]
