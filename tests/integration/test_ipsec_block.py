"""winsec.ipsec.ipsec_block over WinRM against winsim, on the modern, 2008 R2, 2003 and XP personalities (netsh
and ipseccmd): a baseline assigned beforehand stays assigned and keeps blocking during the block, the undo restores
it exactly, a host without one gets the block's own policy, a host under a domain policy gets the dynamic block and
the right message, check mode predicts the real run, a second run costs one WinRM command and changes nothing, a
failing write is undone whole, and reapply_at_startup brings the dynamic block back after a reboot."""

import pytest
import yaml

from winsim.state.firewall import Packet, packet_verdict

from test_modules_kb import RoundTrips, run_playbook, task_trips
from test_safety_traps import assign_domain_policy
from test_worm_block_role import CALLBACKS

PERSONALITIES = ("modern", "2003", "xp")
BASELINE = "Corp Baseline"
OWN = "winsec-emergency UDP 1434"
SLAMMER = {"ports": [{"protocol": "UDP", "port": 1434}]}


def playbook(tmp_path, name, tasks):
    path = tmp_path / name
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "all", "gather_facts": False, "tasks": tasks}],
                                   sort_keys=False))
    return str(path)


def task(name, module, args, **extra):
    return dict({"name": name, module: args}, **extra)


def block(name, state="present", **extra):
    return task(name, "winsec.ipsec.ipsec_block", dict(SLAMMER, state=state), ignore_errors=True, **extra)


BASELINE_TASK = task("baseline", "winsec.ipsec.ipsec_policy", {
    "name": BASELINE, "assigned": True,
    "rules": [{"name": "Block Telnet", "filters": ["*=0:23:TCP"]}]})
INFO = task("info", "winsec.ipsec.ipsec_info", {})
# Its default name has commas and spaces: "TCP 445 in, UDP 137, TCP 135" (the policy's, rule's, list's and action's)
SECOND_BLOCK = {"ports": [{"protocol": "TCP", "port": 445, "direction": "in"}, {"protocol": "UDP", "port": 137}],
                "filters": ["[*=0:135:TCP]"]}
SECOND = task("second block", "winsec.ipsec.ipsec_block", SECOND_BLOCK, ignore_errors=True)


def blocks(sim, port, protocol=17):
    """Whether the host's filtering drops traffic from elsewhere to its `port`."""
    return packet_verdict(sim, Packet("10.0.0.5", sim.address, protocol, 50000, port)) is not None


def play(estate, env, path, **kw):
    return run_playbook(estate, dict(env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS), path, **kw)


def commands_sent(calls):
    """The native tools a task's WinRM commands ran that changed the host."""
    return [entry for call in calls for entry in call if entry["changed"]]


@pytest.mark.winsim(count=4, personalities=PERSONALITIES + ("2008r2",))
def test_a_baseline_stays_in_force_during_the_block_and_the_undo_restores_it_exactly(estate, ansible_env, tmp_path):
    sims = {served.host.name: served.host for served in estate.hosts}
    trips = RoundTrips(estate)
    placed = play(estate, ansible_env, playbook(tmp_path, "block.yml", [
        BASELINE_TASK, dict(INFO, name="info before"),
        block("block, check", check_mode=True), block("block"), block("block again")]))
    per_host = task_trips(placed, trips)
    for name, sim in sims.items():
        check, real, again = (placed[t][name] for t in ("block, check", "block", "block again"))
        assert not real["failed"], real.get("msg")
        assert real["verified"] and real["problems"] == [] and real["changed"]
        assert real["placement"] == {"static": "assigned_policy", "policy": BASELINE, "dynamic": 2,
                                     "reason": real["placement"]["reason"]}
        assert real["summary"] == ("blocked and verified; static: 1 rule added to the assigned policy Corp Baseline; "
                                   "dynamic filters: 2"), real["summary"]
        # planned from the state fact the task before left (check mode read the host): ONE WinRM command that
        # checks the host is as the fact says, writes the whole block and reads it back
        assert real["round_trips"] == 1 and commands_sent(per_host[name]["block"]), per_host[name]["block"]
        # the baseline stays assigned, with its own rule and the block's
        assert real["after"]["assigned"] == BASELINE
        [policy] = real["after"]["policies"]
        assert sorted(r["name"] for r in policy["rules"]) == ["Block Telnet", OWN]
        # check mode predicted the real run: same commands, its planned state is what was read back
        assert check["changed"] and check["verified"] and check["summary"] == "check mode, would be " + real["summary"]
        assert check["commands"] == real["commands"]
        assert check["planned"] == real["after"] == real["planned"]
        assert not commands_sent(per_host[name]["block, check"])
        # nothing left to do: one WinRM command, nothing changed on the host
        assert not again["changed"] and again["verified"] and again["round_trips"] == 1
        assert len(per_host[name]["block again"]) == 1 and not commands_sent(per_host[name]["block again"])
        assert again["summary"].startswith("blocked and verified (nothing to change); static: 1 rule in place")
        # what the host enforces now: TCP 23 (the baseline) and UDP 1434 (the block)
        assert blocks(sim, 23, 6) and blocks(sim, 1434), sim.personality
        assert sim.state().assigned == BASELINE

    undone = play(estate, ansible_env, playbook(tmp_path, "unblock.yml", [
        block("unblock, check", "absent", check_mode=True), block("unblock", "absent"),
        block("unblock again", "absent"), dict(INFO, name="info after")]))
    for name, sim in sims.items():
        check, real, again = (undone[t][name] for t in ("unblock, check", "unblock", "unblock again"))
        assert real["changed"] and real["verified"], real.get("msg")
        assert real["summary"] == ("unblocked and verified; static: 1 rule removed from policy Corp Baseline; "
                                   "dynamic filters removed: 2"), real["summary"]
        assert check["commands"] == real["commands"] and check["planned"] == real["after"]
        assert not again["changed"] and again["round_trips"] == 1
        # exactly as before the block: same objects, same GUIDs, same assignment, same dynamic filters
        assert undone["info after"][name]["state"] == placed["info before"][name]["state"]
        assert blocks(sim, 23, 6) and not blocks(sim, 1434)


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_without_an_assigned_policy_the_block_has_its_own_and_the_undo_leaves_none(estate, ansible_env, tmp_path):
    """Two blocks: the first gets its own policy, the second joins it (it is the policy in force); each undo
    takes away only its own block, and the last one leaves the host as it was."""
    sims = {served.host.name: served.host for served in estate.hosts}
    trips = RoundTrips(estate)
    tasks = play(estate, ansible_env, playbook(tmp_path, "own.yml", [
        dict(INFO, name="info before"),
        task("a port that carries WinRM", "winsec.ipsec.ipsec_block",
             {"ports": [{"protocol": "TCP", "port": 5985, "direction": "in"}]}, ignore_errors=True),
        task("a bad port", "winsec.ipsec.ipsec_block", {"ports": [{"protocol": "ICMP", "port": 8}]},
             ignore_errors=True),
        block("block"), block("block again"), SECOND]))
    per_host = task_trips(tasks, trips)
    for name, sim in sims.items():
        where = sim.personality
        cut = tasks["a port that carries WinRM"][name]
        assert cut["failed"] and "allow_lockout" in cut["msg"] and not commands_sent(per_host[name].get(
            "a port that carries WinRM", ())), (where, cut["msg"])
        bad = tasks["a bad port"][name]
        assert bad["failed"] and "ports[0].port" in bad["msg"] and "round_trips" not in bad, bad["msg"]
        real = tasks["block"][name]
        assert real["verified"] and real["changed"], (where, real.get("msg"))
        assert real["placement"]["static"] == "own_policy" and real["placement"]["policy"] == OWN
        assert real["summary"] == "blocked and verified; static: own policy %s added and assigned; dynamic filters: 2" \
            % OWN, real["summary"]
        assert real["after"]["assigned"] == OWN
        names = {o["name"] for kind in ("policies", "filterlists", "filteractions") for o in real["after"][kind]}
        assert names == {OWN}          # every object the block added carries the emergency prefix
        again = tasks["block again"][name]
        assert not again["changed"] and again["round_trips"] == 1 and len(per_host[name]["block again"]) == 1
        second = tasks["second block"][name]
        assert second["verified"] and second["placement"]["static"] == "assigned_policy", (where, second.get("msg"))
        assert second["placement"]["policy"] == OWN and second["after"]["assigned"] == OWN
        assert second["summary"].startswith("blocked and verified; static: 1 rule added to the assigned policy " + OWN)
        assert sim.state().assigned == OWN and blocks(sim, 1434) and blocks(sim, 445, 6) and blocks(sim, 135, 6)

    first_undone = play(estate, ansible_env, playbook(tmp_path, "own-undo.yml", [block("unblock", "absent")]))
    for name, sim in sims.items():
        undo = first_undone["unblock"][name]
        assert undo["verified"] and undo["summary"] == (
            "unblocked and verified; static: 1 rule removed from policy %s; dynamic filters removed: 2" % OWN), \
            (sim.personality, undo.get("msg"), undo.get("summary"))
        assert sim.state().assigned == OWN and not blocks(sim, 1434) and blocks(sim, 445, 6)

    undone = play(estate, ansible_env, playbook(tmp_path, "own-undo-2.yml", [
        dict(SECOND, name="unblock second", **{"winsec.ipsec.ipsec_block": dict(SECOND_BLOCK, state="absent")}),
        dict(INFO, name="info after")]))
    for name, sim in sims.items():
        undo = undone["unblock second"][name]
        assert undo["verified"] and undo["summary"].startswith(
            "unblocked and verified; static: policy %s removed after unassigning it" % OWN), undo["summary"]
        assert undone["info after"][name]["state"] == tasks["info before"][name]["state"]
        assert sim.state().assigned == "" and not blocks(sim, 445, 6)


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_under_a_domain_policy_only_the_dynamic_block_applies_and_the_result_says_where_the_rest_belongs(
        estate, ansible_env, tmp_path):
    sims = {served.host.name: served.host for served in estate.hosts}
    assign_domain_policy(estate.hosts[0].host)          # the domain's Corp Baseline blocks TCP 23 and 88
    for sim in sims.values():
        with sim._lock:
            sim.refresh_group_policy(force=True)        # what `gpupdate /target:computer /force` does
        assert sim.domain_assignment().name == BASELINE
    trips = RoundTrips(estate)
    tasks = play(estate, ansible_env, playbook(tmp_path, "domain.yml", [
        task("a local policy", "winsec.ipsec.ipsec_policy", {
            "name": "Local Telnet", "assigned": True, "rules": [{"name": "Block Telnet", "filters": ["*=0:23:TCP"]}]}),
        block("block, check", check_mode=True), block("block"), block("block again"),
        dict(block("static only"), **{"winsec.ipsec.ipsec_block": dict(SLAMMER, mode="static")})]))
    per_host = task_trips(tasks, trips)
    for name, sim in sims.items():
        where = sim.personality
        local = tasks["a local policy"][name]["after"]
        check, real = tasks["block, check"][name], tasks["block"][name]
        assert real["verified"] and real["changed"], (where, real.get("msg"))
        assert real["placement"] == {"static": "none", "policy": None, "dynamic": 2,
                                     "reason": real["placement"]["reason"]}
        assert "domain_rollout.yml" in real["placement"]["reason"]
        assert real["summary"].startswith("blocked and verified; static: none, domain (GPO) policy 'Corp Baseline' is "
                                          "in force"), real["summary"]
        assert "the persistent block belongs in the domain store (playbooks/domain_rollout.yml)" in real["summary"]
        assert real["summary"].endswith("; dynamic filters: 2")
        assert any("domain_rollout.yml" in w and "'Corp Baseline'" in w for w in real["warnings"]), real["warnings"]
        # nothing local written or assigned: the local store is as the task before left it
        for key in ("policies", "filterlists", "filteractions", "assigned"):
            assert real["after"][key] == local[key], key
        assert len(real["after"]["dynamic"]) == 2 and blocks(sim, 1434) and blocks(sim, 23, 6)
        assert check["commands"] == real["commands"] and check["planned"] == real["after"]
        assert check["summary"] == "check mode, would be " + real["summary"]
        assert not tasks["block again"][name]["changed"] and tasks["block again"][name]["round_trips"] == 1
        static = tasks["static only"][name]
        assert static["failed"] and not static["verified"] and static["round_trips"] == 1, where
        assert static["problems"][0].startswith("nothing blocks: domain (GPO) policy 'Corp Baseline'")
        assert not commands_sent(per_host[name]["static only"])
    undone = play(estate, ansible_env, playbook(tmp_path, "domain-undo.yml", [block("unblock", "absent")]))
    for name, sim in sims.items():
        undo = undone["unblock"][name]
        assert undo["verified"] and undo["after"]["dynamic"] == [] and undo["after"]["assigned"] == "Local Telnet"
        assert undo["summary"] == "unblocked and verified; static: nothing of the block was left; " \
                                  "dynamic filters removed: 2", undo["summary"]
        assert not blocks(sim, 1434) and blocks(sim, 23, 6)


@pytest.mark.winsim(count=2, personalities=("modern", "xp"))
def test_reapply_at_startup_brings_the_dynamic_block_back_after_a_reboot_and_the_undo_removes_it(
        estate, ansible_env, tmp_path):
    sims = {served.host.name: served.host for served in estate.hosts}
    dynamic = dict(SLAMMER, mode="dynamic", reapply_at_startup=True)
    tasks = play(estate, ansible_env, playbook(tmp_path, "reapply.yml", [
        task("block", "winsec.ipsec.ipsec_block", dynamic, ignore_errors=True)]))
    for name, sim in sims.items():
        real = tasks["block"][name]
        assert real["verified"] and real["startup_task"]["state"] == "present", (sim.personality, real.get("msg"))
        assert real["placement"] == {"static": "none", "policy": None, "dynamic": 2,
                                     "reason": "mode=dynamic: no static block"}
        assert real["summary"] == "blocked and verified; dynamic filters: 2"
        assert real["after"]["policies"] == [] and real["after"]["assigned"] == ""
    for served in estate.hosts:
        served.control({"reboot": True})
    for sim in sims.values():
        assert len(sim.dynamic) == 2 and blocks(sim, 1434), sim.personality       # re-added at boot
    undone = play(estate, ansible_env, playbook(tmp_path, "reapply-undo.yml", [
        task("unblock", "winsec.ipsec.ipsec_block", dict(dynamic, state="absent"), ignore_errors=True)]))
    for served in estate.hosts:
        undo = undone["unblock"][served.host.name]
        assert undo["verified"] and undo["startup_task"]["state"] == "absent", undo.get("msg")
        assert not served.host.scheduler.tasks
        served.control({"reboot": True})
        assert not served.host.dynamic and not blocks(served.host, 1434)


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_a_failing_last_step_undoes_the_whole_block_dynamic_static_and_assignment(estate, ansible_env, tmp_path):
    sims = {served.host.name: served.host for served in estate.hosts}
    checked = play(estate, ansible_env, playbook(tmp_path, "fault-check.yml", [
        dict(INFO, name="info before"), block("block, check", check_mode=True)]))
    for name, sim in sims.items():
        commands = checked["block, check"][name]["commands"]
        assert any("1434" in c for c in commands), commands
        sim.configure(fail_step=len(commands))          # every step but the last runs, then the last fails
    failed = play(estate, ansible_env, playbook(tmp_path, "fault.yml", [block("block"), dict(INFO, name="info after")]))
    for name, sim in sims.items():
        result = failed["block"][name]
        assert result["failed"] and not result["changed"], (sim.personality, result)
        assert "undone" in result["msg"] and "as it was before" in result["msg"], result["msg"]
        assert failed["info after"][name]["state"] == checked["info before"][name]["state"], sim.personality
        assert not blocks(sim, 1434) and sim.state().assigned == ""


ASSIGN_OTHER = ("{{ 'ipseccmd -w REG -p Other -x' if winsim_personality == 'xp' else "
                "'netsh ipsec static set policy name=Other assign=yes' }}")


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_a_stale_state_fact_never_places_the_block_in_a_policy_no_longer_in_force(estate, ansible_env, tmp_path):
    """The fact says Corp Baseline is assigned; another tool assigned Other since. The write planned from the fact
    is not run (its precheck sees the host changed): the block is planned again from the state that same command
    read, and goes into Other, the policy in force. The undo then plans from the block's own fact: one command."""
    sims = {served.host.name: served.host for served in estate.hosts}
    trips = RoundTrips(estate)
    tasks = play(estate, ansible_env, playbook(tmp_path, "stale.yml", [
        task("other", "winsec.ipsec.ipsec_policy", {
            "name": "Other", "rules": [{"name": "Block 24", "filters": ["*=0:24:TCP"]}]}),
        BASELINE_TASK, INFO,
        task("another tool assigns Other [raw]", "ansible.builtin.raw", ASSIGN_OTHER),
        block("block"), block("unblock", "absent")]))
    per_host = task_trips(tasks, trips)
    for name, sim in sims.items():
        where = sim.personality
        assert "winsec_ipsec_state" in tasks["info"][name]["ansible_facts"], where
        real = tasks["block"][name]
        assert real["verified"] and real["placement"]["policy"] == "Other", (where, real.get("msg"))
        assert real["after"]["assigned"] == "Other"
        assert any("state fact" in n for n in real["notes"]), real["notes"]
        calls = per_host[name]["block"]
        # the command planned from the fact wrote nothing; the one planned again from what it read did
        assert real["round_trips"] == 2 and not commands_sent(calls[:1]) and commands_sent(calls[1:]), calls
        baseline = next(p for p in real["after"]["policies"] if p["name"] == BASELINE)
        assert [r["name"] for r in baseline["rules"]] == ["Block Telnet"]
        undo = tasks["unblock"][name]
        assert undo["verified"] and undo["changed"] and undo["round_trips"] == 1, (where, undo.get("msg"))
        assert commands_sent(per_host[name]["unblock"])
        assert sim.state().assigned == "Other" and not blocks(sim, 1434) and blocks(sim, 24, 6)
