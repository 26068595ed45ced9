"""ansible-playbook with instruments: `playbook_launcher.py [--rusage FILE] [--profile DIR] [--preload] ARGS...`.

--rusage FILE  at the end, the CPU seconds of the main process (the strategy: it queues tasks and
               reads results) and of the workers it reaped (RUSAGE_CHILDREN), as JSON: the
               sizing section tells the single-threaded main process from the workers this way.

--profile DIR  cProfile (CPU time) of the main process and of every worker. Ansible forks a
               worker per host and task (ansible/utils/multiprocessing.py: the 'fork' context)
               and a worker leaves through os._exit, so `python -m cProfile ansible-playbook`
               would see the strategy loop only. Each worker's TaskExecutor.run (the task, up to
               its result) is profiled instead and dumped to DIR/worker-PID-NS.prof before the
               result goes back (the parent may end a worker once it has the result); the main
               process to DIR/main.prof.
--preload      a what-if: import the collection's engine modules in the main process once the
               collection loader is set up, so that forked workers inherit them compiled.
               Ansible's collection loader compiles a collection's Python source on every import
               (_collection_finder.py get_code: no bytecode cache), and the engine imports some
               modules lazily, inside the worker.
"""
import cProfile
import importlib
import json
import os
import resource
import sys
import time

ENGINE = "ansible_collections.winsec.ipsec.plugins.module_utils.ipsec."
PRELOAD = ("model", "args", "host", "plan", "remote", "quoting", "registry", "blobs", "toolout",
           "filterspec", "netdiag", "dialects", "dialects.netsh")


def _profile_workers(outdir: str) -> None:
    from ansible.executor.task_executor import TaskExecutor

    original = TaskExecutor.run

    def profiled_run(self):
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        try:
            return original(self)
        finally:
            profile.disable()
            profile.dump_stats(os.path.join(outdir, "worker-%d-%d.prof" % (os.getpid(), time.monotonic_ns())))

    TaskExecutor.run = profiled_run


def _preload_engine() -> None:
    import ansible.cli

    original = ansible.cli.init_plugin_loader

    def init_and_preload(*args, **kwargs):
        original(*args, **kwargs)
        for name in PRELOAD:
            importlib.import_module(ENGINE + name)

    ansible.cli.init_plugin_loader = init_and_preload


def main() -> int:
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]         # bench/'s own modules must not shadow anything Ansible imports
    args = sys.argv[1:]
    outdir = rusage = None
    if args[:1] == ["--rusage"]:
        rusage, args = args[1], args[2:]
    if args[:1] == ["--profile"]:
        outdir, args = args[1], args[2:]
        os.makedirs(outdir, exist_ok=True)
        _profile_workers(outdir)
    if args[:1] == ["--preload"]:
        args = args[1:]
        _preload_engine()
    from ansible.cli.playbook import main as playbook_main

    sys.argv = ["ansible-playbook"] + args
    profile = cProfile.Profile(time.process_time) if outdir else None
    if profile:
        profile.enable()
    try:
        playbook_main()
    except SystemExit as done:
        return done.code
    finally:
        if profile:
            profile.disable()
            profile.dump_stats(os.path.join(outdir, "main.prof"))
        if rusage:
            _write_rusage(rusage)
    return 0


def _write_rusage(path: str) -> None:
    main, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"main_cpu_s": main.ru_utime + main.ru_stime, "workers_cpu_s": workers.ru_utime + workers.ru_stime,
                   "main_maxrss_kb": main.ru_maxrss}, handle)


if __name__ == "__main__":
    sys.exit(main())
