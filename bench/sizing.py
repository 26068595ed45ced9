"""Section 5 of `make bench`: sizing. What one controller spends per host on the emergency block,
and from that how many execution nodes block an estate within a time budget.

Measured (`measure`), per WinRM latency (winsim sleeps that long in every HTTP request) and per
forks value, on one winsim estate served in the bench process while ansible-playbook runs as a
child process (its own process tree, so the CPU of each side is counted apart):
  cold   playbooks/emergency_block.yml on fresh hosts, empty fact cache
  warm   the same after an ipsec_info read of every host (the read itself is not counted)
and, on one host of the same estate (`--limit`), the same two: the fixed time and CPU a run costs
whatever its size (ansible-playbook's start, the canary wave, the run-once tasks, the summary).

Derived (`node_rate`, `nodes_needed`; the formula is written out in the report):
  per host, marginal:  c = (CPU(N hosts) - CPU(1 host)) / (N - 1), controller and main process apart
  one node's rate      R = min(cores / c, 1 / c_main, forks / t_fork)    hosts per second
                       t_fork = requests per host x latency + worker CPU per host: the wall time a fork
                       is busy with one host when the node's CPU is not the limit
  nodes needed         ceil(H / (R x (budget - T_fixed))), T_fixed the wall time of the 1-host run
"""
from __future__ import annotations

import math
import os
import shutil

from .ansible_run import fact_cache, run_playbook
from .estates import BenchEstate
from .rollout import EMERGENCY, PLAYBOOKS, RAW

READ = os.path.join(PLAYBOOKS, "ipsec_info.yml")
KINDS = ("cold", "warm")
LIMITS = ("CPU", "main process", "forks x WinRM latency")
# A run whose largest share of a ceiling stays under this reached none: on this shared machine the
# other sessions' processes took the CPU it did not get.
SATURATED = 0.8
# The second table: nodes this many times the measured size, to show where the main process and the
# forks start to limit (an extrapolation: the CPU per host measured here is assumed to hold).
BIG_NODE = 4
FAILED = "no figure: a run failed"


# ---------------------------------------------------------------- arithmetic (unit-tested)

def marginal(total_n: float, total_1: float, hosts: int) -> float:
    """Per-host cost from a run on `hosts` hosts and the same run on one host: what one more host
    adds, the run's fixed part left out. With one host there is no second point: the total."""
    if hosts < 1:
        raise ValueError("hosts must be at least 1, got %r" % (hosts,))
    if hosts == 1:
        return total_n
    return (total_n - total_1) / (hosts - 1)


def fork_seconds(requests_per_host: float, latency_s: float, worker_cpu_s: float) -> float:
    """Wall seconds a fork is busy with one host when CPU is not short: its WinRM requests one
    after the other, each waiting `latency_s`, plus the worker's own CPU."""
    if requests_per_host < 0 or latency_s < 0 or worker_cpu_s < 0:
        raise ValueError("requests, latency and CPU must be >= 0, got %r, %r, %r"
                         % (requests_per_host, latency_s, worker_cpu_s))
    return requests_per_host * latency_s + worker_cpu_s


def node_rate(cpu_s_per_host: float, main_cpu_s_per_host: float, fork_s: float, forks: int,
              cores: float) -> dict:
    """Hosts per second one node sustains, and what limits it:
    CPU (all cores busy with the controller's processes), the main process (Ansible's strategy is
    one process: one core at most) or forks x WinRM latency (every fork waiting on a host)."""
    if cpu_s_per_host <= 0 or fork_s <= 0 or forks < 1 or cores <= 0:
        raise ValueError("per-host CPU and fork time must be > 0, forks >= 1 and cores > 0; got "
                         "cpu %r, fork %r s, forks %r, cores %r" % (cpu_s_per_host, fork_s, forks, cores))
    ceilings = {"CPU": cores / cpu_s_per_host,
                "main process": 1 / main_cpu_s_per_host if main_cpu_s_per_host > 0 else math.inf,
                "forks x WinRM latency": forks / fork_s}
    limit = min(LIMITS, key=lambda name: ceilings[name])      # a tie goes to the first in LIMITS
    return {"hosts_per_s": ceilings[limit], "limit": limit, "ceilings": ceilings}


def nodes_needed(hosts: int, hosts_per_s: float, fixed_s: float, budget_s: float = 300.0) -> int | None:
    """Execution nodes (one slice each) that block `hosts` hosts within `budget_s` seconds, each
    node running `hosts_per_s` after a fixed `fixed_s`. None when the fixed part alone is over budget."""
    if hosts < 0 or hosts_per_s <= 0:
        raise ValueError("hosts must be >= 0 and the rate > 0, got %r and %r" % (hosts, hosts_per_s))
    if hosts == 0:
        return 0
    per_node = hosts_per_s * (budget_s - fixed_s)
    if per_node <= 0:
        return None
    # a node blocks whole hosts: ceil, with a margin for float noise in an exact division
    return max(1, math.ceil(hosts / per_node - 1e-9))


def run_limit(run: dict, cores: int, fork_s: float) -> dict:
    """What limited a measured run on this machine: the largest share of a ceiling it used, if that
    share reaches SATURATED; under it, no ceiling was reached (other processes had the CPU).
    winsim: its CPU over the wall time, of one core (it serves every host from one Python process);
    main process: likewise; machine CPU: controller and winsim together, of every core; forks:
    the hosts per second reached over what the forks allow at this latency."""
    wall = run["wall_s"]
    shares = {"winsim (one process)": run["cpu_winsim_s"] / wall,
              "controller main process": (run.get("cpu_main_s") or 0.0) / wall,
              "machine CPU (controller + winsim)": (run["cpu_controller_s"] + run["cpu_winsim_s"]) / wall / cores,
              "forks x WinRM latency": (run["hosts"] / wall) / (run["forks"] / fork_s) if fork_s > 0 else 0.0}
    name = max(shares, key=lambda k: shares[k])
    if shares[name] < SATURATED:
        name_out = "no ceiling reached: the CPU went to other processes"
    else:
        name_out = name
    return {"limit": name_out, "share": round(shares[name], 2), "largest": name,
            "shares": {k: round(v, 2) for k, v in shares.items()}}


def node_memory_mb(memory: dict, forks: int) -> float | None:
    """What a node holds with every fork busy: the main process's RSS and one worker's private
    pages (USS) per fork; the pages the workers share with the main process are in its RSS."""
    if memory.get("main_rss_peak_mb") is None or memory.get("worker_uss_median_mb") is None:
        return None
    return memory["main_rss_peak_mb"] + forks * memory["worker_uss_median_mb"]


def _run(runs: list[dict], latency_ms: int, kind: str, forks: int) -> dict:
    return next(r for r in runs if r["latency_ms"] == latency_ms and r["kind"] == kind and r["forks"] == forks)


def measured(run: dict) -> bool:
    """A run whose figures count: it finished on every host and wrote its main process's CPU."""
    return run["rc"] == 0 and run["hosts_failed"] == 0 and run.get("cpu_main_s") is not None


def derive(runs: list[dict], fixed: dict, latency_ms: int, kind: str, forks: int) -> dict | None:
    """Per-host figures of one (latency, kind, forks) from its run and the 1-host run of that latency
    and kind; None when either failed (a failed run's time and CPU say nothing about a block)."""
    run = _run(runs, latency_ms, kind, forks)
    one = fixed["%d-%s" % (latency_ms, kind)]
    if not (measured(run) and measured(one)):
        return None
    n = run["hosts"]
    cpu = marginal(run["cpu_controller_s"], one["cpu_controller_s"], n)
    main = marginal(run["cpu_main_s"], one["cpu_main_s"], n)
    # On a few hosts the load's noise can exceed what the hosts add: no marginal cost to speak of.
    # The run's average per host then (its fixed part included: an upper bound), and said so.
    averaged = cpu <= 0 or main <= 0
    if averaged:
        cpu, main = run["cpu_controller_s"] / n, run["cpu_main_s"] / n
    worker = max(cpu - main, 0.0)
    fork_s = fork_seconds(run["requests_per_host"], latency_ms / 1000, worker)
    return {"cpu_s": cpu, "main_s": main, "worker_s": worker, "fork_s": fork_s, "fixed_s": one["wall_s"],
            "averaged": averaged,
            "requests_per_host": run["requests_per_host"], "winsim_s": marginal(run["cpu_winsim_s"],
                                                                                 one["cpu_winsim_s"], n)}


def table(sizing: dict, estates=(1000, 10000, 50000), budget_s: float = 300.0, cores: float | None = None) -> list[dict]:
    """The nodes table: one row per latency and estate size, a cell per kind and forks; nodes of
    `cores` cores (default the sizing's node_cores)."""
    rows = []
    cores = cores or sizing["node_cores"]
    for latency in sizing["latencies_ms"]:
        for hosts in estates:
            cells = {}
            for kind in KINDS:
                for forks in sizing["forks"]:
                    d = derive(sizing["runs"], sizing["fixed"], latency, kind, forks)
                    if d is None:
                        cells["%s-%d" % (kind, forks)] = {"nodes": None, "limit": FAILED, "hosts_per_min": None,
                                                          "fixed_s": None}
                        continue
                    rate = node_rate(d["cpu_s"], d["main_s"], d["fork_s"], forks, cores)
                    cells["%s-%d" % (kind, forks)] = {
                        "nodes": nodes_needed(hosts, rate["hosts_per_s"], d["fixed_s"], budget_s),
                        "limit": rate["limit"], "hosts_per_min": round(60 * rate["hosts_per_s"]),
                        "fixed_s": d["fixed_s"]}
            rows.append({"latency_ms": latency, "hosts": hosts, "cells": cells})
    return rows


# ---------------------------------------------------------------- measurement

def _one(estate, workdir, kind, label, forks, latency, timeout, limit=None):
    """cold: hosts fresh, cache empty, the block; warm: hosts fresh, cache empty, a read, the block."""
    estate.reset()
    shutil.rmtree(fact_cache(workdir), ignore_errors=True)
    if kind == "warm":
        read = run_playbook(estate, READ, workdir, label + "-read", forks=forks, limit=limit, timeout=timeout)
        if read["rc"] != 0 or read["hosts_failed"]:
            print("  %3d ms  forks %3d  %s: the read before it FAILED (rc %s), see %s" % (
                latency, forks, kind, read["rc"], read["log"]), flush=True)
            return dict(read, kind=kind, latency_ms=latency, hosts=1 if limit else estate.count,
                        rc="the read before it failed: rc %s" % read["rc"], hosts_failed=read["hosts_failed"] or 1,
                        cpu_main_s=None, memory=None, hosts_per_min=None, forks=forks)
    run = run_playbook(estate, EMERGENCY, workdir, label, forks=forks, limit=limit, timeout=timeout, sizing=True,
                       extra_vars={"rollout_record_dir": os.path.join(workdir, "record-" + label)})
    hosts = 1 if limit else estate.count
    run.update(kind=kind, latency_ms=latency, hosts=hosts)
    # per host of the hosts the run touched (the counters saw the whole estate)
    run.update(commands_per_host=round(run["commands_total"] / hosts, 2),
               requests_per_host=round(run["requests_total"] / hosts, 2))
    run["hosts_per_min"] = round(60 * hosts / run["wall_s"], 1) if run["wall_s"] else None
    print("  %3d ms  forks %3d  %-4s %3d hosts  %6.1f s  %6.0f hosts/min  controller %5.2f s CPU (main %s)  "
          "winsim %5.2f s  %s  (load %.1f)" % (
              latency, forks, kind, hosts, run["wall_s"], run["hosts_per_min"] or 0, run["cpu_controller_s"],
              run["cpu_main_s"], run["cpu_winsim_s"],
              "ok" if run["rc"] == 0 and run["hosts_failed"] == 0 else "FAILED rc=%s" % run["rc"],
              run["load_before"]), flush=True)
    return run


def measure(workdir: str, hosts: int, base_addresses: list[str], latencies=(20, 100), forks=(50, 200),
            node_cores: int = 2, timeout: float = 900) -> dict:
    """Every (latency, forks, cold/warm) run, and the 1-host runs of each latency."""
    out = {"hosts": hosts, "latencies_ms": list(latencies), "forks": list(forks), "node_cores": node_cores,
           "runs": [], "fixed": {}}
    for latency, base in zip(latencies, base_addresses):
        path = os.path.join(workdir, "sizing-%dms" % latency)
        shutil.rmtree(path, ignore_errors=True)
        with BenchEstate(path, hosts, base, latency) as estate:
            run_playbook(estate, RAW, path, "warm-up", forks=max(forks), timeout=timeout)
            first = estate.estate.hosts[0].name
            for kind in KINDS:
                out["fixed"]["%d-%s" % (latency, kind)] = _one(estate, path, kind, "one-%s" % kind, min(forks),
                                                               latency, timeout, limit=first)
            for n in forks:
                for kind in KINDS:
                    out["runs"].append(_one(estate, path, kind, "%s-forks%d" % (kind, n), n, latency, timeout))
    out["cpus"] = os.cpu_count() or 1
    return derived(out)


def derived(out: dict) -> dict:
    """What follows from the runs: each run's limit on this machine and the nodes tables (the
    measured node size and BIG_NODE times it). Computed anew when a run is rendered again."""
    for run in out["runs"]:
        d = derive(out["runs"], out["fixed"], run["latency_ms"], run["kind"], run["forks"])
        run["limited_by"] = run_limit(run, out.get("cpus", out["node_cores"]), d["fork_s"]) if d else None
    out["table"] = table(out)
    out["table_big"] = table(out, cores=BIG_NODE * out["node_cores"])
    return out


# ---------------------------------------------------------------- report

def _cell(cell: dict) -> str:
    if cell["limit"] == FAILED:
        return FAILED
    if cell["nodes"] is None:
        return "none: the fixed %.0f s exceed the budget" % cell["fixed_s"]
    return "%d (%s)" % (cell["nodes"], cell["limit"])


def _mb(value) -> str:
    return "" if value is None else "%.1f" % value


def render(sizing: dict, capacity: dict | None, table_fn) -> list[str]:
    """The section's Markdown lines; table_fn renders a Markdown table (report._table)."""
    cores, n = sizing["node_cores"], sizing["hosts"]
    out = ["## 5. Sizing: execution nodes for an emergency block", "",
           "`playbooks/emergency_block.yml` (its canary waves: 1 host, 10 %%, the rest) on %d winsim hosts "
           "(personality `modern`), once per WinRM latency (winsim sleeps that long in every HTTP request) and "
           "forks value: cold (fresh hosts, empty fact cache) and warm (fresh hosts after an `ipsec_info` read, "
           "not counted), and the same on one host of the estate (`--limit`) for the fixed part of a run. "
           "winsim serves the hosts from the bench process; ansible-playbook is a child process, so the "
           "controller's CPU (ansible-playbook and every worker it forked, `getrusage(RUSAGE_CHILDREN)`) is "
           "counted apart from winsim's (`RUSAGE_SELF`, the memory sampler's own CPU taken out); "
           "bench/playbook_launcher.py writes the main process's CPU apart from its workers'. Memory: the "
           "workers' RSS, PSS and USS (private pages: what one more fork costs) sampled from /proc every "
           "0.3 s while the run goes on." % n, ""]
    rows = []
    for run in list(sizing["fixed"].values()) + sizing["runs"]:
        mem = run.get("memory") or {}
        lim = run.get("limited_by") or {}
        rows.append([run["latency_ms"], run["forks"], run["kind"], run["hosts"], run["wall_s"],
                     run["hosts_per_min"], "%.2f" % run["cpu_controller_s"], run["cpu_main_s"],
                     "%.2f" % run["cpu_winsim_s"], run["requests_per_host"], mem.get("workers_peak", ""),
                     _mb(mem.get("worker_rss_median_mb")), _mb(mem.get("worker_pss_median_mb")),
                     _mb(mem.get("worker_uss_median_mb")), _mb(mem.get("main_rss_peak_mb")),
                     _mb(mem.get("tree_pss_peak_mb")), run["load_before"],
                     "%.2f" % (run["cpu_controller_s"] / run["wall_s"]) if run["wall_s"] else "",
                     "%s (%s %.2f)" % (lim["limit"], lim.get("largest", ""), lim["share"]) if lim
                     else "(1 host: fixed part)",
                     "ok" if run["rc"] == 0 and run["hosts_failed"] == 0 else "**rc %s, %d failed**"
                     % (run["rc"], run["hosts_failed"])])
    out += ["### Measured on this machine", ""]
    out += table_fn(["latency ms", "forks", "run", "hosts", "wall s", "hosts/min", "controller CPU s",
                     "of it main process s", "winsim CPU s", "HTTP requests/host", "workers at once (peak)",
                     "worker RSS MB (median)", "worker PSS MB", "worker USS MB", "main RSS MB",
                     "tree PSS MB (peak)", "load", "controller cores used", "limited by (largest share)",
                     "hosts"], rows)
    out += ["`limited by`: the largest share of a ceiling the run used: winsim's CPU over the wall time (of one "
            "core: it serves every host from one Python process), the controller's main process likewise, "
            "controller and winsim CPU together over the wall time (of %d cores), and the hosts per second "
            "reached over forks / t_fork (below). A ceiling counts as reached from a share of %.1f on; under "
            "it the run got what the machine's other processes left (the load column), and `controller cores "
            "used` (controller CPU / wall) says how much that was." % (sizing.get("cpus", cores), SATURATED), ""]
    per = []
    for latency in sizing["latencies_ms"]:
        for kind in KINDS:
            for forks in sizing["forks"]:
                d = derive(sizing["runs"], sizing["fixed"], latency, kind, forks)
                if d is None:
                    per.append([latency, kind, forks, FAILED] + [""] * 11)
                    continue
                rate = node_rate(d["cpu_s"], d["main_s"], d["fork_s"], forks, cores)
                c = rate["ceilings"]
                memory = node_memory_mb(_run(sizing["runs"], latency, kind, forks).get("memory") or {}, forks)
                per.append([latency, kind, forks, "%.0f%s" % (1000 * d["cpu_s"], " (average)" if d["averaged"]
                                                              else ""), "%.0f" % (1000 * d["main_s"]),
                            "%.0f" % (1000 * d["winsim_s"]), d["requests_per_host"], "%.2f" % d["fork_s"],
                            "%.1f" % d["fixed_s"], "%.0f" % (60 * c["CPU"]), "%.0f" % (60 * c["main process"]),
                            "%.0f" % (60 * c["forks x WinRM latency"]), "**%s**" % rate["limit"],
                            "%.0f" % (60 * rate["hosts_per_s"]), "" if memory is None else "%.0f" % memory])
    out += ["### Per host, and one node's rate", "",
            "Per host: the marginal cost, (run on %d hosts - run on 1 host) / %d, so the fixed part of a run "
            "is not spread over the hosts (where that is not above 0, as the load's noise can make it on a few "
            "hosts, the run's average per host, marked). Node: %d cores (the machine measured here; `--node-cores` for "
            "another), its controller alone on it (winsim's CPU is not the node's)." % (n, max(n - 1, 1), cores),
            ""]
    out += table_fn(["latency ms", "run", "forks", "controller CPU ms/host", "main process ms/host",
                     "winsim CPU ms/host", "HTTP requests/host", "t_fork s", "T_fixed s", "CPU ceiling hosts/min",
                     "main process ceiling hosts/min", "forks x latency ceiling hosts/min", "limit",
                     "node hosts/min", "node memory MB at these forks"], per)
    header = ["latency ms", "hosts"] + ["%s, forks %d" % (kind, f) for kind in KINDS for f in sizing["forks"]]

    def nodes_rows(rows_in):
        return [[r["latency_ms"], "{:,}".format(r["hosts"])] + [_cell(r["cells"]["%s-%d" % (kind, f)])
                                                               for kind in KINDS for f in sizing["forks"]]
                for r in rows_in]
    out += ["### Execution nodes to block an estate within 5 minutes", "",
            "Each node runs one slice (AWX job slicing), %d cores (the size measured here), the forks of the "
            "column; a cell is the nodes needed and what limits each node." % cores, ""]
    out += table_fn(header, nodes_rows(sizing["table"]))
    if sizing.get("table_big"):
        out += ["The same with nodes of %d cores: an extrapolation that assumes the CPU per host measured "
                "here holds, to show where the main process (one core whatever the node) or forks x "
                "latency take over from CPU:" % (BIG_NODE * cores), ""]
        out += table_fn(header, nodes_rows(sizing["table_big"]))
    out += ["Formula, every term measured above:", "",
            "- c = controller CPU s per host (marginal), c_main = the main process's share of it, "
            "r = WinRM HTTP requests per host (winsim counted them), L = latency, F = forks, C = node cores.",
            "- t_fork = r x L + (c - c_main): the wall time a fork is busy with one host when CPU is not short.",
            "- node rate R = min(C / c [CPU], 1 / c_main [main process: Ansible's strategy is one process], "
            "F / t_fork [forks x WinRM latency]) hosts per second.",
            "- T_fixed = wall time of the same run on 1 host: start, canary wave, run-once tasks, summary.",
            "- nodes = ceil(H / (R x (300 s - T_fixed))); none when T_fixed >= 300 s.", "",
            "Not in the model [I]: a real Windows host's own time to run the script (netsh, PolicyAgent) beyond "
            "the latency; AWX's own start of each slice's job (container, project sync) and the merge step "
            "after the slices (docs/slicing.md); memory, which limits forks rather than speed (at F forks a "
            "node holds about main RSS + F x worker USS)."]
    if capacity:
        c = capacity
        ceiling = 1000 / c["winsim_cpu_ms_per_request"] if c.get("winsim_cpu_ms_per_request") else None
        out += ["", "winsim's own capacity (section 4, a separate `python -m winsim serve` process, trivial `echo` "
                "commands): %s requests/s reached, %s ms CPU per request%s." % (
                    c["requests_per_s"], c["winsim_cpu_ms_per_request"],
                    ", about %.0f requests per CPU-second" % ceiling if ceiling else "")]
    out += ["", "winsim in the runs above (the block's requests run its emulated netsh and registry, dearer than "
            "`echo`): " + "; ".join(
                "%s %d ms forks %d: %.0f requests/s, %.1f ms CPU per request, its one core would serve %.0f "
                "hosts/min (the run: %.0f)" % (
                    r["kind"], r["latency_ms"], r["forks"], r["requests_per_host"] * r["hosts"] / r["wall_s"],
                    1000 * r["cpu_winsim_s"] / (r["requests_per_host"] * r["hosts"]),
                    60 * r["hosts"] / r["cpu_winsim_s"], r["hosts_per_min"])
                for r in sizing["runs"] if measured(r) and r["cpu_winsim_s"] > 0 and r["requests_per_host"]) + "."]
    return out + [""]
