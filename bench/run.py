"""`make bench`: what the emergency rollout costs per host (issue 11), and how the engine and winsim scale (issue 7).

    .venv/bin/python bench/run.py            # the full run (about 15 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # tiny sizes, a minute: the harness end to end

Prints the results and writes them to bench/results/latest.md and latest.json (--out DIR).
Sections: 1+2 rollout (winsim estates, ansible-playbook), 3 engine, 4 capacity, 5 sizing (what one
controller spends per host, and the execution nodes an estate needs). Loopback addresses 127.0.30.2
onwards (127.0.31.x profile estate, 127.0.33.x capacity, 127.0.36-37.x sizing, 127.0.35.x and up
--quick), away from the test suites' 127.64+ blocks and the demo's 127.0.10.x.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path and os.path.abspath(sys.path[0]) == os.path.join(ROOT, "bench"):
    sys.path[0] = ROOT          # run as a script: import bench.* as a package
else:
    sys.path.insert(0, ROOT)

from bench import capacity, engine, report, rollout, sizing, targets  # noqa: E402
from bench.ansible_run import load_average  # noqa: E402

FULL = {"sizes": (50, 200), "filters": (1000, 10000, 100000), "capacity_hosts": 200, "capacity_clients": 50,
        "capacity_seconds": 10.0, "profile_hosts": 20, "base": "127.0.30.2",
        "sizing_hosts": 200, "sizing_forks": (50, 200), "sizing_latencies": (20, 100)}
QUICK = {"sizes": (2,), "filters": (100, 1000), "capacity_hosts": 4, "capacity_clients": 2,
         "capacity_seconds": 1.0, "profile_hosts": 2, "base": "127.0.35.2",
         "sizing_hosts": 3, "sizing_forks": (2,), "sizing_latencies": (20,)}
SECTIONS = ("rollout", "engine", "capacity", "sizing")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _address(base: str, offset_blocks: int) -> str:
    """base 127.0.30.2 -> 127.0.(30+k).2: one /24 per estate, room for 253 hosts each."""
    parts = base.split(".")
    return "%s.%s.%d.%s" % (parts[0], parts[1], int(parts[2]) + offset_blocks, parts[3])


def run_rollout(args, sizes: dict, workdir: str, results: dict) -> None:
    print("1+2. Estate rollout (%d ms latency per request, forks %d)" % (args.latency_ms, args.forks), flush=True)
    estates, ratio_rows = {}, {}
    for index, hosts in enumerate(sizes["sizes"]):
        # 127.0.30.x for the first size, 127.0.32.x for the second (127.0.31.x: the profile estate)
        base = _address(sizes["base"], 2 * index)
        variants = [v for v in args.variants or rollout.ORDER if index == 0 or v not in rollout.SMALLEST_ONLY]
        estates[str(hosts)] = rollout.run_estate(os.path.join(workdir, "estate-%d" % hosts), hosts, base,
                                                 args.latency_ms, args.forks, variants)
        ratio_rows[str(hosts)] = rollout.ratios(estates[str(hosts)])
    results["rollout"] = {"latency_ms": args.latency_ms, "forks": args.forks, "estates": estates, "ratios": ratio_rows}
    missed = any(not r["met"] for rows in ratio_rows.values() for r in rows)
    if args.profile == "always" or (args.profile == "missed" and missed):
        print("   profiling the controller: raw floor in the waves and the cold emergency block on %d hosts"
              % sizes["profile_hosts"], flush=True)
        results["profile"] = rollout.profile_rollout(os.path.join(workdir, "profile"), sizes["profile_hosts"],
                                                     _address(sizes["base"], 1), args.latency_ms, args.forks)


def run_engine(args, sizes: dict, results: dict) -> None:
    print("3. Engine: decode + plan", flush=True)
    rows = []
    for filters in sizes["filters"]:
        rows.append(engine.measure(filters, repeat=args.repeat))
        print("   %7d filters: %8.1f ms CPU (%.1f wall)" % (filters, rows[-1]["total_ms"], rows[-1]["total_wall_ms"]),
              flush=True)
    results["engine"] = {"rows": rows, "linearity": engine.linearity(rows), "repeat": args.repeat,
                         "filters_per_list": engine.FILTERS_PER_LIST}
    missed = [t for t in targets.collect({"engine": results["engine"]}) if not t["met"]]
    if args.profile == "always" or (args.profile == "missed" and missed):
        # the 10k size is the one with a time target; otherwise the largest measured
        size = 10000 if 10000 in sizes["filters"] else sizes["filters"][-1]
        results["engine"]["profile"] = engine.profile_stage(size)
        # a step that is not linear: is it the garbage collector? decode at both ends, collector on and off
        steps = [s for s in results["engine"]["linearity"] if args.profile == "always"
                 or (s["time_per_filter_ratio"] or 0) > targets.LINEAR_TOLERANCE]
        ends = sorted({n for s in steps for n in (s["from"], s["to"])})
        results["engine"]["gc"] = [engine.gc_share(n, repeat=args.repeat) for n in ends]


def run_capacity(args, sizes: dict, workdir: str, results: dict) -> None:
    print("4. winsim capacity at %d hosts" % sizes["capacity_hosts"], flush=True)
    results["capacity"] = capacity.measure(os.path.join(workdir, "capacity"), sizes["capacity_hosts"],
                                           sizes["capacity_clients"], sizes["capacity_seconds"],
                                           _address(sizes["base"], 3))
    c = results["capacity"]
    print("   %.0f requests/s, %.1f kB per idle host, %d errors" % (c["requests_per_s"], c["idle_kb_per_host"],
                                                                    c["error_count"]), flush=True)


def run_sizing(args, sizes: dict, workdir: str, results: dict) -> None:
    print("5. Sizing: emergency_block.yml on %d hosts, forks %s, latency %s ms" % (
        sizes["sizing_hosts"], "/".join(map(str, sizes["sizing_forks"])),
        "/".join(map(str, sizes["sizing_latencies"]))), flush=True)
    bases = [_address(sizes["base"], 6 + i) for i in range(len(sizes["sizing_latencies"]))]
    results["sizing"] = sizing.measure(os.path.join(workdir, "sizing"), sizes["sizing_hosts"], bases,
                                       sizes["sizing_latencies"], sizes["sizing_forks"], args.node_cores)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (2 hosts, 100 and 1000 filters)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"), help="results directory")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--variants", help="comma-separated rollout variants (default all: %s)"
                        % ", ".join(rollout.ORDER))
    parser.add_argument("--sizes", help="comma-separated estate sizes for the rollout section (default 50,200; "
                        "--quick: 2)")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--node-cores", type=int, default=os.cpu_count() or 1,
                        help="cores of the execution node the sizing table assumes (default: this machine's)")
    parser.add_argument("--repeat", type=int, default=3, help="engine timings: best of this many")
    parser.add_argument("--profile", choices=("missed", "always", "never"), default="missed",
                        help="profile where a target is missed (default), always or never")
    parser.add_argument("--workdir", help="estates and logs (default: a temporary directory, removed)")
    parser.add_argument("--from-json", metavar="FILE",
                        help="measure nothing: render an earlier run's results again (targets and findings anew)")
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as handle:
            results = json.load(handle)
        return write(results, args.out)
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error("--sections: unknown %s; accepted: %s" % (", ".join(sorted(unknown)), ", ".join(SECTIONS)))
    if args.variants:
        args.variants = [v for v in args.variants.split(",") if v]
        unknown = set(args.variants) - set(rollout.ORDER)
        if unknown:
            parser.error("--variants: unknown %s; accepted: %s"
                         % (", ".join(sorted(unknown)), ", ".join(rollout.ORDER)))
    sizes = dict(QUICK if args.quick else FULL)
    if args.sizes:
        try:
            sizes["sizes"] = tuple(int(n) for n in args.sizes.split(",") if n)
        except ValueError:
            parser.error("--sizes: %r is not valid; expected comma-separated host counts, e.g. 50,200" % args.sizes)
        if not sizes["sizes"] or min(sizes["sizes"]) < 1 or max(sizes["sizes"]) > 253:
            parser.error("--sizes: %r is not valid; expected host counts from 1 to 253" % args.sizes)

    started = time.monotonic()
    results = {"meta": {"command": "bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                        "commit": _commit(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
                        "load_start": load_average(), "quick": args.quick}}
    keep = args.workdir
    workdir = os.path.abspath(keep) if keep else tempfile.mkdtemp(prefix="winsec-bench-")
    try:
        if "rollout" in sections:
            run_rollout(args, sizes, workdir, results)
        if "engine" in sections:
            run_engine(args, sizes, results)
        if "capacity" in sections:
            run_capacity(args, sizes, workdir, results)
        if "sizing" in sections:
            run_sizing(args, sizes, workdir, results)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"].update(load_end=load_average(), duration_s=round(time.monotonic() - started))
    return write(results, args.out)


def write(results: dict, out: str) -> int:
    """Targets and findings from the measurements; the Markdown and JSON files; exit status."""
    results["targets"] = targets.collect(results)
    if results.get("sizing"):
        sizing.derived(results["sizing"])
    results["findings"] = targets.rollout_findings(results)
    if results.get("engine"):
        results["engine"]["findings"] = targets.engine_findings(results["engine"])
    os.makedirs(out, exist_ok=True)
    text = report.render(results)
    with open(os.path.join(out, "latest.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    with open(os.path.join(out, "latest.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    print("\n" + text)
    print("Written: %s and latest.json" % os.path.join(out, "latest.md"))
    failed = [v for e in (results.get("rollout") or {}).get("estates", {}).values() for v in e.values()
              if v["rc"] != 0 or v["hosts_failed"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
