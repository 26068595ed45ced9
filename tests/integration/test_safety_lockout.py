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

from winsim.state import firewall

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


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_commit_confirmed_and_the_host_undoing_a_lockout_by_itself(estate, ansible_env):
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "safety_confirm.yml")
    per_host = task_trips(tasks, trips)
    check_documented(tasks)
    for personality, name in host_names(estate).items():
        served = estate.host(name)
        sim = served.host

        def result(task):
            return tasks[task][name]
        # read, write, confirm; the dynamic block is planned from the state fact the task before returned,
        # so its write is its first command (the host is as that task left it)
        for task, trips in (("a confirmed change [confirmed]", 3), ("a confirmed dynamic block [confirmed]", 2)):
            r = result(task)
            where = "%s on %s: %s" % (task, personality, r.get("msg"))
            assert not r["failed"] and r["changed"] and r["round_trips"] == trips, where
            assert r["confirm"]["status"] == "confirmed" and r["confirm"]["task"].startswith("winsec-confirm-"), where
            argv = [e["argv"] for call in per_host[name][task] for e in call]
            assert ["schtasks", "/create"] == [a.lower() for a in argv[0][:2]] or any(
                a[0].lower() == "schtasks" and a[1].lower() == "/create" for a in argv), where
            assert [a[1].lower() for a in argv if a[0].lower() == "schtasks"] == ["/create", "/run", "/end", "/delete"], where
            assert r["commands"][0].startswith("schtasks /create /tn winsec-confirm-"), where
        assert not result("the same again [again]")["changed"] and result("the same again [again]")["round_trips"] == 1
        check = result("a confirmed rule in check mode [check]")
        assert check["changed"] and check["round_trips"] == 1 and check["commands"][1].startswith("schtasks /run")
        cut = result("a %s rule that cuts the management path [cut]" % "static" if personality == "2003"
                     else "a dynamic block that cuts the management path [cut]")
        assert cut["failed"] and cut["confirm"]["status"] == "unreachable", (cut.get("msg"), cut.get("confirm"))
        assert "undoes the change by itself" in cut["msg"], cut["msg"]
        # the host really cut itself off; its own task undoes the change at the deadline, which counts
        # from the write (the controller spent part of it waiting for the write's end and reconnecting)
        assert blocked(served) is not None, (personality, sim.scheduler.history)
        assert len(sim.scheduler.running) == 1
        left = next(iter(sim.scheduler.running.values())).wake - sim.now()
        assert 1 < left <= 20, left
        sim.advance_time(left - 1)
        assert blocked(served) is not None
        sim.advance_time(2)
        assert blocked(served) is None and not sim.scheduler.tasks and not sim.scheduler.running, sim.scheduler.history
    after = run_playbook(estate, ansible_env, "safety_info.yml")
    for personality, name in host_names(estate).items():
        r = after["info [info]"][name]
        assert not r["failed"], r
        state = r["state"]
        # the confirmed changes stay; only the cutting one was undone
        [policy] = [p for p in state["policies"] if p["name"] == "Slammer"]
        rules = sorted(rule["name"] for rule in policy["rules"] if not rule["default_response"])
        assert rules == ["Block 1434"], (personality, rules)
        # on XP the undo is `ipseccmd -u` (it drops every dynamic filter) and re-adds the others
        assert [d["filter"]["dst_port"] for d in state["dynamic"]] == [1434], personality


# ---- issue 12.4: disguised forms of the management traffic, over WinRM -----------------------------

def with_recorder(env):
    """The results recorder (playbooks/callback_plugins) for a playbook written elsewhere."""
    import os
    return dict(env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(os.path.dirname(__file__), "playbooks", "callback_plugins"))


def _on_this_host(value):
    """A corpus form with the unit test's port and host address replaced by this host's own."""
    if isinstance(value, dict):
        return {k: _on_this_host(v) for k, v in value.items()}
    if isinstance(value, int) and value == 5985:
        return "{{ ansible_port }}"
    if not isinstance(value, str):
        return value
    return (value.replace("5985", "{{ ansible_port }}").replace("127.64.0.2", "{{ ansible_host }}")
            .replace("127.64.0.0", "{{ ansible_host.split('.')[:2] | join('.') }}.0.0"))


def disguised_tasks():
    from tests.unit.plugins.module_utils.ipsec.test_lockout import LOCKOUT_CORPUS
    tasks = []
    for index, (form_id, how, item) in enumerate(LOCKOUT_CORPUS):
        item = _on_this_host(item)
        if how == "dynamic":
            module = {"winsec.ipsec.ipsec_dynamic_block": {"filters": [item]}}
        else:
            rule = {"name": "Form %d" % index, "filters": [item], "action": how}
            if how == "negotiate":
                rule["filteraction"] = rule["name"]       # the one name netsh and ipseccmd both take
            module = {"winsec.ipsec.ipsec_policy": {"name": "Cut", "assigned": True, "rules": [rule]}}
        tasks.append(dict(module, name="%s [refused]" % form_id, ignore_errors=True))
    tasks.append({"name": "the host still answers [info]", "winsec.ipsec.ipsec_info": {}})
    return tasks


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_every_disguised_form_is_refused_and_touches_nothing(estate, ansible_env, tmp_path):
    import yaml
    trips = RoundTrips(estate)
    path = tmp_path / "disguised.yml"
    path.write_text(yaml.safe_dump([{"name": "disguised lockouts", "hosts": "all", "gather_facts": False,
                                     "tasks": disguised_tasks()}], sort_keys=False))
    tasks = run_playbook(estate, with_recorder(ansible_env), str(path))
    per_host = task_trips(tasks, trips)
    tried = refused = 0
    for personality, name in host_names(estate).items():
        for task, results in tasks.items():
            r = results[name]
            if not task.endswith("[refused]"):
                continue
            tried += 1
            where = "%s on %s: %s" % (task, personality, r.get("msg", ""))
            changed_calls = [e for call in per_host[name].get(task, ()) for e in call if e["changed"]]
            assert r["failed"] and not changed_calls, where      # `changed` itself is issue 12.6
            assert r.get("round_trips", 0) <= 1, where           # at most the read
            assert "allow_lockout: true" in r["msg"] or "filters" in r["msg"], where
            refused += 1
        info = tasks["the host still answers [info]"][name]
        assert not info["failed"], info
        assert not info["state"]["policies"] and not info["state"]["dynamic"], (personality, info["state"])
        assert blocked(estate.host(name)) is None
    print("\n[figure] lockout forms over WinRM: %d tried on 3 hosts, %d refused, none written" % (tried, refused))


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_a_mistyped_policy_name_does_not_lift_the_assigned_one(estate, ansible_env, tmp_path):
    """Issue 12.7: assigned: true for a policy the host lacks, without rules, is refused on every dialect."""
    import yaml
    trips = RoundTrips(estate)
    plays = [{"name": "typo", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "the real policy [run]", "winsec.ipsec.ipsec_policy": {
            "name": "Block UDP 1434 Filter", "assigned": True,
            "rules": [{"name": "Block UDP 1434", "filters": ["*=0:1434:UDP"]}]}},
        {"name": "a typo [refused]", "ignore_errors": True,
         "winsec.ipsec.ipsec_policy": {"name": "Blok UDP 1434 Filter", "assigned": True}},
        {"name": "after [info]", "winsec.ipsec.ipsec_info": {}}]}]
    path = tmp_path / "typo.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    tasks = run_playbook(estate, with_recorder(ansible_env), str(path))
    per_host = task_trips(tasks, trips)
    for personality, name in host_names(estate).items():
        r = tasks["a typo [refused]"][name]
        where = (personality, r.get("msg"))
        assert r["failed"] and not r["changed"] and r["round_trips"] == 1, where
        assert r["msg"].startswith("name: 'Blok UDP 1434 Filter'") and "'Block UDP 1434 Filter'" in r["msg"], where
        assert not [e for call in per_host[name]["a typo [refused]"] for e in call if e["changed"]], where
        state = tasks["after [info]"][name]["state"]
        assert state["assigned"] == "Block UDP 1434 Filter", (personality, state["assigned"])
        assert [p["name"] for p in state["policies"]] == ["Block UDP 1434 Filter"], personality


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_disguised_forms_in_a_gpo_assigned_domain_policy_are_refused(estate, ansible_env, tmp_path):
    """Issue 12.4 in domain policies: members run what a GPO assigns, so a rule added to such a
    policy (store: domain) is guarded like one in the local assigned policy."""
    import yaml
    where = {"store": "domain"}
    tasks_in = [
        {"name": "a GPO-assigned domain policy [run]", "winsec.ipsec.ipsec_policy": dict(
            where, name="Corp", gpo="Default Domain Policy", assigned=True,
            rules=[{"name": "Slammer", "filters": ["*=0:1434:UDP"]}])},
        {"name": "negotiate over all TCP [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            where, policy="Corp", name="Neg", filters=["*+0::TCP"], action="negotiate", filteraction="Neg")},
        {"name": "a DNS name [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            where, policy="Corp", name="Dns", filters=["localhost=0:{{ ansible_port }}:TCP"])},
        {"name": "a server type [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            where, policy="Corp", name="Gw", filters=[{"src": "GATEWAY", "dst": "me", "protocol": "TCP"}])},
        {"name": "the controller's subnet, mask 0 [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            where, policy="Corp", name="Zero", filters=[{"src": "127.0.0.1", "src_mask": 0, "protocol": "TCP"}])},
        {"name": "domain gathered [info]", "winsec.ipsec.ipsec_policy": dict(where, state="gathered")},
    ]
    path = tmp_path / "domain.yml"
    path.write_text(yaml.safe_dump([{"name": "domain lockouts", "hosts": "all", "gather_facts": False,
                                     "tasks": tasks_in}], sort_keys=False))
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, with_recorder(ansible_env), str(path))
    per_host = task_trips(tasks, trips)
    [name] = host_names(estate).values()
    assert not tasks["a GPO-assigned domain policy [run]"][name]["failed"]
    for task, results in tasks.items():
        if task.endswith("[refused]"):
            r = results[name]
            changed_calls = [e for call in per_host[name][task] for e in call if e["changed"]]
            assert r["failed"] and r["round_trips"] == 1 and not changed_calls, (task, r.get("msg"))
            assert "allow_lockout: true" in r["msg"] and "'Corp'" in r["msg"], (task, r["msg"])
    gathered = tasks["domain gathered [info]"][name]["gathered"]
    [corp] = gathered["policies"]
    assert [r["name"] for r in corp["rules"] if not r["default_response"]] == ["Slammer"]
