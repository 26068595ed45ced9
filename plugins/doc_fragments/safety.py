# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Safety options of the modules that change filtering (plugins/module_utils/ipsec/safety.py)."""
from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options: {}
"""

    CONFIRM = r"""
options:
  confirm_timeout:
    description:
      - Commit-confirmed, in seconds (10 to 86400). In the write trip, before the change, the host is given a
        batch file with the change's undo commands and a scheduled task that runs it after this many seconds
        (C(schtasks /create /tn winsec-confirm-ID /sc once ... /ru SYSTEM), started at once with C(schtasks /run);
        the batch waits with C(ping -n)). The controller then reconnects over a new connection, reads the
        state back and cancels the task (C(schtasks /end), C(schtasks /delete /f)).
      - If the controller cannot reach the host again (for example the change blocked the management port with
        O(allow_lockout=true)), the task fails, says so in RV(confirm), and the host undoes the change by itself
        at the deadline.
      - Costs one more round trip when something changes (1 read + 1 write + 1 confirm). Not in check mode's
        trips, but check mode shows the schtasks commands in RV(commands).
      - A reboot before the deadline ends the waiting task (a static change then stays). Needs schtasks.exe
        (Windows XP and later).
    type: int
"""

    DOMAIN_POLICY = r"""
options:
  when_domain_policy:
    description:
      - What to do when a domain (GPO) IPsec policy is assigned to the host, which overrides every local
        policy (KB 813878), so that a local change takes no effect while it is assigned.
      - V(fail) fails the task after the read, before anything is written; V(warn) writes and warns;
        V(ignore) writes silently.
    type: str
    choices: [fail, warn, ignore]
    default: warn
"""
