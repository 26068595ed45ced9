# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_dynamic_block: volatile block filters (see plugins/modules/ipsec_dynamic_block.py)."""
from __future__ import annotations

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import safety, startup
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import filters_option, precheck
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import DynamicRule, ValidationError
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.plan import plan_dynamic
# The dialect renderers (dialects.module imports them lazily), imported here so that the forked workers
# inherit them: Ansible's collection loader compiles collection source anew on every import.
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import ipseccmd, ipsecpol, netsh  # noqa: F401
from ansible_collections.winsec.ipsec.plugins.plugin_utils.action import WinsecAction
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_dynamic_block as docs


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def handle(ctx):
    p = ctx.params
    if p["state"] == "cleared":
        if p["filters"]:
            raise ValidationError("filters", p["filters"], "no filters with state=cleared",
                                  "cleared deletes every dynamic filter")
        rules = ()
    else:
        rules = tuple(DynamicRule(f) for f in filters_option("filters", p["filters"], dynamic=True))
        if p["state"] == "present":      # the dialect known before connecting
            precheck(ctx, filters=[r.filter for r in rules])
    return safety.run(ctx, lambda actual: plan_dynamic(actual, rules, state=p["state"]),
                      dialect=p["dialect"] or "", dynamic=True,
                      sides=(startup.Startup,) if p["reapply_at_startup"] else ())


class ActionModule(WinsecAction):
    DOCS = MODULE_DOCS
    REQUIRED_IF = [("state", "present", ("filters",)), ("state", "absent", ("filters",))]
    handle = staticmethod(handle)
