#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/ipsec_block.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipsec_block
short_description: Block ports on Windows at once and persistently, keeping the policy the host enforces
version_added: 0.2.0
description:
  - The emergency block of KB 813878 as one task. Dynamic filters block at once, and a static block rule that
    survives a reboot is placed so that whatever the host already enforces stays in force.
  - One round trip reads the host; at most one more writes the dynamic filters, the static objects and the
    assignment together, undoes all of it if a command fails, and reads the result back. When an earlier task left
    the host's state as the fact C(winsec_ipsec_state), the block is planned from it and the write command itself
    checks that the host is still as the fact says (one WinRM command in all); if it is not, that command only
    reads, and the block is planned again from what it read. RV(verified), RV(problems) and RV(summary) judge the
    read-back against the intent.
  - Every static object it adds is named C(winsec-emergency <name>) (the rule, its filter list and its filter
    action share that name; so does the block's own policy when it needs one). The drift check reports such
    objects as an emergency block in place, not as drift.
  - Where the static rule goes, and what is then in force, follows from KB 813878. Only one local policy is
    assigned at a time, and a domain policy assigned by Group Policy overrides every local one.
  - A local policy is assigned (a corporate baseline, a server isolation policy, one enforced with
    C(ipsec_baseline)) and no domain policy applies. The rule is added to that policy (the KB's "add a block rule
    to an existing policy"); it stays assigned, so its own rules and the block are in force together.
    RV(placement.static) is V(assigned_policy).
  - No local policy is assigned and no domain policy applies. The block gets its own policy,
    C(winsec-emergency <name>), and assigns it; the block is in force. RV(placement.static) is V(own_policy).
  - A domain (GPO) policy is in force. The local store has no effect, so nothing local is written or assigned;
    only the dynamic filters apply, until the host restarts. A warning and RV(summary) say that the persistent
    block belongs in the domain store (C(playbooks/domain_rollout.yml), or M(winsec.ipsec.ipsec_policy) with
    C(store=domain)). RV(placement.static) is V(none). With O(mode=static) nothing would block, so the task fails.
  - A rule of the block left in a policy that is no longer in force (placed while that policy was assigned) is
    moved to the policy in force.
  - O(state=absent) removes exactly what the block added, from wherever it is, and leaves the host as it was
    before the block. The rule leaves the policy that holds it, which stays assigned with its own rules. The
    block's own policy is unassigned and deleted once it holds no other rule. The rule's filter list and filter
    action go when no other rule uses them. The block's dynamic filters go; dynamic rules another tool added
    with the same filters stay, and a note names them.
  - A task whose read-back (in check mode, whose prediction) does not meet the intent fails, with RV(problems)
    in its message.
options:
  ports:
    description:
      - Ports to block. Each entry blocks inbound traffic to this host's O(ports[].port) (the KB's
        V(*=0:PORT:PROTO)), outbound traffic to that port elsewhere (V(0=*:PORT:PROTO)), or both.
      - O(ports) and O(filters) may be given together; at least one of them is required.
    type: list
    elements: dict
    suboptions:
      protocol:
        description: V(TCP), V(UDP), V(ICMP), V(ANY), V(RAW) or an IP protocol number 0-255.
        type: str
        required: true
      port:
        description: The port, 1-65535 for TCP and UDP; 0 or omitted blocks every port (and is the only value other
          protocols take).
        type: int
      direction:
        description: V(in) (to this host), V(out) (from this host) or V(both).
        type: str
        choices: [in, out, both]
        default: both
  filters:
    description:
      - More traffic to block, as KB 813878 filterspecs (V(*=0:1434:UDP), also in the block brackets the KB uses,
        V([*=0:1434:UDP])) or dicts with the keys of M(winsec.ipsec.ipsec_rule)'s O(winsec.ipsec.ipsec_rule#module:filters).
    type: list
    elements: raw
  name:
    description:
      - The block's name; its objects are named C(winsec-emergency <name>). The same name in a later task means the
        same block (to change its ports, or to remove it with O(state=absent)).
      - Dynamic filters carry no name. When a later task drops ports from a block, its static rule follows, but the
        dynamic filters of the dropped ports stay until a task with O(state=absent) names them.
      - Defaults to what is blocked, e.g. V(UDP 1434) or V(UDP 1434, TCP 445 in). It may not contain V(:), which
        ipseccmd reads as a policy's polling interval, nor (unless O(dialect=ipseccmd)) a double quote, which netsh
        cannot carry. It is checked before any host is contacted.
    type: str
  mode:
    description:
      - V(dynamic) blocks at once with dynamic filters, which vanish when the PolicyAgent service restarts or the
        host reboots (O(reapply_at_startup) brings them back at boot); V(static) writes the persistent block rule;
        V(both) does both in the same write.
      - With O(state=absent) the mode says which parts are removed.
    type: str
    choices: [both, dynamic, static]
    default: both
  state:
    description: V(present) blocks; V(absent) removes what the block added and restores what was in force.
    type: str
    choices: [present, absent]
    default: present
  reapply_at_startup:
    description:
      - Keep a startup task that re-adds this module's dynamic filters at boot, as
        M(winsec.ipsec.ipsec_dynamic_block)'s O(winsec.ipsec.ipsec_dynamic_block#module:reapply_at_startup) does
        (one more round trip to check it, one more to write it when it differs). Only with a dynamic O(mode).
    type: bool
    default: false
  allow_lockout:
    description:
      - Allow a block of the connection Ansible manages the host through (TCP 5985, 5986, 22 or the inventory's
        C(ansible_port), to or from the host).
      - Without it such a block fails before anything is sent; with it the result warns.
    type: bool
    default: false
extends_documentation_fragment:
  - winsec.ipsec.ipsec
  - winsec.ipsec.safety.confirm
  - winsec.ipsec.safety.domain_policy
author:
  - winsec.ipsec developers
"""

EXAMPLES = r"""
- name: Block SQL Slammer (UDP 1434) in and out, now and persistently, keeping the host's own policy in force
  winsec.ipsec.ipsec_block:
    ports:
      - {protocol: UDP, port: 1434}
  register: block

- name: Show the one-line result
  ansible.builtin.debug:
    msg: "{{ block.summary }}"

- name: Block inbound TCP 445 and a KB filterspec under one name, dynamic filters only
  winsec.ipsec.ipsec_block:
    name: worm 2026-12
    ports:
      - {protocol: TCP, port: 445, direction: in}
    filters: ['*=0:135:TCP']
    mode: dynamic

- name: Lift the Slammer block and restore what the host enforced before
  winsec.ipsec.ipsec_block:
    ports:
      - {protocol: UDP, port: 1434}
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the task changed (in check mode, would change) the host.
  returned: always
  type: bool
verified:
  description:
    - Whether the state read back (in check mode, the predicted one) meets the intent. With O(state=present) the
      block's rule is in the policy in force and that policy is assigned (unless a domain policy is in force), and
      every filter is a dynamic filter blocking both ways (for a dynamic O(mode)); with O(state=absent) none of
      the block's objects is left. The task fails when it is false.
    - False, with a problem saying so, when the block has dynamic filters (O(mode=both) or V(dynamic)) and the
      host's dynamic rules could not be read (their listing is not in the layout the engine reads; another display
      language than English, for one). Nothing is then written, since nothing could be planned against them.
  returned: when the host was read
  type: bool
problems:
  description: What keeps RV(verified) false, one item each; empty when verified.
  returned: when the host was read
  type: list
  elements: str
  sample: ["the assigned policy is none, not 'Corp Baseline'"]
summary:
  description:
    - One line for the rollout summary. Starts with V(blocked and verified), V(unblocked and verified) or, when not
      verified, V(blocked, NOT verified:) and the problems; in check mode with V(check mode, would be).
  returned: when the host was read
  type: str
  sample: "blocked and verified; static: 1 rule added to the assigned policy Corp Baseline; dynamic filters: 2"
placement:
  description:
    - Where the static block is (O(state=present)) or was (O(state=absent)).
    - C(static) V(own_policy), V(assigned_policy) or V(none); C(policy) the policy that holds the rule (null for
      V(none)); C(reason) why; C(dynamic) how many of the block's filters the host has as dynamic filters (null
      when its dynamic rules could not be read).
  returned: when the host was read
  type: dict
  sample: {static: assigned_policy, policy: Corp Baseline, reason: "policy 'Corp Baseline' is assigned: ...", dynamic: 2}
before:
  description: The IPsec state read before the change; the same layout as RV(winsec.ipsec.ipsec_info#module:state).
  returned: when the host was read
  type: dict
after:
  description: The state read back after the change (nothing to change, or check mode; the state read, or the
    prediction).
  returned: when the host was read
  type: dict
planned:
  description: The state the plan leads to (equal to RV(after) when the write went as planned).
  returned: when the host was read
  type: dict
commands:
  description: The commands sent to the host (in check mode, that would be sent), in order.
  returned: when the host was read
  type: list
  elements: str
diff:
  description: The IPsec state before and after, as netdiag-style text.
  returned: when changed
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
round_trips:
  description: WinRM commands this task sent to the host (1 to read, 1 more when something changed; 1 in all for a
    change planned from a current state fact; more with O(confirm_timeout)).
  returned: when the host was read
  type: int
  sample: 2
notes:
  description: What is worth knowing about the change.
  returned: when there are any
  type: list
  elements: str
startup_task:
  description: With O(reapply_at_startup), the startup task, as M(winsec.ipsec.ipsec_dynamic_block) returns it.
  returned: when reapply_at_startup is true and the mode is dynamic or both
  type: dict
confirm:
  description: With O(confirm_timeout), what became of the change's undo task on the host, as
    M(winsec.ipsec.ipsec_policy) returns it.
  returned: when confirm_timeout is set and something changed
  type: dict
ansible_facts:
  description: C(winsec_ipsec_state), the host's state as read (or written and read back), which a later task on
    the same host plans against.
  returned: when the engine returns it
  type: dict
"""
