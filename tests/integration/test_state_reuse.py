"""State reuse over real WinRM (issue 11.3): every module returns the state it read as the host fact
`winsec_ipsec_state`; with Ansible's jsonfile fact cache the next run plans from it and sends one
WinRM command for a change when the host is as last seen. A stale fact never leads to a write:
between two runs another tool changes the host (its own netsh or ipseccmd, a dynamic filter, another
policy assigned, a registry value edited with reg.exe). winsim's audit log then shows that the first
command of the task changed nothing (its precheck found the host changed), the second wrote the
plan made from the state that command printed, and the result keeps what the other tool did.

One host per case, every case in one estate and one playbook run per phase.
"""
import os

import pytest
import yaml

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, plan, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import DynamicRule, HostState

from test_modules_kb import RoundTrips, run_playbook, task_trips

SLAMMER = "Block UDP 1434 Filter"
PLAYBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")
CREATE = {"winsec.ipsec.ipsec_policy": {"name": SLAMMER, "assigned": True, "rules": [
    {"name": "Block Inbound UDP 1434 Rule", "filters": ["*=0:1434:UDP"], "action": "block"}]}}
STATIC = {"winsec.ipsec.ipsec_rule": {"policy": SLAMMER, "name": "Block Inbound TCP 80 Rule",
                                      "filters": ["*=0:80:TCP"], "action": "block"}}
DYNAMIC = {"winsec.ipsec.ipsec_dynamic_block": {"filters": ["[*=0:445:TCP]"]}}

# (personality, what another tool does between the runs, the task of the second run)
CASES = [(p, meddle, task) for p in ("modern", "2003", "xp")
         for meddle, task in (("none", "static"), ("none", "dynamic"), ("tool", "static"),
                              ("dynamic", "dynamic"), ("assign", "static"), ("reg", "static"))]


def playbook(tmp_path, name, tasks):
    path = tmp_path / (name + ".yml")
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "all", "gather_facts": False, "tasks": tasks}],
                                   sort_keys=False))
    return str(path)


def second_run_tasks():
    return [dict({"name": "static change"}, **STATIC, when="task == 'static'"),
            dict({"name": "dynamic change"}, **DYNAMIC, when="task == 'dynamic'")]


def set_vars(estate, values):
    with open(estate.inventory_path) as handle:
        inventory = yaml.safe_load(handle)
    found = {}

    def walk(group):
        for name, hostvars in (group.get("hosts") or {}).items():
            found[name] = hostvars
        for child in (group.get("children") or {}).values():
            walk(child or {})
    walk(inventory["all"])
    for served, extra in zip(estate.hosts, values):
        found[served.host.name].update(extra)
    with open(estate.inventory_path, "w") as handle:
        yaml.safe_dump(inventory, handle)


def dynamic_commands(sim, spec):
    """The commands another tool would type to add one dynamic block filter on this host."""
    empty = HostState(os=sim.os_info(), policyagent="running")
    wanted = plan.plan_dynamic(empty, [DynamicRule(parse_filterspec(spec).filter)])
    dialect = "ipseccmd" if sim.personality.name == "xp" else "netsh"
    return [list(c.argv) for c in dialects.render(list(wanted.changes), dialect, before=empty, after=wanted.after)]


def meddle(sim, kind):
    """Another tool changes the host; returns what must be on the host afterwards (a check)."""
    xp = sim.personality.name == "xp"
    if kind == "tool":
        argv = (["ipseccmd", "-w", "REG", "-p", "Intruder", "-r", "Telnet", "-f", "*=0:23:TCP", "-n", "BLOCK"] if xp
                else ["netsh", "ipsec", "static", "add", "policy", "name=Intruder"])
        commands = [argv]
    elif kind == "dynamic":
        commands = dynamic_commands(sim, "*=0:137:UDP")
    elif kind == "assign":
        commands = ([["ipseccmd", "-w", "REG", "-p", "Other", "-r", "Mail", "-f", "*=0:25:TCP", "-n", "BLOCK", "-x"]]
                    if xp else [["netsh", "ipsec", "static", "add", "policy", "name=Other"],
                                ["netsh", "ipsec", "static", "set", "policy", "name=Other", "assign=yes"]])
    elif kind == "reg":
        store = sim.run_tool(["reg", "query", remote.IPSEC_KEY, "/s"]).stdout
        key = next(line.strip() for line in store.splitlines() if line.startswith("HKEY_") and "ipsecPolicy{" in line)
        # ipseccmd cannot write a description (the task would then refuse the policy), so on XP a value
        # of the policy's key that the decoder does not read is added: only its fingerprint sees it
        value = "winsecNote" if xp else "description"
        commands = [["reg", "add", key, "/v", value, "/t", "REG_SZ", "/d", "edited by hand", "/f"]]
    else:
        return
    for argv in commands:
        result = sim.run_tool(argv)
        assert result.rc == 0, (argv, result.stderr)


def kept(result, kind):
    """Whether what the other tool did is still there, as the task read it back."""
    after = result["after"]
    names = {p["name"]: p for p in after["policies"]}
    if kind == "tool":
        return "Intruder" in names
    if kind == "dynamic":
        return any(d["filter"]["dst_port"] == 137 for d in after["dynamic"])
    if kind == "assign":
        return after["assigned"] == "Other"
    if kind == "reg":
        return names[SLAMMER]["description"] == ("" if result["dialect"] == "ipseccmd" else "edited by hand")
    return True


def test_a_change_costs_one_command_when_the_host_is_as_last_seen_and_a_stale_fact_is_never_written(
        estate_factory, ansible_env, tmp_path):
    estate = estate_factory(count=len(CASES), personalities=[c[0] for c in CASES])
    set_vars(estate, [{"task": task} for _p, _m, task in CASES])
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"),
               ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    first = run_playbook(estate, env, playbook(tmp_path, "first", [dict({"name": "create"}, **CREATE)]))
    for served in estate.hosts:
        r = first["create"][served.host.name]
        assert r["changed"] and not r["failed"], r.get("msg")
        fact = r["ansible_facts"]["winsec_ipsec_state"]
        assert fact["host"] == served.host.name and fact["sections"]["store"]["text"] and fact["fingerprint"]["store"]
    sims = [served.host for served in estate.hosts]
    for sim, (_p, kind, _t) in zip(sims, CASES):
        meddle(sim, kind)

    trips = RoundTrips(estate)
    second = run_playbook(estate, env, playbook(tmp_path, "second", second_run_tasks()))
    per_host = task_trips(second, trips)
    figures = {"as last seen": [], "changed meanwhile": []}
    for sim, (personality, kind, task) in zip(sims, CASES):
        name = "%s change" % task
        r = second[name][sim.name]
        calls = per_host[sim.name][name]
        where = "%s, %s, %s task: %s" % (personality, kind, task, r.get("msg"))
        assert r["changed"] and not r["failed"], where
        assert kept(r, kind), where                                         # the result is still right
        rules = {rule["name"] for p in r["after"]["policies"] if p["name"] == SLAMMER for rule in p["rules"]}
        assert ("Block Inbound TCP 80 Rule" in rules) == (task == "static"), where
        changed = [[e for e in call if e["changed"]] for call in calls]
        if kind == "none":
            figures["as last seen"].append(r["round_trips"])
            assert r["round_trips"] == len(calls) == 1 and changed[0], where
        else:
            figures["changed meanwhile"].append(r["round_trips"])
            assert r["round_trips"] == len(calls) == 2, where
            assert not changed[0] and changed[1], where          # no step ran on the stale plan
            assert any("no longer as its state fact said" in n for n in r["notes"]), where
    assert set(figures["as last seen"]) == {1} and set(figures["changed meanwhile"]) == {2}, figures

    # a third run: nothing left to do, said after one read
    trips = RoundTrips(estate)
    third = run_playbook(estate, env, playbook(tmp_path, "third", second_run_tasks()))
    for sim, (personality, kind, task) in zip(sims, CASES):
        r = third["%s change" % task][sim.name]
        where = "%s, %s, %s task again: %s" % (personality, kind, task, r.get("msg"))
        assert not r["changed"] and r["round_trips"] == 1 and not r["failed"], where
        assert any("already has the requested state" in n for n in r["notes"]), where
    assert not [e for calls in trips.calls.values() for call in calls for e in call if e["changed"]]


@pytest.mark.winsim(count=1, personalities=["modern"])
def test_check_mode_with_a_fact_reads_and_writes_nothing(estate, ansible_env, tmp_path):
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"),
               ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    run_playbook(estate, env, playbook(tmp_path, "info", [{"name": "read", "winsec.ipsec.ipsec_info": {}}]))
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, env, playbook(tmp_path, "check", [dict({"name": "would create"}, **CREATE)]),
                         check=True)
    sim = estate.hosts[0].host
    r = tasks["would create"][sim.name]
    assert r["changed"] and r["round_trips"] == 1 and r["planned"]["assigned"] == SLAMMER, r.get("msg")
    [call] = trips.calls[sim.name]
    assert call and not [e for e in call if e["changed"]]
    assert r["ansible_facts"]["winsec_ipsec_state"]["fingerprint"]["store"]


@pytest.mark.winsim(count=2, personalities=["modern", "2003"])
def test_the_safety_checks_hold_on_the_one_command_path(estate, ansible_env, tmp_path):
    """Planned from a fact: commit-confirmed still schedules its undo and confirms (one write command
    and the confirm trip); when_domain_policy=fail still refuses once a domain policy was assigned
    after the fact was taken (the fact said none), and nothing is written."""
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"),
               ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    run_playbook(estate, env, playbook(tmp_path, "first", [dict({"name": "create"}, **CREATE)]))
    confirmed = dict(STATIC["winsec.ipsec.ipsec_rule"], confirm_timeout=60)
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, env, playbook(tmp_path, "confirmed", [
        {"name": "confirmed change", "winsec.ipsec.ipsec_rule": confirmed}]))
    for served in estate.hosts:
        sim = served.host
        r = tasks["confirmed change"][sim.name]
        assert not r["failed"] and r["changed"] and r["confirm"]["status"] == "confirmed", r.get("msg")
        assert r["round_trips"] == len(trips.calls[sim.name]) == 2, r["round_trips"]     # write + confirm
        assert [e["argv"][:2] for e in trips.calls[sim.name][0] if e["changed"]][:2] == [
            ["schtasks", "/create"], ["schtasks", "/run"]]
        assert not [t for t in sim.scheduler.tasks if "winsec-confirm" in t.lower()]
        # a domain GPO assigns a policy after the fact was taken (what the Group Policy extension records)
        for value, data in (("DSIPSECPolicyName", "Corp Baseline"),
                            ("DSIPSECPolicyPath", "LDAP://CN=ipsecPolicy{6a1f0e1c-0000-4000-8000-000000000001},"
                                                  "CN=IP Security,CN=System,DC=corp")):
            assert sim.run_tool(["reg", "add", remote.IPSEC_KEY + "\\GPTIPSECPolicy", "/v", value, "/t", "REG_SZ",
                                 "/d", data, "/f"]).rc == 0
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, env, playbook(tmp_path, "refused", [
        {"name": "local change under a domain policy",
         "winsec.ipsec.ipsec_rule": dict(STATIC["winsec.ipsec.ipsec_rule"], name="Block Inbound TCP 81 Rule",
                                         filters=["*=0:81:TCP"], when_domain_policy="fail")}]))
    for served in estate.hosts:
        sim = served.host
        r = tasks["local change under a domain policy"][sim.name]
        assert r["failed"] and "Corp Baseline" in r["msg"] and "when_domain_policy=fail" in r["msg"], r.get("msg")
        assert not r["changed"], (r["changed"], r.get("notes"))
        assert not [e for call in trips.calls[sim.name] for e in call if e["changed"]], trips.calls[sim.name]
        assert r["round_trips"] == len(trips.calls[sim.name]) == 1      # the write command wrote nothing
