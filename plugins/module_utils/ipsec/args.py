# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""One argument spec per module, derived from the module's own DOCUMENTATION.

The options block of DOCUMENTATION is the single source: `spec_from_doc` turns it into the
argument spec Ansible validates with, so docs and spec cannot drift apart. Keys that only the
spec knows (mutually_exclusive, required_if) stay beside it in each action plugin.

Validation only, standard library only: callers pass the already loaded DOCUMENTATION mapping.
Running a handler on the controller (its Context, the connection) is plugins/plugin_utils/action.py's.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict

from .dialects import WINDOWS, check_for_dialect, check_text
from .filterspec import parse_filterspec
from .model import (KERBEROS, AuthMethod, ValidationError, filter_from_dict, name_key, parse_description,
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


__all__ = ["spec_from_doc", "option_paths", "filters_option", "auth_option", "psk_option", "rule_spec", "rule_triple",
           "check_rule_spec", "check_filters", "known_dialect", "precheck"]
