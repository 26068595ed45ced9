# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_block: the emergency block as one task (see plugins/modules/ipsec_block.py)."""
from __future__ import annotations

import functools

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host, safety, startup
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import filters_option
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.block import (
    DYNAMIC_UNKNOWN, block_from_options, dynamic_count, plan_block, problems, summary)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import state_from_dict
# The dialect renderers (dialects.module imports them lazily), imported here so that the forked workers
# inherit them: Ansible's collection loader compiles collection source anew on every import.
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import ipseccmd, ipsecpol, netsh  # noqa: F401
from ansible_collections.winsec.ipsec.plugins.plugin_utils.action import WinsecAction
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_block as docs


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def handle(ctx):
    p = ctx.params
    # Every option is checked here, before any connection.
    block = block_from_options(p["ports"], p["filters"], p["name"], p["mode"], p["state"],
                               parse_filters=functools.partial(filters_option, dynamic=True),
                               dialect=p["dialect"] or "")
    decided = {}

    def planner(actual):
        # The engine may plan twice (its state fact was stale, or another writer won a race): the last plan
        # is the one written.
        plan, placement = plan_block(actual, block)
        decided.update(plan=plan, placement=placement)
        return plan

    try:
        result = safety.run(ctx, planner, dialect=p["dialect"] or "", dynamic=block.dynamic,
                            sides=(startup.Startup,) if p["reapply_at_startup"] and block.dynamic else ())
    except host.UnreadableListing as err:
        # The host's dynamic rules could not be read, so no plan was made and nothing was written: the
        # block is not in place and cannot be verified (a German host, say). Say so, never "none found".
        known = dict(err.result)
        found = ["%s: %s" % (DYNAMIC_UNKNOWN, err.problem)]
        known.update(changed=False, verified=False, problems=found,
                     summary="NOT blocked, NOT verified: %s" % found[0])
        raise host.HostError(known["summary"], **known) from None
    result.setdefault("planned", result["after"])
    # A real run judges what it read back; check mode judges its prediction.
    judged = state_from_dict(result["planned"] if ctx.check_mode else result["after"])
    placement = decided["placement"]
    found = problems(judged, block, placement)
    result.update(verified=not found, problems=found,
                  placement=placement.as_dict(dynamic_count(judged, block)),
                  summary=summary(block, placement, decided["plan"], judged, found, ctx.check_mode))
    if found:
        raise host.HostError(result["summary"], **result)
    return result


class ActionModule(WinsecAction):
    DOCS = MODULE_DOCS
    handle = staticmethod(handle)
