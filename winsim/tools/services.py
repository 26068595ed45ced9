"""sc.exe and net.exe for the PolicyAgent service (and a read-only WinRM, the service winsim itself is).

Stopping PolicyAgent discards dynamic policy (KB 813878 "net stop policyagent"; [D] cc739550).
Texts are sc.exe's and net.exe's English messages with their exit codes (sc: the Win32 error,
net: 2); sc prints everything to stdout, net prints errors to stderr.
"""
from typing import List

from ..result import Result
from .faults import ToolFault, guarded

POLICYAGENT = "PolicyAgent"
WINRM = "WinRM"


def _service(host, name: str):
    """Canonical service name for a service or display name, or None."""
    folded = name.casefold()
    if folded in (POLICYAGENT.casefold(), host.profile.service_display.casefold()):
        return POLICYAGENT
    if folded in (WINRM.casefold(), "windows remote management (ws-management)"):
        return WINRM
    return None


def _running(host, service: str) -> bool:
    return host.agent_running if service == POLICYAGENT else True


def _status_block(service: str, state: str, extra: str = "") -> str:
    codes = {"STOPPED": 1, "START_PENDING": 2, "STOP_PENDING": 3, "RUNNING": 4}
    controls = ("(STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)" if state == "RUNNING"
                else "(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)")
    lines = ["", "SERVICE_NAME: %s " % service,
             "        TYPE               : 20  WIN32_SHARE_PROCESS  ",
             "        STATE              : %d  %s " % (codes[state], state)]
    if state != "STOPPED":
        lines.append("                                %s" % controls)
    lines += ["        WIN32_EXIT_CODE    : 0  (0x0)",
              "        SERVICE_EXIT_CODE  : 0  (0x0)",
              "        CHECKPOINT         : 0x0",
              "        WAIT_HINT          : %s" % ("0x7d0" if state == "START_PENDING" else "0x0")]
    return "\r\n".join(lines) + "\r\n" + extra


def _sc_fail(call: str, code: int, message: str) -> Result:
    return Result(stdout="[SC] %s FAILED %d:\r\n\r\n%s\r\n\r\n" % (call, code, message), rc=code)


@guarded
def run_sc(host, argv: List[str], stdin: str = "") -> Result:
    args = argv[1:]
    if args and args[0].startswith("\\\\"):
        return Result(stdout="[SC] winsim does not emulate remote service control.\r\n", rc=1)
    if len(args) != 2 or args[0].lower() not in ("query", "queryex", "stop", "start"):
        # [I] sc prints its usage text for anything it does not understand; winsim emulates these four.
        return Result(stdout="DESCRIPTION:\r\n        winsim emulates only: sc query|queryex|stop|start <service>\r\n",
                      rc=1639)
    op, service = args[0].lower(), _service(host, args[1])
    if service is None:
        call = "EnumQueryServicesStatus:OpenService" if op.startswith("query") else "OpenService"
        return _sc_fail(call, 1060, "The specified service does not exist as an installed service.")
    running = _running(host, service)
    if op in ("query", "queryex"):
        extra = "        PID                : %d\r\n        FLAGS              : \r\n" % (1234 if running else 0)
        return Result(stdout=_status_block(service, "RUNNING" if running else "STOPPED",
                                           extra if op == "queryex" else ""))
    if service == WINRM:
        return _sc_fail("ControlService", 5, "Access is denied.")    # winsim will not stop its own transport
    if op == "stop":
        if not running:
            return _sc_fail("ControlService", 1062, "The service has not been started.")
        host.check_fault(lambda: ToolFault(_sc_fail("OpenService", 5, "Access is denied.")))
        host.stop_agent()
        return Result(stdout=_status_block(service, "STOP_PENDING"))
    if running:
        return _sc_fail("StartService", 1056, "An instance of the service is already running.")
    host.check_fault(lambda: ToolFault(_sc_fail("OpenService", 5, "Access is denied.")))
    host.start_agent()
    return Result(stdout=_status_block(service, "START_PENDING",
                                       "        PID                : 1234\r\n        FLAGS              : \r\n"))


def _net_help(number: int, text: str) -> Result:
    return Result(stderr="%s\r\n\r\nMore help is available by typing NET HELPMSG %d.\r\n\r\n" % (text, number), rc=2)


@guarded
def run_net(host, argv: List[str], stdin: str = "") -> Result:
    args = [a for a in argv[1:] if a.lower() not in ("/y", "/yes")]
    if len(args) < 2 or args[0].lower() not in ("stop", "start"):
        return Result(stderr="winsim emulates only: net stop|start <service>\r\n", rc=1)
    op, service = args[0].lower(), _service(host, " ".join(args[1:]))
    if service is None:
        return _net_help(2185, "The service name is invalid.")
    display = host.profile.service_display if service == POLICYAGENT else "Windows Remote Management (WS-Management)"
    running = _running(host, service)
    if service == WINRM:
        return Result(stderr="System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n", rc=2)
    denied = Result(stderr="System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n", rc=2)
    if op == "stop":
        if not running:
            return _net_help(3521, "The %s service is not started." % display)
        host.check_fault(lambda: ToolFault(denied))
        host.stop_agent()
        return Result(stdout="The %s service is stopping.\r\nThe %s service was stopped successfully.\r\n\r\n"
                      % (display, display))
    if running:
        return _net_help(2182, "The requested service has already been started.")
    host.check_fault(lambda: ToolFault(denied))
    host.start_agent()
    return Result(stdout="The %s service is starting.\r\nThe %s service was started successfully.\r\n\r\n"
                  % (display, display))

