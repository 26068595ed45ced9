# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Filters of role ipsec_baseline: drift_record (one host's ipsec_policy check result -> its drift
record) and drift_enforce_steps (how enforce leaves an emergency block alone).

The work is done by plugins/module_utils/ipsec/drift.py (pure Python, unit tested). Documentation:
drift_record.yml and drift_enforce_steps.yml beside this file. Module winsec.ipsec.drift_report
turns the records into reports.
"""
from __future__ import annotations

import datetime

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import drift
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import plain


def drift_record(result, host, baseline="", definition=None):
    """One host's check-mode ipsec_policy result -> its drift record. The filter runs right after the
    check (role ipsec_baseline), so now is when the controller received the result."""
    return drift.host_record(plain(result) if result is not None else None, str(host), str(baseline or ""),
                             definition=plain(definition) if definition is not None else None,
                             received_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def drift_enforce_steps(gathered, definition):
    """The store read by ipsec_policy state=gathered and the declared baseline -> how to enforce it
    leaving an emergency block alone (drift.enforce_steps)."""
    return drift.enforce_steps(plain(gathered or {}), drift.baseline_definition(plain(definition)))


class FilterModule:
    def filters(self):
        return {"drift_record": drift_record, "drift_enforce_steps": drift_enforce_steps}
