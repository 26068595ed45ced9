# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""NoDefaultExempt (the ipsec_exemptions module): a change the task's one transaction makes.

The value lives under Services\\IPSEC on 2000/XP/2003 and Services\\PolicyAgent from Vista on;
2000/XP know 0 and 1 (KB 811832), 2003 and later 0 to 3 (Microsoft cc756041, KB 810207). Windows
reads it at start-up (KB 810207: 2003 needs a restart) or, from Vista on, when PolicyAgent starts
(docs/windows-tools.md, "Default exemptions"), so a change always reports reboot_required.

`Exemption` is a side change of host.Flow: the read (or a state fact) gives the value, the plan is
one `reg add` or `reg delete` with its undo, the write script's precheck covers the `exempt`
section and the OS it depends on, a lost race plans again once, and the read-back must show the
value planned. Standard library only.
"""
from __future__ import annotations

from typing import Optional

from . import host, plan, remote
from .model import ValidationError
from .report import exemptions as meaning

LEGACY = ("2000", "xp")
SECTIONS = ("os", "exempt")


def key_for(generation: str) -> str:
    return remote.EXEMPT_KEY_LEGACY if generation in LEGACY + ("2003",) else remote.EXEMPT_KEY_MODERN


def check_value(value: int, generation: str) -> None:
    allowed = (0, 1) if generation in LEGACY else (0, 1, 2, 3)
    if isinstance(value, bool) or value not in allowed:
        raise ValidationError("value", value, " or ".join(str(v) for v in allowed),
                              "Windows %s knows NoDefaultExempt %s" % (generation, ", ".join(map(str, allowed))))


def _set(key: str, value: int):
    return ("reg", "add", key, "/v", "NoDefaultExempt", "/t", "REG_DWORD", "/d", str(value), "/f")


def _delete(key: str):
    return ("reg", "delete", key, "/v", "NoDefaultExempt", "/f")


def _step(argv, undo=None) -> remote.Step:
    return remote.Step(tuple(argv), undo=(_step(undo),) if undo else (), display=" ".join(
        '"%s"' % a if " " in a else a for a in argv))


def _shown(generation, value) -> str:
    return "NoDefaultExempt: %s\n%s\n" % (value, meaning(generation, value))


class Exemption:
    """NoDefaultExempt `value` (state present) or no value (absent), as host.Flow's side change."""
    sections = SECTIONS

    def __init__(self, value: Optional[int], state: str):
        self.wanted = value if state == "present" else None
        self.state = state

    def plan(self, transcript: remote.Transcript, predicted, dialect: str) -> host.SideChange:
        os, current = predicted.os, predicted.no_default_exempt
        if self.state == "present":
            check_value(self.wanted, os.generation)     # found out by reading: the flow says what was read
        wanted = self.wanted
        report = {"before": current, "planned": wanted, "generation": os.generation}
        if current == wanted:
            return host.SideChange("no_default_exempt", report, [], SECTIONS, ("", ""), lambda after: None)
        key = key_for(os.generation)
        step = _step(_set(key, wanted) if wanted is not None else _delete(key),
                     _delete(key) if current is None else _set(key, current))

        def verify(after: remote.Transcript) -> Optional[str]:
            now = remote.no_default_exempt(after.sections.get("exempt"))
            report["after"] = now
            return None if now == wanted else "NoDefaultExempt reads back as %s after setting %s" % (now, wanted)
        warning = ("NoDefaultExempt takes effect when Windows restarts%s (Microsoft cc756041, KB 810207)"
                   % ("" if os.generation in LEGACY + ("2003",) else " or the IPsec Policy Agent starts"))
        return host.SideChange("no_default_exempt", report, [step], SECTIONS,
                               (_shown(os.generation, current), _shown(os.generation, wanted)), verify,
                               warnings=[warning])


def _no_policy_change(actual):
    return plan.Plan((), actual)


def run(execute, value: Optional[int], state: str, check_mode: bool, dialect: str = "", host_name: str = "",
        fact=None) -> dict:
    if state == "absent" and value is not None:
        raise ValidationError("value", value, "no value with state=absent", "absent deletes the value")
    if value is not None and (isinstance(value, bool) or not 0 <= value <= 3):
        raise ValidationError("value", value, "0, 1, 2 or 3")
    try:
        result = host.run(execute, _no_policy_change, check_mode, dialect=dialect, when_domain_policy="ignore",
                          fact=fact, host_name=host_name, sides=(Exemption(value, state),))
    except host.HostError as error:
        error.result.update(_shape(error.result, check_mode))
        error.result.pop("no_default_exempt", None)
        error.result.pop("notes", None)
        raise
    result.update(_shape(result, check_mode))
    result.pop("no_default_exempt", None)
    result.pop("notes", None)       # not among the module's documented return values
    return result


def _shape(result: dict, check_mode: bool) -> dict:
    """The module's own result keys from the flow's: the value before and after, in words."""
    report = result.get("no_default_exempt")
    if report is None:          # failed before the plan
        return {}
    generation, before = report["generation"], report["before"]
    changing = report["planned"] != before
    if "after" in report:
        after = report["after"]                 # read back
    elif check_mode and changing:
        after = report["planned"]               # check mode: the prediction
    else:
        after = before
    shaped = {"before": before, "after": after, "exemptions": meaning(generation, after),
              "reboot_required": changing and (check_mode or after != before)}
    if changing:
        shaped["planned"] = report["planned"]
    return shaped


__all__ = ["run", "key_for", "check_value", "Exemption"]
