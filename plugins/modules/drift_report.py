#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/drift_report.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: drift_report
short_description: Write a compliance drift report (JSON, HTML, JUnit XML) from ipsec_baseline check results
version_added: 0.1.0
description:
  - Turns the drift records that role C(winsec.ipsec.ipsec_baseline) leaves in C(ipsec_baseline_drift) (check
    mode) into one report and writes it on the controller, into O(dest) - C(drift.json) (per host C(in_sync),
    C(status), the C(summary) lines, the netdiag-style C(diff), the C(commands) that would fix it, C(errors)),
    C(drift.html) (one self-contained page, hosts at a glance and each drifting host's diff) and C(drift.xml)
    (JUnit XML, a testcase per host - drift is a failure, an unreachable or failed host an error).
  - A host in O(hosts) without a record is reported as an error, so hosts that were unreachable or failed
    before the check still appear.
  - For an audit, every report says who ran the check (the controller and the user), with which collection
    version, the baseline's full declared content (pre-shared keys masked) with a digest and the hosts checked
    against it, and when each host was read (the C(read_at) of the host fact C(winsec_ipsec_state) the check
    returned, else when the controller received the result, and the report says which).
  - A host with an emergency block in place (objects named C(winsec-emergency ...), made by
    M(winsec.ipsec.ipsec_block)) is marked so and not counted as drift; see role C(winsec.ipsec.ipsec_baseline).
  - With O(runs) it merges the drift records that checks over parts of the estate published (AWX job slices;
    C(playbooks/merge_results.yml)) into the report one check over the whole estate writes.
  - Runs on the controller only; it never contacts a managed host. Use it on C(localhost).
options:
  records:
    description: The drift records, one per host (C(hostvars[host].ipsec_baseline_drift)).
    type: list
    elements: dict
    default: []
  runs:
    description:
      - What checks over disjoint parts of the estate published with C(ansible.builtin.set_stats)
        (C(playbooks/drift_check.yml)) - each C(format) (1), C(published_as) (its key), C(hosts) (the hosts it
        covered) and C(records) (their drift records) - added to O(records) and O(hosts). The report's C(run) section
        lists the keys under C(merged_from) (with AWX they end in the job ids, which lead to each host's job output).
      - Refused, before anything is written, when one is not in that shape or two hold a record of the same host.
    type: list
    elements: dict
  hosts:
    description: The hosts the check covered; each one without a record is reported as an error.
    type: list
    elements: str
    default: []
  dest:
    description:
      - The directory the report is written to (created when missing).
      - A relative path is taken from the directory ansible-playbook runs in.
    type: path
    required: true
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [json, html, junit]
    default: [json, html, junit]
  title:
    description: The HTML page's title (also the JUnit test suite's name).
    type: str
    default: IPsec baseline drift report
  run:
    description:
      - More facts about this run for the report's C(run) section, for example a change ticket or a CI job
        URL. The controller's host name (C(controller)), the user running Ansible (C(user)), the
        collection's version (C(collection), from its C(MANIFEST.json) when installed, else C(galaxy.yml))
        and the ansible-core version (C(ansible_core)) are always recorded; keys given here override them.
    type: dict
attributes:
  check_mode:
    support: full
    description: Builds the report and returns it, and says which files would change, without writing them.
  diff_mode:
    support: none
    description: Not supported.
  platform:
    platforms: posix
    description: The controller.
author:
  - winsec.ipsec developers
"""

EXAMPLES = r"""
- name: Write the drift report of the hosts checked by role winsec.ipsec.ipsec_baseline (mode check)
  winsec.ipsec.drift_report:
    records: "{{ groups['windows'] | map('extract', hostvars) | selectattr('ipsec_baseline_drift', 'defined')
                 | map(attribute='ipsec_baseline_drift') | list }}"
    hosts: "{{ groups['windows'] }}"
    dest: ./drift-report
  register: drift
"""

RETURN = r"""
changed:
  description: Whether a report file was written with new content.
  returned: always
  type: bool
report:
  description:
    - The report as written to drift.json - C(format) (2), C(counts) (hosts, in_sync, drift, error,
      emergency_block), C(generated), C(run) (controller, user, collection, ansible_core and O(run)),
      C(baselines) (names), C(baseline_definitions) (each declared baseline in full with its C(digest) and
      C(hosts)) and C(hosts), a record per host by name (see the filter P(winsec.ipsec.drift_record#filter)).
  returned: always
  type: dict
summary:
  description: The result in one sentence - counts, the drifting hosts, the hosts with errors, the report's page.
  returned: success
  type: str
  sample: "3 hosts: 1 in sync, 1 drifting, 1 errors, 0 with an emergency block in place. Drifting: win2. Errors: win3.
    Report: /srv/drift-report/drift.html"
files:
  description: The absolute path of each file, by format.
  returned: always
  type: dict
  sample: {json: /srv/drift-report/drift.json, html: /srv/drift-report/drift.html, junit: /srv/drift-report/drift.xml}
"""
