#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
# Documentation only: the work is done on the controller by plugins/action/rollout_record.py.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_record
short_description: Write the rollout record of an emergency block (JSON for a ticket, HTML for the incident)
version_added: 2.0.0
description:
  - Reads each targeted host's registered M(winsec.ipsec.ipsec_block) result and writes, on the controller,
    one JSON file (for a ticket or a script) and one self-contained HTML page (for the person handling the
    incident). Per host they give the result (done and verified, failed, not reached), when the host was read
    back and when it was written, what the run added or removed, what stays in force on the host (its own
    assigned policy, the block's own policy, a domain policy) and why a host failed.
  - A host in O(hosts) without a result is reported as not reached (the rollout stopped before its wave).
    A host whose result is unreachable, failed, skipped, not verified or names problems is reported as failed.
  - Returns the summary lines that C(playbooks/emergency_block.yml) prints and the failed hosts, so the summary
    is computed once on the controller.
  - With O(runs) it merges instead the records that runs over parts of the estate published (AWX job slices, a
    canary job; C(playbooks/merge_results.yml)) into the record one run over the whole estate writes.
  - Runs on the controller only; it never contacts a managed host.
options:
  hosts:
    description: The hosts the rollout targeted, in the order to list them (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  results:
    description:
      - Each host's M(winsec.ipsec.ipsec_block) result, by host name.
      - When omitted, each host's variable O(register) is read from C(hostvars).
    type: dict
  runs:
    description:
      - The records (this module's C(record)) of runs over disjoint parts of the estate, as
        C(playbooks/emergency_block.yml) publishes them with C(ansible.builtin.set_stats), to merge into one record.
      - Their host entries are kept as the runs made them; a host in O(hosts) that no run covered is not reached.
        O(results), O(register) and O(about) are not read (the runs carry their own C(about)).
      - Refused, before anything is written, when the runs are not parts of one rollout - another action (it must
        match O(state)) or check mode, other ports or block name, or one host in two runs.
    type: list
    elements: dict
  register:
    description: The variable the block task registered its result in (read from C(hostvars) unless O(results) is given).
    type: str
    default: worm_block_result
  state:
    description: What the rollout did - C(present) blocked, C(absent) unblocked. Words the lines and names the files.
    type: str
    choices: [present, absent]
    default: present
  dest:
    description:
      - The directory the record is written to (created when missing). A relative path is taken from the
        directory ansible-playbook runs in.
      - Files are C(emergency-block.json) and C(emergency-block.html) (C(emergency-unblock.*) for O(state=absent));
        a check-mode run writes C(emergency-block-check.*), so a dry run never overwrites the record of the real one.
      - When omitted nothing is written; the record is only returned.
    type: path
  about:
    description: What the run was asked to do (ports, mode, waves...), shown at the top of the page and kept in the JSON.
    type: dict
    default: {}
  title:
    description: The HTML page's title (default C(Emergency block - rollout record), or unblock).
    type: str
attributes:
  check_mode:
    support: full
    description: >-
      The record of a check-mode run says so (what would be done) and is written to its own C(-check) files;
      it is written under C(--check) too, as it is the product of the dry run.
  diff_mode:
    support: none
    description: Not supported.
  platform:
    platforms: posix
    support: full
    description: Runs on the controller only; it reads no host.
notes:
  - The times are those the hosts' read-backs carry (C(ansible_facts.winsec_ipsec_state.read_at), UTC). A change
    is written by the same WinRM command that reads the host back, so a changed host's written time is its
    read-back time.
author:
  - winsec.ipsec developers (@winsec)
"""

EXAMPLES = r"""
- name: Record the rollout (once, on the controller)
  winsec.ipsec.rollout_record:
    hosts: "{{ ansible_play_hosts_all }}"
    register: worm_block_result
    dest: /srv/incidents/slammer
    about:
      ports: "{{ worm_block_ports }}"
  run_once: true
  delegate_to: localhost
  register: record

- name: Show it
  ansible.builtin.debug:
    msg: "{{ record.lines }}"
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether a record file was written with new content.
  returned: always
  type: bool
record:
  description:
    - The record as written to the JSON file - C(format), C(generated), C(action) (block or unblock), C(check_mode),
      C(about), C(headline), C(counts) (hosts, done, failed, not_reached), C(failed) (host names) and C(hosts), by name,
      each with C(status) (done, failed, not_reached), C(line), C(reason), C(changed), C(read_at), C(written_at),
      C(changes), C(in_force), C(problems), C(warnings), C(commands), C(summary), C(dialect) and C(placement).
    - A merged record (O(runs)) also has C(merged_from), per run its C(published_as) (the key it was published under),
      C(generated), C(headline) and C(hosts) (their names).
  returned: always
  type: dict
lines:
  description: "The console summary - the headline, then one C(host: result) line per host."
  returned: always
  type: list
  elements: str
  sample: ["2 hosts: 1 blocked and verified, 1 failed, 0 not reached", "win1: blocked and verified: ...",
           "win2: NOT blocked, failed: unreachable: ..."]
failed_hosts:
  description: The hosts that failed (unreachable, failed, not verified), for the play that fails them.
  returned: always
  type: list
  elements: str
files:
  description: The absolute path of each file written, by format (empty when O(dest) is omitted).
  returned: always
  type: dict
  sample: {json: /srv/incidents/slammer/emergency-block.json, html: /srv/incidents/slammer/emergency-block.html}
"""
