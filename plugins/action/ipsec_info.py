# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_info: everything read, in one round trip (see plugins/modules/ipsec_info.py)."""
from __future__ import annotations

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host, netdiag
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import exemptions
from ansible_collections.winsec.ipsec.plugins.plugin_utils.action import WinsecAction
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_info as docs


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def handle(ctx):
    state, _out, fact, unread = host.read_state(ctx.execute, ctx.params["dialect"] or "", host_name=ctx.host_name)
    os = state.os
    report = host.state_report(state, guids=True, everything=True)
    return {
        "changed": False,
        # dynamic rules or main-mode policies that could not be read: null in `state`, and why
        "warnings": list(unread),
        "state": report,
        "netdiag": netdiag.render(host.canonical(state), debug=True,
                                  **({"local_address": ctx.local_address} if ctx.local_address else {})),
        "exemptions": exemptions(os.generation, state.no_default_exempt),
        "dialect": os.dialect,
        "os": host.state_report(state)["os"],
        "round_trips": 1,
        "ansible_facts": {"winsec_ipsec_state": fact},
    }


class ActionModule(WinsecAction):
    DOCS = MODULE_DOCS
    handle = staticmethod(handle)
