"""A bench run's results (the JSON document) -> the Markdown results file."""
from __future__ import annotations

from . import sizing


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _ms_per_host(run: dict, key: str) -> str:
    return "%.0f" % (1000 * run[key] / max(run["hosts"], 1))


def _status(run: dict) -> str:
    if run["rc"] == 0 and run["hosts_failed"] == 0 and run["hosts_in_recap"] == run["hosts"]:
        return "%d ok" % run["hosts_ok"]
    return "**rc %s, %d failed, %d in recap**" % (run["rc"], run["hosts_failed"], run["hosts_in_recap"])


def _profile_rows(rows: list[dict], key: str) -> list[list]:
    return [[r["function"].replace("|", "\\|"), r["calls"], r[key]] for r in rows]


def render(results: dict) -> str:
    meta = results["meta"]
    out = ["# winsec.ipsec benchmarks", "",
           "Written by `make bench` (bench/run.py; `--quick` for tiny sizes, `--from-json` to render a "
           "run again). This run: `%s` at commit `%s`, %s UTC, %s s in all. %d CPUs; load average %s at the start, %s at the "
           "end. The machine is shared: absolute figures are noisy, so each ratio compares runs made one "
           "after the other on the same estate, and every run shows the load average it started at."
           % (meta["command"], meta["commit"], meta["started"], meta["duration_s"], meta["cpus"],
              meta["load_start"], meta["load_end"]), ""]
    targets = results.get("targets") or []
    if targets:
        out += ["## Targets", "",
                "Rollout ratios are of wall time; the controller CPU ratio beside them moves much less "
                "with the machine's load.", ""]
        out += _table(["section", "what", "target", "measured", "controller CPU ratio", "met", "missed by"],
                      [[t["section"], t["what"], t["target"], t["measured"], t.get("cpu_ratio", ""),
                        "yes" if t["met"] else "**no**", t["miss"] or ""] for t in targets])
    rollout = results.get("rollout")
    if rollout:
        out += ["## 1. Estate rollout: the Slammer block", "",
                "winsim hosts (personality `modern`), %d ms latency injected per request, forks %d, "
                "WinRM over HTTP with Basic auth. CPU: the controller is ansible-playbook and its workers, "
                "winsim the bench process that serves the hosts. Bytes are HTTP bodies (SOAP), per host; "
                "`sent` is controller to host." % (rollout["latency_ms"], rollout["forks"]), ""]
        for size, variants in sorted(rollout["estates"].items(), key=lambda kv: int(kv[0])):
            out += ["### %s hosts" % size, ""]
            out += _table(
                ["variant", "wall s", "load", "WinRM cmds/host", "tool runs/host", "writes/host", "requests/host",
                 "kB sent/host", "kB recv/host", "controller CPU ms/host", "winsim CPU ms/host", "tasks/host",
                 "hosts"],
                [[v["label"], v["wall_s"], v["load_before"], v["commands_per_host"], v.get("tool_runs_per_host", ""),
                  v.get("writes_per_host", ""), v["requests_per_host"],
                  "%.1f" % (v["bytes_sent_per_host"] / 1000), "%.1f" % (v["bytes_received_per_host"] / 1000),
                  _ms_per_host(v, "cpu_controller_s"), _ms_per_host(v, "cpu_winsim_s"), v["tasks_per_host"],
                  _status(v)] for v in variants.values()])
            ratios = rollout["ratios"].get(size) or []
            if "a_again" in variants or "a_waves_again" in variants:
                out += ["Ratios to a floor divide by the mean of its two raw no-op runs, which "
                        "bracket the others in time.", ""]
            out += _table(["ratio", "what", "wall", "controller CPU", "target", "met"],
                          [[r["ratio"], r["what"], r["wall_ratio"], r["controller_cpu_ratio"], r["target"],
                            "yes" if r["met"] else "**no** (x%.2f)" % r["miss_factor"]] for r in ratios])
        out += ["## 2. WinRM commands per host", "",
                "Commands as winsim's WinRM service counted them; tool runs and writes from each host's audit "
                "log (every native tool a command ran, and those that changed the host).", ""]
        rows = []
        for size, variants in sorted(rollout["estates"].items(), key=lambda kv: int(kv[0])):
            for v in variants.values():
                rows.append([size, v["label"], v["commands_per_host"], v["commands_min"], v["commands_max"],
                             v.get("tool_runs_per_host", ""), v.get("writes_per_host", ""),
                             v["requests_per_host"], v["hosts_changed"]])
        out += _table(["hosts", "run", "commands/host (mean)", "min", "max", "tool runs/host", "writes/host",
                       "requests/host", "hosts reporting changed"], rows)
    findings = results.get("findings") or []
    profile = results.get("profile")
    if findings or profile:
        out += ["## What costs the time", ""]
        out += ["- " + f for f in findings] + [""]
        if profile and "a_waves" in profile and "cold" in profile and profile["cold"].get("steps"):
            a, rule = profile["a_waves"], profile["cold"]
            out += ["Worker CPU per host by step (ms, profiled; steps overlap where an import happens "
                    "inside a step):", ""]
            out += _table(["step", a["label"], rule["label"]],
                          [[label, "%.0f" % (1000 * a["steps"].get(label, 0) / a["hosts"]),
                            "%.0f" % (1000 * value / rule["hosts"])] for label, value in rule["steps"].items()])
        for key, prof in (profile or {}).items():
            workers = prof["workers"]
            if not workers.get("profiles"):
                continue
            out += ["### Profile: %s, %d hosts (workers: %d profiles, %.2f s CPU)" % (
                prof["label"], prof["hosts"], workers["profiles"], workers["total_s"]), "",
                "By own time:", ""]
            out += _table(["function", "calls", "own s"], _profile_rows(workers["by_own_time"][:10], "tottime_s"))
            out += ["By cumulative time:", ""]
            out += _table(["function", "calls", "cumulative s"],
                          _profile_rows(workers["by_cumulative_time"][:12], "cumtime_s"))
    engine = results.get("engine")
    if engine:
        out += ["## 3. Engine: decode and plan", "",
                "A store of N filters (one assigned policy, rules of %d filters) written by winsim's registry "
                "writer, rendered as winsim's `reg query /s` prints it; then, timed on their own (CPU ms, best of %d; wall "
                "in the last column), `parse_reg_query`, `decode_store`, `plan_rule` (add the Slammer rule) "
                "and `plan_policy` (the same block list again: no change, every filter compared). Peak "
                "memory per stage by tracemalloc." % (engine["filters_per_list"], engine["repeat"]), ""]
        out += _table(["filters", "reg query MB", "parse ms", "decode ms", "plan_rule ms", "plan_policy ms",
                       "total CPU ms", "total wall ms", "peak MB parse / decode / plan_policy"],
                      [[r["filters"], "%.1f" % (r["reg_query_bytes"] / 2 ** 20), r["parse_reg_query_ms"],
                        r["decode_store_ms"], r["plan_rule_ms"], r["plan_policy_ms"], r["total_ms"],
                        r["total_wall_ms"], "%s / %s / %s" % (r["parse_reg_query_peak_mb"], r["decode_store_peak_mb"],
                                                            r["plan_policy_peak_mb"])] for r in engine["rows"]])
        out += _table(["step", "cost per filter, larger / smaller"],
                      [["%d -> %d" % (s["from"], s["to"]), s["time_per_filter_ratio"]] for s in engine["linearity"]])
        if engine.get("profile"):
            prof = engine["profile"]
            out += ["Profile of decode + plan at %d filters (cProfile, CPU %.2f s with the profiler's "
                    "overhead), by own time:" % (prof["filters"], prof["total_s"]), ""]
            out += _table(["function", "calls", "own s"], _profile_rows(prof["by_own_time"][:12], "tottime_s"))
        if engine.get("gc"):
            out += ["`decode_store` (the stage that grows) with Python's cyclic garbage collector on and "
                    "off, CPU per filter:", ""]
            out += _table(["filters", "us/filter", "us/filter, collector off"],
                          [[g["filters"], g["decode_us_per_filter"], g["decode_us_per_filter_gc_off"]]
                           for g in engine["gc"]])
        out += ["- " + f for f in engine.get("findings", [])] + ([""] if engine.get("findings") else [])
    capacity = results.get("capacity")
    if capacity:
        c = capacity
        out += ["## 4. winsim capacity", "",
                "`python -m winsim serve` with %d hosts in its own process; %d client threads (pywinrm "
                "Protocol, Basic over HTTP, one shell per host) run `echo ok` (Command, Receive, Signal) "
                "for %.1f s. Memory: the serving process's RSS with one host, with %d idle hosts and at "
                "its peak under the clients." % (c["hosts"], c["clients"], c["seconds"], c["hosts"]), ""]
        out += _table(["hosts", "requests/s", "commands/s", "winsim CPU ms/request", "winsim CPU s",
                       "clients CPU s", "RSS 1 host MB", "RSS idle MB", "RSS peak MB", "idle kB/host",
                       "busy kB/host", "errors", "load"],
                      [[c["hosts"], c["requests_per_s"], c["commands_per_s"], c["winsim_cpu_ms_per_request"],
                        c["winsim_cpu_s"], c["clients_cpu_s"], c["rss_one_host_mb"], c["rss_idle_mb"],
                        c["rss_peak_mb"], c["idle_kb_per_host"], c["busy_kb_per_host"], c["error_count"],
                        c["load_before"]]])
        if c["clients_cpu_s"] > c["winsim_cpu_s"]:
            out += ["The clients used more CPU than winsim: on this machine the figure is bounded by the "
                    "clients; winsim's own ceiling is about %.0f requests per CPU-second."
                    % (1000 / c["winsim_cpu_ms_per_request"]), ""]
    if results.get("sizing"):
        out += sizing.render(results["sizing"], results.get("capacity"), _table)
    return "\n".join(out).rstrip() + "\n"
