# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.drift_report: write the drift report on the controller (see plugins/modules/drift_report.py).

Written here rather than through copy tasks: three files in-process, no module run per file.
"""
from __future__ import annotations

import getpass
import json
import os
import socket

from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_core_version

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import drift
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import spec_from_doc
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.plugin_utils.files import write_if_changed
from ansible_collections.winsec.ipsec.plugins.modules import drift_report as docs

FILES = {"json": "drift.json", "html": "drift.html", "junit": "drift.xml"}
RUN_FORMAT = 1      # what playbooks/drift_check.yml publishes with set_stats: format, hosts, records


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def plain(value):
    """Ansible's mapping and sequence types -> dicts and lists (the builder copies what it reads)."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def collection_version(root: str = COLLECTION_ROOT) -> dict:
    """The collection's name and version, and the file they were read from: MANIFEST.json in an
    installed collection (ansible-galaxy writes it from galaxy.yml), else galaxy.yml (a checkout)."""
    try:
        with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as handle:
            info = json.load(handle)["collection_info"]
        source = "MANIFEST.json"
    except (OSError, ValueError, KeyError):
        import yaml
        try:
            with open(os.path.join(root, "galaxy.yml"), encoding="utf-8") as handle:
                info = yaml.safe_load(handle) or {}
            source = "galaxy.yml"
        except (OSError, yaml.YAMLError) as err:
            return {"name": "winsec.ipsec", "version": "unknown", "source": "neither MANIFEST.json nor galaxy.yml "
                    "readable in %s: %s" % (root, err)}
    return {"name": "%s.%s" % (info.get("namespace"), info.get("name")), "version": str(info.get("version")),
            "source": "%s (%s)" % (source, root)}


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):          # no name for the uid (a container): say which uid
        return "uid %d" % os.getuid()


def merge_runs(runs, records, hosts):
    """The records and hosts of checks over parts of the estate (`runs`, as drift_check.yml publishes
    them) added to `records` and `hosts`, and the keys the runs were published under. Raises
    ValueError naming the run that does not fit."""
    records, hosts = list(records), list(hosts)
    owner = {str(r.get("host")): "records" for r in records if isinstance(r, dict)}
    for index, run in enumerate(runs):
        if not isinstance(run, dict) or run.get("format") != RUN_FORMAT or not isinstance(run.get("records"), list) \
                or not isinstance(run.get("hosts"), list):
            raise ValueError("runs[%d]: not what drift_check.yml publishes (format %d, hosts, records)" % (index, RUN_FORMAT))
        for record in run["records"]:
            name = str(record.get("host")) if isinstance(record, dict) else ""
            if name in owner:
                raise ValueError("runs[%d]: host %s was checked in %s too: a host belongs to one slice"
                                 % (index, name, owner[name]))
            owner[name] = "runs[%d]" % index
            records.append(record)
        hosts += [str(h) for h in run["hosts"]]
    return records, list(dict.fromkeys(hosts)), [str(run.get("published_as") or "?") for run in runs]


def summary(report, files):
    """One sentence: counts, who drifts, who could not be checked, where the page is."""
    counts, entries = report["counts"], report["hosts"].values()
    names = {status: ", ".join(e["host"] for e in entries if e["status"] == status) or "none"
             for status in ("drift", "error")}
    page = files.get("html") or next(iter(files.values()), "")
    return ("%d hosts: %d in sync, %d drifting, %d errors, %d with an emergency block in place. Drifting: %s. "
            "Errors: %s. Report: %s" % (counts["hosts"], counts["in_sync"], counts["drift"], counts["error"],
                                        counts["emergency_block"], names["drift"], names["error"], page))


def _differs(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() != text
    except OSError:
        return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        _result, p = self.validate_argument_spec(argument_spec=spec_from_doc(MODULE_DOCS["options"]))
        run = drift.run_info(socket.gethostname(), current_user(), collection_version(),
                             ansible_core=ansible_core_version)
        records, hosts = plain(p["records"]), [str(h) for h in p["hosts"]]
        if p["runs"] is not None:
            try:
                records, hosts, published = merge_runs(plain(p["runs"]), records, hosts)
            except ValueError as err:
                return {"failed": True, "changed": False, "msg": str(err)}
            run["merged_from"] = ", ".join(published)       # the runs' keys (AWX job ids): their job output
        run.update(plain(p["run"] or {}))
        report = drift.build_report(records, hosts, run=run)
        dest = os.path.abspath(os.path.expanduser(p["dest"]))
        render = {"json": lambda: drift.to_json(report), "html": lambda: drift.to_html(report, p["title"]),
                  "junit": lambda: drift.to_junit(report, p["title"])}
        texts = {fmt: render[fmt]() for fmt in dict.fromkeys(p["formats"])}
        files = {fmt: os.path.join(dest, FILES[fmt]) for fmt in texts}
        if self._task.check_mode:
            changed = any(_differs(path, texts[fmt]) for fmt, path in files.items())
        else:
            try:
                os.makedirs(dest, exist_ok=True)
                changed = [write_if_changed(files[fmt], texts[fmt]) for fmt in texts]
            except OSError as err:
                return {"failed": True, "changed": False, "report": report,
                        "msg": "dest: cannot write the report into %s: %s" % (dest, err)}
            changed = any(changed)
        return {"changed": changed, "report": report, "files": files, "summary": summary(report, files)}
