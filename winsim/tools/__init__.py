"""The native tools a winsim host can run, one module each; `resolve` finds one by its argv[0].

Each tool is `run(host, argv, stdin) -> Result`. Which tools a host has, and in which folder, is
its personality's business (winsim/personalities.py).
"""
from typing import Callable, Optional

from ..personalities import Personality
from ..result import Result
from . import gpupdate, ipseccmd, ldifde, netdiag, netsh, reg, schtasks, services, shutdown, sysinfo

Tool = Callable[..., Result]

TOOLS = {
    "netsh": netsh.run,
    "reg": reg.run,
    "sc": services.run_sc,
    "net": services.run_net,
    "gpupdate": gpupdate.run,
    "shutdown": shutdown.run,
    "schtasks": schtasks.run,
    "ipseccmd": ipseccmd.run,
    "ipsecpol": ipseccmd.run,
    "netdiag": netdiag.run,
    "ldifde": ldifde.run,
    "hostname": sysinfo.run_hostname,
    "ver": sysinfo.run_ver,
}


def _folder_matches(folder: str, installed: str, profile: Personality) -> bool:
    folder = folder.rstrip("\\/").replace("/", "\\").casefold()
    for alias in ("%systemroot%", "%windir%"):
        if folder.startswith(alias):
            folder = profile.system_root.casefold() + folder[len(alias):]
    return folder == installed.casefold()


def resolve(profile: Personality, program: str) -> Optional[Tool]:
    """argv[0] -> the tool, case-insensitively, with or without `.exe`, bare (on PATH: system32
    and the Support Tools folder, which its installer adds) or with its install folder."""
    program = program.strip().strip('"')
    folder, _, base = program.replace("/", "\\").rpartition("\\")
    base = base.casefold()
    if base.endswith(".exe"):
        base = base[:-4]
        if base == "ver":       # a cmd.exe built-in, not a program
            return None
    installed = profile.tool_folder(base)
    if installed is None or base not in TOOLS:
        return None
    if folder and not _folder_matches(folder, installed, profile):
        return None
    return TOOLS[base]
