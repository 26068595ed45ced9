# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""One argument spec per module, derived from the module's own DOCUMENTATION.

The options block of DOCUMENTATION is the single source: `spec_from_doc` turns it into the
argument spec Ansible validates with, so docs and spec cannot drift apart. Keys that only the
spec knows (mutually_exclusive, required_if) stay beside it in each action plugin.

Standard library only: callers pass the already loaded DOCUMENTATION mapping.
"""
from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any, Dict

from . import remote
from .dialects import WINDOWS, check_for_dialect, check_text
from .filterspec import parse_filterspec
from .host import MANAGEMENT_PORTS, HostError
from .model import (KERBEROS, AuthMethod, IPsecError, ValidationError, filter_from_dict, name_key, parse_description,
                    parse_name, parse_qmsecmethods)
from .plan import rule_objects

# Option keys that carry over from documentation to argument spec unchanged.
_SPEC_KEYS = ("type", "required", "default", "choices", "elements", "aliases", "no_log")


def spec_from_doc(options: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """DOCUMENTATION `options` -> argument_spec (recursing into suboptions).

    Every option must declare a type and a description: an undocumented or untyped option is a
    defect, reported here rather than at run time.
    """
    spec: Dict[str, Dict[str, Any]] = {}
    for name, doc in options.items():
        if not doc.get("description"):
            raise ValueError("option %r has no description" % name)
        if "type" not in doc:
            raise ValueError("option %r has no type" % name)
        entry = {key: doc[key] for key in _SPEC_KEYS if key in doc}
        if "suboptions" in doc:
            entry["options"] = spec_from_doc(doc["suboptions"])
        spec[name] = entry
    return spec


def option_paths(options: Dict[str, Any], prefix: str = "") -> Dict[str, Dict[str, Any]]:
    """Flatten options (docs) or argument_spec: {'rules.filters': {...}, ...} for comparisons."""
    found: Dict[str, Dict[str, Any]] = {}
    for name, entry in options.items():
        path = prefix + name
        found[path] = entry
        nested = entry.get("suboptions") or entry.get("options")
        if nested:
            found.update(option_paths(nested, path + "."))
    return found





# --------------------------------------------------------------------------------------------
# Values shared by several modules
# --------------------------------------------------------------------------------------------

def filters_option(option: str, items, dynamic: bool = False):
    """`filters`: KB filterspec strings or dicts -> Filters (validated, in order).

    A bracketed spec (`[*=0:1434:UDP]`, a block filter in ipseccmd's syntax) is accepted where the
    filters block: always for dynamic filters. A pass spec `(...)` is refused there: this option
    says *which* traffic; the action says what happens to it.
    """
    if not isinstance(items, (list, tuple)) or not items:
        raise ValidationError(option, items, "a non-empty list of filterspec strings or filter dicts")
    found = []
    for index, item in enumerate(items):
        name = "%s[%d]" % (option, index)
        if isinstance(item, str):
            spec = parse_filterspec(item, name)
            if spec.kind == "pass" or (spec.kind == "block" and not dynamic):
                raise ValidationError(name, item, "a filterspec without %s" % (
                    "( ) brackets: these filters block" if spec.kind == "pass"
                    else "[ ] brackets: the rule's action decides what happens"))
            found.append(spec.filter)
        else:
            found.append(filter_from_dict(name, item))
    return tuple(found)


def rule_spec(option: str, item: Dict[str, Any]) -> Dict[str, Any]:
    """One rule's options (name, filters, action, filteraction, description, methods), validated
    now, before any connection; `rule_triple` makes the model objects once the dialect is known."""
    prefix = option + "." if option else ""
    spec = {
        "name": parse_name(prefix + "name", item["name"]),
        "filters": filters_option(prefix + "filters", item["filters"]),
        "action": item["action"],
        "filteraction": (parse_name(prefix + "filteraction", item["filteraction"])
                         if item["filteraction"] else ""),
        "description": parse_description(prefix + "description", item["description"] or ""),
        "offers": parse_qmsecmethods(prefix + "methods", item["methods"]) if item["methods"] else (),
        "auth": auth_option(prefix + "auth", item.get("auth")),
        "option": prefix,
    }
    rule_triple(spec, "netsh", check=False)     # the planner's own checks (negotiate needs a name, ...) fail now too
    return spec


def check_rule_spec(spec: Dict[str, Any], dialect: str) -> None:
    """A rule spec's names, description and filter addresses as `dialect` must carry them, each
    refusal naming the user's option (`rules[0].name`, `filters[1].src`)."""
    prefix = spec.get("option", "")
    check_for_dialect(dialect, prefix + "name", "rule", spec["name"])
    if spec["filteraction"]:
        check_for_dialect(dialect, prefix + "filteraction", "filteraction", spec["filteraction"])
    check_for_dialect(dialect, prefix + "description", "description", spec["description"])
    check_for_dialect(dialect, prefix + "methods", "methods", spec["offers"])
    check_filters(prefix + "filters", spec["filters"], dialect)


def check_filters(option: str, filters, dialect: str) -> None:
    for index, f in enumerate(filters):
        for side in ("src", "dst"):
            check_for_dialect(dialect, "%s[%d].%s" % (option, index, side), "address", getattr(f, side))


def known_dialect(params: Dict[str, Any], task_vars: Dict[str, Any]) -> str:
    """The dialect before connecting: the `dialect` option, else the one the host's state fact (an
    earlier task's `ansible_facts.winsec_ipsec_state`) recorded; '' when neither says."""
    if params.get("dialect"):
        return params["dialect"]
    facts = (task_vars or {}).get("ansible_facts")
    fact = facts.get("winsec_ipsec_state") if isinstance(facts, dict) else None
    dialect = fact.get("dialect") if isinstance(fact, dict) else None
    return dialect if dialect in ("netsh", "ipseccmd") else ""


def precheck(ctx, specs=(), policy: str = "", policy_option: str = "name", description=None,
             filters=None) -> str:
    """Before any connection, where the dialect is known (known_dialect): every value the task
    gives, checked as that dialect must carry it. Returns the dialect ('' when unknown: the planner
    makes the same checks once the host told it)."""
    dialect = known_dialect(ctx.params, ctx.task_vars)
    if not dialect:
        return ""
    if policy:
        check_for_dialect(dialect, policy_option, "policy", policy)
    if description:
        check_for_dialect(dialect, "description", "description", description)
    for spec in specs:
        rule_triple(spec, dialect)
    if filters is not None:
        check_filters("filters", filters, dialect)
    return dialect


def auth_option(option: str, items):
    """`auth`: [{kind, value}] -> AuthMethods in order; None (omitted) -> Kerberos, the tools' default."""
    if items is None:
        return (KERBEROS,)
    if not items:
        raise ValidationError(option, items, "at least one method (kerberos, psk or cert)")
    found = []
    for index, item in enumerate(items):
        name = "%s[%d]" % (option, index)
        kind, value = item["kind"], item.get("value") or ""
        if kind == "kerberos" and value:
            raise ValidationError(name + ".value", "(given)", "no value with kind kerberos")
        if kind in ("psk", "cert") and not value.strip():
            raise ValidationError(name + ".value", "", "a non-empty %s" % (
                "pre-shared key" if kind == "psk" else "certificate authority name"))
        try:
            check_text(name + ".value", value)
        except ValidationError:     # never echo the value: it may be a key
            raise ValidationError(name + ".value", "(hidden)", "text without control characters") from None
        if kind == "psk":
            psk_option(name + ".value", value)
        found.append(AuthMethod(kind, value))
    return tuple(found)


# Our own bound on a key's length (Windows' own limit is not documented [I]): far below a command
# line's 32767 characters, so that no length refusal ever has to quote the line that holds the key.
MAX_PSK_LENGTH = 1024


def psk_option(option: str, value: str) -> str:
    """A pre-shared key that every dialect can carry, refused before any connection without ever
    showing it (the value in each refusal is "(hidden)")."""
    if not all(" " <= c <= "~" for c in value):
        # remote.Stdin: the key reaches the host on stdin, decoded with the host's console code page
        raise ValidationError(option, "(hidden)", "a key of printable ASCII characters",
                              "it travels to the host on standard input, which Windows decodes with the "
                              "console's code page, the same in every code page only for ASCII")
    if '"' in value:
        # netsh: how it parses an embedded quote is not documented; ipseccmd: PowerShell 5.1 cannot
        # pass a quote followed by a space intact (quoting.py). One rule for every Windows.
        raise ValidationError(option, "(hidden)", "a key without double quotes",
                              "netsh (Windows Server 2003 and later) cannot take one in psk=: how it parses "
                              "an embedded quote is not documented; refused on every Windows alike")
    if len(value) > MAX_PSK_LENGTH:
        raise ValidationError(option, "(hidden)", "a key of at most %d characters" % MAX_PSK_LENGTH,
                              "it is %d characters long" % len(value))
    return value


def rule_triple(spec: Dict[str, Any], dialect: str, check: bool = True):
    """(Rule, FilterList, FilterAction) for a rule spec as `dialect` stores it, its values checked
    for that dialect first (check_rule_spec).

    netsh rules share the filter actions `Block` and `Permit` (plan.rule_objects' convention);
    ipseccmd and ipsecpol make each rule its own filter action, named after the rule
    (`-r Rule -f ... -n BLOCK`, dialects/ipseccmd.py), so that is what the host will hold.
    """
    if check:
        check_rule_spec(spec, dialect)
    action_name = spec["filteraction"]
    if dialect in ("ipseccmd", "ipsecpol"):
        if action_name and name_key(action_name) != name_key(spec["name"]):
            raise ValidationError(spec.get("option", "") + "filteraction", action_name,
                                  "the rule's own name (%r) or nothing" % spec["name"],
                                  "%s names each rule's filter action after the rule" % WINDOWS[dialect])
        action_name = spec["name"]
    rule, flist, faction = rule_objects(spec["name"], spec["filters"], spec["action"],
                                        filteraction_name=action_name, description=spec["description"],
                                        offers=spec["offers"])
    return replace(rule, auth=spec.get("auth", rule.auth)), flist, faction


class Context:
    """What a module's handler gets: validated parameters, check mode and the host connection."""

    def __init__(self, params: Dict[str, Any], check_mode: bool, execute, task_vars: Dict[str, Any]):
        self.params = params
        self.check_mode = check_mode
        self.execute = execute
        self.task_vars = task_vars

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
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.module_utils.errors import NoLogError
    errors = ArgumentSpecValidator(spec, **spec_kwargs).validate(dict(args)).errors
    if errors and isinstance(errors[0], NoLogError):
        named = [str(e) for e in errors if not isinstance(e, NoLogError)]
        if named:
            return "; ".join(named)
    return str(err)


class _KeepRunning:
    """A write command over Ansible's winrm connection runs to its end on the host, whatever happens to
    the connection.

    When a request of the command is lost, the winrm connection plugin sends WinRM's Signal
    `terminate` for it (`_winrm_exec`'s cleanup_command), and closing the connection deletes its
    shell; either ends the command ([MS-WSMV] 3.1.4.12 Signal, 3.1.4.3 Delete), which would leave
    the host between its old and new state in the middle of a batch. So while a write command
    runs, the terminate signal is held back until the command has reported its end; after a lost
    request this waits (a few Receive attempts on the same shell) until the command ended, and if
    the host stays unreachable it leaves the shell open (the command then ends by itself; WinRM
    keeps the shell until its IdleTimeout). Uses the winrm plugin's private methods of ansible-core
    2.19 (requirements/runtime.txt); without them the plain path runs.
    """

    NAMES = ("_connect", "_winrm_run_command", "_winrm_get_raw_command_output", "_winrm_send_input")

    def __init__(self, connection, sleep=None):
        import time
        self.conn = connection
        self.sleep = sleep or time.sleep
        self.command_id = None
        self.done = False
        self.protocol = None

    @classmethod
    def applies(cls, connection) -> bool:
        return getattr(connection, "transport", "") == "winrm" and all(hasattr(connection, n) for n in cls.NAMES)

    def __enter__(self):
        conn = self.conn
        conn._connect()
        self.protocol = protocol = conn.protocol
        run, raw, cleanup = conn._winrm_run_command, conn._winrm_get_raw_command_output, protocol.cleanup_command
        send = conn._winrm_send_input
        self.cleanup = cleanup

        def send_input(*args, **kwargs):
            # A lost Send is sent once more: if the first one had arrived, the bootstrap counts one line too
            # many and runs nothing (remote.bootstrap); if not, the command gets its whole stdin and runs.
            try:
                return send(*args, **kwargs)
            except Exception as err:    # noqa: BLE001 - any transport error
                if type(err).__name__ == "WinRMOperationTimeoutError":     # processed (the plugin's own view)
                    raise
                self.sleep(1)
                return send(*args, **kwargs)

        def run_command(*args, **kwargs):
            self.command_id = run(*args, **kwargs)
            return self.command_id

        def raw_output(*args, **kwargs):
            result = raw(*args, **kwargs)
            self.done = self.done or bool(result[3])
            return result

        def cleanup_command(shell_id, command_id):
            if self.done or command_id != self.command_id:
                return cleanup(shell_id, command_id)
            return None         # still running on the host: let it run to its end

        conn._winrm_run_command, conn._winrm_get_raw_command_output = run_command, raw_output
        conn._winrm_send_input = send_input
        protocol.cleanup_command = cleanup_command
        return self

    def __exit__(self, *exc):
        for owner, name in ((self.conn, "_winrm_run_command"), (self.conn, "_winrm_get_raw_command_output"),
                            (self.conn, "_winrm_send_input"), (self.protocol, "cleanup_command")):
            if owner is not None and name in vars(owner):
                delattr(owner, name)
        return False

    def wait_for_end(self, limit: float = 180.0) -> bool:
        """After a lost request: Receive on the same shell until the command ended (at most `limit`
        seconds: longer than a write waits for the host-side lock); False when it did not end or the
        host stayed unreachable (its shell is then left open, so that closing the connection ends
        nothing)."""
        import time
        deadline, delay = time.monotonic() + limit, 1.0
        while time.monotonic() < deadline:
            try:
                self.conn._winrm_get_raw_command_output(self.protocol, self.conn.shell_id, self.command_id)
            except Exception as err:    # noqa: BLE001 - any transport error: try again until the limit
                if type(err).__name__ != "WinRMOperationTimeoutError":     # not "still running": unreachable
                    self.sleep(delay)
                    delay = min(delay * 2, 8.0)
                continue
            if self.done:
                try:
                    self.cleanup(self.conn.shell_id, self.command_id)
                except Exception:   # noqa: BLE001 - the command ended; its cleanup is a courtesy
                    pass
                return True
        self.conn.shell_id = None
        return False


def _execute(action, script: str):
    """Run one remote.Script over the task's connection: (rc, stdout, stderr).

    A write script's body and secrets go as standard input (`in_data`, which the winrm, psrp and ssh
    connections pass on without logging it; its bootstrap reads it with `$input`), body first.
    Its output is kept out of the connection's own log (winrm and psrp log raw output at -vvvvv, ssh
    at -vvv, each unless the play context says no_log): the registry store it prints holds any
    pre-shared key the host has, whatever this task carries. The task's result shows what was read,
    keys masked. A write command is never ended by this side once it started (_KeepRunning).
    """
    stdin = getattr(script, "stdin", ())
    # text, not bytes: psrp hands bytes lines to PowerShell as byte arrays; winrm and ssh encode text
    in_data = "".join(line + "\r\n" for line in stdin) if stdin else None
    context = getattr(action._connection, "_play_context", None) or action._play_context
    no_log = context.no_log
    context.no_log = True
    keeper = None
    if getattr(script, "kind", "") == "write" and _KeepRunning.applies(action._connection):
        keeper = _KeepRunning(action._connection)
    try:
        if keeper is not None:
            keeper.__enter__()
        res = action._low_level_execute_command(str(script), sudoable=False, in_data=in_data)
    except Exception as err:
        if keeper is None or keeper.command_id is None or keeper.done:
            raise
        ended = keeper.wait_for_end(getattr(script, "wait_limit", 180.0))
        from ansible.errors import AnsibleConnectionFailure
        raise AnsibleConnectionFailure(
            "the connection was lost while the write command ran (%s); %s. It was not interrupted: the host has "
            "the state before the task or after it, never a part of it. Run the task again: it reads the host "
            "and says which" % (err, "the command has since run to its end on the host" if ended else
                                "the host did not answer again, and the command was left to run to its end"))
    finally:
        if keeper is not None:
            keeper.__exit__(None, None, None)
        context.no_log = no_log
    if stdin and remote.stdin_lost(res.get("stdout", "")):
        raise HostError("the %s connection did not deliver the command's standard input, which carries the "
                        "script and any pre-shared keys; nothing of that command ran. Use the winrm, psrp or ssh "
                        "connection" % getattr(action._connection, "transport", "?"), changed=False)
    return res.get("rc", 0), res.get("stdout", ""), res.get("stderr", "")


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
        return _execute(action, script)

    try:
        ctx = Context(params, bool(action._task.check_mode), execute, task_vars or {})
        ctx.action = action         # safety.py reconnects through its connection (confirm_timeout)
        return handler(ctx)
    except HostError as err:
        return dict({"changed": False}, **err.result, failed=True, msg=str(err))
    except IPsecError as err:
        return {"failed": True, "changed": False, "msg": str(err)}

__all__ = ["spec_from_doc", "option_paths", "filters_option", "auth_option", "psk_option", "rule_spec", "rule_triple",
           "check_rule_spec", "check_filters", "known_dialect", "precheck", "Context",
           "run_action"]
