"""cProfile output -> the few lines worth writing down: top functions by own time and by cumulative
time, with paths shortened to the package they live in."""
from __future__ import annotations

import glob
import os
import pstats

# Rows that only say "a worker ran": the cumulative table starts below them.
_FRAMEWORK = ("profiled_run", "_bootstrap", "multiprocessing/", "worker.py")


def short_path(path: str) -> str:
    for marker in ("site-packages/", "ansible_collections/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return os.path.basename(path)


def _label(func) -> str:
    path, line, name = func
    if path == "~":
        return name                                        # a builtin, e.g. <built-in method ...>
    return "%s:%d(%s)" % (short_path(path), line, name)


def _readable(path: str) -> bool:
    """A worker that Ansible ends while it writes its profile leaves a truncated file: skip it."""
    try:
        pstats.Stats(path)
        return True
    except (EOFError, ValueError, TypeError, OSError):
        return False


def load(files) -> pstats.Stats | None:
    """The sum of the readable profiles in `files` (e.g. every worker of one playbook run)."""
    files = [f for f in files if _readable(f)]
    if not files:
        return None
    stats = pstats.Stats(files[0])
    for extra in files[1:]:
        stats.add(extra)
    stats.files_read = len(files)
    return stats


def top(stats: pstats.Stats, key: str, count: int, skip=()) -> list[dict]:
    """The `count` heaviest functions by `key` ('tottime' or 'cumtime')."""
    rows = []
    for func, (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        label = _label(func)
        if any(s in label for s in skip):
            continue
        rows.append({"function": label, "calls": ncalls, "tottime_s": round(tottime, 3),
                     "cumtime_s": round(cumtime, 3)})
    rows.sort(key=lambda r: -r[key + "_s"])
    return rows[:count]


def summarize(stats: pstats.Stats | None, count: int = 15) -> dict:
    if stats is None:
        return {"profiles": 0}
    return {"profiles": getattr(stats, "files_read", 1), "total_s": round(stats.total_tt, 2),
            "by_own_time": top(stats, "tottime", count),
            "by_cumulative_time": top(stats, "cumtime", count, skip=_FRAMEWORK)}


def own_time(stats: pstats.Stats | None, label: str) -> float:
    """Summed own time of the functions labelled `label`."""
    if stats is None:
        return 0.0
    return round(sum(v[2] for func, v in stats.stats.items() if _label(func) == label), 3)


def playbook_profile(profile_dir: str, steps=(), count: int = 15) -> dict:
    """What bench/playbook_launcher.py --profile wrote: workers summed, the main process, and the
    workers' cumulative time in each of `steps` ((label, path part, function name), ...)."""
    workers = load(sorted(glob.glob(os.path.join(profile_dir, "worker-*.prof"))))
    return {"workers": summarize(workers, count),
            "main": summarize(load(glob.glob(os.path.join(profile_dir, "main.prof"))), count),
            "compile_s": own_time(workers, "<built-in method builtins.compile>"),
            "steps": {label: cumulative(workers, path, name) for label, path, name in steps}}


def cumulative(stats: pstats.Stats | None, path_part: str, name: str) -> float:
    """Cumulative time of function `name` defined in a file whose path contains `path_part`
    (cProfile counts a recursive function's outermost calls only, so nested imports count once)."""
    if stats is None:
        return 0.0
    return round(sum(v[3] for (path, _line, func), v in stats.stats.items()
                     if func == name and path_part in path), 3)
