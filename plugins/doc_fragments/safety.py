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

    STORE = r"""
options:
  store:
    description:
      - The policy store read and written. V(local) is the host's registry store.
      - V(domain) is the Active Directory store, for every domain member at once; a domain policy
        assigned by Group Policy overrides the local one. It is written with netsh (C(netsh ipsec static
        set store location=domain), each command through C(netsh -f)) and read with C(ldifde), whose LDIF
        export reads the same in every Windows display language. So the host the task runs on must be a
        domain member with C(ldifde.exe) (built into Windows Server 2003; on 2008 and later it comes with
        the AD DS role or the RSAT AD DS tools), and the connecting account needs
        rights to write the domain's C(CN=IP Security,CN=System) container. Run it on one host (a domain
        controller or a management server), not on every member.
      - Members apply a newly assigned domain policy at their next Group Policy refresh, and changes
        inside an assigned one at the policy's polling interval (KB 813878); the result notes this.
      - The compare-and-swap check before a write covers the local store only; the directory has no
        single stamp list to compare.
      - O(confirm_timeout) is not available with V(domain) (its undo runs on one host; a domain change
        reaches members only at their refresh).
    type: str
    choices: [local, domain]
    default: local
  domain:
    description: The domain whose store O(store=domain) reads and writes, as a DNS name; the host's own
      domain when omitted.
    type: str
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
