"""KB 813878's whole procedure through the four modules, over real WinRM, on modern, 2003 and XP.

One ansible-playbook run drives three winsim hosts at once (tests/integration/playbooks/kb813878.yml);
every step runs in check mode, for real, and again. The results come back through the json
callback; round trips are counted where WinRM delivers them (each WinRM Command is one
`SimHost.run` call) and the audit log shows what each call changed.
"""
import json
import os
import subprocess

import pytest

PLAYBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")
PERSONALITIES = ("modern", "2003", "xp")
SLAMMER = "Block UDP 1434 Filter"


class RoundTrips:
    """Wraps each host's `run` (one call per WinRM Command) and keeps, per call, the audit entries
    it wrote: tests see how many trips a task cost and whether any of them changed state."""

    def __init__(self, estate):
        self.calls = {}
        for served in estate.hosts:
            self._wrap(served.host)

    def _wrap(self, sim):
        original = sim.run
        calls = self.calls.setdefault(sim.name, [])

        def run(command, arguments, stdin=b""):
            seen = len(sim.audit_entries())
            try:
                return original(command, arguments, stdin)
            finally:
                calls.append(sim.audit_entries()[seen:])
        sim.run = run

    def total(self):
        return sum(len(c) for c in self.calls.values())


def run_playbook(estate, ansible_env, playbook, extra_vars=None, check=False, timeout=600):
    """ansible-playbook --diff; returns {task name: {host: result}} in task order (results recorded
    by playbooks/callback_plugins/winsec_record.py)."""
    record = os.path.join(os.path.dirname(estate.inventory_path), "results.jsonl")
    if os.path.exists(record):
        os.unlink(record)
    env = dict(ansible_env, ANSIBLE_CALLBACKS_ENABLED="winsec_record", WINSEC_RECORD=record, ANSIBLE_FORKS="8")
    path = playbook if os.path.isabs(playbook) else os.path.join(PLAYBOOKS, playbook)
    argv = ["ansible-playbook", "--diff", "-i", estate.inventory_path, path]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    tasks = {}
    if os.path.exists(record):
        with open(record, encoding="utf-8") as handle:
            for line in handle:
                entry = json.loads(line)
                result = entry["result"]
                result["failed"] = entry["status"] == "failed"   # ansible 2.19 keeps these out of the dict
                result["skipped"] = entry["status"] == "skipped"
                result["_action"] = entry["action"]
                tasks.setdefault(entry["task"], {})[entry["host"]] = result
    if not tasks:
        raise AssertionError("ansible-playbook recorded no result (rc=%s):\n%s\n%s"
                             % (out.returncode, out.stdout[-3000:], out.stderr[-3000:]))
    return tasks


def host_names(estate):
    return {served.host.personality: served.host.name for served in estate.hosts}


def task_trips(tasks, trips):
    """Per host, the audit entries of each task's calls, matched by the trips each task reports.

    Tasks run one after the other on a host (linear strategy), so the host's calls split into
    consecutive runs of `round_trips` calls; the split must use up every call exactly.
    """
    per_host = {}
    for name, calls in trips.calls.items():
        at = 0
        split = {}
        for task, results in tasks.items():
            result = results.get(name)
            ran = result is not None and not result.get("skipped")
            trips_taken = (1 if ran else 0) if task.endswith("[raw]") else (result or {}).get("round_trips")
            if not trips_taken:
                continue
            split[task] = calls[at:at + trips_taken]
            at += trips_taken
        assert at == len(calls), "%s: modules reported %d round trips, WinRM carried %d" % (name, at, len(calls))
        per_host[name] = split
    return per_host


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_kb813878_procedure_on_modern_2003_and_xp(estate, ansible_env):
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "kb813878.yml")
    names = host_names(estate)
    per_host = task_trips(tasks, trips)
    failures = {(task, host): r.get("msg") for task, results in tasks.items()
                for host, r in results.items() if r.get("failed")}
    assert not failures

    for personality, host in names.items():
        dialect = "ipseccmd" if personality == "xp" else "netsh"
        for task, results in tasks.items():
            r = results[host]
            calls = per_host[host][task]
            changed_calls = [e for call in calls for e in call if e["changed"]]
            where = "%s on %s" % (task, personality)
            if task.endswith("[info]"):
                assert not r["changed"] and r["round_trips"] == 1 and not changed_calls, where
                assert r["dialect"] == dialect and r["os"]["generation"] == personality, where
                continue
            assert r["dialect"] == dialect, where
            if task.endswith("[check]"):
                assert r["changed"] and r["round_trips"] == 1 and r["commands"], where
                assert not changed_calls, where          # check mode sent nothing that changes state
                assert set(r["diff"]) >= {"before", "after"}, where
                check = r
            elif task.endswith("[run]"):
                # planned from the [check]'s state fact, the host as last seen: the write command alone
                assert r["changed"] and r["round_trips"] == 1 and changed_calls, where
                assert r["commands"] == check["commands"], where
                assert r["after"] == check["after"], where      # check mode predicted the truth
            else:
                assert not r["changed"] and r["round_trips"] == 1 and not changed_calls, where
                assert r["commands"] == [], where

        # what the KB asks to verify, read back by ipsec_info
        exempt = tasks["what is assigned before [info]"][host]["exemptions"]
        assert exempt.startswith("Broadcast, multicast, RSVP, Kerberos" if personality == "xp"
                                 else "Only IKE"), exempt        # defaults per OS: docs/windows-tools.md "Default exemptions"
        before = tasks["what is assigned before [info]"][host]["state"]
        assert before["policies"] == [] and before["assigned"] == ""
        middle = tasks["what is assigned now [info]"][host]
        assert middle["state"]["assigned"] == SLAMMER
        [policy] = middle["state"]["policies"]
        # ipsec_info shows everything, also the default response rule Windows adds to each policy
        assert [rule["default_response"] for rule in policy["rules"]].count(True) == 1
        assert sorted(rule["name"] for rule in policy["rules"] if not rule["default_response"]) == [
            "Block Inbound TCP 80 Rule", "Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"]
        assert "Local IPSec Policy Active: '%s'" % SLAMMER in middle["netdiag"]
        [dynamic] = middle["state"]["dynamic"]
        assert dynamic["filter"]["dst_port"] == 1434 and dynamic["inbound"] == "block"
        assert any("vanish" in w for w in tasks["dynamic block [run]"][host].get("warnings", ()))
        after = tasks["nothing left [info]"][host]["state"]
        assert after["policies"] == [] and after["dynamic"] == [] and after["assigned"] == ""

    # the outbound rule was written with the host's own tool
    xp_argv = [e["argv"] for call in trips.calls[names["xp"]] for e in call if e["changed"]]
    assert xp_argv and all(argv[0].lower().startswith("ipseccmd") for argv in xp_argv)
    modern_argv = [e["argv"] for call in trips.calls[names["modern"]] for e in call if e["changed"]]
    assert modern_argv and all(argv[0].lower().startswith("netsh") for argv in modern_argv)
