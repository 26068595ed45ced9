"""schtasks.exe: /create (ONCE, ONSTART), /run, /end, /delete, /query of one named task.

Switches as Microsoft documents them ([D] learn.microsoft.com/windows-server/administration/
windows-commands/schtasks-create, -run, -end, -delete, -query); XP and 2003 have schtasks.exe too
(Windows 2000 only `at`). The task store is winsim/scheduler.py. Message texts are [I] not verified
on real Windows beyond their well-known SUCCESS:/ERROR: shape. Remote (/s /u /p), XML, /change and
schedules other than ONCE and ONSTART are refused with an error naming what winsim does not emulate.
"""
import re
from typing import Dict, List

from ..result import Result
from ..state.scheduler import Task
from .faults import ToolFault, guarded

_VALUED = {"/tn", "/tr", "/sc", "/st", "/sd", "/ru", "/rp", "/rl", "/mo", "/delay"}
_FLAGS = {"/f", "/z", "/v", "/nh"}
_NOT_FOUND = "ERROR: The system cannot find the file specified.\r\n"


def _error(text: str, rc: int = 1) -> Result:
    return Result(stderr="ERROR: %s\r\n" % text, rc=rc)


def _parse(args: List[str]) -> Dict[str, str]:
    found: Dict[str, str] = {}
    i = 0
    while i < len(args):
        switch = args[i].lower().replace("-", "/", 1) if args[i][:1] in "-/" else args[i]
        if switch in _VALUED and i + 1 < len(args):
            found[switch] = args[i + 1]
            i += 2
        elif switch in _FLAGS:
            found[switch] = ""
            i += 1
        elif switch in ("/s", "/u", "/p", "/xml", "/it", "/np", "/ed", "/et", "/du", "/ri", "/k", "/m", "/d", "/i"):
            raise ValueError("winsim does not emulate schtasks %s" % args[i])
        else:
            raise ValueError("Invalid argument/option - '%s'." % args[i])
    return found


@guarded
def run(host, argv: List[str], stdin: str = "") -> Result:
    if len(argv) < 2:
        return _error("Invalid syntax. Type \"SCHTASKS /?\" for usage.")
    verb = argv[1].lower().replace("-", "/", 1)
    try:
        opts = _parse(argv[2:])
    except ValueError as err:
        return _error(str(err))
    scheduler = host.scheduler
    if verb == "/query" and "/tn" not in opts:
        lines = ["TaskName                                 Next Run Time          Status"]
        lines += ["%-40s N/A                    Ready" % t.name for t in scheduler.tasks.values()]
        return Result("\r\n".join(lines) + "\r\n")
    name = opts.get("/tn")
    if not name:
        return _error("Invalid syntax. Mandatory option '/tn' is missing.")
    if verb == "/create":
        return _create(host, name, opts)
    task = scheduler.find(name)
    if task is None:
        return Result(stderr=_NOT_FOUND, rc=1)
    if verb == "/query":
        state = "Running" if name.casefold() in scheduler.running else "Ready"
        return Result("TaskName: %s\r\nSchedule Type: %s\r\nTask To Run: %s\r\nStatus: %s\r\n"
                      % (task.name, task.schedule, task.action, state))
    if verb == "/run":
        host.check_fault(lambda: ToolFault(_error("Access is denied.")))
        scheduler.start(task.name)
        host.mark_changed()
        return Result('SUCCESS: Attempted to run the scheduled task "%s".\r\n' % task.name)
    if verb == "/end":
        host.check_fault(lambda: ToolFault(_error("Access is denied.")))
        if not scheduler.end(task.name):
            return _error('The scheduled task "%s" is not running.' % task.name)
        host.mark_changed()
        return Result('SUCCESS: The scheduled task "%s" has been terminated successfully.\r\n' % task.name)
    if verb == "/delete":
        if "/f" not in opts:
            return _error("winsim does not emulate the confirmation prompt: use schtasks /delete ... /f")
        host.check_fault(lambda: ToolFault(_error("Access is denied.")))
        scheduler.delete(task.name)
        host.mark_changed()
        return Result('SUCCESS: The scheduled task "%s" was successfully deleted.\r\n' % task.name)
    return _error("winsim does not emulate schtasks %s" % argv[1])


def _create(host, name: str, opts: Dict[str, str]) -> Result:
    schedule = opts.get("/sc", "").upper()
    if not schedule:
        return _error("Invalid syntax. Mandatory option '/sc' is missing.")
    if schedule not in ("ONCE", "ONSTART"):
        return _error("winsim emulates the schedules ONCE and ONSTART only, not %s." % schedule)
    if not opts.get("/tr"):
        return _error("Invalid syntax. Mandatory option '/tr' is missing.")
    # [D] schtasks create: /tr "cannot exceed 261 characters"; the message as users quote it [E].
    if len(opts["/tr"]) > 261:
        return _error("Invalid syntax. Value for '/tr' option cannot be more than 261 character(s).")
    start = opts.get("/st", "")
    legacy = host.personality.name in ("xp", "2003")
    # [D] Vista+ take HH:mm; XP's schtasks (and 2003's) want HH:MM:SS [I].
    pattern = r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$" if legacy else r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
    if schedule == "ONCE" and not re.match(pattern, start):
        return _error("Invalid Start Time." if start else "Invalid syntax. /st is mandatory for a ONCE schedule.")
    if host.scheduler.find(name) is not None and ("/f" not in opts or legacy):
        return _error("Cannot create a file when that file already exists.")
    host.check_fault(lambda: ToolFault(_error("Access is denied.")))
    task = Task(name=name, action=opts["/tr"], schedule=schedule, start=start, user=opts.get("/ru", ""))
    host.scheduler.create(task)
    host.mark_changed()
    warning = ""
    if schedule == "ONCE" and task.due is None and not legacy:
        warning = "WARNING: Task may not run because /ST is earlier than current time.\r\n"
    return Result(warning + 'SUCCESS: The scheduled task "%s" has successfully been created.\r\n' % name)
