"""The issue's targets checked against a bench run, and what the profiles say where one is missed."""
from __future__ import annotations

ENGINE_10K_MS = 200.0
# "Linear": the cost per filter may grow at most this much from one size to the next (10x) one.
LINEAR_TOLERANCE = 1.5


def collect(results: dict) -> list[dict]:
    """One row per target: what, target, measured, met, and by how much it is missed."""
    rows = []
    rollout = results.get("rollout") or {}
    for size, ratio_rows in sorted((rollout.get("ratios") or {}).items(), key=lambda kv: int(kv[0])):
        for r in ratio_rows:
            rows.append({"section": "1 rollout, %s hosts" % size, "what": r["what"], "target": r["target"],
                         "measured": r["wall_ratio"], "cpu_ratio": r["controller_cpu_ratio"], "met": r["met"],
                         "miss": None if r["met"] else "off by a factor %.2f" % r["miss_factor"]})
    for size, variants in sorted((rollout.get("estates") or {}).items(), key=lambda kv: int(kv[0])):
        for key in ("check", "noop"):
            if key in variants:
                v = variants[key]
                met = v["commands_max"] == 1 and v["commands_min"] == 1
                rows.append({"section": "2 commands, %s hosts" % size,
                             "what": "%s: WinRM commands per host" % v["label"],
                             "target": "1", "measured": v["commands_per_host"], "met": met,
                             "miss": None if met else "%s to %s commands per host"
                             % (v["commands_min"], v["commands_max"])})
    engine = results.get("engine") or {}
    for row in engine.get("rows", []):
        if row["filters"] == 10000:
            met = row["total_ms"] < ENGINE_10K_MS
            rows.append({"section": "3 engine", "what": "decode + plan at 10k filters (CPU ms)",
                         "target": "< %g" % ENGINE_10K_MS, "measured": row["total_ms"], "met": met,
                         "miss": None if met else "%.0f ms over (%.2fx)" % (row["total_ms"] - ENGINE_10K_MS,
                                                                            row["total_ms"] / ENGINE_10K_MS)})
    for step in engine.get("linearity", []):
        growth = step["time_per_filter_ratio"]
        met = growth is not None and growth <= LINEAR_TOLERANCE
        rows.append({"section": "3 engine",
                     "what": "linear %d -> %d filters (cost per filter, x)" % (step["from"], step["to"]),
                     "target": "<= %g" % LINEAR_TOLERANCE, "measured": growth, "met": met,
                     "miss": None if met else "cost per filter grows %.2fx" % growth})
    return rows


def rollout_findings(results: dict) -> list[str]:
    """Plain sentences with the numbers that explain a missed rollout target."""
    rollout = results.get("rollout") or {}
    notes = []
    for size, variants in sorted((rollout.get("estates") or {}).items(), key=lambda kv: int(kv[0])):
        a, rule, pre, book = (variants.get(k) for k in ("a", "b_rule", "b_rule_pre", "b_playbook"))
        ratio = {r["ratio"]: r["wall_ratio"] for r in (rollout.get("ratios") or {}).get(size, [])}
        if a and rule:
            notes.append(
                "%s hosts: controller CPU per host %.0f ms for the raw floor, %.0f ms for ipsec_rule "
                "(%.1fx); winsim CPU per host %.0f ms vs %.0f ms; WinRM per host %s vs %s commands, "
                "%s vs %s requests, %.1f vs %.1f kB." % (
                    size, _per_host_ms(a, "cpu_controller_s"), _per_host_ms(rule, "cpu_controller_s"),
                    rule["cpu_controller_s"] / max(a["cpu_controller_s"], 1e-9),
                    _per_host_ms(a, "cpu_winsim_s"), _per_host_ms(rule, "cpu_winsim_s"),
                    a["commands_per_host"], rule["commands_per_host"], a["requests_per_host"],
                    rule["requests_per_host"], _kb(a), _kb(rule)))
        if pre and rule and "b_rule_pre/a" in ratio and "b_rule/a" in ratio:
            notes.append(
                "%s hosts, what-if: with the engine imported in the controller before Ansible forks, "
                "ipsec_rule takes %.1f s instead of %.1f s (ratio to the floor %.2f instead of %.2f) and "
                "%.0f ms of controller CPU per host instead of %.0f ms." % (
                    size, pre["wall_s"], rule["wall_s"], ratio["b_rule_pre/a"], ratio["b_rule/a"],
                    _per_host_ms(pre, "cpu_controller_s"), _per_host_ms(rule, "cpu_controller_s")))
        if book and "b_playbook_one_wave/a" in ratio:
            one = variants["b_playbook_one_wave"]["wall_s"]
            notes.append(
                "%s hosts, what-if: emergency_block.yml in one wave instead of three takes %.1f s instead "
                "of %.1f s (ratio to the floor %.2f instead of %.2f): %s" % (
                    size, one, book["wall_s"], ratio["b_playbook_one_wave/a"], ratio.get("b_playbook/a", 0),
                    "the canary waves cost the difference, the rest is the tasks." if one < book["wall_s"]
                    else "the waves cost nothing measurable at this load; the cost is the tasks."))
        if a and book:
            notes.append(
                "%s hosts: emergency_block.yml puts each host through %.0f Ansible tasks (the raw "
                "floor: %.0f) in 3 serial waves (1 host, 10 %%, the rest), of which 3 reach the host "
                "(%s WinRM commands per host); every task, set_fact and assert included, forks a "
                "worker per host, so its cost is Ansible's per-task cost times the tasks." % (
                    size, book["tasks_per_host"], a["tasks_per_host"], book["commands_per_host"]))
    profile = results.get("profile") or {}
    a_prof, rule_prof = profile.get("a"), profile.get("b_rule")
    if a_prof and rule_prof and rule_prof["workers"].get("profiles"):
        hosts, steps = rule_prof["hosts"], rule_prof["steps"]
        total = rule_prof["workers"]["total_s"]
        imports = steps.get("importing collection code (collection loader exec_module)", 0.0)
        docs = steps.get("module docs parsed for the argument spec (get_docstring)", 0.0)
        per_host = lambda seconds: 1000 * seconds / max(hosts, 1)   # noqa: E731
        notes.append(
            "Profile (cProfile, CPU time, every worker, %d hosts; the profiler roughly triples CPU "
            "times, the shares hold): a raw task costs %.0f ms of worker CPU per host, an ipsec_rule "
            "task %.0f ms; importing the collection's own code in the worker %.0f ms (%.0f %%), parsing "
            "the module's DOCUMENTATION %.0f ms. Table below: CPU per host by step." % (
                hosts, 1000 * a_prof["workers"]["total_s"] / max(a_prof["hosts"], 1), per_host(total),
                per_host(imports), 100 * imports / max(total, 1e-9), per_host(docs)))
        if per_host(imports + docs) >= 5:
            notes.append(
                "Imports and docs are paid in every forked worker: Ansible's collection loader compiles "
                "collection source on every import (_collection_finder.py get_code, no bytecode cache) and "
                "an lru_cache does not outlive a fork. They are paid once in the controller when the action "
                "plugins import the engine at module level and parse the documentation at import (the "
                "linear strategy imports the action plugin before it forks: ansible/plugins/strategy/"
                "linear.py, action_loader.get(class_only=True)).")
        else:
            notes.append(
                "Imports and documentation are paid once in the controller (the action plugins import the "
                "engine and parse their documentation at import, before Ansible forks a worker per host); "
                "what remains above the floor is the second WinRM round trip of a change, building the "
                "write script and decoding the state, and Ansible's own per-task cost.")
    return notes


def engine_findings(engine: dict) -> list[str]:
    """What the collector-on/off measurement says about a step that is not linear."""
    notes = []
    gc_rows = engine.get("gc") or []
    for small, large in zip(gc_rows, gc_rows[1:]):
        with_gc = large["decode_us_per_filter"] / small["decode_us_per_filter"]
        without = large["decode_us_per_filter_gc_off"] / small["decode_us_per_filter_gc_off"]
        text = ("%d -> %d filters: decode_store's cost per filter changes %.2fx with the garbage collector "
                "and %.2fx without it." % (small["filters"], large["filters"], with_gc, without))
        if with_gc > LINEAR_TOLERANCE:
            text += (" The collector's passes over the growing heap of model objects explain the "
                     "difference; what remains grows with no function standing out (every function's "
                     "calls grow with the filters, see the profile), so it is likely memory locality "
                     "[not verified].")
        notes.append(text)
    return notes


def _per_host_ms(run: dict, key: str) -> float:
    return 1000 * run[key] / max(run["hosts"], 1)


def _kb(run: dict) -> float:
    return (run["bytes_sent_per_host"] + run["bytes_received_per_host"]) / 1000
