# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""reapply_at_startup: a startup task that re-adds the host's dynamic filters at every boot.

Dynamic filters vanish when PolicyAgent restarts or the host reboots (KB 813878; SYNTAX.md 6). With
`reapply_at_startup`, ipsec_dynamic_block keeps one batch file, `%SystemRoot%\\winsec-reapply-dynamic.cmd`,
holding the commands that add winsec's own dynamic filters the host has after the task, and one
scheduled task that runs it at boot as SYSTEM ([D] learn.microsoft.com/windows-server/administration/
windows-commands/schtasks-create, /sc ONSTART):

    schtasks /create /tn winsec-reapply-dynamic /sc onstart /ru SYSTEM /tr "cmd /c %SystemRoot%\\winsec-reapply-dynamic.cmd"

Only winsec's own rules are re-added (`is_own`): on netsh those of its main-mode policy,
winsec-ipsec; rules that other tools or administrators added with main-mode policies of their own
are theirs to restore (re-added here they would come back under winsec-ipsec). ipseccmd shows no
main-mode policy, so on XP every rule counts as winsec's. When no own dynamic filter is left, the
task and the file are deleted.

The check is one round trip (the file's text and whether the task exists); a write, when needed,
one more. Idempotent: the file is rewritten and the task created only when they differ from what is
wanted.

Standard library only.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from . import dialects, remote
from .model import DynamicRule, HostState, IPsecError, name_key
from .plan import NETSH_MMPOLICY, filter_text, plan_dynamic
from .quoting import cmd_safe, join_command_line
from .report import state_from_dict

TASK = "winsec-reapply-dynamic"
FILE = "%SystemRoot%\\winsec-reapply-dynamic.cmd"
PS_FILE = "$env:SystemRoot\\winsec-reapply-dynamic.cmd"
HEADER = ["@echo off", "rem winsec.ipsec: re-add the dynamic IPsec filters at startup (reapply_at_startup)"]


def is_own(rule: DynamicRule, dialect: str) -> bool:
    """Whether winsec made the rule: its main-mode policy on netsh, none ('') on ipseccmd (the mark
    plan_dynamic gives the rules it adds)."""
    return name_key(rule.mmpolicy) == name_key(NETSH_MMPOLICY if dialect == "netsh" else "")


def batch_lines(rules: Sequence[DynamicRule], os, dialect: str) -> List[str]:
    """The commands that add `rules` to an empty SPD, as batch lines."""
    empty = HostState(os=os, policyagent="running")
    plan = plan_dynamic(empty, tuple(rules), state="present")
    commands = dialects.render(list(plan.changes), dialect, before=empty, after=plan.after)
    return HEADER + [join_command_line([cmd_safe("filters", a) for a in c.argv], option="filters")
                     for c in commands]


def check_script() -> str:
    lines = []
    for name, command in (("reapply-file", 'cmd /c type "%s"' % FILE), ("reapply-task", "schtasks /query /tn %s" % TASK)):
        lines += ["Write-Output '%s begin %s'" % (remote.MARK, name), "$out = %s 2>&1" % command,
                  "$rc = $LASTEXITCODE", "Write-Output $out", 'Write-Output "%s end %s rc=$rc"' % (remote.MARK, name)]
    return "\n".join(lines + ["exit 0"]) + "\n"


def _lines(text: str) -> List[str]:
    return [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]


def write_script(wanted: Optional[List[str]], task_exists: bool) -> str:
    """Write the file and create the task (wanted), or delete both (None)."""
    create = ("schtasks", "/create", "/tn", TASK, "/sc", "onstart", "/ru", "SYSTEM", "/tr", "cmd /c " + FILE)
    delete = ("schtasks", "/delete", "/tn", TASK, "/f")
    if wanted is None:
        steps = [remote.Step(delete, display=" ".join(delete))] if task_exists else []
        return "\n".join(remote.write_lines(steps) + ['Remove-Item -LiteralPath "%s"' % PS_FILE, "exit 0"]) + "\n"
    steps = [] if task_exists else [remote.Step(create, undo=(remote.Step(delete),), display=join_command_line(create))]
    body = ['Set-Content -LiteralPath "%s" -Value @\'' % PS_FILE] + wanted + ["'@"]
    return "\n".join(body + remote.write_lines(steps) + ["exit 0"]) + "\n"


def manage(execute, result: dict, check_mode: bool, dialect: str) -> dict:
    """Bring the startup task in line with the dynamic filters in result['after']."""
    after = state_from_dict(result["after"])
    os = after.os
    effective = dialect or os.dialect
    own = [d for d in after.dynamic if is_own(d, effective)]
    others = [d for d in after.dynamic if not is_own(d, effective)]
    wanted = batch_lines(own, os, effective) if own else None
    if others:
        result.setdefault("notes", []).append(
            "the startup task re-adds only the dynamic rules winsec.ipsec made; left out: %s" % "; ".join(
                "%s (main-mode policy %r)" % (filter_text(d.filter), d.mmpolicy) for d in others))
    _rc, out, _err = execute(check_script())
    result["round_trips"] += 1
    sections = remote.parse_transcript(out).sections
    file_section, task_section = sections.get("reapply-file"), sections.get("reapply-task")
    if file_section is None or task_section is None:
        raise IPsecError("the startup task check did not complete: %s" % out.strip()[:300])
    have = _lines(file_section.text) if file_section.rc == 0 else None
    task_exists = task_section.rc == 0
    in_step = (wanted is None and have is None and not task_exists) or (
        wanted is not None and have == _lines("\n".join(wanted)) and task_exists)
    report = {"task": TASK, "file": FILE, "state": "present" if wanted else "absent", "changed": not in_step,
              "commands": wanted or []}
    result["startup_task"] = report
    if in_step:
        return result
    result["changed"] = True
    if check_mode:
        return result
    _rc, out, _err = execute(write_script(wanted, task_exists))
    result["round_trips"] += 1
    transcript = remote.parse_transcript(out)
    if transcript.failed:
        raise IPsecError("the startup task could not be %s (rc=%s): %s" % (
            "created" if wanted else "deleted", transcript.failed[1], transcript.failed[2].strip()[:300]))
    return result


__all__ = ["TASK", "FILE", "is_own", "batch_lines", "manage"]
