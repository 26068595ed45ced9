# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Filters that turn ipsec_baseline's check results into drift reports (playbooks/drift_check.yml).

The work is done by plugins/module_utils/ipsec/drift.py (pure Python, unit tested); these are
thin wrappers. Documentation: the .yml files beside this one.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import drift


def _plain(value):
    """Ansible's lazy/tagged containers -> plain dicts and lists (the builder only reads them)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _report(report):
    report = _plain(report)
    if not isinstance(report, dict) or not {"counts", "hosts", "generated"} <= set(report):
        raise AnsibleFilterError("expected a report made by winsec.ipsec.drift_report, got %s"
                                 % type(report).__name__)
    return report


def drift_record(result, host, baseline=""):
    """One host's check-mode ipsec_policy result -> its drift record."""
    return drift.host_record(_plain(result) if result is not None else None, str(host), str(baseline or ""))


def drift_report(records, hosts=None, generated=None):
    """Drift records (and the hosts that should have one) -> the report."""
    if not isinstance(records, (list, tuple)):
        raise AnsibleFilterError("drift_report: expected a list of drift records, got %s" % type(records).__name__)
    return drift.build_report(_plain(list(records)), [str(h) for h in hosts or ()], generated)


def drift_json(report):
    return drift.to_json(_report(report))


def drift_html(report, title="IPsec baseline drift report"):
    return drift.to_html(_report(report), str(title))


def drift_junit(report, suite="ipsec baseline drift"):
    return drift.to_junit(_report(report), str(suite))


class FilterModule:
    def filters(self):
        return {"drift_record": drift_record, "drift_report": drift_report, "drift_json": drift_json,
                "drift_html": drift_html, "drift_junit": drift_junit}
