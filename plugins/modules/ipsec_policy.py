#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/ipsec_policy.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipsec_policy
short_description: Manage a Windows IPsec static policy, its rules and its assignment
version_added: 0.1.0
description:
  - Manages one static IPsec policy of the Windows policy store (KB 813878) in the style of the
    ansible.netcommon resource modules, over any Windows connection.
  - A rule binds a filter list (the traffic) to a filter action (block, permit or negotiate). The rule's
    filter list is named after the rule; block and permit rules share the filter actions C(Block) and
    C(Permit).
  - The host is read in one round trip, from the registry store
    (C(HKLM\SOFTWARE\Policies\Microsoft\Windows\IPSec)), so reading does not depend on the display language.
  - O(state=rendered) and O(state=parsed) never contact the host.
options:
  name:
    description:
      - The policy's name.
      - Required for every state but V(gathered) and V(parsed), where it narrows the result to this policy.
    type: str
  description:
    description: The policy's description. Left as it is when omitted.
    type: str
  polling_interval:
    description:
      - How often, in minutes, the policy agent polls the store for changes (netsh C(pollinginterval)).
      - Left as it is when omitted; C(180) for a new policy.
    type: int
  assigned:
    description:
      - V(true) assigns the policy. Windows assigns one local policy at a time, so assigning it
        unassigns the one assigned before; the result warns which one.
      - V(false) unassigns it. Left as it is when omitted; a new policy is created unassigned.
      - With O(store=domain) it means assigned through the Group Policy object O(gpo), which it then
        requires.
    type: bool
  gpo:
    description:
      - With O(store=domain), the display name of the Group Policy object through which O(assigned)
        assigns or unassigns the policy (C(netsh ... set policy assign=yes gponame=...)), for example
        C(Default Domain Policy). Required when O(assigned) is given with O(store=domain); the task fails
        before writing when the domain has no GPO of that name.
      - A domain policy that any GPO assigns cannot be deleted; unassign it first.
    type: str
  rules:
    description:
      - The policy's rules. With V(merged) they are added or updated and other rules stay; with
        V(replaced) and V(overridden) they become the policy's only rules.
    type: list
    elements: dict
    suboptions:
      name:
        description: The rule's name; also the name of its filter list.
        type: str
        required: true
      filters:
        description:
          - The traffic the rule matches, each either a KB 813878 filterspec string
            (V(*=0:1434:UDP) is any source to my address, UDP destination port 1434; V(0+*::ICMP) is
            mirrored) or a dict with the keys C(src), C(dst) (V(me), V(any), an address, a range
            C(a-b), a DNS name or V(DNS)/V(WINS)/V(DHCP)/V(GATEWAY)), C(src_mask), C(dst_mask),
            C(protocol) (V(ANY), V(ICMP), V(TCP), V(UDP), V(RAW) or 0-255), C(src_port),
            C(dst_port) (0 is any), C(mirrored) (default V(true)) and C(description).
        type: list
        elements: raw
        required: true
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
  state:
    description:
      - V(merged) adds or updates the given settings and rules.
      - V(replaced) makes the given rules the policy's only rules.
      - V(overridden) makes the given policy the only policy in the store (others are deleted).
      - V(deleted) deletes the policy (unassigning it first) and the filter lists and actions no other rule uses.
      - V(gathered) reads the store and returns it in RV(gathered).
      - V(rendered) returns in RV(rendered) the commands that would create the policy on an empty store in
        O(dialect)'s syntax, without contacting the host; this is how a Windows 2000 host (which has no
        WinRM) gets C(ipsecpol) commands.
      - V(parsed) reads O(running_config) instead of the host and returns it in RV(parsed).
    type: str
    choices: [merged, replaced, overridden, deleted, gathered, rendered, parsed]
    default: merged
  allow_lockout:
    description:
      - Allow a change that blocks the connection Ansible manages the host through (TCP 5985, 5986, 22 or
        the inventory's C(ansible_port), to or from the host) in the assigned policy or the dynamic filters.
      - Without it such a change fails before anything is sent; with it the result warns.
    type: bool
    default: false
  running_config:
    description:
      - With O(state=parsed), saved output to read - the text of
        C(reg query "HKLM\SOFTWARE\Policies\Microsoft\Windows\IPSec" /s), a regedit C(.reg) export of
        that key, or C(netdiag /test:ipsec /debug) output.
    type: str
extends_documentation_fragment:
  - winsec.ipsec.ipsec
  - winsec.ipsec.safety.confirm
  - winsec.ipsec.safety.store
  - winsec.ipsec.safety.domain_policy
author:
  - winsec.ipsec developers (@winsec)
"""

EXAMPLES = r"""
- name: Block SQL Slammer (UDP 1434) in and out, and assign the policy (KB 813878)
  winsec.ipsec.ipsec_policy:
    name: Block UDP 1434 Filter
    assigned: true
    rules:
      - name: Block Inbound UDP 1434 Rule
        filters: ['*=0:1434:UDP']
      - name: Block Outbound UDP 1434 Rule
        filters: ['0=*:1434:UDP']

- name: The same rule written as a structured filter
  winsec.ipsec.ipsec_policy:
    name: Block UDP 1434 Filter
    rules:
      - name: Block Inbound UDP 1434 Rule
        filters:
          - {src: any, dst: me, protocol: UDP, dst_port: 1434, mirrored: true}

- name: Unassign, then delete the policy
  winsec.ipsec.ipsec_policy:
    name: Block UDP 1434 Filter
    assigned: false
- winsec.ipsec.ipsec_policy:
    name: Block UDP 1434 Filter
    state: deleted

- name: The Slammer block in the domain store, assigned through the Default Domain Policy GPO
  winsec.ipsec.ipsec_policy:
    name: Block UDP 1434 Filter
    store: domain
    domain: corp.example
    gpo: Default Domain Policy
    assigned: true
    rules:
      - name: Block Inbound UDP 1434 Rule
        filters: ['*=0:1434:UDP']
  delegate_to: dc1.corp.example
  run_once: true

- name: ipsecpol commands for a Windows 2000 host (no connection is made)
  winsec.ipsec.ipsec_policy:
    name: Block UDP 1434 Filter
    assigned: true
    rules:
      - name: Block Inbound UDP 1434 Rule
        filters: ['*=0:1434:UDP']
    state: rendered
    dialect: ipsecpol
  register: w2k

- name: Read a saved netdiag /test:ipsec /debug output
  winsec.ipsec.ipsec_policy:
    state: parsed
    running_config: "{{ lookup('file', 'netdiag-host1.txt') }}"
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
gathered:
  description: With O(state=gathered), the store read from the host (the O(name) policy only, when given), in the
    layout of RV(winsec.ipsec.ipsec_info#module:state); dynamic rules or main-mode policies the engine could not
    read are null there, with a warning.
  returned: state is gathered
  type: dict
rendered:
  description: With O(state=rendered), the commands in O(dialect)'s syntax.
  returned: state is rendered
  type: list
  elements: str
  sample: ['ipsecpol -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -f *=0:1434:UDP -n BLOCK']
parsed:
  description: With O(state=parsed), the store read from O(running_config).
  returned: state is parsed
  type: dict
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
