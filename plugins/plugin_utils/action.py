# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The one action-plugin class winsec.ipsec's modules share, and its flow on the controller:
validate the task's arguments (before any connection) -> build the handler's Context (its
connection: plugin_utils/host_command.py) -> run the handler -> engine errors as failed results.

Each plugin names its documentation, its handler and its `required_if`.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Dict

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import NoLogError
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import filter_loader, test_loader

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import spec_from_doc
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.host import MANAGEMENT_PORTS, HostError
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import IPsecError
from ansible_collections.winsec.ipsec.plugins.plugin_utils.host_command import LOST_ERRORS, reconnect, run_script

# Ansible loads its builtin Jinja test and filter plugins (ansible/plugins/{test,filter}/*.py) on the
# first test or filter a template uses (`is defined`, `default`: roles/worm_block's task arguments),
# and a forked worker starts from what the main process had loaded (ansible-core 2.19
# plugins/loader.py, Jinja2Loader._ensure_non_collection_wrappers). The strategy imports an action
# plugin in the main process before it forks that task's workers, so loading them here, once, spares
# every worker (a host, a task) that load: about 5 ms of CPU each (measured on a winsim estate).
for _loader in (test_loader, filter_loader):
    try:
        for _plugin in _loader.all():
            pass
    except Exception:   # noqa: BLE001 - a warm-up only: a worker that needs a plugin loads it itself
        pass


class Context:
    """What a module's handler gets: validated parameters, check mode and the host connection
    (`execute(script)`; `reconnect()` and `lost_errors` for commit-confirmed, safety.py)."""

    def __init__(self, params: Dict[str, Any], check_mode: bool, execute, task_vars: Dict[str, Any],
                 reconnect=None, lost_errors=(OSError,)):
        self.params = params
        self.check_mode = check_mode
        self.execute = execute
        self.task_vars = task_vars
        self.reconnect = reconnect
        self.lost_errors = lost_errors

    @property
    def host_name(self) -> str:
        """The inventory host this task runs for (a state fact is only ever used for the host it came from)."""
        return str(self.task_vars.get("inventory_hostname") or "")

    @property
    def state_fact(self):
        """The state fact an earlier task left for this host (guard.py decides whether it is usable)."""
        facts = self.task_vars.get("ansible_facts")
        return facts.get("winsec_ipsec_state") if isinstance(facts, dict) else None

    @property
    def guard_ports(self):
        """TCP ports the connection may use: WinRM, SSH, and the inventory's own port."""
        port = self.task_vars.get("ansible_port")
        try:
            extra = (int(port),) if port not in (None, "") else ()
        except (TypeError, ValueError):
            extra = ()
        return tuple(dict.fromkeys(MANAGEMENT_PORTS + extra))

    @property
    def local_address(self) -> str:
        """The host's address as the inventory knows it ('' if not an IP): netdiag shows `me` as it."""
        for name in ("ansible_host", "inventory_hostname"):
            try:
                return str(ipaddress.ip_address(str(self.task_vars.get(name, ""))))
            except ValueError:
                continue
        return ""


def _naming_error(spec, spec_kwargs, args, err) -> str:
    """Ansible's validation message, or the first one that names an option when Ansible's first error
    is the no_log scan's own (a list option given a plain string: "dictionary requested, could not
    parse JSON or key=value" names nothing, the conversion error after it does)."""
    errors = ArgumentSpecValidator(spec, **spec_kwargs).validate(dict(args)).errors
    if errors and isinstance(errors[0], NoLogError):
        named = [str(e) for e in errors if not isinstance(e, NoLogError)]
        if named:
            return "; ".join(named)
    return str(err)


def run_action(action, task_vars, doc: Dict[str, Any], handler, **spec_kwargs) -> Dict[str, Any]:
    """The body of every winsec.ipsec action plugin's run().

    Validates the task's arguments against the spec derived from `doc` (an invalid argument
    fails here, before any connection), then calls `handler(Context)`. Engine errors become
    failed results naming the option; a HostError keeps what was learnt (before, commands).
    """
    spec = spec_from_doc(doc["options"])
    try:
        _result, params = action.validate_argument_spec(argument_spec=spec, **spec_kwargs)
    except Exception as err:    # AnsibleActionFail, with Ansible's first error only
        return {"failed": True, "changed": False, "msg": _naming_error(spec, spec_kwargs, action._task.args, err)}

    def execute(script: str):
        return run_script(action, script)

    try:
        ctx = Context(params, bool(action._task.check_mode), execute, task_vars or {},
                      reconnect=reconnect(action._connection), lost_errors=LOST_ERRORS)
        return handler(ctx)
    except HostError as err:
        return dict({"changed": False}, **err.result, failed=True, msg=str(err))
    except IPsecError as err:
        return {"failed": True, "changed": False, "msg": str(err)}


class WinsecAction(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    DOCS: dict = {}             # the module's parsed DOCUMENTATION (plugin_utils/docs.py)
    REQUIRED_IF: tuple = ()     # Ansible's required_if rules for the argument spec

    @staticmethod
    def handle(ctx) -> dict:
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        kwargs = {"required_if": list(self.REQUIRED_IF)} if self.REQUIRED_IF else {}
        return run_action(self, task_vars, self.DOCS, self.handle, **kwargs)
