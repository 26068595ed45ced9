# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The ipsecpol dialect (Windows 2000 Resource Kit): ipseccmd's grammar ([D] RK "IPSecPol Syntax",
KB 813878 gives the same commands for both tools), rendered offline.

Windows 2000 has no WinRM, so these commands are not run by the remote layer: they are written into
a .cmd script that an admin runs, and cmd.exe reads every line. Each value must therefore pass
quoting.cmd_safe (no %, !, double quote or control characters), which rejects it naming the option.
"""
from __future__ import annotations

from typing import List, Sequence

from ..model import Change, HostState
from ..quoting import cmd_safe
from . import Command
from . import ipseccmd

TOOL = "ipsecpol"


def render(changes: Sequence[Change], *, before: HostState, after: HostState, store: str = "local",
           domain: str = "") -> List[Command]:
    return ipseccmd.render(changes, before=before, after=after, store=store, domain=domain, tool=TOOL,
                           check=cmd_safe)
