"""Run ansible-playbook against a bench estate and measure it: wall time, CPU on each side, the
WinRM traffic each host saw, the PLAY RECAP. Bounded by a timeout; nothing is left running."""
from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time

from .estates import BenchEstate, Counters
from .forks import ForkSampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
LAUNCHER = os.path.join(ROOT, "bench", "playbook_launcher.py")
CALLBACKS = os.path.join(ROOT, "bench", "callback_plugins")     # bench_timing: seconds per play and task
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                    r"\s+skipped=(\d+)", re.M)


def fact_cache(workdir: str) -> str:
    """The jsonfile fact cache every bench run uses (as the README advises): a variant starts cold
    when the bench empties it, warm when an earlier run left the hosts' winsec_ipsec_state there."""
    return os.path.join(workdir, "facts")


def ansible_env(workdir: str, forks: int) -> dict:
    env = dict(os.environ)
    env.pop("ANSIBLE_CONFIG", None)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, "build", "collections"),
        "ANSIBLE_LOCAL_TEMP": os.path.join(workdir, "ansible-tmp"),
        "ANSIBLE_HOME": os.path.join(workdir, "ansible-home"),
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOWS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,   # the summary play on localhost
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACKS,
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": fact_cache(workdir),
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400",
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
    })
    return env


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def per_host(deltas: dict[str, Counters]) -> dict:
    """Mean (and spread) per host of what the transport counted."""
    n = max(len(deltas), 1)
    commands = [d.commands for d in deltas.values()]
    return {
        "commands_per_host": round(sum(commands) / n, 2),
        "commands_min": min(commands, default=0),
        "commands_max": max(commands, default=0),
        "requests_per_host": round(sum(d.requests for d in deltas.values()) / n, 1),
        "commands_total": sum(commands),
        "requests_total": sum(d.requests for d in deltas.values()),
        # from each host's audit log: the native tools run (netsh, reg, ...) and those that changed it
        "tool_runs_per_host": round(sum(d.tool_runs for d in deltas.values()) / n, 2),
        "writes_per_host": round(sum(d.writes for d in deltas.values()) / n, 2),
        "bytes_sent_per_host": round(sum(d.bytes_received for d in deltas.values()) / n),   # controller -> host
        "bytes_received_per_host": round(sum(d.bytes_sent for d in deltas.values()) / n),   # host -> controller
    }


def recap(output: str, host_names) -> dict:
    rows = {m.group(1): tuple(int(g) for g in m.groups()[1:]) for m in _RECAP.finditer(output)}
    names = set(host_names)
    seen = [r for name, r in rows.items() if name in names]
    return {"hosts_ok": sum(1 for _ok, _c, unreachable, failed, _s in seen if not unreachable and not failed),
            "hosts_changed": sum(1 for _ok, changed, _u, _f, _s in seen if changed),
            "hosts_failed": sum(1 for _ok, _c, unreachable, failed, _s in seen if unreachable or failed),
            "hosts_in_recap": len(seen),
            # tasks each host went through (ok, failed or skipped): what a playbook costs beyond WinRM
            "tasks_per_host": round(sum(ok + failed + skipped for ok, _c, _u, failed, skipped in seen)
                                    / max(len(seen), 1), 1)}


def read_timing(path: str) -> list:
    """[{kind, name, seconds}] that bench_timing wrote, the same task's waves summed, in order."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle)
    except (OSError, ValueError):
        return []
    summed: dict = {}
    for row in rows:
        key = (row["kind"], row["name"])
        summed[key] = round(summed.get(key, 0.0) + row["seconds"], 3)
    return [{"kind": kind, "name": name, "seconds": seconds} for (kind, name), seconds in summed.items()]


def run_playbook(estate: BenchEstate, playbook: str, workdir: str, log_name: str, *, check: bool = False,
                 forks: int = 50, extra_vars: dict | None = None, timeout: float = 900,
                 profile_dir: str | None = None, preload: bool = False, limit: str | None = None,
                 sizing: bool = False) -> dict:
    """One ansible-playbook run; returns the measurement (and keeps its output in workdir/logs).
    profile_dir / preload: run it through bench/playbook_launcher.py with those instruments.
    sizing: through the launcher as well, which writes the main process's CPU apart from its
    workers' (cpu_main_s, cpu_workers_s), and the workers' memory sampled while it runs (memory)."""
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    rusage = os.path.join(logs, log_name + ".rusage.json") if sizing else None
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", estate.inventory, playbook]
    if profile_dir or preload or rusage:
        argv = ([sys.executable, LAUNCHER] + (["--rusage", rusage] if rusage else [])
                + (["--profile", profile_dir] if profile_dir else [])
                + (["--preload"] if preload else []) + argv[1:])
    if limit:
        argv += ["--limit", limit]
    if check:
        argv.append("--check")
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    before = estate.counters()
    load = load_average()
    cpu_controller, cpu_winsim = cpu_seconds(resource.RUSAGE_CHILDREN), cpu_seconds(resource.RUSAGE_SELF)
    started = time.monotonic()
    timing = os.path.join(logs, log_name + ".timing.json")
    env = dict(ansible_env(workdir, forks), WINSEC_BENCH_TIMING=timing)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    sampler = ForkSampler(process.pid) if sizing else None
    if sampler:
        sampler.start()
    try:
        output, _ = process.communicate(timeout=timeout)
        rc = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        rc = "timeout after %ds" % timeout
    wall = time.monotonic() - started
    memory = sampler.stop() if sampler else None
    cpu_controller = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_controller
    # the sampler is a thread of this process: its CPU is the bench's, not winsim's
    cpu_winsim = cpu_seconds(resource.RUSAGE_SELF) - cpu_winsim - (memory["sampler_cpu_s"] if memory else 0.0)
    after = estate.counters()
    log_path = os.path.join(logs, log_name + ".log")
    with open(log_path, "w", encoding="utf-8") as handle:
        handle.write(" ".join(argv) + "\n\n" + output)
    result = {"playbook": os.path.relpath(playbook, ROOT), "check": check, "preload": preload, "forks": forks,
              "hosts": estate.count, "rc": rc, "wall_s": round(wall, 2),
              "cpu_controller_s": round(cpu_controller, 2), "cpu_winsim_s": round(cpu_winsim, 2),
              "load_before": load, "load_after": load_average(),
              "log": os.path.relpath(log_path, ROOT)}
    result.update(per_host({name: after[name] - before[name] for name in after}))
    result["timing"] = read_timing(timing)
    if sizing:
        result["memory"] = memory
        try:
            with open(rusage, encoding="utf-8") as handle:
                split = json.load(handle)
            result.update(cpu_main_s=round(split["main_cpu_s"], 2), cpu_workers_s=round(split["workers_cpu_s"], 2))
        except (OSError, ValueError, KeyError):     # the run died before it wrote them: no figure
            result.update(cpu_main_s=None, cpu_workers_s=None)
    result.update(recap(output, after))
    return result
