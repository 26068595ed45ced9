# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""A plan -> the command lines of one Windows tool (a dialect), each with its undo.

    render(changes, dialect, *, before, after, store='local', domain='') -> [Command]

`changes` are the planner's `model.Change`s in order; `before` and `after` are the host state
before and after the whole plan. netsh works per object and renders one command per change.
ipseccmd and ipsecpol work per rule (`-r Rule -f specs -n BLOCK` makes the rule, its filter list
and its filter action in one go, and cannot delete one filter), so they read `before`/`after` to
know each touched rule's complete content.

Undo: every Command carries `undo`, the commands that revert it (run in the order given): for
netsh the rendering of the change's inverse (`Change.inverse`), for ipseccmd/ipsecpol the touched
rules as `before` had them. A failed batch runs the `undo` of the commands already done, newest
first (`remote.undo_steps`, in the one write script); that returns the host to `before` because each object is touched by one
command only.

Secrets: a pre-shared key must reach the tool in argv, but nothing that is displayed or logged
may carry it. `display` and `repr()` show `shown_argv`, the argv with secrets masked;
`redacted_display` is the same, plus the masked script of a netsh domain-store command.
The real argv reaches the host only through the write script (remote.py), its secrets on stdin.

Standard library only.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from ..model import DIALECTS, STORES, Change, HostState, ValidationError, format_qmsecmethods, parse_address
from ..quoting import cmd_safe, join_command_line, powershell_native_args

MASK = "********"


@dataclass(frozen=True)
class Command:
    """One tool invocation.

    argv        what the tool receives (argv[0] is the bare tool name; the remote layer finds it).
    change      the planned change this command carries out (for ipseccmd: the rule's change).
    script      for the netsh domain store only: a netsh script (select the store, then the
                command). The remote layer writes it to a temporary file and runs `netsh -f <that
                file>`; argv then names a placeholder file (SCRIPT_FILE) and is not run as it is.
    undo        commands that revert this one, in the order to run them.
    shown_argv  argv with secrets masked; empty when argv holds no secret.
    shown_script  the script with secrets masked; empty when it holds none.
    """
    argv: Tuple[str, ...]
    change: Optional[Change] = None
    script: str = field(default="", repr=False)
    undo: Tuple["Command", ...] = field(default=(), repr=False)
    shown_argv: Tuple[str, ...] = field(default=(), repr=False)
    shown_script: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        """What an admin would type, with any secret masked (splits back to argv when there is none)."""
        return join_command_line(self.shown_argv or self.argv)

    @property
    def redacted_display(self) -> str:
        """One line for messages and results: `display`, and a script's lines after ' # '."""
        if not self.script:
            return self.display
        lines = [line.strip() for line in self.redacted_script.splitlines() if line.strip()]
        return "%s # %s" % (self.display, "; ".join(lines))

    @property
    def redacted_script(self) -> str:
        return self.shown_script or self.script

    def __repr__(self) -> str:
        return "Command(%r%s)" % (self.display, ", script" if self.script else "")


# argv[1:] of a domain-store netsh script command; the remote layer substitutes its temp file.
SCRIPT_FILE = "winsec-ipsec.netsh"


def render(changes: Sequence[Change], dialect: str, *, before: HostState, after: HostState,
           store: str = "local", domain: str = "", gpo: str = "") -> List[Command]:
    """The commands, in order, that carry out `changes` with `dialect`'s tool. `gpo` names the
    Group Policy object that assigns a domain-store policy (netsh only)."""
    if dialect not in DIALECTS:
        raise ValidationError("dialect", dialect, "one of %s" % ", ".join(DIALECTS))
    if store not in STORES:
        raise ValidationError("store", store, "one of %s" % ", ".join(STORES))
    if domain and store != "domain":
        raise ValidationError("domain", domain, "no domain unless store is 'domain'")
    if domain:
        check_host("domain", domain, ("dns",))
    if gpo and store != "domain":
        raise ValidationError("gpo", gpo, "no gpo unless store is 'domain'")
    if gpo and dialect != "netsh":
        raise ValidationError("gpo", gpo, "dialect netsh for a gpo",
                              "ipseccmd -w DS cannot name the GPO that assigns a policy ([D] its -w grammar)")
    # imported here: the dialect modules import Command and the checks from this package
    if dialect == "netsh":
        from . import netsh as module
    elif dialect == "ipseccmd":
        from . import ipseccmd as module
    else:
        from . import ipsecpol as module
    if dialect == "netsh":
        return module.render(list(changes), before=before, after=after, store=store, domain=domain, gpo=gpo)
    return module.render(list(changes), before=before, after=after, store=store, domain=domain)


def check_text(option: str, value: str) -> str:
    """Any other free text that reaches a command line: no control characters (a line break would
    end the command in every script it is written into)."""
    if not isinstance(value, str):
        raise ValidationError(option, value, "a string")
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ValidationError(option, value, "text without control characters",
                              "contains %r" % bad)
    return value


def check_secret(option: str, value: str, check) -> str:
    """`check(option, value)` for a secret: a refusal names the option and why, never the value."""
    try:
        check(option, value)
    except ValidationError as err:
        raise ValidationError(option, "(hidden)", err.accepted, err.reason) from None
    return value


# Which Windows each dialect serves, for refusals that say which Windows cannot carry a value.
WINDOWS = {"netsh": "Windows Server 2003 and later (dialect netsh)",
           "ipseccmd": "Windows XP (dialect ipseccmd)",
           "ipsecpol": "Windows 2000 (dialect ipsecpol)"}
NAME_KINDS = ("policy", "rule", "filteraction", "description", "address", "methods")


def check_for_dialect(dialect: str, option: str, kind: str, value) -> None:
    """Refuse, naming the user's `option` and the Windows that cannot carry it, a value `dialect`'s
    tool cannot take. `kind`: policy | rule | filteraction (names), description, address (a
    model.Address) or methods (QmOffers). The same checks as the dialect's renderer, made where the
    user's option is known: before connecting when the dialect is, else when the task plans."""
    if kind not in NAME_KINDS:
        raise ValueError("kind must be one of %s" % ", ".join(NAME_KINDS))
    if dialect not in DIALECTS:
        raise ValidationError("dialect", dialect, "one of %s" % ", ".join(DIALECTS))
    windows = WINDOWS[dialect]
    if kind == "methods":
        # netsh's grammar is `:k/s` ([H] add filteraction qmsecmethods); a lone lifetime is not documented
        if dialect == "netsh" and any(bool(o.lifetime_kb) != bool(o.lifetime_s) for o in value):
            raise ValidationError(option, format_qmsecmethods(value),
                                  "both lifetimes, kilobytes and seconds (ESP[3DES,SHA1]:100000k/900s), or none",
                                  "%s cannot carry a single lifetime: netsh's qmsecmethods take k/s" % windows)
        return
    if dialect == "netsh":
        if kind != "address" and isinstance(value, str) and '"' in value:
            raise ValidationError(option, value, "text without double quotes",
                                  "%s cannot carry a double quote: how netsh parses an embedded quote is not "
                                  "documented" % windows)
        return
    tool = dialect
    if kind == "address":
        problem = {"range": "address ranges", "server": "server types"}.get(value.kind)
        if value.kind == "ip" and ":" in value.value:
            problem = "IPv6 addresses"
        if problem:
            raise ValidationError(option, str(value), "me, any, an IPv4 address or subnet, or a DNS name",
                                  "%s cannot carry it: the %s filterspec has no %s" % (windows, tool, problem))
        return
    if kind == "description":
        if value:
            raise ValidationError(option, value, "no description",
                                  "%s cannot carry it: %s has no description option" % (windows, tool))
        return
    try:
        if dialect == "ipsecpol":
            cmd_safe(option, value)
        else:
            powershell_native_args([value], option)
    except ValidationError as err:
        raise ValidationError(option, value, err.accepted, "%s cannot carry it: %s" % (windows, err.reason)) from None
    if kind in ("policy", "rule") and value.startswith("-"):
        raise ValidationError(option, value, "a name that does not start with '-'",
                              "%s cannot carry it: %s would take it for a flag" % (windows, tool))
    if kind == "policy" and ":" in value:
        raise ValidationError(option, value, "a policy name without ':'",
                              "%s cannot carry it: %s reads -p as Name:PollInterval" % (windows, tool))


def check_host(option: str, value: str, kinds=("ip", "dns")) -> str:
    """A tunnel endpoint or a domain: an address or DNS name as model.parse_address reads it."""
    address = parse_address(option, value)
    if address.kind not in kinds or address.mask or value != value.strip():
        raise ValidationError(option, value, "an IP address or a DNS name" if "ip" in kinds else "a DNS name")
    return value


class Args:
    """Builds argv and its displayed twin side by side, so a secret is masked exactly where it sits."""

    def __init__(self, *fixed: str):
        self.argv = list(fixed)
        self.shown = list(fixed)
        self.secret = False

    def add(self, *args: str) -> "Args":
        self.argv.extend(args)
        self.shown.extend(args)
        return self

    def add_secret(self, arg: str, shown: str) -> "Args":
        self.argv.append(arg)
        self.shown.append(shown)
        self.secret = True
        return self

    def command(self, change: Optional[Change] = None, undo: Sequence[Command] = ()) -> Command:
        return Command(tuple(self.argv), change, undo=tuple(undo),
                       shown_argv=tuple(self.shown) if self.secret else ())


__all__ = ["Command", "SCRIPT_FILE", "MASK", "render", "Args",
           "check_text", "check_host", "check_secret", "check_for_dialect", "WINDOWS"]
