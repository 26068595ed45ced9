#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/ipsec_exemptions.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipsec_exemptions
short_description: Manage which traffic Windows exempts from IPsec filtering (NoDefaultExempt)
version_added: 0.1.0
description:
  - Sets the C(NoDefaultExempt) registry value, which decides what traffic IPsec filters never see, so what
    a KB 813878 block really covers. Windows 2000, XP and Server 2003 keep it under
    C(HKLM\SYSTEM\CurrentControlSet\Services\IPSEC), Vista and later under
    C(HKLM\SYSTEM\CurrentControlSet\Services\PolicyAgent).
  - C(0) exempts broadcast, multicast, RSVP, Kerberos and IKE; C(1) stops exempting Kerberos and RSVP;
    C(2) stops exempting multicast and broadcast (Server 2003 and later); C(3) exempts only IKE (Server 2003
    and later; their default). Windows 2000 and XP know only C(0) and C(1).
  - Windows reads the value when it starts (Server 2003 needs a restart, Microsoft cc756041 and KB 810207;
    Vista and later read it when the IPsec Policy Agent starts); the result says so in RV(reboot_required).
  - One round trip to read; one more, which writes with C(reg add) (or C(reg delete)) and reads back, when
    something changes.
options:
  value:
    description: The NoDefaultExempt value; required with O(state=present).
    type: int
  state:
    description:
      - V(present) sets O(value).
      - V(absent) deletes the value, which restores the Windows version's default (C(0) on 2000 and XP, C(3) later).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winsec.ipsec.ipsec
author:
  - winsec.ipsec developers (@winsec)
"""

EXAMPLES = r"""
- name: Exempt only IKE, so that a block also covers Kerberos, RSVP, broadcast and multicast
  winsec.ipsec.ipsec_exemptions:
    value: 3
  register: exempt

- name: Restart when Windows still runs with the old value
  ansible.windows.win_reboot:
  when: exempt.reboot_required
"""

RETURN = r"""
changed:
  description: Whether the task changed (in check mode, would change) the value.
  returned: always
  type: bool
before:
  description: The NoDefaultExempt value read before the task; null when it was not set.
  returned: when the host was read
  type: int
after:
  description: The value read back after the change (in check mode, the predicted one); null when not set.
  returned: when the host was read
  type: int
planned:
  description: The state the plan leads to, as predicted before writing; equal to RV(after) when the write went
    as planned. A failed task has no RV(after) read back from the host unless it could read one.
  returned: when something was to change
  type: dict
exemptions:
  description: What traffic the value in RV(after) exempts on this Windows version, in words.
  returned: when the host was read
  type: str
reboot_required:
  description:
    - Whether Windows still filters by the old value - true after a change, until the host restarts (on Vista
      and later a restart of the PolicyAgent service also reads it).
  returned: when the host was read
  type: bool
commands:
  description: The commands sent to the host (in check mode, that would be sent).
  returned: when the host was read
  type: list
  elements: str
os:
  description: The Windows version read from the host.
  returned: when the host was read
  type: dict
dialect:
  description: The dialect of the host (informational; the change is made with reg.exe).
  returned: when the host was read
  type: str
round_trips:
  description: WinRM commands this task sent (1 to read, 1 more when something changed).
  returned: when the host was read
  type: int
diff:
  description: The value and its meaning before and after.
  returned: when changed
  type: dict
ansible_facts:
  description:
    - C(winsec_ipsec_state), the host's IPsec state as this task read it (or wrote and read back), with when it was
      read (C(read_at)) and the host's own fingerprints of it. A later task on the same host plans against it and,
      when the host is still as read, changes it in one WinRM command; with Ansible's fact cache this carries over
      between runs. It holds no pre-shared key (C(sections) is null when the state has one).
  returned: when the host was read
  type: dict
"""
