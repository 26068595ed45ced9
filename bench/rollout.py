"""Section 1 and 2 of `make bench`: the Slammer block rolled out over a winsim estate, side by side.

On one estate (hosts reset to a fresh installation where a variant needs it) and one after the
other, so that the ratios compare runs made under the same machine load. Every run uses Ansible's
jsonfile fact cache (bench/ansible_run.py), as the README advises; the bench empties it where a
variant must start cold.

  a_waves     raw no-op in emergency_block.yml's waves (1 host, 10 %, the rest): the rollout's floor
  a           raw no-op in one wave: the floor any Ansible task pays
  cold        playbooks/emergency_block.yml on fresh hosts, empty fact cache
  noop        the same again: nothing to do (the cache holds the state the block read back)
  read        ipsec_info on every fresh host (empty cache before): fills the cache
  warm        emergency_block.yml after that read: the change, with the host's state known
  c           the KB procedure as raw tasks, one netsh command each, then a verify (one wave)
  a_again, a_waves_again   the floors once more: how far the machine's load moved meanwhile

Issue 7's single-module variants (check, b_rule, noop_rule, b_rule_pre, b_policy) and the what-if
cold_one_wave can be asked for with --variants.

A warm-up run (the raw no-op, not recorded) comes first, so that no variant pays for cold caches.
A ratio to a floor divides by the mean of that floor's two runs, which bracket the others.
"""
from __future__ import annotations

import os
import shutil

from . import profiles
from .ansible_run import ROOT, fact_cache, run_playbook
from .estates import BenchEstate

PLAYBOOKS = os.path.join(ROOT, "bench", "playbooks")
EMERGENCY = os.path.join(ROOT, "playbooks", "emergency_block.yml")
RAW = os.path.join(PLAYBOOKS, "raw_noop.yml")
RAW_WAVES = os.path.join(PLAYBOOKS, "raw_noop_waves.yml")
RULE = os.path.join(PLAYBOOKS, "ipsec_rule.yml")


def _variant(label, playbook, reset=False, clear_cache=False, check=False, preload=False, extra_vars=None):
    """reset: hosts back to a fresh installation first; clear_cache: the fact cache emptied first."""
    return {"label": label, "playbook": playbook, "reset": reset, "clear_cache": clear_cache, "check": check,
            "preload": preload, "extra_vars": extra_vars}


VARIANTS = {
    "a_waves": _variant("raw no-op in the waves (floor)", RAW_WAVES, reset=True, clear_cache=True),
    "a": _variant("raw no-op in one wave (floor)", RAW),
    "cold": _variant("emergency_block.yml, cold (empty fact cache)", EMERGENCY, reset=True, clear_cache=True),
    "noop": _variant("emergency_block.yml again, nothing to do", EMERGENCY),
    "read": _variant("ipsec_info on every host (fills the cache)", os.path.join(PLAYBOOKS, "ipsec_info.yml"),
                     reset=True, clear_cache=True),
    "warm": _variant("emergency_block.yml, warm (after the read)", EMERGENCY),
    "c": _variant("KB procedure as raw netsh tasks", os.path.join(PLAYBOOKS, "kb_raw.yml"), reset=True),
    "a_again": _variant("raw no-op in one wave again (load drift)", RAW),
    "a_waves_again": _variant("raw no-op in the waves again (load drift)", RAW_WAVES),
    # on request (--variants): issue 7's module variants and a what-if
    "check": _variant("ipsec_rule --check", RULE, reset=True, clear_cache=True, check=True),
    "b_rule": _variant("ipsec_rule (inbound rule)", RULE, reset=True, clear_cache=True),
    "noop_rule": _variant("ipsec_rule again, no change", RULE),
    "b_rule_pre": _variant("ipsec_rule, engine preloaded (what-if)", RULE, reset=True, clear_cache=True,
                           preload=True),
    "b_policy": _variant("ipsec_policy (in+out, assigned)", os.path.join(PLAYBOOKS, "ipsec_policy.yml"),
                         reset=True, clear_cache=True),
    "cold_one_wave": _variant("emergency_block.yml cold, one wave (what-if)", EMERGENCY, reset=True,
                              clear_cache=True, extra_vars={"emergency_waves": ["100%"]}),
}
ORDER = ("a_waves", "a", "cold", "noop", "read", "warm", "c", "a_again", "a_waves_again")
SMALLEST_ONLY = ("cold_one_wave",)     # what-ifs that the larger estates skip (time budget)
# The floors and the runs that bracket them: a ratio to a floor divides by the mean of both.
FLOORS = {"a": ("a", "a_again"), "a_waves": ("a_waves", "a_waves_again")}

# (numerator, denominator, target, 'max' or 'min', what it says)
RATIOS = (
    ("warm", "a_waves", 1.5, "max", "warm change: emergency_block.yml after a read vs the floor in the same waves"),
    ("cold", "a_waves", 2.2, "max", "cold change: emergency_block.yml, empty fact cache, vs the floor in the same waves"),
    ("noop", "a_waves", 1.2, "max", "nothing to do: emergency_block.yml again vs the floor in the same waves"),
    ("c", "warm", 4.0, "min", "the KB procedure by hand (raw netsh tasks) vs the warm rollout"),
    ("cold_one_wave", "a", 2.2, "max", "what-if: emergency_block.yml cold in one wave vs the floor in one wave"),
    ("b_rule", "a", 1.5, "max", "(b)/(a): ipsec_rule vs the raw floor (issue 7)"),
    ("b_policy", "a", 1.5, "max", "(b)/(a): ipsec_policy vs the raw floor (issue 7)"),
    ("b_rule_pre", "a", 1.5, "max", "what-if: ipsec_rule, engine preloaded, vs the raw floor (issue 7)"),
)
# WinRM commands per host each variant may cost (the agreed flow: a write is one command; a change
# from a known state is one command; a cold change reads, then writes).
COMMANDS = {"cold": 2, "warm": 1, "noop": 1, "read": 1, "check": 1, "noop_rule": 1}
EMERGENCY_VARS = ("cold", "noop", "warm", "cold_one_wave")


# Where a task's worker spends its CPU: (label, file path part, function), cumulative time.
PROFILE_STEPS = (
    ("the whole task (TaskExecutor.run)", "ansible/executor/task_executor.py", "run"),
    ("WinRM commands (winrm connection exec_command)", "ansible/plugins/connection/winrm.py", "exec_command"),
    ("importing collection code (collection loader exec_module)", "_collection_finder.py", "exec_module"),
    ("module docs parsed for the argument spec (get_docstring)", "ansible/utils/plugin_docs.py", "get_docstring"),
    ("write script built (remote.write_script)", "ipsec/remote.py", "write_script"),
    ("state decoded from a transcript (host.state_from_transcript)", "ipsec/host.py", "state_from_transcript"),
    ("diff text (host.netdiag_diff)", "ipsec/host.py", "netdiag_diff"),
)


def run_estate(workdir: str, hosts: int, base_address: str, latency_ms: int, forks: int,
               variants=ORDER, timeout: float = 900) -> dict:
    """Every variant on one estate of `hosts` hosts; returns {variant: measurement}."""
    shutil.rmtree(workdir, ignore_errors=True)
    results = {}
    with BenchEstate(workdir, hosts, base_address, latency_ms) as estate:
        run_playbook(estate, RAW, workdir, "%d-warm-up" % hosts, forks=forks, timeout=timeout)
        for key in variants:
            v = VARIANTS[key]
            if v["reset"] and results:
                estate.reset()
            if v["clear_cache"]:
                shutil.rmtree(fact_cache(workdir), ignore_errors=True)
            extra = dict(v["extra_vars"] or {})
            if key in EMERGENCY_VARS:
                extra["rollout_record_dir"] = os.path.join(workdir, "record-%d-%s" % (hosts, key))
            result = run_playbook(estate, v["playbook"], workdir, "%d-%s" % (hosts, key), check=v["check"],
                                  forks=forks, preload=v["preload"], extra_vars=extra or None, timeout=timeout)
            result["label"] = v["label"]
            results[key] = result
            print("  %4d hosts  %-48s %7.1f s  %5.2f cmd/host  %5.2f writes/host  %s  (load %.1f)" % (
                hosts, v["label"], result["wall_s"], result["commands_per_host"], result["writes_per_host"],
                "ok" if result["hosts_failed"] == 0 and result["rc"] == 0 else "FAILED rc=%s" % result["rc"],
                result["load_before"]), flush=True)
    return results


def _floor(results: dict, floor: str, key: str) -> float:
    """A floor's figure: the mean of its runs before and after the others, when both exist."""
    runs = [results[k][key] for k in FLOORS[floor] if k in results]
    return sum(runs) / len(runs)


def ratios(results: dict) -> list[dict]:
    rows = []
    for top, bottom, target, kind, text in RATIOS:
        if top not in results or bottom not in results:
            continue
        if bottom in FLOORS:
            wall_bottom, cpu_bottom = _floor(results, bottom, "wall_s"), _floor(results, bottom, "cpu_controller_s")
        else:
            wall_bottom, cpu_bottom = results[bottom]["wall_s"], results[bottom]["cpu_controller_s"]
        wall = results[top]["wall_s"] / wall_bottom
        cpu = results[top]["cpu_controller_s"] / cpu_bottom if cpu_bottom else None
        met = wall <= target if kind == "max" else wall >= target
        rows.append({"ratio": "%s/%s" % (top, bottom), "what": text, "wall_ratio": round(wall, 2),
                     "controller_cpu_ratio": round(cpu, 2) if cpu is not None else None,
                     "target": ("<= %g" if kind == "max" else ">= %g") % target, "met": met,
                     # by how much: the factor the measured ratio is off its target
                     "miss_factor": None if met else round(wall / target if kind == "max" else target / wall, 2)})
    return rows


PROFILED = ("a_waves", "cold")


def profile_rollout(workdir: str, hosts: int, base_address: str, latency_ms: int, forks: int) -> dict:
    """cProfile (CPU time) of the controller, workers included, for the raw floor in the waves and
    the cold emergency block on fresh hosts: which functions the rollout's extra cost is spent in."""
    out = {}
    with BenchEstate(workdir, hosts, base_address, latency_ms) as estate:
        for key in PROFILED:
            v = VARIANTS[key]
            label, playbook = v["label"], v["playbook"]
            shutil.rmtree(fact_cache(workdir), ignore_errors=True)
            target = os.path.join(workdir, "profile-" + key)
            shutil.rmtree(target, ignore_errors=True)
            run = run_playbook(estate, playbook, workdir, "profile-%s" % key, forks=forks, profile_dir=target,
                               extra_vars={"rollout_record_dir": os.path.join(workdir, "record-profile")})
            summary = profiles.playbook_profile(target, PROFILE_STEPS)
            summary.update(label=label, hosts=hosts, hosts_failed=run["hosts_failed"])
            out[key] = summary
    return out
