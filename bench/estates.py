"""A winsim estate for benchmarks: served in this process, reset between variants, counted per host.

The hosts run in the bench process (threads), ansible-playbook in a child process, so the CPU this
process spends during a run is winsim's and the CPU its children spend is the controller's.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from winsim.estate import Estate


@dataclass(frozen=True)
class Counters:
    """What one host saw: WinRM Commands, HTTP requests and body bytes each way (its transport), and
    from its audit log the native tools it ran and how many of those changed its state."""
    commands: int = 0
    requests: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    tool_runs: int = 0
    writes: int = 0

    def __sub__(self, other: "Counters") -> "Counters":
        return Counters(self.commands - other.commands, self.requests - other.requests,
                        self.bytes_received - other.bytes_received, self.bytes_sent - other.bytes_sent,
                        self.tool_runs - other.tool_runs, self.writes - other.writes)


class BenchEstate:
    """`count` hosts of one personality from `base_address` on, fresh (empty IPsec store) after reset()."""

    def __init__(self, workdir: str, count: int, base_address: str, latency_ms: int = 0,
                 personality: str = "modern"):
        self.workdir = os.path.abspath(workdir)
        self.count = count
        self.base_address = base_address
        self.latency_ms = latency_ms
        self.personality = personality
        self.state_dir = os.path.join(self.workdir, "state")
        self.inventory = os.path.join(self.workdir, "hosts.yml")
        self.estate: Estate | None = None

    def start(self) -> "BenchEstate":
        shutil.rmtree(os.path.join(self.state_dir, "hosts"), ignore_errors=True)
        shutil.rmtree(os.path.join(self.state_dir, "domain"), ignore_errors=True)
        # Port 0: the kernel picks free ports, so a rerun never waits for sockets in TIME_WAIT.
        self.estate = Estate(self.state_dir, self.count, [self.personality], base_address=self.base_address,
                             http_port=0, https_port=0, latency_ms=self.latency_ms).start()
        self.estate.write_inventory(self.inventory)
        return self

    def reset(self) -> None:
        """Every host back to a fresh installation (registry, dynamic filters, counters)."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.estate is not None:
            self.estate.stop()
            self.estate = None

    def counters(self) -> dict[str, Counters]:
        out = {}
        for served in self.estate.hosts:
            audit = served.host.audit_entries()
            out[served.name] = Counters(served.service.commands_seen, served.requests, served.bytes_received,
                                        served.bytes_sent, len(audit), sum(1 for e in audit if e["changed"]))
        return out

    def __enter__(self) -> "BenchEstate":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
