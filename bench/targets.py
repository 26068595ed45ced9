"""The issue's targets checked against a bench run, and what the profiles say where one is missed."""
from __future__ import annotations

from .rollout import COMMANDS

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
        for key, most in COMMANDS.items():
            if key in variants:
                v = variants[key]
                met = v["commands_max"] <= most
                rows.append({"section": "2 commands, %s hosts" % size,
                             "what": "%s: WinRM commands per host" % v["label"],
                             "target": "<= %d" % most, "measured": v["commands_per_host"], "met": met,
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
    """Plain sentences with the numbers that explain the rollout's cost, a missed target most of all."""
    rollout = results.get("rollout") or {}
    notes = []
    for size, variants in sorted((rollout.get("estates") or {}).items(), key=lambda kv: int(kv[0])):
        waves, one = variants.get("a_waves"), variants.get("a")
        if waves and one:
            notes.append("%s hosts: the raw floor takes %.1f s in the three waves and %.1f s in one wave: the waves "
                         "themselves cost %.1f s." % (size, waves["wall_s"], one["wall_s"],
                                                       waves["wall_s"] - one["wall_s"]))
        if waves and waves.get("timing"):
            notes.append("%s hosts, %s, by step: %s." % (size, waves["label"], _steps(waves)))
        for key in ("cold", "warm", "noop"):
            run = variants.get(key)
            if not run or not waves:
                continue
            if run.get("timing"):
                notes.append("%s hosts, %s, by step: %s." % (size, run["label"], _steps(run)))
            notes.append(
                "%s hosts, %s: %.1f s, %.1f s over the floor in the waves; %.1f tasks per host (the floor: %.1f) "
                "and %s WinRM commands per host (audit log: %.1f tool runs, %.1f writes); controller CPU "
                "%.0f ms per host vs %.0f ms; winsim CPU %.0f ms per host vs %.0f ms." % (
                    size, run["label"], run["wall_s"], run["wall_s"] - waves["wall_s"], run["tasks_per_host"],
                    waves["tasks_per_host"], run["commands_per_host"], run["tool_runs_per_host"],
                    run["writes_per_host"], _per_host_ms(run, "cpu_controller_s"),
                    _per_host_ms(waves, "cpu_controller_s"), _per_host_ms(run, "cpu_winsim_s"),
                    _per_host_ms(waves, "cpu_winsim_s")))
        kb, warm = variants.get("c"), variants.get("warm")
        if kb and warm:
            notes.append("%s hosts: the KB procedure by hand runs %.0f tasks per host (%s WinRM commands) in %.1f s, "
                         "%.1fx the warm rollout's %.1f s." % (size, kb["tasks_per_host"], kb["commands_per_host"],
                                                               kb["wall_s"], kb["wall_s"] / max(warm["wall_s"], 1e-9),
                                                               warm["wall_s"]))
    profile = results.get("profile") or {}
    floor, block = profile.get("a_waves"), profile.get("cold")
    if floor and block and block["workers"].get("profiles"):
        hosts, steps = block["hosts"], block["steps"]
        per_host = lambda seconds: 1000 * seconds / max(hosts, 1)   # noqa: E731
        notes.append(
            "Profile (cProfile, CPU time, %d hosts; the profiler roughly triples CPU times, the shares hold): "
            "the workers spend %.0f ms per host on the raw floor in the waves and %.0f ms on the cold emergency "
            "block (%d worker task runs vs %d); the controller's main process %.2f s vs %.2f s. Table below: "
            "worker CPU per host by step." % (
                hosts, 1000 * floor["workers"]["total_s"] / max(floor["hosts"], 1),
                per_host(block["workers"]["total_s"]), block["workers"]["profiles"], floor["workers"]["profiles"],
                floor["main"].get("total_s", 0.0), block["main"].get("total_s", 0.0)))
        imports = steps.get("importing collection code (collection loader exec_module)", 0.0)
        if per_host(imports) >= 5:
            notes.append(
                "Importing collection code costs %.0f ms per host in the workers: Ansible's collection loader "
                "compiles collection source on every import (_collection_finder.py get_code, no bytecode cache) "
                "and what a worker imports after the fork is paid once per host." % per_host(imports))
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


def _steps(run: dict, shown: int = 8) -> str:
    """'the task 4.3 s, play setup (3 plays) 0.6 s, ...': wall seconds per task (its waves summed), the
    plays' setup and ansible-playbook's own start and end (the wall time no play or task accounts
    for), largest first (bench/callback_plugins/bench_timing.py)."""
    timing = run["timing"]
    setup = [r["seconds"] for r in timing if r["kind"] == "play setup"]
    rows = [(r["seconds"], r["name"].split(" : ", 1)[-1]) for r in timing if r["kind"] == "task"]
    rows.append((sum(setup), "play setup (%d plays)" % len(setup)))
    rows.append((max(run["wall_s"] - sum(r["seconds"] for r in timing), 0.0),
                 "ansible-playbook start and end (imports, inventory)"))
    rows.sort(reverse=True)
    text = ", ".join("%s %.2f s" % (name if len(name) <= 60 else name[:57] + "...", seconds)
                     for seconds, name in rows[:shown])
    return text + (", the rest %.2f s" % sum(sec for sec, _ in rows[shown:]) if rows[shown:] else "")


def _per_host_ms(run: dict, key: str) -> float:
    return 1000 * run[key] / max(run["hosts"], 1)


def _kb(run: dict) -> float:
    return (run["bytes_sent_per_host"] + run["bytes_received_per_host"]) / 1000
