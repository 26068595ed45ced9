# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Commit-confirmed: the host undoes a change by itself unless the controller confirms it in time.

In the write trip, before the change's first command, the host gets a batch file with the
change's undo commands and a scheduled task that runs it (Task Scheduler outlives the WinRM shell,
whose processes end with it):

    schtasks /create /tn winsec-confirm-<id> /sc once /st 00:00 /ru SYSTEM /tr "cmd /c %SystemRoot%\\Temp\\winsec-confirm-<id>.cmd"
    schtasks /run /tn winsec-confirm-<id>

([D] learn.microsoft.com/windows-server/administration/windows-commands/schtasks-create, -run,
-end, -delete; schtasks.exe exists on XP, 2003 and later). The batch waits `confirm_timeout`
seconds with `ping -n N 127.0.0.1` (the classic sleep of every Windows version, with no clock
arithmetic on the host: the controller does not know the host's clock, and /st would need it in
the host's local time and locale), then runs the undo commands and deletes its task. The task's
own ONCE trigger (midnight, already past) never fires; it exists so that /run can start it.

The controller then reconnects (a new WinRM connection: the change may have cut the old one),
ends and deletes the task and reads the state back: the confirm trip. Cost: 1 read + 1 write +
1 confirm round trip. When the controller cannot reach the host again within a short window
(a quarter of the timeout, at most a minute), it reports that the host will undo the change by
itself; the batch does so at the deadline.

The undo commands are the ones a failed batch runs (each step's own undo, newest first; a filter
added to a new filter list goes with its list). Limits, said in the docs: a reboot before the
deadline ends the waiting task (a static change then stays; a dynamic one vanishes anyway); the
domain store (netsh -f scripts) cannot be confirmed.

A pre-shared key in an undo command (a key change puts the old key back) must be in the batch
file, as in the tool's argv: the host runs it without the controller. It reaches the file the
way every secret reaches the host (remote.Stdin: standard input, not the logged command line),
and the result's `undo` shows it masked.

Standard library only.
"""
from __future__ import annotations

import hashlib
import time
from typing import Callable, List, Optional, Sequence, Tuple

from . import remote
from .model import IPsecError, ValidationError
from .quoting import cmd_safe, join_command_line

TASK_PREFIX = "winsec-confirm-"
MIN_TIMEOUT, MAX_TIMEOUT = 10, 86400


class LostConnection(IPsecError):
    """The connection failed during a write or confirm trip."""


def check_timeout(value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise ValidationError("confirm_timeout", value, "whole seconds from %d to %d" % (MIN_TIMEOUT, MAX_TIMEOUT),
                              "the host waits this long for the controller before it undoes the change")
    return value


class Confirm:
    """One commit-confirmed change. `steps()` and `preamble()` go into the write trip;
    `confirm()` makes the confirm trip."""

    def __init__(self, timeout: int, lost_errors: Tuple[type, ...] = (), reconnect: Callable[[], None] = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.timeout = timeout
        self.lost_errors = lost_errors
        self.reconnect = reconnect
        self.sleep = sleep
        self.clock = clock
        self.name = ""
        self.undo_lines: List[str] = []
        self.undo_shown: List[str] = []        # the same, secrets masked
        self.secret_lines: List[str] = []      # undo lines that hold a secret
        self.calls = 0
        self.written_at: Optional[float] = None
        self.lost: Optional[str] = None

    # -- the write trip ------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return "%%SystemRoot%%\\Temp\\%s.cmd" % self.name

    def steps(self, steps: Sequence[remote.Step], generation: str) -> List[remote.Step]:
        """The change's steps preceded by creating and starting the undo task."""
        lines, shown, hidden = [], [], []
        for undo in remote.undo_steps(steps):
            if undo.script or not undo.argv:
                raise ValidationError("confirm_timeout", self.timeout, "no confirm_timeout with the domain store",
                                      "its changes run as netsh -f scripts, which the undo batch cannot hold")
            try:
                line = join_command_line([cmd_safe("confirm_timeout", a) for a in undo.argv], option="confirm_timeout")
            except ValidationError:
                if not undo.hidden:
                    raise
                raise ValidationError("confirm_timeout", self.timeout, "a change whose undo a batch file can hold",
                                      "the pre-shared key of %s has a character cmd.exe would reinterpret "
                                      "(%% ! or a double quote)" % undo.display) from None     # not the key
            lines.append(line)
            shown.append(undo.display or line)
            if undo.hidden:
                hidden.append(line)
        if not lines:
            raise ValidationError("confirm_timeout", self.timeout, "a change that can be undone",
                                  "none of this change's commands has an undo command")
        digest = hashlib.sha1("\n".join(s.display for s in steps).encode("utf-8")).hexdigest()[:12]
        self.name = TASK_PREFIX + digest
        self.undo_lines, self.undo_shown, self.secret_lines = lines, shown, hidden
        # [D] schtasks /st is HH:mm; XP's and 2003's schtasks want HH:MM:SS [I].
        start = "00:00:00" if generation in ("xp", "2003") else "00:00"
        create = ("schtasks", "/create", "/tn", self.name, "/sc", "once", "/st", start, "/ru", "SYSTEM",
                  "/tr", "cmd /c " + self.path)
        delete = ("schtasks", "/delete", "/tn", self.name, "/f")
        start_now = ("schtasks", "/run", "/tn", self.name)
        end = ("schtasks", "/end", "/tn", self.name)
        return [remote.Step(create, undo=(remote.Step(delete, display=" ".join(delete)),),
                            display=join_command_line(create)),
                remote.Step(start_now, undo=(remote.Step(end, display=" ".join(end)),),
                            display=" ".join(start_now))] + list(steps)

    def batch(self) -> List[str]:
        """The undo batch file's lines."""
        return (["@echo off",
                 "rem winsec.ipsec commit-confirmed: undo the change unless the controller confirms it",
                 "ping -n %d 127.0.0.1 > nul" % (self.timeout + 1)]
                + self.undo_lines + ["schtasks /delete /tn %s /f" % self.name])

    def preamble(self, stdin: Optional[remote.Stdin] = None) -> str:
        """The PowerShell line that writes the batch file (before the batch runs); lines with a
        secret come from `stdin`."""
        return remote.set_content_lines("$env:SystemRoot\\Temp\\%s.cmd" % self.name, self.batch(),
                                        self.secret_lines, stdin)

    def watch(self, execute):
        """`execute` that turns a lost connection during a write into LostConnection."""
        def run(script: str):
            self.calls += 1
            if getattr(script, "kind", "") == "write" and self.written_at is None:
                self.written_at = self.clock()
                # A change that cut the connection must not be waited for longer than the window in
                # which the controller tries to reach the host again: the host undoes it by itself
                # after the timeout, and waiting past that would find it undone.
                script.wait_limit = min(getattr(script, "wait_limit", self.window()), self.window())
            try:
                return execute(script)
            except self.lost_errors as err:
                self.lost = str(err)
                raise LostConnection("the connection to the host failed during the write: %s" % err) from None
        return run

    # -- the confirm trip ----------------------------------------------------------------------
    def cancel_script(self, dialect: str) -> str:
        """End and delete the undo task, then read the state back; under the host-side lock."""
        lines = remote.lock_lines() + [
            "$out = schtasks /end /tn %s 2>&1" % self.name,
            "Write-Output '%s begin confirm-delete'" % remote.MARK,
            "$out = schtasks /delete /tn %s /f 2>&1" % self.name,
            "$rc = $LASTEXITCODE",
            "Write-Output $out",
            'Write-Output "%s end confirm-delete rc=$rc"' % remote.MARK,
            'Remove-Item -LiteralPath "$env:SystemRoot\\Temp\\%s.cmd"' % self.name]
        return remote.plain_script(lines + remote.read_lines(dialect) + remote.unlock_lines() + ["exit 0"])

    def window(self) -> float:
        """How long the controller keeps trying to reach the host again."""
        return min(self.timeout / 4.0, 60.0)

    def confirm(self, execute, dialect: str, started: Optional[float] = None) -> Optional[remote.Transcript]:
        """Reconnect and cancel the undo; None when the host stays unreachable. The window counts from
        `started` (after a lost write: from the write, so that waiting for its end and reconnecting
        together stay within one window, well before the host's own undo)."""
        started = self.clock() if started is None else started
        delay = 1.0
        while True:
            try:
                if self.reconnect is not None:
                    self.reconnect()
                _rc, out, _err = execute(self.cancel_script(dialect))
                return remote.parse_transcript(out)
            except self.lost_errors as err:
                self.lost = str(err)
            if self.clock() - started + delay > self.window():
                return None
            self.sleep(delay)
            delay *= 2

    def unreachable_message(self) -> str:
        return ("the host did not answer again after the change (%s); it undoes the change by itself: its "
                "scheduled task %s runs the undo about %d seconds after the write, then the host should "
                "answer again. Nothing is confirmed; run the task again once the host answers"
                % (self.lost or "no answer", self.name, self.timeout))

    def report(self, status: str) -> dict:
        return {"task": self.name, "timeout": self.timeout, "status": status, "undo": list(self.undo_shown)}


__all__ = ["Confirm", "LostConnection", "check_timeout", "TASK_PREFIX"]
