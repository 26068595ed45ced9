#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/ipsec_info.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipsec_info
short_description: Read the Windows IPsec policy store, dynamic filters and service state
version_added: 0.1.0
description:
  - Reads, in one round trip, everything the other winsec.ipsec modules manage - policies with their
    rules, filter lists, filters and filter actions; which policy is assigned, locally or by a domain GPO;
    the dynamic filters; the PolicyAgent service; the default exemptions (C(NoDefaultExempt)); the
    Windows version and its dialect - and the same picture as C(netdiag /test:ipsec /debug) style text.
  - For drift checks and reports; it never changes the host.
options: {}
extends_documentation_fragment:
  - winsec.ipsec.ipsec
author:
  - winsec.ipsec developers (@winsec)
"""

EXAMPLES = r"""
- name: What is assigned, and does it block Slammer?
  winsec.ipsec.ipsec_info:
  register: ipsec

- ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ ipsec.state.assigned or 'no policy assigned' }}"

- name: The KB's verification step, as text
  ansible.builtin.debug:
    var: ipsec.netdiag
"""

RETURN = r"""
state:
  description: Everything read from the host.
  returned: always
  type: dict
  contains:
    policies:
      description: The policies of the local store, each with its rules and whether it is the assigned one.
      type: list
      elements: dict
    filterlists:
      description: The filter lists with their filters.
      type: list
      elements: dict
    filteractions:
      description: The filter actions.
      type: list
      elements: dict
    assigned:
      description: The name of the assigned local policy; empty when none is.
      type: str
    domain:
      description: The policy a domain GPO assigns (it overrides the local one), or null.
      type: dict
    dynamic:
      description:
        - The dynamic filters in the PolicyAgent's memory (empty when the service is not running or the
          dialect's tool is not installed).
        - Null, with a warning, when the tool listed them in a layout the engine does not read (another display
          language than English, for one) or failed; the rules are then unknown, which is not the same as none.
      type: list
      elements: dict
      contains:
        filter:
          description:
            - What the rule matches. C(src) and C(dst) each hold C(kind) (V(any), V(me), V(ip), V(range), V(dns)
              or V(server)), C(value), C(mask) and C(end) (the last address of a range); C(protocol) is the IP
              protocol number (0 any), C(src_port) and C(dst_port) the ports (0 any), C(mirrored) whether the
              reverse direction matches too, and C(description) is empty.
          type: dict
          sample: {src: {kind: any, value: "", mask: "", end: ""}, dst: {kind: me, value: "", mask: "", end: ""},
                   protocol: 17, src_port: 0, dst_port: 1434, mirrored: false, description: ""}
        inbound:
          description: The action for inbound traffic.
          type: str
          choices: [permit, block, negotiate]
        outbound:
          description: The action for outbound traffic.
          type: str
          choices: [permit, block, negotiate]
        conntype:
          description: The connection type the rule applies to.
          type: str
          choices: [all, lan, dialup]
        mmpolicy:
          description:
            - The main-mode policy the rule was added with, as C(netsh ipsec dynamic show rule) names it.
              V(winsec-ipsec) marks the rules winsec.ipsec made; any other name, another tool's or an
              administrator's rule.
            - Empty when the rule has none, and always with ipseccmd (Windows XP), which shows none.
          type: str
          sample: winsec-ipsec
    mmpolicies:
      description:
        - The names of the dynamic main-mode policies the PolicyAgent holds (netsh hosts), sorted, including any
          that no rule uses. Those the rules name are listed even when C(netsh ipsec dynamic show mmpolicy)
          could not be read.
        - Empty with ipseccmd (Windows XP) and when the service is not running.
        - Null, with a warning, when the dynamic listings could not be read (see RV(state.dynamic)).
      type: list
      elements: str
      sample: [AdminBlock, winsec-ipsec]
    policyagent:
      description: The PolicyAgent service state (running, stopped, ...).
      type: str
    no_default_exempt:
      description: The NoDefaultExempt registry value, or null when it is not set.
      type: int
    os:
      description: The Windows version and its dialect.
      type: dict
exemptions:
  description: What the default exemptions are on this host (from NoDefaultExempt and the Windows version).
  returned: always
  type: str
  sample: Only IKE (ISAKMP) traffic is exempt from IPsec filtering
netdiag:
  description: The store as C(netdiag /test:ipsec /debug) style text, as KB 813878's verification step shows it.
  returned: always
  type: str
dialect:
  description: The tool that writes on this host (detected, or the O(dialect) option).
  returned: always
  type: str
os:
  description: The Windows version read from the host.
  returned: always
  type: dict
round_trips:
  description: WinRM commands this task sent (always 1).
  returned: always
  type: int
ansible_facts:
  description:
    - C(winsec_ipsec_state), the host's IPsec state as this task read it (or wrote and read back), with when it was
      read (C(read_at)) and the host's own fingerprints of it. A later task on the same host plans against it and,
      when the host is still as read, changes it in one WinRM command; with Ansible's fact cache this carries over
      between runs. It holds no pre-shared key (C(sections) is null when the state has one).
  returned: when the host was read
  type: dict
"""
