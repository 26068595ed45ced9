# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Options and notes every winsec.ipsec module shares."""
from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  dialect:
    description:
      - The Windows tool that writes the change.
      - C(netsh) (C(netsh ipsec static|dynamic)) on Windows Server 2003, Vista/2008 and later;
        C(ipseccmd) (XP SP2 / Server 2003 Support Tools) on Windows XP;
        C(ipsecpol) (Windows 2000 Resource Kit), which serves only C(ipsec_policy) with C(state=rendered)
        because Windows 2000 has no WinRM.
      - When omitted, the module detects the Windows version in its read and picks that version's tool.
    type: str
    choices: [netsh, ipseccmd, ipsecpol]
attributes:
  check_mode:
    support: full
    description: Reads and plans only; returns the commands it would send and the predicted state.
  diff_mode:
    support: full
    description: The diff shows the IPsec state before and after as C(netdiag /test:ipsec /debug) style text.
  platform:
    platforms: windows
    support: full
    description: Target OS/families that can be operated against.
    details: Windows hosts, reached over any Windows connection (the tests use winrm); only the host's own tools (reg, sc, netsh, ipseccmd) run there.
notes:
  - >-
    The module runs on the controller and sends the host only native commands, so it needs no
    PowerShell modules on the host; use it with C(gather_facts: false) on hosts without PowerShell 5.1.
  - A task reads the host in one round trip; only when something changes does it send one more, which
    runs the whole batch, stops at the first failure, undoes the commands already run and reads the new
    state back to verify it.
  - Before its first command the write checks that the IPsec store is still the one the change was planned
    from (compare and swap, on the objects' C(whenChanged) stamps and C(ActivePolicy)); if another writer
    changed it in between, nothing is written and the task fails saying what changed. The stamps have
    one-second resolution, so an edit made within the same second as the object's previous write, before
    the read, is not seen; added, deleted, assigned or unassigned objects always are. Dynamic filters are
    not covered.
  - A connection lost during the write leaves the host either as it was or fully changed, because the batch,
    once started, runs to its end on the host (a WinRM shell's command is not stopped by its client going
    away; not verified on real Windows); run the task again to find out which, and to finish.
seealso:
  - name: Microsoft KB 813878
    description: How to block specific network protocols and ports by using IPSec.
    link: https://learn.microsoft.com/en-us/troubleshoot/windows-server/windows-security/block-network-protocols-ports-with-ipsec
"""
