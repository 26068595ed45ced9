# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_exemptions: the NoDefaultExempt value (see plugins/modules/ipsec_exemptions.py)."""
from __future__ import annotations

import functools

from ansible.plugins.action import ActionBase
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import exemptions
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import run_action
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_exemptions as docs


@functools.lru_cache(maxsize=1)
def documentation():
    return get_docstring(docs.__file__, fragment_loader, collection_name="winsec.ipsec", is_module=True)[0]


# Parsed on import: Ansible's linear strategy imports this plugin in the controller before it forks a
# worker per host, so the workers inherit the parsed docs instead of each parsing the YAML again.
documentation()


def handle(ctx):
    p = ctx.params
    return exemptions.run(ctx.execute, p["value"], p["state"], ctx.check_mode, dialect=p["dialect"] or "")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        return run_action(self, task_vars, documentation(), handle,
                          required_if=[("state", "present", ("value",))])
