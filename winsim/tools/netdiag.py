"""netdiag.exe /test:ipsec [/debug] (2000/XP/2003 Support Tools), rendered by the engine's
`netdiag.render` from the host's running state (KB 813878 layout): "0" (me) shows as the host's
own address, its loopback address here.
"""
from typing import List

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.netdiag import render

from ..result import Result


def run(host, argv: List[str], stdin: str = "") -> Result:
    tests, debug = [], False
    for arg in argv[1:]:
        low = arg.lower()
        if low.startswith("/test:"):
            tests.append(low[6:])
        elif low in ("/debug", "/v"):
            debug = debug or low == "/debug"
        elif low in ("/q", "/l"):
            pass
        else:
            # [I] netdiag prints its usage for an unknown switch
            return Result(stderr="winsim: netdiag does not know %s; emulated: /test:ipsec [/debug] [/v] [/q]\n" % arg,
                          rc=1)
    if tests != ["ipsec"]:
        return Result(stderr="winsim emulates only netdiag /test:ipsec, not %s.\n"
                      % (" ".join("/test:" + t for t in tests) or "the full run"), rc=1)
    text = render(host.state(), local_address=host.address, debug=debug)
    return Result(stdout="\n" + text + "\nThe command completed successfully\n")
