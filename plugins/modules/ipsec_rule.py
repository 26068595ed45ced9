#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/ipsec_rule.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipsec_rule
short_description: Manage one rule of a Windows IPsec static policy
version_added: 0.1.0
description:
  - Adds, updates or deletes one rule (filter list plus filter action) of a static IPsec policy, as
    KB 813878's "add a rule to an existing policy" step does.
  - The rule's filter list is named after the rule and holds exactly O(filters); block and permit rules
    share the filter actions C(Block) and C(Permit).
  - When the policy does not exist it is created, unassigned, and the result says so in RV(notes);
    use M(winsec.ipsec.ipsec_policy) to assign it.
options:
  policy:
    description: The name of the policy the rule belongs to.
    type: str
    required: true
  name:
    description: The rule's name; also the name of its filter list.
    type: str
    required: true
  filters:
    description:
      - The traffic the rule matches; required with O(state=present).
      - Each item is a KB 813878 filterspec string (V(*=0:1434:UDP) is any source to my address, UDP
        destination port 1434; V(0=*:1434:UDP) the outbound twin; V(+) instead of V(=) makes it
        mirrored) or a dict with the keys C(src), C(dst) (V(me), V(any), an address, a range C(a-b), a DNS
        name or V(DNS)/V(WINS)/V(DHCP)/V(GATEWAY)), C(src_mask), C(dst_mask), C(protocol) (V(ANY),
        V(ICMP), V(TCP), V(UDP), V(RAW) or 0-255), C(src_port), C(dst_port) (0 is any), C(mirrored)
        (default V(true)) and C(description).
    type: list
    elements: raw
  action:
    description: What the rule does with matching traffic.
    type: str
    choices: [block, permit, negotiate]
    default: block
  filteraction:
    description:
      - Name of the filter action; required with V(negotiate). Defaults to V(Block) or V(Permit).
      - ipseccmd gives every rule a filter action of its own, named after the rule; with that dialect
        leave this out or give the rule's name (a portable negotiate rule names its action after the rule).
    type: str
  methods:
    description: Quick-mode security methods of a V(negotiate) action, netsh C(qmsecmethods) style, e.g. V(ESP[3DES,SHA1]).
    type: list
    elements: str
  auth:
    description:
      - Main-mode authentication methods of the rule, in order of preference (netsh C(kerberos), C(psk),
        C(rootca); ipseccmd C(-a)). Omitted, the rule uses Kerberos, as netsh and ipseccmd do.
      - A pre-shared key is a secret; it is masked in every result, diff, warning, message and displayed
        command. The host's own tool receives it in its command line (netsh C(psk=), ipseccmd C(-a P:)),
        which Windows process auditing can see.
      - A key is never in the command line Ansible's connection sends and logs (winrm at C(-vvvvv)); it
        travels on the command's standard input, so it must be printable ASCII. The connection's log of
        the raw output is censored for this collection's commands (the store read back holds the keys).
        With O(confirm_timeout), an undo that restores an old key waits in a batch file on the host until
        the change is confirmed.
    type: list
    elements: dict
    suboptions:
      kind:
        description: V(kerberos), V(psk) (pre-shared key) or V(cert) (certificate authority).
        type: str
        choices: [kerberos, psk, cert]
        required: true
      value:
        description: The pre-shared key for V(psk), the certificate authority's name for V(cert); none for V(kerberos).
        type: str
        no_log: true
  description:
    description: The rule's description.
    type: str
  allow_lockout:
    description:
      - Allow a change that blocks the connection Ansible manages the host through (TCP 5985, 5986, 22 or
        the inventory's C(ansible_port), to or from the host) in the assigned policy or the dynamic filters.
      - Without it such a change fails before anything is sent; with it the result warns.
    type: bool
    default: false
  state:
    description:
      - V(present) makes the rule exist with exactly these filters and this action.
      - V(absent) deletes the rule, and its filter list and action when no other rule uses them. Deleting
        from a policy the host does not have is an error.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - winsec.ipsec.ipsec
  - winsec.ipsec.safety.confirm
  - winsec.ipsec.safety.store
  - winsec.ipsec.safety.domain_policy
author:
  - winsec.ipsec developers (@winsec)
"""

EXAMPLES = r"""
- name: Add a TCP 80 block to an existing policy (KB 813878, "add to an existing policy")
  winsec.ipsec.ipsec_rule:
    policy: Block UDP 1434 Filter
    name: Block Inbound TCP 80 Rule
    filters: ['*=0:80:TCP']

- name: Permit a management subnet, structured
  winsec.ipsec.ipsec_rule:
    policy: Server baseline
    name: Permit admin subnet
    action: permit
    filters:
      - {src: 10.1.0.0, src_mask: 255.255.0.0, dst: me, protocol: TCP, dst_port: 3389}

- name: Remove the rule again
  winsec.ipsec.ipsec_rule:
    policy: Block UDP 1434 Filter
    name: Block Inbound TCP 80 Rule
    state: absent
"""

RETURN = r"""
confirm:
  description:
    - With O(confirm_timeout), what became of the change's undo task on the host.
    - C(task) its name, C(timeout) the seconds it waits, C(undo) the commands it runs, C(status) one of
      V(confirmed) (the controller reached the host again and cancelled the undo), V(unreachable) (the host
      undoes the change by itself at the deadline), V(undone) (the undo had already run), V(cancelled)
      (the write's answer was lost, the host answered again and the undo was cancelled), V(absent) (the write's
      answer was lost and no undo task was found) or V(unverified).
  returned: when confirm_timeout is set and something changed
  type: dict
changed:
  description: Whether the task changed (in check mode, would change) the host.
  returned: always
  type: bool
commands:
  description:
    - The commands sent to the host (in check mode, that would be sent), in order.
    - Pre-shared keys are shown as C(********).
  returned: when the host was read
  type: list
  elements: str
before:
  description: The IPsec state read before the change; the same layout as RV(winsec.ipsec.ipsec_info#module:state).
  returned: when the host was read
  type: dict
after:
  description: The state read back after the change; in check mode, the predicted state (equal to what a real run reads back).
  returned: when the host was read
  type: dict
planned:
  description: The state the plan leads to, as predicted before writing; equal to RV(after) when the write went
    as planned. A failed task has no RV(after) read back from the host unless it could read one.
  returned: when something was to change
  type: dict
dialect:
  description: The tool that writes (detected, or the O(dialect) option).
  returned: when the host was read
  type: str
  sample: netsh
os:
  description: The Windows version read from the host.
  returned: when the host was read
  type: dict
  sample: {generation: modern, version: "6.3.20348", dialect: netsh, caption: Windows Server 2022 Standard}
domain_assignments:
  description:
    - With O(store=domain), which policy each Group Policy object of the domain assigns, by GPO display name
      (a GPO that assigns none is left out). Members run the policy of the GPO that applies to them.
  returned: when O(store=domain) and the directory was read
  type: dict
  sample: {Default Domain Policy: Block UDP 1434 Filter}
round_trips:
  description: WinRM commands this task sent to the host (1 to read, 1 more when something changed, 1 more to confirm it with O(confirm_timeout)).
  returned: when the host was read
  type: int
  sample: 2
notes:
  description: What is worth knowing about the change, e.g. that a policy was created unassigned.
  returned: when there are any
  type: list
  elements: str
diff:
  description: The IPsec state before and after, as netdiag-style text.
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
