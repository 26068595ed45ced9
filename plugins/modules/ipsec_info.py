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
  - winsec.ipsec developers
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
      description: The dynamic filters in the PolicyAgent's memory.
      type: list
      elements: dict
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
"""
