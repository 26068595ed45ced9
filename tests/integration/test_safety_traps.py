"""The KB's other traps (issue 6 section 3), through ansible-playbook against winsim over WinRM, on
modern, 2003 and XP members of one winsim domain:

- a domain (GPO) policy, assigned in the domain store and brought to members by
  `gpupdate /target:computer`, overrides the local store: when_domain_policy fail | warn | ignore;
- NoDefaultExempt per OS (KB 811832, KB 810207; docs/windows-tools.md "Default exemptions"): ipsec_info reports it, ipsec_exemptions sets it (check
  mode, idempotent, reboot_required) and winsim's filtering honours it only after a reboot;
- reapply_at_startup: the dynamic filters it covers are back after a reboot, others are gone, and
  clearing with the option removes the startup task; the startup task's file and scheduled task are
  written in the same one write command as the filters, and undone with them when a later step fails.
"""
import os

import pytest

from winsim.state.firewall import Packet, packet_verdict

from test_concurrency import PLAYBOOKS, write_playbook
from test_modules_kb import RoundTrips, host_names, run_playbook, task_trips
from test_modules_states import check_documented

PERSONALITIES = ("modern", "2003", "xp")
DOMAIN_SCRIPT = r"""ipsec static set store location=domain
ipsec static add policy name="Corp Baseline"
ipsec static add filterlist name="Corp Block"
ipsec static add filter filterlist="Corp Block" srcaddr=any dstaddr=me protocol=TCP srcport=0 dstport=23
ipsec static add filter filterlist="Corp Block" srcaddr=any dstaddr=me protocol=TCP srcport=0 dstport=88
ipsec static add filteraction name="Corp Block" action=block
ipsec static add rule name="Corp Block" policy="Corp Baseline" filterlist="Corp Block" filteraction="Corp Block"
ipsec static set policy name="Corp Baseline" assign=yes
"""


def assign_domain_policy(sim):
    """An administrator's netsh script against the domain store (netsh -f: `set store` lasts one netsh process),
    run on one member."""
    path = r"C:\Windows\TEMP\corp.txt"
    sim.fs[path] = DOMAIN_SCRIPT
    result = sim.run_tool(["netsh", "-f", path])
    assert result.rc == 0, result


def kerberos_blocked(sim):
    """Whether the host's filtering drops a Kerberos request to it (TCP 88, blocked by the domain policy)."""
    return packet_verdict(sim, Packet("10.0.0.5", sim.address, 6, 50000, 88)) is not None


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_domain_policy_exemptions_and_startup_reapply(estate, ansible_env):
    sims = {served.host.personality.name: served.host for served in estate.hosts}
    assign_domain_policy(sims["modern"])
    assert all(sim.domain_assignment() is None for sim in sims.values())     # not before gpupdate
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "safety_traps.yml")
    per_host = task_trips(tasks, trips)
    check_documented(tasks)
    kerberos_before = {p: kerberos_blocked(sim) for p, sim in sims.items()}
    for personality, name in host_names(estate).items():
        sim = sims[personality]
        for task, results in tasks.items():
            r = results[name]
            where = "%s on %s: %s" % (task, personality, r.get("msg", ""))
            changed_calls = [e for call in per_host[name].get(task, ()) for e in call if e["changed"]]
            if r.get("skipped") or task.endswith("[raw]"):
                continue
            if task.endswith("[fails]"):
                assert r["failed"] and r["round_trips"] == 1 and not changed_calls, where
            elif task.endswith("[check]"):
                assert not r["failed"] and r["changed"] and not changed_calls, where
            elif task.endswith("[run]"):
                assert not r["failed"] and r["changed"] and changed_calls, where
            elif task.endswith("[again]"):
                assert not r["failed"] and not r["changed"] and not changed_calls, where

        def result(task):
            return tasks[task][name]
        # the domain policy reached the member through gpupdate, and overrides the local store
        assert sim.domain_assignment().name == "Corp Baseline"
        refused = result("a local change refused under the domain policy [fails]")["msg"]
        assert "'Corp Baseline'" in refused and "when_domain_policy" in refused
        warned = result("a local change warned about under the domain policy [run]")["warnings"]
        assert any("Corp Baseline" in w and "overrides" in w for w in warned), warned
        silent = result("a local change made silently under the domain policy [run]")
        assert not any("Corp Baseline" in w for w in silent.get("warnings", ())), silent["warnings"]

        # default exemptions per OS (docs/windows-tools.md "Default exemptions"), then NoDefaultExempt set
        info = result("exemptions before [info]")
        assert info["state"]["no_default_exempt"] is None
        assert info["exemptions"].startswith("Broadcast, multicast, RSVP, Kerberos" if personality == "xp"
                                             else "Only IKE"), info["exemptions"]
        wanted = 1 if personality == "xp" else 0
        check, run, again = (result(task) for task in (
            "NoDefaultExempt [check]", "NoDefaultExempt [run]", "NoDefaultExempt again [again]"))
        assert check["commands"] == run["commands"] and check["after"] == run["after"] == wanted
        assert check["reboot_required"] and run["reboot_required"] and not again["reboot_required"]
        # NoDefaultExempt goes through the same flow as the policy: [run] is planned from the fact [check]
        # returned, one write command; [again] from [run]'s fact, which says nothing is to be done: one read
        assert run["round_trips"] == 1 and again["round_trips"] == 1
        [write] = per_host[name]["NoDefaultExempt [run]"]
        assert [e["argv"][:2] for e in write if e["changed"]] == [["reg", "add"]]
        key = "PolicyAgent" if personality == "modern" else "IPSEC"
        assert run["commands"] == [r"reg add HKLM\SYSTEM\CurrentControlSet\Services\%s /v NoDefaultExempt "
                                   r"/t REG_DWORD /d %d /f" % (key, wanted)]
        assert run["exemptions"].endswith("(NoDefaultExempt=%d)" % wanted)
        assert sim.no_default_exempt() == wanted and sim.exempt_in_effect is None    # read at boot only
        if personality == "xp":
            assert "0 or 1" in result("NoDefaultExempt 2 is unknown to XP [fails]")["msg"]

        # reapply_at_startup: the startup task is part of the task's one transaction: planned from the fact
        # the check-mode task before it returned (its read included the startup task), the filter, the
        # file and the task are one write command
        reapplied = result("a dynamic block re-applied at startup [run]")
        assert reapplied["round_trips"] == 1 and reapplied["startup_task"]["state"] == "present"
        [write] = per_host[name]["a dynamic block re-applied at startup [run]"]
        tools = {e["argv"][0] for e in write if e["changed"]}
        assert tools == {"schtasks", "ipseccmd" if personality == "xp" else "netsh"}, write
        assert result("a dynamic block re-applied at startup [check]")["startup_task"] == reapplied["startup_task"]
        # planned from the fact of the write: it says nothing is to be done, one read confirms it
        again = result("a dynamic block re-applied at startup [again]")
        assert again["round_trips"] == 1 and not again["startup_task"]["changed"]
        assert len(sim.dynamic) == 2

    # Kerberos (TCP 88) is blocked by the domain policy unless exempt; the new value waits for a reboot
    assert kerberos_before == {"modern": True, "2003": True, "xp": False}
    for served in estate.hosts:
        served.control({"reboot": True})
    for personality, sim in sims.items():
        assert kerberos_blocked(sim) is (personality == "xp"), personality
        assert [d.rule.filter.dst_port for d in sim.dynamic] == [1434], personality     # 135 is gone

    after = run_playbook(estate, ansible_env, "safety_traps_after.yml")
    for personality, name in host_names(estate).items():
        sim = sims[personality]
        assert [d["filter"]["dst_port"] for d in after["after the reboot [info]"][name]["state"]["dynamic"]] == [1434]
        cleared = after["cleared with the startup task [run]"][name]
        assert not cleared["failed"] and cleared["startup_task"]["state"] == "absent", cleared
        assert not after["cleared again [again]"][name]["changed"]
        assert not sim.scheduler.tasks
    for served in estate.hosts:
        served.control({"reboot": True})
    assert all(not sim.dynamic for sim in sims.values())


@pytest.mark.winsim(count=2, personalities=("modern", "xp"))
def test_the_startup_task_is_written_in_the_one_write_command_and_undone_with_it(estate, ansible_env, tmp_path):
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"))
    block = {"name": "block", "winsec.ipsec.ipsec_dynamic_block": {"filters": ["[*=0:1434:UDP]"],
                                                                   "reapply_at_startup": True}}
    path = write_playbook(tmp_path, "reapply", [block])
    planned = run_playbook(estate, env, path, check=True)["block"]
    trips = RoundTrips(estate)
    for served in estate.hosts:
        # the last step creates the scheduled task; the ones before it are the filter's tool commands
        # and the file's Set-Content (no tool): fail the task's creation, after the file was written
        commands = planned[served.host.name]["commands"]
        assert commands[-2].startswith("write %SystemRoot%\\winsec-reapply-dynamic.cmd"), commands
        assert commands[-1].startswith("schtasks /create /tn winsec-reapply-dynamic"), commands
        served.host.configure(fail_step=len(commands) - 1)
    failed = run_playbook(estate, env, path)["block"]
    for served in estate.hosts:
        sim, r = served.host, failed[served.host.name]
        assert r["failed"] and "step %d of %d failed" % (len(r["commands"]), len(r["commands"])) in r["msg"], r
        assert "the host is as it was before the task" in r["msg"] and not r["changed"]
        assert len(trips.calls[sim.name]) == 2          # the read, and the one write command that undid it all
        assert not sim.dynamic and not sim.scheduler.tasks
        assert not [p for p in sim.fs if p.lower().endswith("winsec-reapply-dynamic.cmd")]
    done = run_playbook(estate, env, path)["block"]
    for served in estate.hosts:
        sim, r = served.host, done[served.host.name]
        assert r["changed"] and r["startup_task"]["state"] == "present" and r["round_trips"] == 2, r
        changing = [call for call in trips.calls[sim.name][2:] if any(e["changed"] for e in call)]
        assert len(changing) == 1       # filter, file and task: one WinRM command
        sim.reboot()
        assert [d.rule.filter.dst_port for d in sim.dynamic] == [1434]
