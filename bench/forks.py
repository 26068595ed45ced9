"""Memory of ansible-playbook's workers while a run goes on, sampled from /proc (Linux).

Ansible forks one worker per host and task (ansible/utils/multiprocessing.py, the 'fork' context),
so a worker shares most of its pages with the main process until it writes them. Three figures per
worker: RSS (what `ps` shows, the shared pages counted in every worker), PSS (shared pages divided
among the processes that map them) and USS (the pages only this worker holds: what one more fork
costs). Linux documents the fields in Documentation/filesystems/proc.rst (/proc/PID/statm,
/proc/PID/smaps_rollup). The sampler runs in a thread of the bench process; it measures its own CPU
(time.thread_time) so the bench can take it out of the winsim figure it shares that process with.
"""
from __future__ import annotations

import os
import statistics
import threading
import time

PAGE_KB = os.sysconf("SC_PAGESIZE") // 1024


def children_map() -> dict[int, list[int]]:
    """{ppid: [pid, ...]} of every process now (a process gone meanwhile is skipped)."""
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def descendants(root: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(tree.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, ()))
    return found


def rss_kb(pid: int) -> int | None:
    try:
        with open("/proc/%d/statm" % pid) as handle:
            return int(handle.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return None


def rollup_kb(pid: int) -> dict | None:
    """{'pss': kB, 'uss': kB} from /proc/PID/smaps_rollup, or None when the process is gone."""
    fields = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("Pss:", "Private_Clean:", "Private_Dirty:"):
                    fields[parts[0]] = int(parts[1])
    except (OSError, ValueError):
        return None
    if "Pss:" not in fields:
        return None
    return {"pss": fields["Pss:"], "uss": fields.get("Private_Clean:", 0) + fields.get("Private_Dirty:", 0)}


def _mb(values: list, how) -> float | None:
    return round(how(values) / 1024, 1) if values else None


class ForkSampler(threading.Thread):
    """Samples the process tree under `root` (ansible-playbook) every `interval` seconds until stop().
    smaps_rollup is costly to read, so at most `rollups` workers per sample get PSS and USS."""

    def __init__(self, root: int, interval: float = 0.3, rollups: int = 12):
        super().__init__(daemon=True)
        self.root, self.interval, self.rollups = root, interval, rollups
        self._stop_event = threading.Event()
        self.samples = 0
        self.main_rss: list[int] = []
        self.worker_rss: list[int] = []
        self.worker_pss: list[int] = []
        self.worker_uss: list[int] = []
        self.workers_peak = 0
        self.tree_pss_peak = 0      # main + workers at one sample, PSS: what the run held in all
        self.cpu_s = 0.0

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._sample()
            self._stop_event.wait(self.interval)
        self.cpu_s = time.thread_time()

    def stop(self) -> dict:
        self._stop_event.set()
        self.join(timeout=30)
        return self.summary()

    def _sample(self) -> None:
        workers = descendants(self.root, children_map())
        main = rss_kb(self.root)
        if main is None:
            return
        self.samples += 1
        self.main_rss.append(main)
        # a worker that has exited but is not reaped yet (a zombie) shows 0: not a worker's memory
        rss = [r for r in (rss_kb(pid) for pid in workers) if r]
        self.worker_rss += rss
        self.workers_peak = max(self.workers_peak, len(rss))
        main_rollup = rollup_kb(self.root)
        tree_pss = main_rollup["pss"] if main_rollup else 0
        for pid in workers[:self.rollups]:
            rollup = rollup_kb(pid)
            if rollup:
                self.worker_pss.append(rollup["pss"])
                self.worker_uss.append(rollup["uss"])
        if self.worker_pss and rss:      # the workers not read: counted at the mean PSS read so far
            tree_pss += statistics.mean(self.worker_pss) * len(rss)
        self.tree_pss_peak = max(self.tree_pss_peak, int(tree_pss))

    def summary(self) -> dict:
        return {"samples": self.samples, "workers_peak": self.workers_peak,
                "worker_samples": len(self.worker_rss), "worker_rollups": len(self.worker_uss),
                "main_rss_peak_mb": _mb(self.main_rss, max),
                "worker_rss_median_mb": _mb(self.worker_rss, statistics.median),
                "worker_rss_max_mb": _mb(self.worker_rss, max),
                "worker_pss_median_mb": _mb(self.worker_pss, statistics.median),
                "worker_uss_median_mb": _mb(self.worker_uss, statistics.median),
                "worker_uss_max_mb": _mb(self.worker_uss, max),
                "tree_pss_peak_mb": round(self.tree_pss_peak / 1024, 1),
                "sampler_cpu_s": round(self.cpu_s, 3)}
