# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_exemptions: the NoDefaultExempt value (see plugins/modules/ipsec_exemptions.py)."""
from __future__ import annotations

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import exemptions
from ansible_collections.winsec.ipsec.plugins.plugin_utils.action import WinsecAction
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_exemptions as docs


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def handle(ctx):
    p = ctx.params
    return exemptions.run(ctx.execute, p["value"], p["state"], ctx.check_mode, dialect=p["dialect"] or "",
                          host_name=ctx.host_name, fact=ctx.state_fact)


class ActionModule(WinsecAction):
    DOCS = MODULE_DOCS
    REQUIRED_IF = [("state", "present", ("value",))]
    handle = staticmethod(handle)
