"""gpupdate.exe (XP/2003 and later): refresh computer Group Policy, which brings a GPO-assigned
IPsec policy to the host (KB 813878; [D] cc782987 "gpupdate /target:computer").

Messages: Vista+ prints "Updating policy..." and "Computer Policy update has completed
successfully."; XP/2003 print "Refreshing Policy..." and "Computer Policy Refresh has completed."
([I] from memory, not verified).
"""
from typing import List

from ..result import Result
from .faults import ToolFault, guarded

USAGE = "ERROR: Invalid Syntax. Type \"gpupdate /?\" for usage.\r\n"      # [I]


@guarded
def run(host, argv: List[str], stdin: str = "") -> Result:
    target, force = "", False
    for arg in argv[1:]:
        low = arg.lower()
        if low.startswith("/target:") and low[8:] in ("computer", "user") and not target:
            target = low[8:]
        elif low == "/force" and not force:
            force = True
        elif low.startswith("/wait:") and low[6:].lstrip("-").isdigit():
            pass
        elif low in ("/sync", "/boot", "/logoff"):
            return Result(stderr="winsim does not emulate gpupdate %s.\r\n" % arg, rc=1)
        else:
            return Result(stderr=USAGE, rc=1)
    modern = host.profile.blob_flavor == "modern"
    if target != "user":
        host.check_fault(lambda: ToolFault(Result(
            stderr="Computer policy could not be updated successfully. The following errors were encountered:"
                   "\r\n\r\nAccess is denied.\r\n", rc=1)))
        host.refresh_group_policy(force=force)
    lines = ["Updating policy..." if modern else "Refreshing Policy...", ""]
    done = ("%s Policy update has completed successfully." if modern else "%s Policy Refresh has completed.")
    if target in ("", "computer"):
        lines.append(done % "Computer")
    if target in ("", "user"):
        lines.append(done % "User")
    return Result(stdout="\r\n".join(lines) + "\r\n\r\n")
