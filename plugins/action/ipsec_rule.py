# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_rule: one rule of a static policy (see plugins/modules/ipsec_rule.py)."""
from __future__ import annotations

import functools
from dataclasses import replace


from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import safety
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import (
    precheck, rule_spec, rule_triple)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    Rule, ValidationError, parse_name)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.plan import plan_rule
# The dialect renderers (dialects.module imports them lazily), imported here so that the forked workers
# inherit them: Ansible's collection loader compiles collection source anew on every import.
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import ipseccmd, ipsecpol, netsh  # noqa: F401
from ansible_collections.winsec.ipsec.plugins.plugin_utils.action import WinsecAction
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_rule as docs


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def handle(ctx):
    p = ctx.params
    policy = parse_name("policy", p["policy"])
    name = parse_name("name", p["name"])
    run = functools.partial(safety.run, ctx, dialect=p["dialect"] or "", **safety.store_options(p))
    if p["state"] == "absent":
        def remove(actual):
            if actual.policy(policy) is None:
                raise ValidationError("policy", policy, "the name of a policy on the host",
                                      "the host has no such policy, so it has no rule %r to delete" % name)
            return plan_rule(actual, policy, Rule(name), state="absent")
        return run(remove)

    spec = rule_spec("", p)
    precheck(ctx, [spec], policy=policy, policy_option="policy")      # the dialect known before connecting

    def ensure(actual):
        rule, flist, faction = rule_triple(spec, actual.os.dialect)
        existing = actual.policy(policy)
        current = existing.rule(name) if existing else None
        if p["description"] is None and current is not None:
            rule = replace(rule, description=current.description)      # omitted: left as it is
        plan = plan_rule(actual, policy, rule, flist, faction, state="present")
        if existing is None:
            plan = replace(plan, notes=plan.notes + (
                "policy %r did not exist: it is created unassigned (assign it with "
                "winsec.ipsec.ipsec_policy assigned: true)" % policy,))
        return plan
    return run(ensure)


class ActionModule(WinsecAction):
    DOCS = MODULE_DOCS
    REQUIRED_IF = [("state", "present", ("filters",))]
    handle = staticmethod(handle)
