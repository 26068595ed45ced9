"""Section 1 and 2 of `make bench`: the Slammer block rolled out over a winsim estate, side by side.

On one estate (hosts reset to a fresh installation where a variant needs it) and one after the
other, so that the ratios compare runs made under the same machine load:

  a           raw no-op: one raw task, the floor any Ansible task pays
  check       ipsec_rule in check mode (fresh hosts: it plans the change, writes nothing)
  b_rule      ipsec_rule: the inbound Slammer rule, one task
  noop        the same ipsec_rule again: nothing to change
  b_rule_pre  what-if: b_rule with the engine imported in the controller before Ansible forks
  b_policy    ipsec_policy: the policy kb_raw.yml builds (in + out rule, assigned), one task
  c           the KB procedure as raw tasks, one netsh command each, then a verify
  b_playbook  playbooks/emergency_block.yml (dynamic filters, static policy, verify, waves)
  b_playbook_one_wave  what-if: the same in one wave (emergency_waves: ['100%']), smallest estate only
  a_again     the raw no-op once more: how far the machine's load moved during the section

A warm-up run (the raw no-op, not recorded) comes first, so that no variant pays for cold
caches. Ratios to the floor divide by the mean of `a` and `a_again`, which bracket the others.
"""
from __future__ import annotations

import os
import shutil

from . import profiles
from .ansible_run import ROOT, run_playbook
from .estates import BenchEstate

PLAYBOOKS = os.path.join(ROOT, "bench", "playbooks")
EMERGENCY = os.path.join(ROOT, "playbooks", "emergency_block.yml")
VARIANTS = {
    # key: (label, playbook, check mode, reset the hosts first, preload, extra vars)
    "a": ("raw no-op (floor)", os.path.join(PLAYBOOKS, "raw_noop.yml"), False, True, False, None),
    "check": ("ipsec_rule --check", os.path.join(PLAYBOOKS, "ipsec_rule.yml"), True, False, False, None),
    "b_rule": ("ipsec_rule (inbound rule)", os.path.join(PLAYBOOKS, "ipsec_rule.yml"), False, False, False, None),
    "noop": ("ipsec_rule again, no change", os.path.join(PLAYBOOKS, "ipsec_rule.yml"), False, False, False, None),
    "b_rule_pre": ("ipsec_rule, engine preloaded (what-if)", os.path.join(PLAYBOOKS, "ipsec_rule.yml"),
                   False, True, True, None),
    "b_policy": ("ipsec_policy (in+out, assigned)", os.path.join(PLAYBOOKS, "ipsec_policy.yml"),
                 False, True, False, None),
    "c": ("KB procedure as raw tasks", os.path.join(PLAYBOOKS, "kb_raw.yml"), False, True, False, None),
    "b_playbook": ("emergency_block.yml", EMERGENCY, False, True, False, None),
    "b_playbook_one_wave": ("emergency_block.yml in one wave (what-if)", EMERGENCY, False, True, False,
                            {"emergency_waves": ["100%"]}),
    "a_again": ("raw no-op again (load drift)", os.path.join(PLAYBOOKS, "raw_noop.yml"), False, False, False, None),
}
ORDER = tuple(VARIANTS)
SMALLEST_ONLY = ("b_playbook_one_wave",)     # what-ifs that the larger estates skip (time budget)

# (numerator, denominator, target, 'max' or 'min', what it says)
RATIOS = (
    ("b_rule", "a", 1.5, "max", "(b)/(a): ipsec_rule vs the raw floor"),
    ("b_policy", "a", 1.5, "max", "(b)/(a): ipsec_policy vs the raw floor"),
    ("b_playbook", "a", 1.5, "max", "(b)/(a): emergency_block.yml vs the raw floor"),
    ("c", "b_rule", 3.0, "min", "(c)/(b): KB raw tasks vs ipsec_rule"),
    ("c", "b_policy", 3.0, "min", "(c)/(b): KB raw tasks vs ipsec_policy (same end state)"),
    ("c", "b_playbook", 3.0, "min", "(c)/(b): KB raw tasks vs emergency_block.yml"),
    ("b_rule_pre", "a", 1.5, "max", "what-if: ipsec_rule, engine preloaded, vs the raw floor"),
    ("b_playbook_one_wave", "a", 1.5, "max", "what-if: emergency_block.yml in one wave vs the raw floor"),
)


# Where a task's worker spends its CPU: (label, file path part, function), cumulative time.
PROFILE_STEPS = (
    ("the whole task (TaskExecutor.run)", "ansible/executor/task_executor.py", "run"),
    ("WinRM commands (winrm connection exec_command)", "ansible/plugins/connection/winrm.py", "exec_command"),
    ("importing collection code (collection loader exec_module)", "_collection_finder.py", "exec_module"),
    ("module docs parsed for the argument spec (get_docstring)", "ansible/utils/plugin_docs.py", "get_docstring"),
    ("write script built (remote.write_scripts)", "ipsec/remote.py", "write_scripts"),
    ("state decoded from a transcript (host.state_from_transcript)", "ipsec/host.py", "state_from_transcript"),
    ("diff text (host.netdiag_diff)", "ipsec/host.py", "netdiag_diff"),
)


def run_estate(workdir: str, hosts: int, base_address: str, latency_ms: int, forks: int,
               variants=ORDER, timeout: float = 900) -> dict:
    """Every variant on one estate of `hosts` hosts; returns {variant: measurement}."""
    shutil.rmtree(workdir, ignore_errors=True)
    results = {}
    with BenchEstate(workdir, hosts, base_address, latency_ms) as estate:
        run_playbook(estate, VARIANTS["a"][1], workdir, "%d-warm-up" % hosts, forks=forks, timeout=timeout)
        for key in variants:
            label, playbook, check, reset, preload, extra_vars = VARIANTS[key]
            if reset and results:
                estate.reset()
            result = run_playbook(estate, playbook, workdir, "%d-%s" % (hosts, key), check=check, forks=forks,
                                  preload=preload, extra_vars=extra_vars, timeout=timeout)
            result["label"] = label
            results[key] = result
            print("  %4d hosts  %-40s %7.1f s  %5.2f cmd/host  %s  (load %.1f)" % (
                hosts, label, result["wall_s"], result["commands_per_host"],
                "ok" if result["hosts_failed"] == 0 and result["rc"] == 0 else "FAILED rc=%s" % result["rc"],
                result["load_before"]), flush=True)
    return results


def _floor(results: dict, key: str) -> float:
    """The raw floor's figure: the mean of the runs before and after the others, when both exist."""
    runs = [results[k][key] for k in ("a", "a_again") if k in results]
    return sum(runs) / len(runs)


def ratios(results: dict) -> list[dict]:
    rows = []
    for top, bottom, target, kind, text in RATIOS:
        if top not in results or bottom not in results:
            continue
        wall_bottom = _floor(results, "wall_s") if bottom == "a" else results[bottom]["wall_s"]
        cpu_bottom = _floor(results, "cpu_controller_s") if bottom == "a" else results[bottom]["cpu_controller_s"]
        wall = results[top]["wall_s"] / wall_bottom
        cpu = results[top]["cpu_controller_s"] / cpu_bottom if cpu_bottom else None
        met = wall <= target if kind == "max" else wall >= target
        rows.append({"ratio": "%s/%s" % (top, bottom), "what": text, "wall_ratio": round(wall, 2),
                     "controller_cpu_ratio": round(cpu, 2) if cpu is not None else None,
                     "target": ("<= %g" if kind == "max" else ">= %g") % target, "met": met,
                     # by how much: the factor the measured ratio is off its target
                     "miss_factor": None if met else round(wall / target if kind == "max" else target / wall, 2)})
    return rows


def profile_rule(workdir: str, hosts: int, base_address: str, latency_ms: int, forks: int) -> dict:
    """cProfile (CPU time) of the controller, workers included, for the raw floor and ipsec_rule
    on fresh hosts: which functions the module's extra cost is spent in."""
    out = {}
    with BenchEstate(workdir, hosts, base_address, latency_ms) as estate:
        for key in ("a", "b_rule"):
            label, playbook, check, _reset, _preload, _extra = VARIANTS[key]
            target = os.path.join(workdir, "profile-" + key)
            shutil.rmtree(target, ignore_errors=True)
            run = run_playbook(estate, playbook, workdir, "profile-%s" % key, check=check, forks=forks,
                               profile_dir=target)
            summary = profiles.playbook_profile(target, PROFILE_STEPS)
            summary.update(label=label, hosts=hosts, hosts_failed=run["hosts_failed"])
            out[key] = summary
    return out
