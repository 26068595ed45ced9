# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""NoDefaultExempt: read, plan, write with reg.exe, read back (the ipsec_exemptions module).

SYNTAX.md 5.2: the value lives under Services\\IPSEC on 2000/XP/2003 and Services\\PolicyAgent from
Vista on; 2000/XP know 0 and 1 ([D] KB 811832), 2003 and later 0 to 3 ([D] cc756041). Windows reads
it at start-up ([D] cc756041/KB 810207: 2003 needs a restart) or, from Vista on, when PolicyAgent
starts ([E] SYNTAX.md 5.2), so a change always reports reboot_required.

Standard library only.
"""
from __future__ import annotations

from typing import Optional

from . import guard, host, remote
from .model import ValidationError
from .report import exemptions as meaning

LEGACY = ("2000", "xp")


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


def run(execute, value: Optional[int], state: str, check_mode: bool, dialect: str = "", host_name: str = "") -> dict:
    if state == "absent" and value is not None:
        raise ValidationError("value", value, "no value with state=absent", "absent deletes the value")
    if value is not None and (isinstance(value, bool) or not 0 <= value <= 3):
        raise ValidationError("value", value, "0, 1, 2 or 3")
    flow = host.Flow(execute, check_mode, dialect=dialect, host_name=host_name)
    try:
        return _run(flow, value, state, check_mode, dialect)
    except host.HostError as error:
        error.result["round_trips"] = flow.trips
        fact = flow.fact()
        if fact is not None:
            error.result["ansible_facts"] = {guard.FACT: fact}
        raise


def _finish(flow, result):
    result["round_trips"] = flow.trips
    result["ansible_facts"] = {guard.FACT: flow.fact()}
    return result


def _run(flow, value, state, check_mode, dialect):
    snap = flow.read()
    before = snap.state
    os = before.os
    current = before.no_default_exempt
    if state == "present":
        try:
            check_value(value, os.generation)
        except ValidationError as err:      # found out by reading: say what was read
            raise host.HostError(str(err), changed=False, before=current,
                                 os=host.state_report(before)["os"]) from None
    wanted = value if state == "present" else None
    result = {"changed": current != wanted, "before": current, "after": current,
              "os": host.state_report(before)["os"], "dialect": dialect or os.dialect, "commands": [],
              "exemptions": meaning(os.generation, current), "reboot_required": False}
    if current == wanted:
        return _finish(flow, result)
    key = key_for(os.generation)
    undo = _delete(key) if current is None else _set(key, current)
    step = _step(_set(key, wanted) if wanted is not None else _delete(key), undo)
    result["commands"] = [step.display]
    result["planned"] = wanted
    result["exemptions"] = meaning(os.generation, wanted)
    result["diff"] = {"before": "NoDefaultExempt: %s\n%s\n" % (current, meaning(os.generation, current)),
                      "after": "NoDefaultExempt: %s\n%s\n" % (wanted, meaning(os.generation, wanted))}
    result["warnings"] = ["NoDefaultExempt takes effect when Windows restarts%s (Microsoft cc756041, KB 810207)"
                          % ("" if os.generation in LEGACY + ("2003",) else " or the IPsec Policy Agent starts")]
    if check_mode:
        result["after"] = wanted        # check mode: the prediction
        result["reboot_required"] = True
        return _finish(flow, result)
    result["changed"] = False           # until the host says otherwise
    # The value and the OS it depends on must still be as read (guard.py), under the host-side lock.
    precheck = guard.precheck_lines(snap.transcript.fingerprint, guard.scope((), exempt=True), dialect)
    _rc, _out, _err, transcript = flow.send(remote.write_script([step], dialect=dialect, precheck=precheck))
    if guard.stale(transcript) is not None:
        now = remote.no_default_exempt(transcript.sections.get("exempt"))
        result["after"] = now
        flow.snapshot(transcript)
        raise host.HostError("NoDefaultExempt (or the Windows version it depends on) changed after this task read it "
                             "(now %s), so nothing was written; run the task again" % now, **result)
    if transcript.failed:
        raise host.HostError("%s failed (rc=%s): %s" % (step.display, transcript.failed[1],
                                                        transcript.failed[2].strip()[:300]), **result)
    verified = remote.no_default_exempt(transcript.sections.get("exempt"))
    flow.snapshot(transcript)
    result["after"] = verified
    result["changed"] = verified != current
    result["reboot_required"] = result["changed"]
    if verified != wanted:
        raise host.HostError("NoDefaultExempt reads back as %s after setting %s" % (verified, wanted), **result)
    return _finish(flow, result)


__all__ = ["run", "key_for", "check_value"]
