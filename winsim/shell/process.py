"""The command a thread is running for, and whether WinRM has terminated it.

[MS-WSMV] 2.2.5.6 (SignalCodeEnumeration): the `terminate` signal "Terminates the shell or
command", as does deleting the shell ([MS-WSMV] 4.7.5 shows CTRL+C ending a command in progress).
Windows ends the processes; winsim's commands are Python threads, so each shell checks `check()`
before every statement and before starting every program, and a mutex wait checks it too: a
terminated command stops at tool-call granularity, runs no `finally` block and releases nothing
(what it owns is abandoned, winsim/shell/mutexes.py).
"""
import contextlib
import threading
from typing import Callable, Iterator, Optional

_current = threading.local()


class ProcessKilled(BaseException):
    """The command was terminated. A BaseException: no script-level handler may catch it."""


@contextlib.contextmanager
def running(kill: threading.Event,
            console: Optional[Callable[[str, str], None]] = None) -> Iterator[None]:
    """Run the body as the command whose termination `kill` signals (one thread per command);
    `console(stream, text)` hands output to the client while the command runs."""
    previous = getattr(_current, "kill", None), getattr(_current, "console", None)
    _current.kill, _current.console = kill, console
    try:
        yield
    finally:
        _current.kill, _current.console = previous


def console() -> Optional[Callable[[str, str], None]]:
    """Where the running command's console output goes as it is written (None: at its end)."""
    return getattr(_current, "console", None)


def kill_event() -> Optional[threading.Event]:
    return getattr(_current, "kill", None)


def check() -> None:
    kill = kill_event()
    if kill is not None and kill.is_set():
        raise ProcessKilled()
