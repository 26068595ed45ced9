# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Filter drift_record: one host's ipsec_policy check result -> its drift record (role ipsec_baseline).

The work is done by plugins/module_utils/ipsec/drift.py (pure Python, unit tested). Documentation:
drift_record.yml beside this file. Module winsec.ipsec.drift_report turns the records into reports.
"""
from __future__ import annotations

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import drift


def _plain(value):
    """Ansible's lazy/tagged containers -> plain dicts and lists (the builder only reads them)."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def drift_record(result, host, baseline=""):
    """One host's check-mode ipsec_policy result -> its drift record."""
    return drift.host_record(_plain(result) if result is not None else None, str(host), str(baseline or ""))


class FilterModule:
    def filters(self):
        return {"drift_record": drift_record}
