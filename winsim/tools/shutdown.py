"""shutdown.exe: only a restart is emulated (`shutdown /r [/t N] [/f]`, `-r -t 0` on XP).

A restart keeps the registry (static policy) and loses the SPD (dynamic policy) (KB 813878). winsim
restarts at once whatever /t says; the transport decides what the open connection sees.
"""
from typing import List

from ..result import Result
from .faults import ToolFault, guarded


@guarded
def run(host, argv: List[str], stdin: str = "") -> Result:
    args = [a.lower().replace("-", "/", 1) if a.startswith("-") else a.lower() for a in argv[1:]]
    restart = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "/r":
            restart = True
        elif arg == "/f":
            pass
        elif arg in ("/t", "/c", "/d") and i + 1 < len(args):
            if arg == "/t" and not args[i + 1].isdigit():
                return Result(stderr="winsim: shutdown /t needs a number of seconds.\r\n", rc=87)
            i += 1
        elif arg in ("/s", "/p", "/h", "/l", "/a", "/i", "/g", "/hybrid"):
            return Result(stderr="winsim emulates only a restart (shutdown /r), not %s.\r\n" % argv[1 + i], rc=1)
        else:
            # [I] shutdown.exe prints its usage and exits 87 (ERROR_INVALID_PARAMETER) on bad arguments.
            return Result(stderr="%s: The parameter is incorrect.(87)\r\n" % argv[1 + i], rc=87)
        i += 1
    if not restart:
        return Result(stderr="winsim emulates only a restart: shutdown /r [/t N] [/f]\r\n", rc=1)
    host.check_fault(lambda: ToolFault(Result(stderr="Access is denied.(5)\r\n", rc=5)))
    host.reboot()
    return Result()
