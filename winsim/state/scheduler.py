"""The Task Scheduler of a winsim host: what `schtasks` registers, runs at boot and runs when due.

Registered tasks are kept in STATE/tasks.json (Windows keeps them on disk: they survive a reboot);
running instances live in memory and die with a reboot. A task's action is one command line run as
cmd.exe runs it (winsim/shell/cmdexe.py, through the console the host gives); `cmd /c FILE.cmd`
(or a bare .cmd/.bat path) runs the batch file line by line from the host's files, so that a batch
can wait: `ping -n N 127.0.0.1`, the usual Windows way to sleep, suspends the instance for N-1
seconds of the host's clock (`SimHost.advance_time` or real time), then the next lines run.

Emulated triggers ([D] learn.microsoft.com/windows-server/administration/windows-commands/schtasks-create):
ONSTART (runs at every boot) and ONCE with /ST HH:MM[:SS] (runs when the host's clock, UTC in
winsim, reaches that time of the day the task was created; a time already past never triggers,
as Windows warns). Other schedules are refused by the tool. Batch files support only plain
command lines, `@echo off`, `rem` and `ping -n N`; [I] no labels, goto, if or for.
"""
from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

_PING = re.compile(r"^\s*ping(?:\.exe)?\s+.*-n\s+(\d+)", re.IGNORECASE)
_BATCH = re.compile(r'^\s*(?:cmd(?:\.exe)?\s+/c\s+)?"?([^"]+\.(?:cmd|bat))"?\s*$', re.IGNORECASE)


@dataclass
class Task:
    name: str
    action: str                 # /TR
    schedule: str               # ONCE | ONSTART
    start: str = ""             # /ST as given
    user: str = ""              # /RU
    due: Optional[float] = None     # ONCE: host clock time it triggers at; None: never


@dataclass
class Instance:
    task: str
    lines: List[str] = field(default_factory=list)
    wake: float = 0.0


Console = Callable[[], Tuple[Callable[[str], object], Callable[[str], Optional[str]]]]


class Scheduler:
    def __init__(self, host, path: str, console: Console):
        """`console()` opens a cmd.exe on the host: (run one line -> Result, read a file named with
        %VARS% -> text or None). The host provides it, so the state layer imports no shell."""
        self.host = host
        self.console = console
        self.path = path
        self.tasks: Dict[str, Task] = {}
        self.running: Dict[str, Instance] = {}
        self.history: List[dict] = []       # what ran, for tests and `winsim ctl`
        self._busy = False
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                self.tasks = {k: Task(**v) for k, v in json.load(handle).items()}

    def _save(self) -> None:
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump({k: asdict(v) for k, v in self.tasks.items()}, handle, indent=1)

    def find(self, name: str) -> Optional[Task]:
        return self.tasks.get(name.casefold())

    def create(self, task: Task) -> None:
        if task.schedule == "ONCE":
            task.due = self._today_at(task.start)
        self.tasks[task.name.casefold()] = task
        self._save()

    def delete(self, name: str) -> None:
        # Deleting a task leaves a running instance running ([I]); `schtasks /end` stops it.
        self.tasks.pop(name.casefold(), None)
        self._save()

    def end(self, name: str) -> bool:
        return self.running.pop(name.casefold(), None) is not None

    def start(self, name: str) -> None:
        task = self.tasks[name.casefold()]
        self.running[name.casefold()] = Instance(task.name, self._lines(task.action), self.host.now())
        self.run_due()

    def boot(self) -> None:
        """A reboot ends every running instance, then ONSTART tasks run."""
        self.running.clear()
        for task in list(self.tasks.values()):
            if task.schedule == "ONSTART":
                self.running[task.name.casefold()] = Instance(task.name, self._lines(task.action),
                                                              self.host.now())
        self.run_due()

    def run_due(self) -> None:
        """Trigger ONCE tasks whose time has come, and let due instances go on."""
        if self._busy:
            return
        self._busy = True
        try:
            now = self.host.now()
            for key, task in list(self.tasks.items()):
                if task.schedule == "ONCE" and task.due is not None and now >= task.due:
                    task.due = None
                    self._save()
                    self.running[key] = Instance(task.name, self._lines(task.action), now)
            for key, instance in list(self.running.items()):
                if instance.wake <= now:
                    self._continue(key, instance)
        finally:
            self._busy = False

    def _continue(self, key: str, instance: Instance) -> None:
        run_line, _read = self.console()
        while instance.lines:
            line = instance.lines.pop(0)
            stripped = line.strip()
            if not stripped or stripped.lower().startswith(("@echo", "rem ", "echo off")):
                continue
            ping = _PING.match(stripped)
            if ping:
                # ping sends N echoes one second apart: N-1 seconds pass.
                instance.wake = self.host.now() + max(int(ping.group(1)) - 1, 0)
                if instance.wake > self.host.now():
                    return
                continue
            result = run_line(stripped)
            self.history.append({"task": instance.task, "line": stripped, "rc": result.rc})
        self.running.pop(key, None)

    def _lines(self, action: str) -> List[str]:
        batch = _BATCH.match(action)
        if not batch:
            return [action]
        _run, read_file = self.console()
        text = read_file(batch.group(1))
        if text is None:
            self.history.append({"task": action, "line": action, "rc": 1,
                                 "error": "The system cannot find the file specified."})
            return []
        return text.replace("\r\n", "\n").split("\n")

    def _today_at(self, start: str) -> Optional[float]:
        now = datetime.datetime.fromtimestamp(self.host.now(), datetime.timezone.utc)
        hour, minute, *rest = [int(x) for x in start.split(":")]
        at = now.replace(hour=hour, minute=minute, second=rest[0] if rest else 0, microsecond=0)
        return at.timestamp() if at > now else None
