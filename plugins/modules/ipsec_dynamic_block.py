#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/ipsec_dynamic_block.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipsec_dynamic_block
short_description: Manage volatile (dynamic) IPsec block filters on Windows
version_added: 0.1.0
description:
  - Adds or deletes dynamic IPsec filters that block traffic at once, without a stored policy, as
    KB 813878's emergency step does (C(netsh ipsec dynamic add rule), C(ipseccmd -f [*=0:1434:UDP])).
  - Dynamic filters live in the IPsec Policy Agent's memory only; they vanish when the PolicyAgent service
    restarts or the host reboots. Every change says so in its warnings.
  - Needs the PolicyAgent service running; the task fails with the command that starts it otherwise.
  - With netsh (Windows Server 2003 and later) every dynamic rule has a main-mode policy. The rules this module
    adds use one of its own, C(winsec-ipsec), which it adds before its first rule and deletes with its last one.
    Rules that other tools or administrators added with main-mode policies of their own are left alone unless
    O(state=absent) names their filter or O(state=cleared) deletes them; their main-mode policies are never
    added, changed or deleted. Each rule in RV(before) and RV(after) names its main-mode policy (C(mmpolicy));
    with ipseccmd (Windows XP), which shows none, it is empty.
  - The task also reads the host's main-mode policies (RV(before) and RV(after) list their names as
    C(mmpolicies)). A C(winsec-ipsec) left without rules (its rules deleted by hand, an earlier run, a
    PolicyAgent quirk) is used by the next rules this module adds, not added again; a task that changes dynamic
    rules and leaves none of its own deletes it. A note says which. Should such a batch be undone, C(winsec-ipsec)
    comes back as this module makes it, with netsh's default settings.
  - The task plans from the dynamic rules and main-mode policies the host lists. When a listing is not in the layout
    the engine reads (only netsh's English one is known; another display language, say), they are unknown, and
    the task fails saying so, before it changes anything.
options:
  filters:
    description:
      - The traffic to block; required unless O(state=cleared).
      - Each item is a KB 813878 filterspec string, optionally in the block brackets the KB uses
        (V([*=0:1434:UDP]) or V(*=0:1434:UDP)), or a dict with the keys C(src), C(dst), C(src_mask),
        C(dst_mask), C(protocol), C(src_port), C(dst_port) and C(mirrored), as in M(winsec.ipsec.ipsec_rule).
    type: list
    elements: raw
  state:
    description:
      - V(present) makes the filters exist (blocking in both directions). A filter the host already has as
        another tool's rule counts as present and is left as it is (a note says so); if that rule does not block
        both ways, it is replaced by a blocking one that keeps its main-mode policy.
      - V(absent) deletes these filters, whoever added them; C(winsec-ipsec) goes with the last rule that uses
        it, other main-mode policies stay (a note names them when no rule uses them any more).
      - V(cleared) deletes every dynamic filter of the host, also those other tools or administrators added, and
        C(winsec-ipsec). Main-mode policies of other tools stay in place without rules (they filter nothing;
        winsec.ipsec does not read their settings, so it could not put them back if the batch had to be undone);
        the result's notes name them, and C(netsh ipsec dynamic delete mmpolicy name=NAME) deletes one.
    type: str
    choices: [present, absent, cleared]
    default: present
  allow_lockout:
    description:
      - Allow a change that blocks the connection Ansible manages the host through (TCP 5985, 5986, 22 or
        the inventory's C(ansible_port), to or from the host) in the assigned policy or the dynamic filters.
      - Without it such a change fails before anything is sent; with it the result warns.
    type: bool
    default: false
  reapply_at_startup:
    description:
      - Re-add the dynamic filters when the host starts. The module keeps one batch file,
        C(%SystemRoot%\winsec-reapply-dynamic.cmd), with the commands that add every dynamic filter of its own
        the host has after the task, and one scheduled task that runs it at boot as SYSTEM
        (C(schtasks /create /tn winsec-reapply-dynamic /sc onstart /ru SYSTEM /tr "cmd /c ...")).
      - Only this module's own filters come back at boot. With netsh those are the rules of its main-mode policy
        C(winsec-ipsec); rules that other tools or administrators added with main-mode policies of their own
        (including one whose actions this module corrected, which keeps its main-mode policy) are left out, and a
        note names them. With ipseccmd (Windows XP), which shows no main-mode policy, every dynamic filter counts
        as the module's own.
      - With V(true) and O(state=absent) or O(state=cleared), the file follows the filters left; when none of its
        own is left the task and the file are deleted. With V(false) an existing startup task is left as it is.
      - The startup file and task are read with the filters and written in the same write command, which undoes
        them with the rest if a later step fails; so no round trip is added. Cannot be combined with
        O(confirm_timeout), whose undo cannot put the startup file back.
      - A restart of the PolicyAgent service alone still drops the filters until the next boot.
    type: bool
    default: false
extends_documentation_fragment:
  - winsec.ipsec.ipsec
  - winsec.ipsec.safety.confirm
author:
  - winsec.ipsec developers (@winsec)
"""

EXAMPLES = r"""
- name: Block Slammer now, on every host, until the static policy is in place (KB 813878)
  winsec.ipsec.ipsec_dynamic_block:
    filters: ['[*=0:1434:UDP]']

- name: Lift the block
  winsec.ipsec.ipsec_dynamic_block:
    filters: ['[*=0:1434:UDP]']
    state: absent

- name: Remove every dynamic filter
  winsec.ipsec.ipsec_dynamic_block:
    state: cleared
"""

RETURN = r"""
startup_task:
  description:
    - With O(reapply_at_startup), the startup task that re-adds the dynamic filters at boot.
    - C(task) and C(file) its names, C(state) V(present) or V(absent), C(changed) whether this task changed
      it, C(commands) the lines of the batch file.
  returned: when reapply_at_startup is true and the host was read
  type: dict
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
