"""Transactions over real WinRM through ansible-playbook (issue 6, section 1).

For every step of KB 813878's scenarios, on the modern (netsh) and XP (ipseccmd) personalities,
winsim makes the k-th state-changing command fail (`fail_step=k`): the task fails naming that
command and its output, and the host is exactly as it was. A connection dropped after the read or
after the write trip (`drop_command`) leaves the host old or new, never between, and the next run
converges. A change made by someone else between the read and the write is caught by the compare
and swap (guard.py): nothing is written.

One host per case, all cases of a phase in one estate and one playbook run.
"""
import copy
import os
import re
from dataclasses import replace

import pytest
import yaml

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host as flow
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote

from test_modules_kb import run_playbook

SLAMMER = "Block UDP 1434 Filter"
PERSONALITIES = ("modern", "xp")
# KB 813878's scenarios, in order: each starts from the state the ones before it leave.
SCENARIOS = [
    ("create", "winsec.ipsec.ipsec_policy", {
        "name": SLAMMER, "assigned": True,
        "rules": [{"name": "Block Inbound UDP 1434 Rule", "filters": ["*=0:1434:UDP"], "action": "block"}]}),
    ("outbound", "winsec.ipsec.ipsec_rule", {
        "policy": SLAMMER, "name": "Block Outbound UDP 1434 Rule", "filters": ["0=*:1434:UDP"]}),
    ("tcp80", "winsec.ipsec.ipsec_rule", {
        "policy": SLAMMER, "name": "Block Inbound TCP 80 Rule", "filters": ["*=0:80:TCP"], "action": "block"}),
    ("dynamic", "winsec.ipsec.ipsec_dynamic_block", {"filters": ["[*=0:1434:UDP]"]}),
    ("unassign", "winsec.ipsec.ipsec_policy", {"name": SLAMMER, "assigned": False}),
    ("delete", "winsec.ipsec.ipsec_policy", {"name": SLAMMER, "state": "deleted"}),
]
PLAYBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")


def playbook(tmp_path, name, prepare=False, plan=False, step=False, fresh=False):
    """Per host, its `scenario` (index) decides what runs. prepare: the scenarios before it, for
    real; plan: its own in check mode; step: its own for real (errors ignored); fresh: the state
    facts of the tasks before are forgotten, so that the step reads the host first."""
    tasks = []
    for index, (label, module, args) in enumerate(SCENARIOS):
        if prepare:
            tasks.append({"name": "prepare %s" % label, module: copy.deepcopy(args),
                          "when": "scenario | int > %d" % index})
    if fresh:
        tasks.append({"name": "forget the state facts", "meta": "clear_facts"})
    for kind, wanted, extra in (("plan", plan, {"check_mode": True}), ("step", step, {"ignore_errors": True})):
        for index, (label, module, args) in enumerate(SCENARIOS):
            if wanted:
                tasks.append(dict({"name": "%s %s" % (kind, label), module: copy.deepcopy(args),
                                   "when": "scenario | int == %d" % index}, **extra))
    path = tmp_path / (name + ".yml")
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "all", "gather_facts": False, "tasks": tasks}],
                                   sort_keys=False))
    return str(path)


def play(estate, env, tmp_path, name, **kinds):
    env = dict(env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"))
    return run_playbook(estate, env, playbook(tmp_path, name, **kinds))


def set_scenarios(estate, scenarios):
    """Write each host's `scenario` (index into SCENARIOS) into the estate's inventory."""
    with open(estate.inventory_path) as handle:
        inventory = yaml.safe_load(handle)
    found = {}

    def walk(group):
        for name, hostvars in (group.get("hosts") or {}).items():
            found[name] = hostvars
        for child in (group.get("children") or {}).values():
            walk(child or {})
    walk(inventory["all"])
    for served, scenario in zip(estate.hosts, scenarios):
        found[served.host.name]["scenario"] = scenario
    with open(estate.inventory_path, "w") as handle:
        yaml.safe_dump(inventory, handle)


def snapshot(sim):
    """What the host holds, read the way the modules read it: `reg query /s` through the codec,
    and the dynamic filters (winsim's own list: they are not in the registry); as plain data without
    GUIDs, so that hosts that reached one state on different paths compare equal."""
    result = sim.run_tool(["reg", "query", remote.IPSEC_KEY, "/s"])
    text = result.stdout if result.rc == 0 else ""
    state = replace(flow.decode_registry(text), dynamic=tuple(d.rule for d in sim.dynamic))
    return flow.state_report(state)         # canonical order, without GUIDs


def clone(source, target):
    """Give `target` the IPsec store and dynamic filters of `source` (same personality)."""
    target.hive.tree.replace_subtree(remote.IPSEC_KEY, source.hive.tree)
    target.hive.save()
    target.dynamic = copy.deepcopy(source.dynamic)
    target.mmpolicies = copy.deepcopy(source.mmpolicies)


def result_of(tasks, host, kind="step"):
    """The result of the one `kind` task that ran on `host` (the others were skipped)."""
    [result] = [r[host] for name, r in tasks.items()
                if name.startswith(kind + " ") and host in r and not r[host].get("skipped")]
    return result


@pytest.fixture
def prepared(estate_factory, ansible_env, tmp_path):
    """One host per (scenario, personality) brought to the scenario's starting state by running the
    scenarios before it; its check-mode plan gives the batch. {key: (sim, commands, snapshot)}."""
    keys = [(index, personality) for index in range(len(SCENARIOS)) for personality in PERSONALITIES]
    estate = estate_factory(count=len(keys), personalities=[p for _i, p in keys])
    set_scenarios(estate, [i for i, _p in keys])
    tasks = play(estate, ansible_env, tmp_path, "prepare", prepare=True, plan=True)
    found = {}
    for served, key in zip(estate.hosts, keys):
        plan = result_of(tasks, served.host.name, "plan")
        assert plan["changed"] and not plan.get("failed"), (key, plan.get("msg"))
        found[key] = (served.host, plan["commands"], snapshot(served.host))
    return found


def test_every_failed_step_and_dropped_trip_leaves_old_or_new_state(prepared, estate_factory, ansible_env,
                                                                      tmp_path):
    # cases: (key, fault, k); fail_step k for every command of the batch and one beyond it;
    # drop_command 1 (the read trip) and 2 (the write trip)
    cases = [(key, "fail_step", k) for key, (_s, commands, _b) in prepared.items()
             for k in range(1, len(commands) + 2)]
    cases += [(key, "drop_command", k) for key in prepared for k in (1, 2)]
    estate = estate_factory(count=len(cases), personalities=[key[1] for key, _f, _k in cases])
    set_scenarios(estate, [key[0] for key, _f, _k in cases])
    for served, (key, fault, k) in zip(estate.hosts, cases):
        clone(prepared[key][0], served.host)
        assert snapshot(served.host) == prepared[key][2]
        if fault == "fail_step":
            served.host.configure(fail_step=k)
        else:
            served.control({"drop_command": k})
    tasks = play(estate, ansible_env, tmp_path, "fault", step=True)

    news = {}
    for served, (key, fault, k) in zip(estate.hosts, cases):
        sim = served.host
        commands, old = prepared[key][1], prepared[key][2]
        r = result_of(tasks, sim.name)
        where = "%s on %s, %s=%d: %s" % (SCENARIOS[key[0]][0], key[1], fault, k, r.get("msg"))
        if fault == "drop_command":
            assert r.get("unreachable") or r.get("failed"), where
            assert snapshot(sim) == (old if k == 1 else news.get(key, snapshot(sim))), where
            continue
        sim.configure(fail_step=None)
        if k > len(commands):           # beyond the batch: nothing failed
            assert r["changed"] and not r.get("failed") and r["commands"] == commands, where
            news[key] = snapshot(sim)
            assert news[key] != old, where
            continue
        assert r.get("failed"), where
        # the error names the failed command (as `commands` shows it) and its output
        assert "step %d of %d failed" % (k, len(commands)) in r["msg"], where
        assert commands[k - 1] in r["msg"], where
        assert "as it was before the task" in r["msg"], where
        assert re.search(r"could not|not running", r["msg"]), where    # the tool's own output
        assert r["after"] == r["before"], where
        assert snapshot(sim) == old, where          # exactly the old state, read back from the host
    for served, (key, fault, k) in zip(estate.hosts, cases):
        if fault == "drop_command" and k == 2:      # the write ran to its end: the new state
            assert snapshot(served.host) == news[key], (key, k)

    # the next run converges everywhere and says what it found
    again = play(estate, ansible_env, tmp_path, "converge", step=True)
    for served, (key, fault, k) in zip(estate.hosts, cases):
        r = result_of(again, served.host.name)
        where = "converge %s on %s after %s=%d: %s" % (SCENARIOS[key[0]][0], key[1], fault, k, r.get("msg"))
        assert not r.get("failed") and not r.get("unreachable"), where
        assert snapshot(served.host) == news[key], where
        already = (fault == "drop_command" and k == 2) or (fault == "fail_step" and k > len(prepared[key][1]))
        # either the whole batch again (nothing of it was left behind; an undo may have put objects
        # back in another registry order, so the order may differ) or, already there, nothing
        assert r["changed"] != already, where
        assert any("already has the requested state" in n for n in r.get("notes", ())) == already, where
        assert sorted(r["commands"]) == ([] if already else sorted(prepared[key][1])), where
    # ipseccmd renders per rule, netsh per object: the two batches differ
    assert prepared[(0, "xp")][1] != prepared[(0, "modern")][1]


def meddle_before_call(sim, numbers, argv, advance=0):
    """Before each of the host's WinRM commands numbered in `numbers`, someone else runs `argv` on it
    (after moving the clock `advance` seconds). Returns the list of audit entries each command
    left, as the host saw them."""
    original, calls = sim.run, []

    def run(command, arguments, stdin=b""):
        calls.append(None)
        if len(calls) in numbers:
            sim.advance_time(advance)
            assert sim.run_tool([a.replace("#", str(len(calls))) for a in argv]).rc == 0
        seen = len(sim.audit_entries())
        try:
            return original(command, arguments, stdin)
        finally:
            calls[-1] = sim.audit_entries()[seen:]
    sim.run = run
    return calls


# (personality, what someone else runs between our read and our write, seconds the clock moves,
#  what the result must keep)
MEDDLERS = [
    ("modern", ["netsh", "ipsec", "static", "add", "policy", "name=Intruder"], 0, "Intruder"),
    ("modern", ["netsh", "ipsec", "static", "set", "policy", "name=" + SLAMMER, "description=edited"], 0,
     "edited"),
    ("modern", ["netsh", "ipsec", "static", "set", "policy", "name=" + SLAMMER, "assign=no"], 0, "unassigned"),
    ("xp", ["ipseccmd", "-w", "REG", "-p", "Intruder", "-r", "Telnet", "-f", "*=0:23:TCP", "-n", "BLOCK"], 0,
     "Intruder"),
    ("xp", ["ipseccmd", "-w", "REG", "-p", SLAMMER, "-y"], 0, "unassigned"),
]


def kept(after, shows):
    policies = {p["name"]: p for p in after["policies"]}
    if shows == "unassigned":
        return after["assigned"] == ""
    if shows == "edited":
        return policies[SLAMMER]["description"] == "edited"
    return shows in policies


def test_a_change_between_read_and_write_is_caught_and_planned_again(estate_factory, ansible_env, tmp_path):
    """The store changes after the read trip of `add TCP 80`: the write command writes nothing (its
    precheck fails, the audit log shows no change), the task plans again once from the state that
    command printed, and its second write lands; what the other writer did is kept. A second
    change before that second write fails the task honestly, nothing written by it."""
    cases = [(m, (5,)) for m in MEDDLERS] + [(MEDDLERS[0], (5, 6))]
    estate = estate_factory(count=len(cases), personalities=[m[0] for m, _n in cases])
    set_scenarios(estate, [2] * len(cases))
    sims = [served.host for served in estate.hosts]
    # create: read + write; outbound: its write alone (planned from create's state fact); the step
    # forgets the facts (meta: clear_facts) so it reads (4th command) and writes (5th)
    meddles = [(m[0], [a if a != "name=Intruder" else "name=Intruder #" for a in m[1]] if n == (5, 6) else m[1],
                m[2], m[3]) for m, n in cases]
    calls = {sim.name: meddle_before_call(sim, numbers, argv, advance)
             for sim, (_p, argv, advance, _s), (_m, numbers) in zip(sims, meddles, cases)}
    tasks = play(estate, ansible_env, tmp_path, "meddled", prepare=True, step=True, fresh=True)
    for sim, (personality, argv, _advance, shows), (_m, numbers) in zip(sims, meddles, cases):
        r = result_of(tasks, sim.name)
        where = "%s %s before %s: %s" % (personality, " ".join(argv), numbers, r.get("msg"))
        stale_write = calls[sim.name][4]
        assert stale_write and not [e for e in stale_write if e["changed"]], where   # the audit log: no change
        rules = [rule["name"] for p in r["after"]["policies"] if p["name"] == SLAMMER for rule in p["rules"]]
        if numbers == (5, 6):
            assert r.get("failed") and "twice in a row" in r["msg"] and "nothing was written" in r["msg"], where
            assert not r["changed"] and r["round_trips"] == 3 and "defect" not in r["msg"], where
            assert not [e for e in calls[sim.name][5] if e["changed"]], where
            assert "Block Inbound TCP 80 Rule" not in rules, where
            continue
        assert not r.get("failed") and r["changed"], where
        assert r["round_trips"] == 3 and len(calls[sim.name]) == 6, where
        assert any("another writer changed the host" in n for n in r["notes"]), where
        assert [e for e in calls[sim.name][5] if e["changed"]], where
        assert "Block Inbound TCP 80 Rule" in rules and kept(r["after"], shows), where


BIG = "Big Policy"
FILTERS = ["*=0:%d:TCP" % port for port in range(1000, 1120)]
def _requests_of_the_write(estate_factory, ansible_env, tmp_path):
    """How many WinRM requests the long write task makes, per personality, measured on hosts of
    their own. The count is not fixed: winsim streams a command's output while it runs ([MS-WSMV]
    3.1.4.14), so the Receive requests depend on how fast the host and the controller are."""
    estate = estate_factory(count=2, personalities=["modern", "xp"])
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"),
               ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "probe"))
    _run(estate, env, tmp_path, "probe-create", CREATE)
    before = {served.host.name: served.control({})["wsman_requests"] for served in estate.hosts}
    _run(estate, env, tmp_path, "probe-write", WRITE)
    return {personality: served.control({})["wsman_requests"] - before[served.host.name]
            for personality, served in zip(("modern", "xp"), estate.hosts)}


def _run(estate, env, tmp_path, name, task):
    path = tmp_path / (name + ".yml")
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "all", "gather_facts": False,
                                     "tasks": [dict({"name": name}, **task)]}], sort_keys=False))
    return run_playbook(estate, env, str(path))[name]


CREATE = {"winsec.ipsec.ipsec_policy": {"name": BIG, "assigned": True, "rules": [
    {"name": "Base", "filters": ["*=0:1434:UDP"], "action": "block"}]}}
WRITE = {"winsec.ipsec.ipsec_rule": {"policy": BIG, "name": "Many", "filters": FILTERS, "action": "block"}}


def test_a_connection_lost_at_any_request_of_a_long_write_leaves_the_host_old_or_new(
        estate_factory, ansible_env, tmp_path):
    """Issue 12.1: a rule with 120 filters is one write command (the task plans from the state fact
    of the task before it, so it is that command alone). The connection is dropped at every request
    of it, before the request is handled (drop_request=k) or after it, its reply lost (drop_reply=k):
    the host ends with the old state or the new one, never in between; a rerun converges and says
    which it found. The requests are counted first on hosts of their own, and the faults cover half
    as many again and 8 more, since the count varies with timing (checked below on the control hosts)."""
    probe = _requests_of_the_write(estate_factory, ansible_env, tmp_path)
    reach = {p: n + n // 2 + 8 for p, n in probe.items()}
    faults = [(p, f, k) for p in ("modern", "xp") for f in ("drop_request", "drop_reply")
              for k in range(1, reach[p] + 1)]
    controls = [("modern", None, 0), ("xp", None, 0)]
    cases = controls + faults
    estate = estate_factory(count=len(cases), personalities=[c[0] for c in cases])
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"),
               ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"),
               ANSIBLE_FORKS="20")

    def run(name, task):
        return _run(estate, env, tmp_path, name, task)

    create = run("create", CREATE)
    assert not [h for h, r in create.items() if r["failed"]]
    old = {served.host.name: snapshot(served.host) for served in estate.hosts}
    requests = {}
    for served, (_p, fault, k) in zip(estate.hosts, cases):
        requests[served.host.name] = served.control({})["wsman_requests"]
        if fault:
            served.control({fault: k})
    big = WRITE
    written = run("write", big)
    new, used = {}, {}
    for served, (personality, fault, k) in zip(estate.hosts, cases):
        if fault is None:
            r = written[served.host.name]
            assert r["changed"] and r["round_trips"] == 1 and not r["failed"], r.get("msg")
            assert r["commands"] and r["after"] != r["before"]      # netsh: 125 commands; ipseccmd: one
            new[personality] = snapshot(served.host)
            # every request of the write task was covered by a fault
            used[personality] = served.control({})["wsman_requests"] - requests[served.host.name]
            assert 3 <= used[personality] <= reach[personality], (used, probe)
    between = []
    ended = {}
    for served, (personality, fault, k) in zip(estate.hosts, cases):
        now = snapshot(served.host)
        ended[served.host.name] = "old" if now == old[served.host.name] else "new" if now == new[personality] else None
        if ended[served.host.name] is None:
            between.append((personality, fault, k))
        served.control({"drop_request": None, "drop_reply": None})
    injected = [(served.host.name, p, f, k) for served, (p, f, k) in zip(estate.hosts, cases) if f and k <= used[p]]
    print("requests of the write task: %s; faults injected at them: %d (dropped before and after each is handled); "
          "states in between: %d; ended old: %d, new: %d; tasks that failed or lost the host: %d"
          % (used, len(injected), len(between), sum(ended[h] == "old" for h, _p, _f, _k in injected),
             sum(ended[h] == "new" for h, _p, _f, _k in injected),
             sum(bool(written[h]["failed"] or written[h].get("unreachable")) for h, _p, _f, _k in injected)))
    assert not between, between

    again = run("again", big)
    for served, (personality, fault, k) in zip(estate.hosts, cases):
        r = again[served.host.name]
        where = "%s %s=%s: %s" % (personality, fault, k, r.get("msg"))
        assert not r["failed"] and snapshot(served.host) == new[personality], where
        found_new = ended[served.host.name] == "new"
        assert r["changed"] != found_new, where
        assert any("already has the requested state" in n for n in r.get("notes", ())) == found_new, where
