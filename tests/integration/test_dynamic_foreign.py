"""ipsec_dynamic_block and the worm_block role on hosts where someone already added dynamic rules by
hand, with a main-mode policy of their own (`netsh ipsec dynamic add mmpolicy` + `add rule`), over
WinRM against winsim, on a current Windows and on 2003 (both netsh): winsec keeps its own main-mode
policy, winsec-ipsec, exactly while its own rules use it and never touches the other one."""
import pytest

from test_modules_kb import RoundTrips, host_names, run_playbook, task_trips
from test_worm_block_role import CALLBACKS, OWN_LINE, play, recap, rerun_changes_nothing_then_unblock
from test_worm_block_role import OWN as BLOCK_POLICY

OWN = "winsec-ipsec"
ADMIN = "AdminBlock"
# the administrator's own block of SMB, made before winsec ran
PLANT = (["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=" + ADMIN],
         ["netsh", "ipsec", "dynamic", "add", "rule", "srcaddr=any", "dstaddr=me", "protocol=TCP", "srcport=0",
          "dstport=445", "mirrored=yes", "conntype=all", "mmpolicy=" + ADMIN, "actioninbound=block",
          "actionoutbound=block"])


def plant_foreign_rule(sim):
    for argv in PLANT:
        result = sim.run_tool(argv)
        assert result.rc == 0, (argv, result.stdout, result.stderr)


def spd(sim):
    """What the host's PolicyAgent holds: {dst_port: main-mode policy} and the main-mode policies."""
    return ({e.rule.filter.dst_port: e.mmpolicy for e in sim.dynamic}, sorted(p.name for p in sim.mmpolicies.values()))


def dynamic_of(result):
    return sorted((d["filter"]["dst_port"], d["filter"]["src"]["kind"], d["mmpolicy"])
                  for d in result["after"]["dynamic"])


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_block_lift_and_clear_beside_a_foreign_rule(estate, ansible_env):
    for served in estate.hosts:
        plant_foreign_rule(served.host)
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS), "dynamic_foreign.yml")
    per_host = task_trips(tasks, trips)
    failures = {(task, host): r.get("msg") for task, results in tasks.items()
                for host, r in results.items() if r.get("failed")}
    assert not failures

    for personality, name in host_names(estate).items():
        def result(task):
            return tasks[task][name]
        for task in tasks:
            r, where = result(task), "%s on %s" % (task, personality)
            changed_calls = [e for call in per_host[name][task] for e in call if e["changed"]]
            assert r["dialect"] == "netsh", where
            if task.endswith("[check]"):
                assert r["changed"] and not changed_calls, where
                check = r
            elif task.endswith("[run]"):
                assert r["changed"] and changed_calls, where
                assert r["commands"] == check["commands"], where
                assert r["after"] == check["after"], where          # check mode predicted the truth
            elif task.endswith("[again]"):
                assert not r["changed"] and r["commands"] == [] and not changed_calls, where

        # the block: winsec's own main-mode policy first, though a dynamic rule already existed
        block = result("block UDP 1434 in and out [run]")
        assert block["commands"][0] == "netsh ipsec dynamic add mmpolicy name=" + OWN
        assert all("mmpolicy=" + OWN in c for c in block["commands"][1:])
        assert dynamic_of(block) == [(445, "any", ADMIN), (1434, "any", OWN), (1434, "me", OWN)]
        assert not any(ADMIN in n for n in block.get("notes", ()))     # its filter is not one of these

        # lifting it removes winsec's rules and main-mode policy, and leaves the administrator's
        lift = result("lift the block [run]")
        assert lift["commands"][-1] == "netsh ipsec dynamic delete mmpolicy name=" + OWN
        assert not any(ADMIN in c for c in lift["commands"])
        assert dynamic_of(lift) == [(445, "any", ADMIN)]

        # cleared deletes every rule, the administrator's too, and winsec's main-mode policy; the
        # administrator's main-mode policy stays (its settings are not read, so it could not be
        # restored on undo), and the result says so
        clear = result("clear every dynamic rule [run]")
        assert [c.split()[3:5] for c in clear["commands"]] == [["delete", "rule"]] * 3 + [["delete", "mmpolicy"]]
        assert clear["commands"][-1].endswith("name=" + OWN)
        assert clear["after"]["dynamic"] == []
        assert any("did not make" in n and "445" in n for n in clear["notes"])
        assert any("no rule using them" in n and n.endswith(ADMIN) for n in clear["notes"])

    for served in estate.hosts:
        assert spd(served.host) == ({}, [ADMIN])


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_worm_block_rollout_and_undo_on_hosts_blocked_by_hand(estate, ansible_env):
    for served in estate.hosts:
        plant_foreign_rule(served.host)
    first = play(estate, ansible_env, "emergency_block.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    for served in estate.hosts:
        # the summary counts the block's own dynamic filters, not the administrator's
        assert "%s: %s" % (served.name, OWN_LINE) in first.stdout
        assert spd(served.host) == ({445: ADMIN, 1434: OWN}, [ADMIN, OWN])
        assert len(served.host.dynamic) == 3

    rerun_changes_nothing_then_unblock(estate, ansible_env)
    for served in estate.hosts:
        assert spd(served.host) == ({445: ADMIN}, [ADMIN])
        assert served.host.state().policy(BLOCK_POLICY) is None


ORPHAN = ["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=" + OWN]


def plant_orphan(sim):
    """winsec-ipsec with no rule using it: its rules deleted by hand, a PolicyAgent quirk, an older run."""
    result = sim.run_tool(ORPHAN)
    assert result.rc == 0, (result.stdout, result.stderr)


def check_run_again(tasks, per_host, name, where):
    """[check] predicts [run] exactly and writes nothing; [again] changes nothing; read 1, and a change
    planned from the [check]'s state fact 1 (the write command alone)."""
    for task, results in tasks.items():
        r = results[name]
        changed_calls = [e for call in per_host[name].get(task, ()) for e in call if e["changed"]]
        if task.endswith("[check]"):
            assert r["changed"] and not changed_calls and r["round_trips"] == 1, (task, where)
            check = r
        elif task.endswith("[run]"):
            assert r["changed"] and changed_calls and r["round_trips"] == 1, (task, where)
            assert (r["commands"], r["after"]) == (check["commands"], check["after"]), (task, where)
        elif task.endswith("[again]"):
            assert not r["changed"] and r["commands"] == [] and r["round_trips"] == 1, (task, where)
            assert not changed_calls, (task, where)


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_an_orphaned_own_mmpolicy_is_used_then_removed(estate, ansible_env):
    for served in estate.hosts:
        plant_foreign_rule(served.host)
        plant_orphan(served.host)
        assert spd(served.host) == ({445: ADMIN}, [ADMIN, OWN])
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS), "dynamic_orphan.yml")
    per_host = task_trips(tasks, trips)
    assert not {(t, h): r.get("msg") for t, rs in tasks.items() for h, r in rs.items() if r.get("failed")}

    for personality, name in host_names(estate).items():
        def result(task):
            return tasks[task][name]
        check_run_again(tasks, per_host, name, personality)

        # the block uses the orphan: `add mmpolicy` would fail ("already exists") and undo the block
        block = result("block UDP 1434 in and out [run]")
        assert block["before"]["mmpolicies"] == [ADMIN, OWN]
        assert [c.split()[3:5] for c in block["commands"]] == [["add", "rule"]] * 2
        assert all("mmpolicy=" + OWN in c for c in block["commands"])
        assert dynamic_of(block) == [(445, "any", ADMIN), (1434, "any", OWN), (1434, "me", OWN)]
        assert block["after"]["mmpolicies"] == [ADMIN, OWN]
        assert any("no rule using it" in n and "the new rules use it" in n for n in block["notes"])

        # lifting it deletes winsec-ipsec with its last rule, as for a policy winsec added itself
        lift = result("lift the block [run]")
        assert lift["commands"][-1] == "netsh ipsec dynamic delete mmpolicy name=" + OWN
        assert lift["after"]["mmpolicies"] == [ADMIN]

        # an orphan met by a batch that leaves no rule of winsec's is deleted last; the administrator's
        # main-mode policy stays
        clear = result("clear every dynamic rule [run]")
        assert clear["before"]["mmpolicies"] == [ADMIN, OWN]
        assert [c.split()[3:5] for c in clear["commands"]] == [["delete", "rule"], ["delete", "mmpolicy"]]
        assert clear["commands"][-1].endswith("name=" + OWN)
        assert clear["after"]["mmpolicies"] == [ADMIN] and clear["after"]["dynamic"] == []
        assert any("it is deleted" in n for n in clear["notes"])

    for served in estate.hosts:
        assert spd(served.host) == ({}, [ADMIN])


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_emergency_block_on_hosts_with_an_orphaned_own_mmpolicy(estate, ansible_env):
    for served in estate.hosts:
        plant_orphan(served.host)
    checked = play(estate, ansible_env, "emergency_block.yml", "--check")
    assert checked.returncode == 0, checked.stdout[-4000:]
    first = play(estate, ansible_env, "emergency_block.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    for served in estate.hosts:
        assert "%s: %s" % (served.name, OWN_LINE) in first.stdout
        assert spd(served.host) == ({1434: OWN}, [OWN])
    again = play(estate, ansible_env, "emergency_block.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(c["changed"] == 0 for h, c in recap(again.stdout).items() if h != "localhost")


def startup_file(sim):
    return next(text for path, text in sim.fs.items() if path.lower().endswith("winsec-reapply-dynamic.cmd"))


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_reapply_at_startup_brings_back_only_winsec_rules(estate, ansible_env):
    for served in estate.hosts:
        plant_foreign_rule(served.host)
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS)
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, env, "dynamic_reapply_foreign.yml", {"phase": "block"})
    per_host = task_trips(tasks, trips)
    for personality, name in host_names(estate).items():
        task = tasks["block UDP 1434 at startup too [run]"][name]
        assert not task["failed"], task.get("msg")
        # one write command, planned from the [check]'s state fact: filters, startup file and task
        assert task["round_trips"] == 1 and task["startup_task"]["state"] == "present"
        assert tasks["block UDP 1434 at startup too [check]"][name]["startup_task"] == task["startup_task"]
        again = tasks["block UDP 1434 at startup too [again]"][name]
        assert not again["changed"] and not again["startup_task"]["changed"], personality
        assert not [e for call in per_host[name]["block UDP 1434 at startup too [again]"] for e in call
                    if e["changed"]]
        batch = task["startup_task"]["commands"]
        assert not any(ADMIN in line or "dstport=445" in line for line in batch), batch
        assert sum("add rule" in line for line in batch) == 2
        assert any("left out" in n and "445" in n and ADMIN in n for n in task["notes"])

    for served in estate.hosts:
        assert ADMIN not in startup_file(served.host)
        served.control({"reboot": True})
        # back at boot: winsec's two rules under its own main-mode policy; the administrator's rule is
        # theirs to restore
        assert spd(served.host) == ({1434: OWN}, [OWN]) and len(served.host.dynamic) == 2
        plant_foreign_rule(served.host)

    tasks = run_playbook(estate, env, "dynamic_reapply_foreign.yml", {"phase": "lift"})
    for name in host_names(estate).values():
        lift = tasks["lift the block and its startup task [run]"][name]
        assert not lift["failed"], lift.get("msg")
        # only the administrator's rule is left: nothing of winsec's to re-add, so the task goes
        assert lift["startup_task"]["state"] == "absent" and lift["startup_task"]["changed"]
    for served in estate.hosts:
        assert not served.host.scheduler.tasks
        served.control({"reboot": True})
        assert spd(served.host) == ({}, [])
