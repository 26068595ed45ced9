# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.rollout_record: the emergency block's record, built and written on the controller
(see plugins/modules/rollout_record.py). One task for the whole estate: it reads the hosts' results
from hostvars instead of running anything per host."""
from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import rollout_record
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import spec_from_doc
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.plugin_utils.files import write_if_changed
from ansible_collections.winsec.ipsec.plugins.modules import rollout_record as docs

# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def plain(value):
    """Ansible's mapping and sequence types -> dicts and lists."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        _result, p = self.validate_argument_spec(argument_spec=spec_from_doc(MODULE_DOCS["options"]))
        hosts = [str(h) for h in p["hosts"]]
        present = p["state"] == "present"
        if p["runs"] is not None:
            # The records sliced runs published (set_stats): one record for the estate (merge_results.yml)
            try:
                record = rollout_record.merge(plain(p["runs"]), hosts)
            except ValueError as err:
                return {"failed": True, "changed": False, "msg": str(err)}
            if record["action"] != ("block" if present else "unblock"):
                return {"failed": True, "changed": False,
                        "msg": "runs: the runs recorded an emergency %s, but state=%s; pass state=%s"
                        % (record["action"], p["state"], "absent" if present else "present")}
            check = record["check_mode"]
        else:
            if p["results"] is not None:
                results = plain(p["results"])
            else:
                hostvars = (task_vars or {}).get("hostvars") or {}
                results = {}
                for host in hosts:
                    if host in hostvars:
                        # raw_get: the host's variables as stored, without templating them all again (a
                        # registered result is module output, never a template; hostvars[host] would
                        # render every host's whole result: seconds at 200 hosts)
                        value = hostvars.raw_get(host).get(p["register"])
                        if value is not None:
                            results[host] = value       # the builder copies only what it shows
            check = bool(self._task.check_mode)
            record = rollout_record.build(hosts, results, present, check, plain(p["about"]))
        out = {"changed": False, "record": record, "lines": rollout_record.lines(record),
               "failed_hosts": record["failed"], "files": {}}
        if p["dest"]:
            dest = os.path.abspath(os.path.expanduser(p["dest"]))
            stem = "emergency-%s%s" % (record["action"], "-check" if check else "")
            texts = {"json": rollout_record.to_json(record), "html": rollout_record.to_html(record, p["title"] or "")}
            out["files"] = {fmt: os.path.join(dest, "%s.%s" % (stem, fmt)) for fmt in texts}
            try:
                os.makedirs(dest, exist_ok=True)
                out["changed"] = any([write_if_changed(out["files"][fmt], texts[fmt]) for fmt in texts])
            except OSError as err:
                return dict(out, failed=True, msg="dest: cannot write the rollout record into %s: %s" % (dest, err))
        return out
