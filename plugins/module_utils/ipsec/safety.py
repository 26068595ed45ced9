# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The safety options every module that changes filtering shares, around host.run:
allow_lockout (lockout.py), confirm_timeout (confirm.py) and when_domain_policy.

`run(ctx, planner, ...)` is what ipsec_policy, ipsec_rule and ipsec_dynamic_block call instead of
host.run. Standard library only: what a lost connection raises and how to reconnect come with
the context (`ctx.lost_errors`, `ctx.reconnect`: plugins/plugin_utils/action.py).
"""
from __future__ import annotations

from . import guard, host, lockout
from .confirm import Confirm, LostConnection, check_timeout
from .dialects import check_host, check_text
from .model import IPsecError, ValidationError, parse_name

DOMAIN_POLICY_CHOICES = ("fail", "warn", "ignore")


def store_options(p) -> dict:
    """The store, domain and gpo options, checked before any connection: {store, domain, gpo} for run()."""
    store, domain, gpo = p.get("store") or "local", p.get("domain"), p.get("gpo")
    if domain is not None and store != "domain":
        raise ValidationError("domain", domain, "no domain unless store is domain")
    if domain is not None:
        check_host("domain", domain, ("dns",))
    if gpo is not None and store != "domain":
        raise ValidationError("gpo", gpo, "no gpo unless store is domain")
    if gpo is not None:
        check_text("gpo", parse_name("gpo", gpo))
        if '"' in gpo:
            raise ValidationError("gpo", gpo, "a GPO name without double quotes",
                                  "netsh's parsing of embedded quotes is not documented")
    if store == "domain" and p.get("confirm_timeout"):
        raise ValidationError("confirm_timeout", p["confirm_timeout"], "no confirm_timeout with store=domain",
                              "a domain change reaches the members only at their Group Policy refresh")
    return {"store": store, "domain": domain or "", "gpo": gpo or ""}


def controller_of(ctx) -> str:
    remote_host = str(ctx.task_vars.get("ansible_host") or ctx.task_vars.get("inventory_hostname") or "")
    try:
        port = int(ctx.task_vars.get("ansible_port") or 5986)
    except (TypeError, ValueError):
        port = 5986
    return lockout.controller_address(remote_host, port) if remote_host else ""


def run(ctx, planner, dialect: str = "", dynamic: bool = False, store: str = "local", domain: str = "",
        gpo: str = "", sides=()) -> dict:
    """host.run with the safety options; `sides`: changes beside the policy in the same write
    (startup.Startup for reapply_at_startup)."""
    p = ctx.params
    timeout = check_timeout(p.get("confirm_timeout"))
    if timeout and sides:
        raise ValidationError("confirm_timeout", timeout, "no confirm_timeout with reapply_at_startup",
                              "the host's undo batch file cannot put the startup task's own file back")
    choice = p.get("when_domain_policy") or "warn"
    if choice not in DOMAIN_POLICY_CHOICES:
        raise ValidationError("when_domain_policy", choice, ", ".join(DOMAIN_POLICY_CHOICES))
    execute = ctx.execute
    confirm = None
    if timeout:
        confirm = Confirm(timeout, tuple(getattr(ctx, "lost_errors", None) or (OSError,)),
                          getattr(ctx, "reconnect", None))
        execute = confirm.watch(ctx.execute)
    try:
        result = host.run(execute, planner, ctx.check_mode, dialect=dialect, dynamic=dynamic,
                          local_address=ctx.local_address, guard_ports=ctx.guard_ports,
                          allow_lockout=p["allow_lockout"], controller=controller_of(ctx), confirm=confirm,
                          when_domain_policy=choice, store=store, domain=domain, gpo=gpo,
                          fact=getattr(ctx, "state_fact", None), host_name=getattr(ctx, "host_name", ""),
                          sides=sides)
    except LostConnection as lost:
        if confirm is None or confirm.written_at is None:
            raise host.HostError(str(lost), changed=False) from None
        return _after_lost_write(ctx, confirm, dialect, dynamic)
    if confirm is None or ctx.check_mode or not result["changed"]:
        return result
    transcript = confirm.confirm(ctx.execute, dialect)
    if transcript is None:
        raise host.HostError(confirm.unreachable_message(), **dict(result, confirm=confirm.report("unreachable")))
    result["round_trips"] += 1
    return _confirmed(result, confirm, transcript, dialect, dynamic, getattr(ctx, "host_name", ""))


def _read_back(result, transcript, dialect, dynamic, host_name):
    """`after` and the state fact from the confirm trip's read-back."""
    now = host.state_from_transcript(transcript, dialect, need_dynamic=dynamic)
    result["after"] = host.state_report(now)
    fact = guard.state_fact(transcript, host._os_dict(now.os), dialect or now.os.dialect, host_name,
                            not host.holds_secret(now, transcript))
    result["ansible_facts"] = {guard.FACT: fact}


def _confirmed(result, confirm, transcript, dialect, dynamic, host_name=""):
    deleted = transcript.sections.get("confirm-delete")
    try:
        _read_back(result, transcript, dialect, dynamic, host_name)
    except IPsecError as err:
        raise host.HostError("the confirm trip could not read the state back: %s" % err,
                             **dict(result, confirm=confirm.report("unverified"))) from None
    if deleted is None or deleted.rc != 0:
        raise host.HostError("the host had already undone the change before the controller confirmed it (its "
                             "task %s was gone: %s); `after` is the state now"
                             % (confirm.name, (deleted.text.strip() if deleted else "no answer")[:200]),
                             **dict(result, confirm=confirm.report("undone")))
    result["confirm"] = confirm.report("confirmed")
    return result


def _after_lost_write(ctx, confirm, dialect, dynamic):
    """The write trip's answer never came: reach the host again, cancel its undo and say what is there."""
    transcript = confirm.confirm(ctx.execute, dialect, started=confirm.written_at)
    if transcript is None:
        raise host.HostError(confirm.unreachable_message(), changed=True, round_trips=confirm.calls,
                             confirm=confirm.report("unreachable"))
    result = {"changed": True, "round_trips": confirm.calls + 1}
    deleted = transcript.sections.get("confirm-delete")
    try:
        _read_back(result, transcript, dialect, dynamic, getattr(ctx, "host_name", ""))
    except IPsecError:
        pass
    status = "cancelled" if deleted is not None and deleted.rc == 0 else "absent"
    what = ("its undo task was cancelled" if status == "cancelled" else
            "its undo task was not there (the write never ran, or the host had already undone it)")
    raise host.HostError("the connection failed during the write (%s); the host answered again and %s, but this "
                         "run cannot tell whether the change was complete: `after` is the state now; run the task "
                         "again to converge" % (confirm.lost, what), **dict(result, confirm=confirm.report(status)))


__all__ = ["run", "controller_of", "store_options", "DOMAIN_POLICY_CHOICES"]
