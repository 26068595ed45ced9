# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""HostState <-> plain dicts, for the `before`/`after` of results and for reports.

The dicts hold only str, int, bool, None, lists and dicts, so Ansible can template and compare
them. Pre-shared keys never leave as text: they are replaced by a fixed mask. GUIDs are included
only on request (a predicted state has none yet, so `before`/`after` leave them out and a check
run's `after` can equal the real run's).

Standard library only.
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Dict, Mapping, Optional

from .model import AuthMethod, HostState

SECRET_MASK = "********"


def to_dict(obj: Any, guids: bool = False) -> Any:
    """A model object (or tuple of them) as plain data."""
    if isinstance(obj, AuthMethod):
        return {"kind": obj.kind, "value": SECRET_MASK if obj.kind == "psk" else obj.value}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            if f.name == "guid" and not guids:
                continue
            out[f.name] = to_dict(getattr(obj, f.name), guids)
        return out
    if isinstance(obj, (tuple, list)):
        return [to_dict(item, guids) for item in obj]
    return obj


def plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, all the way down: what a filter plugin is given
    (ansible-core 2.19's lazy containers, which render their templates as they are read, or anything
    with `items`) becomes data of its own that JSON and the report builders take. Other values stay."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def message_text(message: Any) -> str:
    """A result's warning or deprecation as its text. ansible-core 2.19 hands the warnings of a registered
    result back as WarningSummary objects (their text in `.event.msg`), or as dicts of the same shape
    once they have been through JSON (a fact cache, AWX); str() of the object is its repr, which no
    report may show."""
    event = message.get("event") if isinstance(message, Mapping) else getattr(message, "event", None)
    text = event.get("msg") if isinstance(event, Mapping) else getattr(event, "msg", None)
    return str(message if text is None else text)


def state_to_dict(state: Optional[HostState], guids: bool = False) -> Optional[Dict[str, Any]]:
    """A HostState as plain data; each policy also says whether it is the assigned one."""
    if state is None:
        return None
    data = to_dict(state, guids)
    assigned = state.assigned.casefold()
    for policy in data["policies"]:
        policy["assigned"] = bool(assigned) and policy["name"].casefold() == assigned
    return data


@functools.lru_cache(maxsize=None)
def _field_types(cls) -> Dict[str, Any]:
    """A model dataclass's fields and their types, resolved once: typing.get_type_hints costs about half a
    millisecond a call, and a host's state has thousands of objects (a rollout record of 200 hosts
    spent seconds here). Resolved in the controller's main process, forked workers inherit them."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(cls, data: Any):
    """Plain data back into model class `cls` (the inverse of to_dict; unknown keys rejected)."""
    if data is None:
        return None
    types = _field_types(cls)
    unknown = set(data) - set(types)
    if unknown:
        raise ValueError("%s: unknown keys %s" % (cls.__name__, ", ".join(sorted(unknown))))
    return cls(**{name: _convert(types[name], value) for name, value in data.items()})


def _convert(hint, value):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        return None
    if origin is typing.Union:                      # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value)
    if origin is tuple:
        return tuple(_convert(args[0], item) for item in value)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    return value


def state_from_dict(data: Dict[str, Any]) -> HostState:
    """The inverse of state_to_dict (the per-policy `assigned` flag is derived, so dropped)."""
    data = dict(data)
    data["policies"] = [{k: v for k, v in p.items() if k != "assigned"} for p in data.get("policies", ())]
    return from_dict(HostState, data)





# What NoDefaultExempt means, per Windows generation ([D] KB 254728, KB 811832 and cc756041 for
# 2000/XP/2003; Vista+ as docs/windows-tools.md "Default exemptions" says, [E], and its default [I]).
_EXEMPT_MEANING = {
    0: "Broadcast, multicast, RSVP, Kerberos and IKE (ISAKMP) traffic is exempt from IPsec filtering",
    1: "Kerberos and RSVP are not exempt; broadcast, multicast and IKE (ISAKMP) traffic is exempt",
    2: "Multicast and broadcast are not exempt; RSVP, Kerberos and IKE (ISAKMP) traffic is exempt",
    3: "Only IKE (ISAKMP) traffic is exempt from IPsec filtering",
}
_EXEMPT_DEFAULT = {"2000": 0, "xp": 0, "2003": 3, "2008r2": 3, "modern": 3}


def exemptions(generation: str, value: Optional[int]) -> str:
    """The default exemptions a block really leaves open on this host, in words."""
    legacy = generation in ("2000", "xp")
    if value is None:
        default = _EXEMPT_DEFAULT.get(generation, 3)
        note = " (NoDefaultExempt not set: the %s default%s)" % (
            generation, "" if generation in ("2000", "xp", "2003") else ", not verified on real Windows")
        return _EXEMPT_MEANING[default] + note
    if legacy:
        meaning = _EXEMPT_MEANING[0 if value == 0 else 1]   # 2000/XP know only 0 and 1 ([D] KB 811832)
    else:
        meaning = _EXEMPT_MEANING[min(value, 3)]            # > 3 acts as 3 ([E] ipsecsvc.dll)
    return "%s (NoDefaultExempt=%d)" % (meaning, value)

__all__ = ["SECRET_MASK", "plain", "to_dict", "state_to_dict", "from_dict", "state_from_dict", "exemptions"]
