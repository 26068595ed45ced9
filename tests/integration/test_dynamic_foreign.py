"""ipsec_dynamic_block and the worm_block role on hosts where someone already added dynamic rules by
hand, with a main-mode policy of their own (`netsh ipsec dynamic add mmpolicy` + `add rule`), over
WinRM against winsim, on a current Windows and on 2003 (both netsh): winsec keeps its own main-mode
policy, winsec-ipsec, exactly while its own rules use it and never touches the other one."""
import pytest

from test_modules_kb import RoundTrips, host_names, run_playbook, task_trips
from test_worm_block_role import CALLBACKS, play, recap

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
        # the administrator's rule counts among the host's dynamic filters
        assert "%s: blocked and verified; assigned policy: Block UDP 1434 Filter; dynamic filters: 3" % served.name \
            in first.stdout
        assert spd(served.host) == ({445: ADMIN, 1434: OWN}, [ADMIN, OWN])
        assert len(served.host.dynamic) == 3

    again = play(estate, ansible_env, "emergency_block.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(c["changed"] == 0 for h, c in recap(again.stdout).items() if h != "localhost")

    undo = play(estate, ansible_env, "unblock.yml")
    assert undo.returncode == 0, undo.stdout[-4000:]
    for served in estate.hosts:
        assert spd(served.host) == ({445: ADMIN}, [ADMIN])
        assert served.host.state().policy("Block UDP 1434 Filter") is None
