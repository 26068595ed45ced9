"""winsim capacity: how many WinRM requests per second an estate serves, and what a host costs in
memory.

The estate runs in its own process (`python -m winsim serve`), so its RSS and CPU are its own;
the clients are pywinrm Protocol objects (what Ansible's winrm connection uses) in threads of
this process, each keeping one shell per host it serves and running a trivial cmd command
(`echo`: Command, Receive, Signal = 3 requests) in a loop until the time is up.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

from resource import RUSAGE_SELF

from .ansible_run import ROOT, cpu_seconds, load_average

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def _cpu_s(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK          # utime + stime


class ServedEstate:
    """`python -m winsim serve` in a child process; ready when its inventory exists."""

    def __init__(self, workdir: str, hosts: int, base_address: str, timeout: float = 60):
        self.state = os.path.join(workdir, "state")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        inventory = os.path.join(workdir, "hosts.yml")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "build", "collections")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "winsim", "serve", "--hosts", str(hosts), "--personalities", "modern",
             "--state", self.state, "--inventory", inventory, "--base-address", base_address,
             "--http-port", "0", "--https-port", "0"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while not os.path.exists(inventory):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("winsim serve did not come up: %s" % self.process.stderr.read().decode()[-2000:])
            time.sleep(0.1)
        with open(os.path.join(self.state, "estate.json")) as handle:
            self.description = json.load(handle)

    @property
    def pid(self) -> int:
        return self.process.pid

    def endpoints(self) -> list[str]:
        return ["http://%s:%d/wsman" % (h["address"], h["http_port"]) for h in self.description["hosts"]]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _client(endpoints, user, password, window: dict, barrier: threading.Barrier, tally: list,
            errors: list) -> None:
    from winrm.protocol import Protocol

    sessions = []
    try:
        for url in endpoints:
            protocol = Protocol(url, transport="basic", username=user, password=password,
                                server_cert_validation="ignore")
            sessions.append((protocol, protocol.open_shell()))
    except Exception as err:
        errors.append("%s: %s" % (type(err).__name__, err))
        barrier.abort()
        return
    try:
        barrier.wait(timeout=120)           # every shell is open: the measured window starts
        done = 0
        while time.monotonic() < window["stop"]:
            for protocol, shell in sessions:
                command = protocol.run_command(shell, "echo", ["ok"])
                out, _err, rc = protocol.get_command_output(shell, command)
                protocol.cleanup_command(shell, command)
                if rc != 0 or out.strip() != b"ok":
                    raise RuntimeError("echo ok returned rc=%s out=%r" % (rc, out))
                done += 1
        tally.append((done, time.monotonic()))
        for protocol, shell in sessions:
            protocol.close_shell(shell)
    except Exception as err:   # counted and reported: a capacity figure with errors is no figure
        errors.append("%s: %s" % (type(err).__name__, err))


def measure(workdir: str, hosts: int = 200, clients: int = 50, seconds: float = 10.0,
            base_address: str = "127.0.33.2") -> dict:
    """Requests per second over `hosts` hosts from `clients` threads, and memory per host."""
    one = ServedEstate(os.path.join(workdir, "one"), 1, base_address)
    try:
        time.sleep(0.5)
        rss_one = _rss_kb(one.pid)
    finally:
        one.stop()
    served = ServedEstate(os.path.join(workdir, "many"), hosts, base_address)
    try:
        time.sleep(0.5)
        rss_idle = _rss_kb(served.pid)
        endpoints = served.endpoints()
        user, password = served.description["user"], served.description["password"]
        groups = [endpoints[i::clients] for i in range(min(clients, hosts))]
        tally, errors = [], []
        load = load_average()
        window = {}

        def open_window():
            window.update(start=time.monotonic(), cpu=_cpu_s(served.pid), clients_cpu=cpu_seconds(RUSAGE_SELF))
            window["stop"] = window["start"] + seconds

        # Shells are opened first; the measured window starts when every client has its shells.
        barrier = threading.Barrier(len(groups), action=open_window)
        threads = [threading.Thread(target=_client, args=(group, user, password, window, barrier, tally, errors),
                                    daemon=True) for group in groups]
        for thread in threads:
            thread.start()
        rss_peak = rss_idle
        give_up = time.monotonic() + seconds + 180
        while any(t.is_alive() for t in threads) and time.monotonic() < give_up:
            rss_peak = max(rss_peak, _rss_kb(served.pid))
            time.sleep(0.2)
        if "start" not in window:
            raise RuntimeError("the capacity clients never all opened their shells: %s" % errors[:3])
        wall = max((finished for _done, finished in tally), default=time.monotonic()) - window["start"]
        cpu = _cpu_s(served.pid) - window["cpu"]
        clients_cpu = cpu_seconds(RUSAGE_SELF) - window["clients_cpu"]
        rss_after = _rss_kb(served.pid)
    finally:
        served.stop()
    commands = sum(done for done, _finished in tally)
    requests = commands * 3 + hosts              # Command, Receive, Signal each; a Delete per shell
    return {"hosts": hosts, "clients": len(groups), "seconds": round(wall, 1), "load_before": load,
            "load_after": load_average(), "commands": commands, "errors": errors[:5], "error_count": len(errors),
            "commands_per_s": round(commands / wall, 1), "requests_per_s": round(requests / wall, 1),
            "winsim_cpu_s": round(cpu, 2), "clients_cpu_s": round(clients_cpu, 2),
            "winsim_cpu_ms_per_request": round(1000 * cpu / requests, 2) if requests else None,
            "rss_one_host_mb": round(rss_one / 1024, 1), "rss_idle_mb": round(rss_idle / 1024, 1),
            "rss_peak_mb": round(rss_peak / 1024, 1), "rss_after_mb": round(rss_after / 1024, 1),
            "idle_kb_per_host": round((rss_idle - rss_one) / max(hosts - 1, 1), 1),
            "busy_kb_per_host": round((rss_peak - rss_one) / max(hosts - 1, 1), 1)}
