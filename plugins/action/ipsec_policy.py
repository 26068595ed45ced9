# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""winsec.ipsec.ipsec_policy: a whole static policy (see plugins/modules/ipsec_policy.py)."""
from __future__ import annotations

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host, remote, safety
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import (
    precheck, rule_spec, rule_triple)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    HostState, IPsecError, Policy, ValidationError, name_key, parse_description, parse_name)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.plan import plan_policy, policy_objects
# The dialect renderers (dialects.module imports them lazily), imported here so that the forked workers
# inherit them: Ansible's collection loader compiles collection source anew on every import.
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import ipseccmd, ipsecpol, netsh  # noqa: F401
from ansible_collections.winsec.ipsec.plugins.plugin_utils.action import WinsecAction
from ansible_collections.winsec.ipsec.plugins.plugin_utils.docs import module_documentation
from ansible_collections.winsec.ipsec.plugins.modules import ipsec_policy as docs

WRITE_STATES = ("merged", "replaced", "overridden", "deleted")


# Parsed once, on import, before Ansible forks its workers (plugin_utils/docs.py).
MODULE_DOCS = module_documentation(docs)


def rule_specs(rules):
    """The `rules` option, validated (before any connection)."""
    return [rule_spec("rules[%d]" % index, item) for index, item in enumerate(rules or ())]


def desired_policy(p, specs, actual: HostState, dialect: str):
    """The Policy the task describes; settings it leaves out are taken from the host."""
    current = actual.policy(p["name"])
    description = p["description"]
    if description is None:
        description = current.description if current else ""
    polling = p["polling_interval"]
    if polling is None and current is not None:
        polling = current.polling_interval
    triples = [rule_triple(spec, dialect) for spec in specs]
    return policy_objects(current.name if current else p["name"], triples,
                          description=parse_description("description", description),
                          polling_interval=polling)


def planner_for(p, specs, dialect=""):
    def planner(actual):
        if p["state"] == "deleted":
            return plan_policy(actual, Policy(p["name"]), state="deleted")
        policy, objects = desired_policy(p, specs, actual, dialect or actual.os.dialect)
        state = p["state"] if p["state"] in WRITE_STATES else "merged"     # rendered: onto an empty store
        return plan_policy(actual, policy, rules_objects=objects, state=state, assign=p["assigned"])
    return planner


def only(state: HostState, name):
    """The report of `state`, narrowed to policy `name` when given."""
    report = host.state_report(state, guids=True)
    if name:
        report["policies"] = [pol for pol in report["policies"] if name_key(pol["name"]) == name_key(name)]
    return report


def rendered(p, specs):
    """Commands that create the policy on an empty store, in `dialect`'s syntax: no host involved."""
    empty = HostState()
    plan = planner_for(p, specs, p["dialect"])(empty)
    where = safety.store_options(p)
    commands = host.render_commands(plan, empty, p["dialect"], where["store"], where["domain"], where["gpo"])
    return {"changed": False, "rendered": [host.shown(c) for c in commands],
            "warnings": list(plan.warnings)}


def handle(ctx):
    p = ctx.params
    state = p["state"]
    if p["name"] is not None:
        p["name"] = parse_name("name", p["name"])
    if p["description"] is not None:        # checked now, before any connection
        parse_description("description", p["description"])
    where = safety.store_options(p)
    if where["store"] == "domain" and p["assigned"] is not None and not where["gpo"] and state in WRITE_STATES:
        raise ValidationError("gpo", "(omitted)", "the name of the Group Policy object that assigns the policy, "
                              "e.g. Default Domain Policy", "assigned is given with store=domain")
    if p["running_config"] is not None and state != "parsed":
        raise ValidationError("running_config", "(text)", "no running_config unless state is parsed")
    if state in ("deleted", "gathered", "parsed"):
        for option in ("rules", "assigned", "description", "polling_interval"):
            if p[option] is not None:
                raise ValidationError(option, p[option], "no %s with state=%s" % (option, state),
                                      "the state does not write the policy's settings")
    polling = p["polling_interval"]
    if polling is not None and not 1 <= polling <= 43200:     # [I] a month: our own sanity bound
        # 0 neither netsh (pollinginterval, dialects/netsh.py) nor ipseccmd (-p Name:N) takes: refused now
        raise ValidationError("polling_interval", polling, "minutes from 1 to 43200")
    if state == "parsed":
        try:
            saved = host.state_from_saved(p["running_config"])
        except IPsecError as err:
            raise ValidationError("running_config", "(text)", "saved `reg query` output, a .reg export or "
                                  "netdiag output", str(err)) from None
        return {"changed": False, "parsed": only(saved, p["name"])}
    specs = rule_specs(p["rules"])
    if state in WRITE_STATES + ("rendered",):     # the dialect known before connecting: refused now (issue 12.8)
        precheck(ctx, specs, policy=p["name"], description=p["description"])
    if state == "rendered":
        return rendered(p, specs)
    if state == "gathered":
        before, out, fact, unread = host.read_state(ctx.execute, p["dialect"] or "", host_name=ctx.host_name, **where)
        # dynamic rules or main-mode policies that could not be read: null in `gathered`, and why
        result = {"changed": False, "gathered": only(before, p["name"]), "round_trips": 1,
                  "warnings": list(unread), "ansible_facts": {"winsec_ipsec_state": fact}}
        if where["store"] == "domain":
            view = host.directory_view(remote.parse_transcript(out), where["gpo"])
            result["domain_assignments"] = dict(sorted(view.assignments.items()))
        return result
    return safety.run(ctx, planner_for(p, specs), dialect=p["dialect"] or "", **where)


class ActionModule(WinsecAction):
    DOCS = MODULE_DOCS
    REQUIRED_IF = [
        ("state", "merged", ("name",)), ("state", "replaced", ("name",)),
        ("state", "overridden", ("name",)), ("state", "deleted", ("name",)),
        ("state", "rendered", ("name", "dialect")), ("state", "parsed", ("running_config",))]
    handle = staticmethod(handle)
