"""The state fact (`ansible_facts.winsec_ipsec_state`) across controllers and jobs (issue 13.3):
a redis fact cache shared by several controllers, and AWX's fact storage, against winsim.

Every run is an ansible-runner run (the engine AWX runs jobs with) in a private data dir of its
own, so each is a controller of its own, in a process of its own. The redis cache is the real
community.general.redis plugin (shared_cache.community_general) on a redis-server this test
starts. WinRM commands are counted per host and task as test_state_reuse counts them: the module's
`round_trips` and the Command requests winsim served, which must agree (task_trips).

- Two controllers run on the two slices of one estate (AWX's share: host i of the name order in
  slice i mod 2) and share the cache; a third run over every host then starts warm: one WinRM
  command per host for a change.
- AWX, job after job (awx/main/tasks/jobs.py and facts.py, github.com/ansible/awx). A job template
  with use_fact_cache gets ansible-runner's jsonfile cache and AWX's fact storage, which hands no
  fact to the next job with ansible-core 2.19: each job starts cold, and is warm from its second task
  on a host. Without use_fact_cache the project's ansible.cfg decides, and with a shared redis cache
  there the second job starts warm.
- Another tool changes the host between two controllers' runs: the run planned from the shared,
  now stale fact writes nothing on that plan (its one write command's precheck only reads), plans
  again, and the result keeps what the other tool did. A pre-shared key never reaches redis.
- redis down: the run stops before it reaches a host; with the memory cache it runs cold.
"""
import json

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote

from shared_cache import AwxFactStorage, Job, RedisServer, awx_job, free_port, redis_settings, runner_env
from test_modules_kb import RoundTrips, task_trips
from test_sliced_runs import awx_slices, slice_inventory
from test_state_reuse import CREATE, DYNAMIC, SLAMMER, STATIC, kept, meddle, playbook, set_vars

PREFIX, KEYSET = "winsec-test-estate:", "winsec-test-estate-keys"
KEY = "S3cretPsk-Redis-4471"
SCHEMA = "s1_"
PSK_RULE = {"winsec.ipsec.ipsec_rule": {"policy": SLAMMER, "name": "Partner SQL",
                                        "filters": ["10.9.0.0/255.255.0.0=0:1433:TCP"], "action": "permit",
                                        "auth": [{"kind": "psk", "value": KEY}, {"kind": "kerberos"}]}}


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def cached(server):
    """{host: facts} as the shared cache holds them. The plugin's keyset lists the keys; ansible-core
    2.19 keys a host's facts `s1_<host>` (its cache schema 1) and stores them as JSON text in a
    `__payload__` member, which the plugin stores as JSON under <prefix><key>."""
    found = {}
    for member in server.client.zrange(KEYSET, 0, -1):
        key = member.decode()
        assert key.startswith(SCHEMA), key
        stored = json.loads(server.client.get(PREFIX + key))
        found[key[len(SCHEMA):]] = json.loads(stored["__payload__"])
    return found


def merged(*jobs):
    """The per-host results of runs on disjoint hosts, as one {task: {host: result}}."""
    tasks = {}
    for job in jobs:
        for task, results in job.tasks().items():
            tasks.setdefault(task, {}).update(results)
    return tasks


def fact(result):
    return result["ansible_facts"]["winsec_ipsec_state"]


def test_two_controllers_on_two_slices_share_one_redis_cache_and_the_next_run_starts_warm(
        estate_factory, ansible_env, redis_server, tmp_path):
    estate = estate_factory(count=6, personalities=["modern", "2003", "xp"] * 2)
    names = [served.host.name for served in estate.hosts]
    env = runner_env(ansible_env, **redis_settings(redis_server, PREFIX, KEYSET))
    create = playbook(tmp_path, "create", [dict({"name": "create"}, **CREATE)])
    slices = awx_slices(names, 2)
    assert all(len({estate.hosts[names.index(h)].host.personality.name for h in share}) == 3 for share in slices)

    trips = RoundTrips(estate)
    controllers = [Job(tmp_path / ("controller%d" % k), create,
                       slice_inventory(estate.inventory_path, share, str(tmp_path / ("slice%d.yml" % k))),
                       env, fact_cache_type="redis")
                   for k, share in enumerate(slices)]
    controllers = [job.join() for job in controllers]
    for job, share in zip(controllers, slices):
        assert sorted(job.tasks()["create"]) == sorted(share), job.data
    tasks = merged(*controllers)
    per_host = task_trips(tasks, trips)
    facts = cached(redis_server)
    assert sorted(facts) == sorted(names)                     # both controllers wrote to the one cache
    assert all(0 < redis_server.client.ttl(PREFIX + SCHEMA + n) <= 3600 for n in names)   # fact_caching_timeout
    for name in names:
        r = tasks["create"][name]
        [read, write] = per_host[name]["create"]              # cold: a read, then one write
        assert r["changed"] and not r["failed"] and r["round_trips"] == 2, (name, r.get("msg"))
        assert not [e for e in read if e["changed"]] and [e for e in write if e["changed"]], name
        assert facts[name]["winsec_ipsec_state"] == fact(r), name
        assert fact(r)["host"] == name and fact(r)["sections"]["store"]["text"], name

    # a third controller, every host: planned from the facts the other two left in redis
    trips = RoundTrips(estate)
    warm = Job(tmp_path / "controller-all", playbook(tmp_path, "change", [dict({"name": "change"}, **STATIC)]),
               estate.inventory_path, env, fact_cache_type="redis").join()
    tasks = warm.tasks()
    per_host = task_trips(tasks, trips)
    for name in names:
        r = tasks["change"][name]
        [call] = per_host[name]["change"]                      # warm: one command that writes
        assert r["changed"] and not r["failed"] and r["round_trips"] == 1, (name, r.get("msg"))
        assert [e for e in call if e["changed"]], name
        rules = {rule["name"] for p in r["after"]["policies"] if p["name"] == SLAMMER for rule in p["rules"]}
        assert "Block Inbound TCP 80 Rule" in rules, name
        assert cached(redis_server)[name]["winsec_ipsec_state"] == fact(r), name
    sizes = [redis_server.client.strlen(PREFIX + SCHEMA + name) for name in names]
    print("\nshared redis cache, %d hosts: cold slices %.1f s and %.1f s (2 WinRM commands a host), warm run "
          "%.1f s (1 a host); a host's facts take %d-%d bytes in redis" % (
              len(names), controllers[0].seconds, controllers[1].seconds, warm.seconds, min(sizes), max(sizes)))


def redis_cfg(server):
    """The project's ansible.cfg for a redis fact cache (docs/fact-cache.md)."""
    return ("[defaults]\nfact_caching = community.general.redis\nfact_caching_connection = %s\n"
            "fact_caching_prefix = %s\nfact_caching_redis_keyset_name = %s\nfact_caching_timeout = 3600\n"
            % (server.uri, PREFIX, KEYSET))


def test_awx_use_fact_cache_hands_no_state_fact_to_the_next_job_with_ansible_core_2_19(
        estate_factory, ansible_env, redis_server, tmp_path):
    """A job template with use_fact_cache, job after job: AWX runs the job with ansible-runner's
    jsonfile cache in the job's artifacts (fact_cache_type jsonfile: ANSIBLE_CACHE_PLUGIN set in the
    job's environment, so the project's ansible.cfg, here a redis cache, is not used) and its fact
    storage around it (awx/main/tasks/facts.py). ansible-core 2.19 keeps a host's facts in
    `<prefix>s1_<host>` (cache schema 1, JSON text in `__payload__`), while AWX writes and reads
    `<host>` (plain JSON): AWX stores nothing from job 1, and what it holds (seeded here with job 1's
    facts) job 2 does not read, so job 2 starts cold, and right. Within a job the fact works: a
    second task on a host costs one WinRM command."""
    estate = estate_factory(count=3, personalities=["modern", "2003", "xp"])
    names = [served.host.name for served in estate.hosts]
    awx = AwxFactStorage()
    env = runner_env(ansible_env)

    trips = RoundTrips(estate)
    first = awx_job(1, tmp_path, playbook(tmp_path, "create", [dict({"name": "create"}, **CREATE)]),
                    estate.inventory_path, env, names, storage=awx, ansible_cfg=redis_cfg(redis_server))
    tasks = first.tasks()
    per_host = task_trips(tasks, trips)
    for name in names:
        r = tasks["create"][name]
        assert r["changed"] and r["round_trips"] == len(per_host[name]["create"]) == 2, (name, r.get("msg"))
        with open(first.artifacts / "fact_cache" / (PREFIX + SCHEMA + name), encoding="utf-8") as handle:
            written = json.loads(json.load(handle)["__payload__"])       # what ansible-core wrote
        assert written["winsec_ipsec_state"] == fact(r), name
        assert not (first.artifacts / "fact_cache" / name).exists(), name  # what AWX reads back
    assert first.updated == [] and not any(awx.facts.values()), ("AWX now stores what ansible-core writes: "
                                                                  "docs/fact-cache.md's AWX section is out of date")
    assert redis_server.client.dbsize() == 0
    awx.facts = {name: tasks["create"][name]["ansible_facts"] for name in names}

    trips = RoundTrips(estate)
    second = awx_job(2, tmp_path, playbook(tmp_path, "change", [
        dict({"name": "change"}, **STATIC), dict({"name": "dynamic change"}, **DYNAMIC)]),
        estate.inventory_path, env, names, storage=awx, ansible_cfg=redis_cfg(redis_server))
    tasks = second.tasks()
    per_host = task_trips(tasks, trips)
    for name in names:
        r, again = tasks["change"][name], tasks["dynamic change"][name]
        [read, write] = per_host[name]["change"]                    # cold: no fact came from job 1
        assert r["changed"] and not r["failed"] and r["round_trips"] == 2, (name, r.get("msg"))
        assert not [e for e in read if e["changed"]] and [e for e in write if e["changed"]], name
        [call] = per_host[name]["dynamic change"]                   # warm: the fact of the task before
        assert again["changed"] and not again["failed"] and again["round_trips"] == 1, (name, again.get("msg"))
        assert [e for e in call if e["changed"]], name
        with open(second.artifacts / "fact_cache" / name, encoding="utf-8") as handle:
            assert json.load(handle) == awx.facts[name], name          # the fact AWX handed to job 2
    assert second.updated == [] and redis_server.client.dbsize() == 0
    print("\nAWX, use_fact_cache on, %d hosts: job 1 %.1f s, job 2 %.1f s; job 2's first task 2 WinRM commands "
          "a host, its second 1" % (len(names), first.seconds, second.seconds))


def test_awx_jobs_without_use_fact_cache_start_warm_from_a_shared_redis_cache(
        estate_factory, ansible_env, redis_server, tmp_path):
    """A job template without use_fact_cache: AWX passes fact_cache_type '' and ansible-runner sets
    no cache, so the project's ansible.cfg decides: a redis cache shared by every job, slice job and
    execution node. Job 2 starts warm: one WinRM command a host for its change."""
    estate = estate_factory(count=3, personalities=["modern", "2003", "xp"])
    names = [served.host.name for served in estate.hosts]
    env = runner_env(ansible_env)

    trips = RoundTrips(estate)
    first = awx_job(1, tmp_path, playbook(tmp_path, "create", [dict({"name": "create"}, **CREATE)]),
                    estate.inventory_path, env, names, ansible_cfg=redis_cfg(redis_server))
    tasks = first.tasks()
    per_host = task_trips(tasks, trips)
    facts = cached(redis_server)
    assert sorted(facts) == sorted(names) and not (first.artifacts / "fact_cache").exists()
    for name in names:
        r = tasks["create"][name]
        assert r["changed"] and r["round_trips"] == len(per_host[name]["create"]) == 2, (name, r.get("msg"))
        assert facts[name]["winsec_ipsec_state"] == fact(r), name

    trips = RoundTrips(estate)
    second = awx_job(2, tmp_path, playbook(tmp_path, "change", [dict({"name": "change"}, **STATIC)]),
                     estate.inventory_path, env, names, ansible_cfg=redis_cfg(redis_server))
    tasks = second.tasks()
    per_host = task_trips(tasks, trips)
    for name in names:
        r = tasks["change"][name]
        [call] = per_host[name]["change"]                           # warm: the fact job 1 left in redis
        assert r["changed"] and not r["failed"] and r["round_trips"] == 1, (name, r.get("msg"))
        assert [e for e in call if e["changed"]], name
        assert cached(redis_server)[name]["winsec_ipsec_state"] == fact(r), name
    print("\nAWX, use_fact_cache off, redis in the project's ansible.cfg, %d hosts: job 1 %.1f s (2 WinRM commands "
          "a host), job 2 %.1f s (1 a host)" % (len(names), first.seconds, second.seconds))


# (personality, what another tool does between the runs, the task of the second run)
STALE = [("modern", "tool", "static"), ("2003", "assign", "static"), ("xp", "reg", "static"),
         ("modern", "none", "psk")]


def test_a_stale_shared_fact_never_leads_to_a_write_and_no_key_reaches_redis(
        estate_factory, ansible_env, redis_server, tmp_path):
    estate = estate_factory(count=len(STALE), personalities=[p for p, _k, _t in STALE])
    set_vars(estate, [{"task": task} for _p, _k, task in STALE])
    env = runner_env(ansible_env, **redis_settings(redis_server, PREFIX, KEYSET))
    Job(tmp_path / "controller-a", playbook(tmp_path, "create", [dict({"name": "create"}, **CREATE)]),
        estate.inventory_path, env, fact_cache_type="redis").join()
    before = cached(redis_server)
    sims = [served.host for served in estate.hosts]
    assert sorted(before) == sorted(s.name for s in sims)
    for sim, (_p, kind, _t) in zip(sims, STALE):
        meddle(sim, kind)                                        # netsh, ipseccmd or reg.exe on the host

    trips = RoundTrips(estate)
    second = Job(tmp_path / "controller-b", playbook(tmp_path, "second", [
        dict({"name": "static change"}, **STATIC, when="task == 'static'"),
        dict({"name": "psk rule"}, **PSK_RULE, when="task == 'psk'")]),
        estate.inventory_path, env, fact_cache_type="redis").join()
    tasks = second.tasks()
    per_host = task_trips(tasks, trips)
    after = cached(redis_server)
    for sim, (personality, kind, task) in zip(sims, STALE):
        name = "static change" if task == "static" else "psk rule"
        r = tasks[name][sim.name]
        calls = per_host[sim.name][name]
        where = "%s, %s: %s" % (personality, kind, r.get("msg"))
        assert r["changed"] and not r["failed"], where
        assert after[sim.name]["winsec_ipsec_state"] == fact(r), where          # the cache holds the new state
        if kind == "none":
            assert r["round_trips"] == len(calls) == 1, where
            continue
        assert r["round_trips"] == len(calls) == 2, where
        assert not [e for e in calls[0] if e["changed"]], where   # the command planned from the stale fact only read
        assert [e for e in calls[1] if e["changed"]], where       # the plan made from that read was written
        assert any("no longer as its state fact said" in n for n in r["notes"]), where
        assert kept(r, kind), where                               # what the other tool did is still there
        rules = {rule["name"] for p in r["after"]["policies"] if p["name"] == SLAMMER for rule in p["rules"]}
        assert "Block Inbound TCP 80 Rule" in rules, where
        assert fact(r)["fingerprint"]["store"] != before[sim.name]["winsec_ipsec_state"]["fingerprint"]["store"]

    # the host whose state now holds a pre-shared key: its fact keeps fingerprints, not the state
    psk_host = sims[-1].name
    assert after[psk_host]["winsec_ipsec_state"]["sections"] is None
    assert after[psk_host]["winsec_ipsec_state"]["fingerprint"]["store"]
    # the key in every form it takes on the way: plain, and the hex of its UTF-16LE and UTF-8 bytes
    # (`reg query` prints a stored rule's blob as hex)
    forms = [KEY.encode()] + [raw.hex().encode() for raw in (KEY.encode("utf-16-le"), KEY.encode())]
    forms += [form.upper() for form in forms[1:]]
    store = sims[-1].run_tool(["reg", "query", remote.IPSEC_KEY, "/s"]).stdout.encode()
    assert [form for form in forms if form in store]    # the host's store holds it, in a form searched for
    for key in redis_server.client.scan_iter("*"):
        kind = redis_server.client.type(key).decode()
        values = ([redis_server.client.get(key)] if kind == "string"
                  else redis_server.client.zrange(key, 0, -1) if kind == "zset" else [])
        assert kind in ("string", "zset"), (key, kind)
        for value in values:
            assert not [form for form in forms if form in value], key


@pytest.mark.winsim(count=1, personalities=["modern"])
def test_an_unreachable_redis_stops_the_run_before_any_host_and_the_memory_cache_runs_it_cold(
        estate, ansible_env, tmp_path):
    """What an incident meets when the shared cache is down: ansible-core stops the run before its first
    task reaches a host (rc 250); the same run with ANSIBLE_CACHE_PLUGIN=memory goes ahead cold."""
    class Closed:
        uri = "127.0.0.1:%d:0" % free_port()
    env = runner_env(ansible_env, **redis_settings(Closed, PREFIX, KEYSET))
    create = playbook(tmp_path, "create", [dict({"name": "create"}, **CREATE)])
    trips = RoundTrips(estate)
    down = Job(tmp_path / "redis-down", create, estate.inventory_path, env, fact_cache_type="redis").join()
    assert down.runner.status == "failed" and down.runner.rc == 250, (down.runner.status, down.runner.rc)
    assert "connecting to %s" % Closed.uri.rsplit(":", 1)[0] in down.runner.stdout.read()
    assert trips.total() == 0 and not estate.hosts[0].host.audit_entries()

    fallback = Job(tmp_path / "memory", create, estate.inventory_path, dict(env, ANSIBLE_CACHE_PLUGIN="memory"),
                   fact_cache_type="redis").join()
    r = fallback.tasks()["create"][estate.hosts[0].host.name]
    assert r["changed"] and not r["failed"] and r["round_trips"] == len(trips.calls[estate.hosts[0].host.name]) == 2
