"""Hostile and malformed input through ansible-playbook (issue 6, section 4).

One playbook run, three winsim hosts:
- the corpus host (modern) gets every bad value of tests/fixtures/hostile/corpus.yml, one task each:
  every task fails with a message naming the option, and the host receives no WinRM command at all
  (validation happens before any connection: not even the read runs);
- a modern (netsh) and an XP (ipseccmd) host get names that look dangerous but are valid: each
  arrives on the host exactly as written, read back from the registry through the codec.
"""
import os

import pytest
import yaml

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host as flow
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote

from test_modules_kb import RoundTrips, run_playbook

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTILE = os.path.join(REPO, "tests", "fixtures", "hostile")
PLAYBOOKS = os.path.join(REPO, "tests", "integration", "playbooks")
# Every module of the collection (plugins/modules/*.py).
MODULES = tuple(sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "plugins", "modules"))
                       if name.endswith(".py") and not name.startswith("_")))


# Options with no bad value to give: any text is a report title (the HTML escapes it, drift.py,
# rollout_record.py), and rollout_record's `register` names a variable that may be unset.
NO_BAD_VALUE = {"drift_report": {"title"}, "rollout_record": {"title", "register"}}


def load(name):
    with open(os.path.join(HOSTILE, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def documented():
    """Every option path of every module, doc fragments included, as `ansible-doc --json` renders
    them: {module: {'rules.filters', 'dialect', ...}}."""
    import json
    import subprocess
    import sys
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import option_paths
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"))
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json"]
                         + ["winsec.ipsec." + m for m in MODULES], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return {name.rsplit(".", 1)[1]: set(option_paths(value["doc"]["options"]))
            for name, value in json.loads(out.stdout).items()}


def covered(cases, module, options):
    """Option paths a module's cases make bad (the leaf name each case names)."""
    return {path for path in options for c in cases
            if c["module"].endswith("." + module) and path.rsplit(".", 1)[-1] == c["option"]}


def test_corpus_covers_every_option_of_every_module(documented):
    cases = load("corpus.yml")
    assert len(cases) >= 300
    assert set(documented) == set(MODULES)
    for module, options in documented.items():
        options = options - NO_BAD_VALUE.get(module, set())
        assert covered(cases, module, options) == options, (module, options - covered(cases, module, options))
    known = {p.rsplit(".", 1)[-1] for options in documented.values() for p in options}
    assert {c["option"] for c in cases} - known >= {"foo", "password", "Name"}     # unknown options too


def playbook(tmp_path, cases, names, refused):
    bad = [{"name": c["id"], c["module"]: c["args"], "ignore_errors": True} for c in cases]
    good = []
    for index, name in enumerate(names):
        # ipseccmd has no description option: only netsh hosts get one
        good.append({"name": "valid name %d" % index, "vars": {"hostile": name}, "winsec.ipsec.ipsec_policy": {
            "name": name, "description": "{{ hostile if winsim_personality != 'xp' else omit }}",
            "rules": [{"name": name, "filters": ["*=0:%d:TCP" % (1000 + index)]}]}})
    for index, name in enumerate(refused):
        good.append({"name": "refused name %d" % index, "ignore_errors": True, "winsec.ipsec.ipsec_policy": {
            "name": name, "rules": [{"name": "R", "filters": ["*=0:2000:TCP"]}]}})
        # the dialect named by the task: the same refusal before connecting (issue 12.8)
        good.append({"name": "refused name %d, dialect given" % index, "ignore_errors": True,
                     "winsec.ipsec.ipsec_policy": {
                         "name": name, "dialect": "{{ 'ipseccmd' if winsim_personality == 'xp' else 'netsh' }}",
                         "rules": [{"name": "R", "filters": ["*=0:2000:TCP"]}]}})
    plays = [{"name": "bad values", "hosts": "corpus", "gather_facts": False, "tasks": bad},
             {"name": "valid hostile names", "hosts": "names", "gather_facts": False, "tasks": good}]
    path = tmp_path / "hostile.yml"
    # escaped: a raw NEL or LINE SEPARATOR would be read by YAML as a line break
    path.write_text(yaml.safe_dump(plays, allow_unicode=False, sort_keys=False, width=200), encoding="utf-8")
    return str(path)


def group_hosts(estate):
    """Put the first host in group `corpus`, the others in `names`."""
    with open(estate.inventory_path) as handle:
        inventory = yaml.safe_load(handle)
    names = [served.host.name for served in estate.hosts]
    inventory["all"].setdefault("children", {})
    inventory["all"]["children"]["corpus"] = {"hosts": {names[0]: None}}
    inventory["all"]["children"]["names"] = {"hosts": {n: None for n in names[1:]}}
    with open(estate.inventory_path, "w") as handle:
        yaml.safe_dump(inventory, handle)


@pytest.mark.winsim(count=3, personalities=("modern", "modern", "xp"))
def test_bad_values_fail_before_any_command_and_hostile_names_arrive_exactly(estate, ansible_env, tmp_path):
    cases = load("corpus.yml")
    names = load("valid_names.yml")
    refused = load("refused_names.yml")
    group_hosts(estate)
    trips = RoundTrips(estate)
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"))
    tasks = run_playbook(estate, env, playbook(tmp_path, cases, names, refused), timeout=900)
    corpus_host, *name_hosts = [served.host for served in estate.hosts]

    problems = []
    for c in cases:
        r = tasks.get(c["id"], {}).get(corpus_host.name)
        if r is None or not r.get("failed") or c["option"] not in r.get("msg", "") or "round_trips" in r:
            problems.append((c["id"], c["args"], r and r.get("msg")))
        elif c["option"].endswith("auth[0].value"):     # a refused key is never shown (issue 12.2)
            auth = (c["args"].get("auth") or c["args"].get("rules", [{}])[0].get("auth"))[0]
            if auth["value"] in r["msg"] or "(hidden)" not in r["msg"]:
                problems.append((c["id"], "the key is shown", r["msg"]))
        elif ": 'filterlist" in r["msg"] or r["msg"].startswith(("filterlist:", "rule:")):
            problems.append((c["id"], "names an internal object", r["msg"]))
    assert not problems, "%d cases did not fail naming their option:\n%s" % (
        len(problems), "\n".join(repr(p)[:400] for p in problems[:40]))
    # not one WinRM command reached the corpus host, and its audit log is empty
    assert trips.calls[corpus_host.name] == [] and corpus_host.audit_entries() == []

    for sim in name_hosts:
        failed = {n: tasks["valid name %d" % i][sim.name].get("msg") for i, n in enumerate(names)
                  if tasks["valid name %d" % i][sim.name].get("failed")}
        assert not failed, (sim.personality, failed)
        dialect = "ipseccmd" if sim.personality == "xp" else "netsh"
        windows = "Windows XP (dialect ipseccmd)" if dialect == "ipseccmd" else "Windows Server 2003 and later"
        for index, name in enumerate(refused):
            r = tasks["refused name %d" % index][sim.name]
            given = tasks["refused name %d, dialect given" % index][sim.name]
            if r.get("failed"):     # refused by this dialect, naming the option, nothing written: after the
                # read, or before connecting when an earlier task left the host's state fact
                assert r["msg"].startswith("name: ") and windows in r["msg"], (name, r["msg"])
                assert r.get("round_trips", 0) <= 1 and r.get("dialect", dialect) == dialect, (name, r)
                assert name not in {p.name for p in sim.state().policies}, (name, dialect)
                # the dialect given: the same message, before any connection
                assert given.get("failed") and given["msg"] == r["msg"] and "round_trips" not in given, (name, given)
            else:                   # the other dialect takes it
                assert ('"' in name) == (dialect == "ipseccmd"), (name, dialect)
                assert name in {p.name for p in sim.state().policies}, (name, dialect)
                assert not given.get("failed") and not given["changed"], (name, given)
        result = sim.run_tool(["reg", "query", remote.IPSEC_KEY, "/s"])
        state = flow.decode_registry(result.stdout)
        policies = {p.name: p for p in state.policies}
        for name in names:
            assert name in policies, (sim.personality, name, sorted(policies))
            assert policies[name].description == ("" if sim.personality == "xp" else name), (sim.personality, name)
            assert [r.name for r in policies[name].rules if not r.default_response] == [name], (
                sim.personality, name)


@pytest.mark.winsim(count=2, personalities=("modern", "xp"))
def test_a_state_fact_tells_the_dialect_before_connecting(estate, ansible_env, tmp_path):
    """Issue 12.8 with a cached fact: after one task left `ansible_facts.winsec_ipsec_state`, a name
    the host's dialect cannot carry is refused without a WinRM command, naming the option and the Windows."""
    plays = [{"name": "fact", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "read [info]", "winsec.ipsec.ipsec_info": {}},
        {"name": "a name the dialect refuses [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_policy": {
            "name": "{{ 'Web: Block' if winsim_personality == 'xp' else 'Web \"Block\"' }}",
            "rules": [{"name": "R", "filters": ["*=0:2000:TCP"]}]}}]}]
    path = tmp_path / "fact.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    trips = RoundTrips(estate)
    env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"))
    tasks = run_playbook(estate, env, str(path))
    for served in estate.hosts:
        sim = served.host
        r = tasks["a name the dialect refuses [refused]"][sim.name]
        windows = "Windows XP (dialect ipseccmd)" if sim.personality == "xp" else "Windows Server 2003 and later"
        assert r["failed"] and r["msg"].startswith("name: ") and windows in r["msg"], (sim.personality, r)
        assert not r.get("round_trips"), (sim.personality, r)
        assert len(trips.calls[sim.name]) == tasks["read [info]"][sim.name]["round_trips"], sim.personality
