"""Never lock out the management connection (issue 6 section 2), over real WinRM against winsim,
whose transport drops a connection its host's IPsec policy blocks (winsim/firewall.py).

- The guard: a static or dynamic block of the connection's port, WinRM 5985/5986 or SSH 22, in
  either direction or mirrored, of any protocol or port, from any address or the controller's
  subnet, is refused before anything is sent; one from another subnet or of another protocol is
  written, and the host still answers.
- Commit-confirmed: a confirmed change costs 1 read + 1 write + 1 confirm trip and leaves no task
  behind; a change that cuts the management path fails with "undoes the change by itself", the
  host really stops answering, and once its clock passes the deadline the change is gone and the
  host answers again.
"""
import pytest

from winsim import firewall

from test_modules_kb import RoundTrips, host_names, run_playbook, task_trips
from test_modules_states import check_documented

PERSONALITIES = ("modern", "2003", "xp")
CLIENT = "127.0.0.1"        # every winsim client connects from here


def port_of(served):
    return served.http_port


def blocked(served):
    return firewall.blocked_reason(served.host, CLIENT, 50000, port_of(served))


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_blocks_of_the_management_connection_are_refused(estate, ansible_env):
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "safety_lockout.yml")
    per_host = task_trips(tasks, trips)
    check_documented(tasks)
    for personality, name in host_names(estate).items():
        for task, results in tasks.items():
            r = results[name]
            where = "%s on %s: %s" % (task, personality, r.get("msg", ""))
            changed_calls = [e for call in per_host[name].get(task, ()) for e in call if e["changed"]]
            if task.endswith("[refused]"):
                assert r["failed"] and r["round_trips"] == 1 and not changed_calls, where
                assert "allow_lockout: true" in r["msg"] and "KB 813878" in r["msg"], where
                assert "from the controller (%s)" % CLIENT in r["msg"], where
            elif task.endswith("[run]"):
                assert not r["failed"] and r["changed"] and changed_calls, where
                assert not any("management connection" in w for w in r.get("warnings", ())), where
            else:
                assert not r["failed"], where
        served = estate.host(name)
        port = port_of(served)

        def msg(task):
            return tasks[task][name]["msg"]
        assert "rule 'No WinRM' of the assigned policy 'Cut'" in msg("static block of the connection's own port [refused]")
        assert "filter *=0:%d:TCP) blocks TCP port %d" % (port, port) in msg(
            "static block of the connection's own port [refused]")
        assert "rule 'Mirrored'" in msg("static mirrored block written from the host's side [refused]")
        assert "filter *+0) blocks TCP port 5985" in msg("static block of all traffic, protocol any and port any [refused]")
        assert "blocks TCP port 22 " in msg("static block of SSH 22 [refused]")
        assert "127.0.0.0/255.0.0.0=0:%d:TCP" % port in msg("static block from the controller's subnet [refused]")
        assert "the dynamic filter" in msg("dynamic block of the connection's port [refused]")
        assert "blocks TCP port %d" % port in msg("dynamic mirrored block from the host's side, port 0 is any [refused]")
        assert "blocks TCP port 5986" in msg("dynamic block of WinRM HTTPS 5986 from anywhere [refused]")
        info = tasks["the host still answers [info]"][name]["state"]
        assert info["assigned"] == "Other subnet" and len(info["dynamic"]) == 2
        assert blocked(served) is None
