"""AWX job slicing, emulated with ansible-runner (the engine AWX runs jobs with), against winsim:
playbooks/emergency_block.yml, unblock.yml and drift_check.yml run as N slices in parallel, each on
AWX's share of the hosts, and playbooks/merge_results.yml merges the artifacts each run returns into
the summary, rollout record and drift report that one unsliced run writes on an equivalent estate.

What is AWX's and followed here (awx/main, github.com/ansible/awx):
- models/inventory.py Inventory.get_sliced_hosts: a slice job's inventory holds the enabled hosts
  ordered by name, sliced [slice_number - 1::slice_count] (host i of that order goes to slice i mod N);
  the job's limit (here the canary's exclusion) then applies within the slice.
- tasks/callback.py: a job's artifacts are the playbook_on_stats event's artifact_data (set_stats).
- models/workflow.py WorkflowJob.get_effective_artifacts: the sliced job's artifacts are its slice
  jobs' artifacts merged with dict.update in the order they finished; WorkflowJobNode.get_job_kwargs
  passes the artifacts of the nodes before a node to its job as extra vars (the slice jobs of a sliced
  node get them too: WorkflowJob.seed_root_ancestor_artifacts).
- utils/safe_yaml.py safe_dump: those extra vars reach the job's env/extravars file as !unsafe strings.
"""
import json
import os
import re

import ansible_runner
import lxml.html
import yaml

from test_drift_check import SETUP, SLAMMER, unpack, with_broken_hosts
from test_worm_block_role import BASELINE_PLAY

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLICES = 3
OWN = "winsec-emergency UDP 1434"
# The environment the runs get: what conftest's ansible_env sets for ansible-playbook, less the
# stdout callback, which ansible-runner sets itself (its event callback).
RUNNER_ENV = ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_HOME", "ANSIBLE_HOST_KEY_CHECKING",
              "ANSIBLE_PYTHON_INTERPRETER", "ANSIBLE_NOCOLOR", "PATH")


def awx_slices(names, count=SLICES):
    """AWX's share of each slice: hosts ordered by name, host i to slice i mod count."""
    ordered = sorted(names)
    return [ordered[k::count] for k in range(count)]


def slice_inventory(inventory_path, names, path):
    """The inventory AWX gives a slice job: the same groups and variables, only the slice's hosts."""
    with open(inventory_path, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)

    def keep(group):
        if "hosts" in group:
            group["hosts"] = {h: v for h, v in group["hosts"].items() if h in names}
        for child in (group.get("children") or {}).values():
            keep(child)

    keep(inventory["all"])
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    return path


class UnsafeDumper(yaml.SafeDumper):
    """YAML with every string tagged !unsafe, as AWX writes a job's extra vars (safe_dump)."""


UnsafeDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value))


class Run:
    """One ansible-runner run in a thread of its own; .runner after .join()."""

    def __init__(self, tmp_path, name, env, playbook, inventory, extravars=None, awx_extravars=None, limit=None,
                 trusted=False, check=False):
        self.name = name
        data = tmp_path / "runner" / name
        (data / "env").mkdir(parents=True)
        if awx_extravars is not None:
            # trusted: as AWX writes them with ALLOW_JINJA_IN_EXTRA_VARS=always (plain YAML, templated)
            dumper = yaml.SafeDumper if trusted else UnsafeDumper
            (data / "env" / "extravars").write_text(yaml.dump(awx_extravars, Dumper=dumper), encoding="utf-8")
        kwargs = {"private_data_dir": str(data), "playbook": os.path.join(REPO, "playbooks", playbook),
                  "inventory": inventory, "envvars": {k: env[k] for k in RUNNER_ENV if k in env},
                  "quiet": True}
        if extravars:
            kwargs["extravars"] = extravars
        if limit:
            kwargs["limit"] = limit
        if check:
            kwargs["cmdline"] = "--check"
        self.thread, self.runner = ansible_runner.run_async(**kwargs)

    def join(self):
        self.thread.join(timeout=600)
        assert not self.thread.is_alive(), "%s did not finish" % self.name
        return self

    @property
    def stats(self):
        (stats,) = [e for e in self.runner.events if e.get("event") == "playbook_on_stats"]
        return stats

    @property
    def artifacts(self):
        """The run's artifacts as AWX stores them: artifact_data of the playbook_on_stats event."""
        return self.stats["event_data"]["artifact_data"]

    def results(self, task):
        """The `res` of each host's (or loop item's) ok result of the task named `task`."""
        return [e["event_data"]["res"] for e in self.runner.events
                if e.get("event") in ("runner_on_ok", "runner_item_on_ok") and e["event_data"].get("task") == task]

    def failures(self):
        return {e["event_data"]["host"]: e["event_data"]["res"].get("msg") for e in self.runner.events
                if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")}


def run_all(runs):
    return [r.join() for r in runs]


def awx_merge_vars(slice_runs, *before):
    """The extra vars AWX gives the merge node: the artifacts of the nodes before it (`before`, e.g. the
    canary job) and the sliced job's, its slices' artifacts dict.update-d in the order they finished."""
    merged = {}
    for run in before:
        merged.update(run.artifacts)
    sliced = {}
    for run in sorted(slice_runs, key=lambda r: r.stats["created"]):
        sliced.update(run.artifacts)
    merged.update(sliced)
    return merged


def masked_record(record):
    """A rollout record less what legitimately differs between runs: when it was made and when each host
    was read and written (the times are checked to be there), and the merge's list of its runs."""
    record = json.loads(json.dumps(record))
    record.pop("generated")
    record.pop("merged_from", None)
    for entry in record["hosts"].values():
        if entry["status"] != "not_reached":
            assert entry["read_at"], entry
        if entry["changed"] and not record["check_mode"]:
            assert entry["written_at"], entry
        entry["read_at"] = entry["written_at"] = "(time)"
    return record


def page_rows(path):
    """The HTML page's host table, the time columns left out: [(host, status, cells...)]."""
    page = lxml.html.parse(path).getroot()
    rows = []
    for row in page.xpath("//table[@id='hosts']/tbody/tr"):
        cells = [c.text_content() for c in row.xpath("./td")]
        rows.append((row.get("data-host"), row.get("data-status"), cells[:3], cells[5:]))
    return rows


def lines_of(results):
    """The summary lines the 'Per-host result' task printed, less the record's path."""
    (msg,) = [r["msg"] for r in results if "results" not in r]    # a loop's own result holds its items' results
    assert msg[-1].startswith("rollout record: ")
    return msg[:-1]


def test_sliced_block_and_unblock_merge_into_the_unsliced_record(estate_factory, ansible_env, tmp_path):
    """A canary job on one host, the sliced job (3 slices at once) for the rest, the merge: the same summary,
    record and page as one run of the same playbook over an equivalent estate; a failed host merges failed."""
    sliced, single = estate_factory(count=6), estate_factory(count=6)
    names = [s.name for s in sliced.hosts]
    assert names == [s.name for s in single.hosts]
    for estate in (sliced, single):              # in the unsliced block's last wave: every host is reached
        estate.host(names[-1]).host.configure(stop_service=True)    # PolicyAgent stopped: the block is refused
    canary, shares = names[0], awx_slices(names)
    inventories = [slice_inventory(sliced.inventory_path, share, str(tmp_path / ("slice%d.yml" % k)))
                   for k, share in enumerate(shares, 1)]

    for action, playbook in (("block", "emergency_block.yml"), ("unblock", "unblock.yml")):
        failing = names[-1] if action == "block" else names[-2]
        if action == "unblock":                  # (the stopped host has nothing to unblock: it succeeds)
            for estate in (sliced, single):
                estate.host(failing).host.configure(fail_step=1)    # the unblock's first write fails
        records = {name: str(tmp_path / action / name) for name in ("canary", "single", "merge")}
        # the unsliced run on its estate goes at once with the canary job on the other
        single_run = Run(tmp_path, action + "-single", ansible_env, playbook, single.inventory_path,
                         extravars={"rollout_record_dir": records["single"]})
        before = []
        if action == "block":
            before = run_all([Run(tmp_path, "canary", ansible_env, playbook, sliced.inventory_path,
                                  extravars={"awx_job_id": 10, "rollout_record_dir": records["canary"]},
                                  limit=canary)])
            assert before[0].runner.rc == 0, before[0].runner.stdout.read()[-3000:]
        # AWX seeds the slice jobs with the artifacts of the nodes before (the canary's) as extra vars
        seeded = awx_merge_vars([], *before)
        slice_runs = run_all([Run(tmp_path, "%s-slice%d" % (action, k), ansible_env, playbook, inventory,
                                  extravars=dict(seeded, awx_job_id=100 * (action == "unblock") + 20 + k),
                                  limit="all:!%s" % canary if action == "block" else None)
                              for k, inventory in enumerate(inventories, 1)])
        single_run.join()

        # Each slice ran on its share only and published its record under a key of its own (awx_job_id).
        for k, (run, share) in enumerate(zip(slice_runs, shares), 1):
            (key,) = run.artifacts
            assert key == "winsec_ipsec_rollout_%d" % (100 * (action == "unblock") + 20 + k)
            expected = [h for h in share if action == "unblock" or h != canary]
            record = unpack(run.artifacts[key])
            assert list(record["hosts"]) == expected
            assert len(json.dumps(record)) < 4096 * len(expected)     # AWX stores it, passes it on: docs/slicing.md
            assert run.runner.rc == (2 if failing in share else 0), run.runner.stdout.read()[-3000:]
        (single_key,) = single_run.artifacts
        assert single_key.startswith("winsec_ipsec_rollout_")     # outside AWX: a key of the run's hosts
        assert single_run.runner.rc == 2

        merge_vars = awx_merge_vars(slice_runs, *before)
        merge_vars["rollout_record_dir"] = records["merge"]
        assert len(merge_vars) == len(slice_runs) + len(before) + 1      # no run's record overwrote another's
        merge = Run(tmp_path, action + "-merge", ansible_env, "merge_results.yml", sliced.inventory_path,
                    awx_extravars=merge_vars).join()

        # The merge fails as the unsliced run does, for the failed host and with its reason.
        assert merge.runner.rc == 2 and single_run.runner.rc == 2
        (reason,) = merge.failures().values()
        assert reason.startswith("%s: NOT %sed, failed: " % (failing, action)), reason
        assert set(single_run.failures()) == {failing}

        # The same summary lines, record and page.
        assert lines_of(merge.results("Per-host result")) == lines_of(single_run.results("Per-host result"))
        stem = "emergency-%s" % action
        with open(os.path.join(records["merge"], stem + ".json"), encoding="utf-8") as handle:
            merged = json.load(handle)
        with open(os.path.join(records["single"], stem + ".json"), encoding="utf-8") as handle:
            one = json.load(handle)
        assert masked_record(merged) == masked_record(one)
        assert list(merged["hosts"]) == names and merged["failed"] == [failing]
        assert merged["counts"] == {"hosts": 6, "done": 5, "failed": 1, "not_reached": 0}
        # which job had which host: the merged record says, by the key each run published under
        assert {m["published_as"]: m["hosts"] for m in merged["merged_from"]} == \
            {key: list(unpack(value)["hosts"]) for key, value in merge_vars.items() if key.startswith("winsec_ipsec_")}
        assert page_rows(os.path.join(records["merge"], stem + ".html")) == \
            page_rows(os.path.join(records["single"], stem + ".html"))

        # And the hosts are as the record says: blocked (or unblocked) on both estates alike.
        for name in names:
            assert sliced.host(name).host.state().assigned == single.host(name).host.state().assigned \
                == (OWN if (action == "block") != (name == failing) and name != names[-1] else "")


def test_sliced_drift_check_merges_into_the_unsliced_report(estate_factory, ansible_env, tmp_path):
    """drift_check.yml in 3 slices (one host drifting, one emergency block, an unreachable host and one whose
    check fails), merged: the report of one run over the same hosts, row for row."""
    personalities = ("modern", "2003", "modern", "xp")
    sliced, single = estate_factory(count=4, personalities=personalities), \
        estate_factory(count=4, personalities=personalities)
    by_personality = {s.personality: s.name for s in sliced.hosts}
    setup = tmp_path / "setup.yml"
    setup.write_text(SETUP.format(drifter=by_personality["2003"], policy=json.dumps(SLAMMER),
                                  rule=json.dumps("Permit RDP"), blocked=by_personality["xp"]))
    inventories = {}
    for label, estate in (("sliced", sliced), ("single", single)):
        inventories[label] = with_broken_hosts(estate, str(tmp_path / ("%s.yml" % label)))
    run_all([Run(tmp_path, "setup-" + label, ansible_env, str(setup), estate.inventory_path)
             for label, estate in (("sliced", sliced), ("single", single))])

    names = sorted(yaml.safe_load(open(inventories["single"]))["all"]["hosts"]) + [s.name for s in sliced.hosts]
    shares = awx_slices(names)
    reports = {name: str(tmp_path / "drift" / name) for name in ("single", "merge")}
    runs = [Run(tmp_path, "drift-single", ansible_env, "drift_check.yml", inventories["single"],
                extravars={"drift_report_dir": reports["single"]})]
    runs += [Run(tmp_path, "drift-slice%d" % k, ansible_env, "drift_check.yml",
                 slice_inventory(inventories["sliced"], share, str(tmp_path / ("drift-slice%d.yml" % k))),
                 extravars={"awx_job_id": 30 + k})
             for k, share in enumerate(shares, 1)]
    single_run, *slice_runs = run_all(runs)
    for run, share in zip(slice_runs, shares):
        assert run.runner.rc == 0, run.runner.stdout.read()[-3000:]
        (published,) = map(unpack, run.artifacts.values())
        assert sorted(published["hosts"]) == sorted(share)
        assert sorted(r["host"] for r in published["records"]) == sorted(share)

    merge_vars = dict(awx_merge_vars(slice_runs), drift_report_dir=reports["merge"])
    merge = Run(tmp_path, "drift-merge", ansible_env, "merge_results.yml", inventories["sliced"],
                awx_extravars=merge_vars).join()
    assert merge.runner.rc == 0, merge.runner.stdout.read()[-3000:]
    (summary,) = [r["msg"] for r in merge.results("Show the drift check's result")]
    (single_summary,) = [r["msg"] for r in single_run.results("Show the result")]
    assert summary.split(" Report: ")[0] == single_summary.split(" Report: ")[0]
    assert summary.startswith("6 hosts: 3 in sync, 1 drifting, 2 errors, 1 with an emergency block in place.")

    def report(label):
        """The report less what differs between two estates (addresses, policy GUIDs) and two runs (times, run)."""
        with open(os.path.join(reports[label], "drift.json"), encoding="utf-8") as handle:
            text = re.sub(r"127\.\d+\.\d+\.\d+", "(address)", handle.read())
        data = json.loads(re.sub(r"\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", "{(guid)}", text))
        data.pop("generated"), data.pop("run")
        for entry in data["hosts"].values():
            entry["read_at"] = "(time)" if entry["read_at"] else ""
        return data

    with open(os.path.join(reports["merge"], "drift.json"), encoding="utf-8") as handle:
        assert json.load(handle)["run"]["merged_from"] == ", ".join(sorted(k for k in merge_vars if k != "drift_report_dir"))
    merged, one = report("merge"), report("single")
    assert merged == one
    assert list(merged["hosts"]) == sorted(names)                  # ghost, misfit, win001...
    assert page_rows_drift(reports["merge"]) == page_rows_drift(reports["single"])
    junit = [open(os.path.join(reports[label], "drift.xml"), encoding="utf-8").read() for label in ("merge", "single")]
    assert [j.count("<testcase") for j in junit] == [6, 6]

    # drift_fail_on_drift, for CI, on the merge node: the report is written, then the merge fails.
    failing = Run(tmp_path, "drift-merge-fail", ansible_env, "merge_results.yml", inventories["sliced"],
                  awx_extravars=dict(merge_vars, drift_report_dir=str(tmp_path / "drift" / "ci"),
                                     drift_fail_on_drift=True)).join()
    assert failing.runner.rc == 2
    (msg,) = failing.failures().values()
    assert msg.startswith("1 hosts drift and 2 could not be checked; see ") and (tmp_path / "drift" / "ci" / "drift.json").exists()


def page_rows_drift(report_dir):
    page = lxml.html.parse(os.path.join(report_dir, "drift.html")).getroot()
    return [(r.get("data-host"), r.get("data-status")) for r in page.xpath("//table[@id='hosts']/tbody/tr")]


def test_sliced_check_mode_merges_into_the_unsliced_dry_run(estate_factory, ansible_env, tmp_path):
    """The dry run an admin makes first, sliced: the merged -check record is the unsliced one, nothing is
    written on any host, and a host that would fail is failed in both."""
    sliced, single = estate_factory(count=4, personalities=("modern", "2003")), \
        estate_factory(count=4, personalities=("modern", "2003"))
    names = [s.name for s in sliced.hosts]
    for estate in (sliced, single):
        estate.host(names[-1]).host.configure(stop_service=True)
    records = {name: str(tmp_path / name) for name in ("single", "merge")}
    shares = awx_slices(names, 2)
    single_run, *slice_runs = run_all(
        [Run(tmp_path, "single", ansible_env, "emergency_block.yml", single.inventory_path, check=True,
             extravars={"rollout_record_dir": records["single"], "emergency_waves": ["100%"]})]
        + [Run(tmp_path, "slice%d" % k, ansible_env, "emergency_block.yml",
               slice_inventory(sliced.inventory_path, share, str(tmp_path / ("s%d.yml" % k))), check=True,
               extravars={"awx_job_id": 60 + k, "emergency_waves": ["100%"]}) for k, share in enumerate(shares, 1)])
    merge = Run(tmp_path, "merge", ansible_env, "merge_results.yml", sliced.inventory_path,
                awx_extravars=dict(awx_merge_vars(slice_runs), rollout_record_dir=records["merge"])).join()
    assert merge.runner.rc == single_run.runner.rc == 2
    assert lines_of(merge.results("Per-host result")) == lines_of(single_run.results("Per-host result"))
    merged, one = (json.load(open(os.path.join(records[k], "emergency-block-check.json"), encoding="utf-8"))
                   for k in ("merge", "single"))
    assert masked_record(merged) == masked_record(one)
    assert merged["headline"] == "check mode, nothing written: 4 hosts: 3 blocked and verified, 1 failed, 0 not reached"
    assert not os.path.exists(os.path.join(records["merge"], "emergency-block.json"))
    assert all(s.host.state().policies == () and s.host.state().dynamic == () for s in sliced.hosts)


def test_a_failed_canary_job_merges_into_the_record_of_a_failed_first_wave(estate_factory, ansible_env, tmp_path):
    """The workflow's canary node fails, so the sliced job never runs: the merge (linked on failure) records
    the canary failed and every other host of the inventory not reached, as one run whose first wave failed."""
    canary_estate, single = estate_factory(count=3), estate_factory(count=3)
    canary = canary_estate.hosts[0].name
    for estate in (canary_estate, single):
        estate.host(canary).host.configure(stop_service=True)
    records = {name: str(tmp_path / name) for name in ("canary", "single", "merge")}
    canary_run, single_run = run_all([
        Run(tmp_path, "canary", ansible_env, "emergency_block.yml", canary_estate.inventory_path,
            extravars={"awx_job_id": 40, "rollout_record_dir": records["canary"]}, limit=canary),
        Run(tmp_path, "single", ansible_env, "emergency_block.yml", single.inventory_path,
            extravars={"rollout_record_dir": records["single"]})])
    assert canary_run.runner.rc == single_run.runner.rc == 2
    merge = Run(tmp_path, "merge", ansible_env, "merge_results.yml", canary_estate.inventory_path,
                awx_extravars=dict(canary_run.artifacts, rollout_record_dir=records["merge"])).join()
    assert merge.runner.rc == 2
    assert lines_of(merge.results("Per-host result")) == lines_of(single_run.results("Per-host result"))
    merged, one = (json.load(open(os.path.join(records[k], "emergency-block.json"), encoding="utf-8"))
                   for k in ("merge", "single"))
    assert masked_record(merged) == masked_record(one)
    assert merged["counts"] == {"hosts": 3, "done": 0, "failed": 1, "not_reached": 2}
    assert all(s.host.state().assigned == "" for s in canary_estate.hosts)


def test_text_from_hosts_stays_text_through_the_merge(estate_factory, ansible_env, tmp_path):
    """A host's policy named like a template travels in the artifacts and the merge's extra vars, even as
    trusted plain YAML (AWX with ALLOW_JINJA_IN_EXTRA_VARS=always, or a hand-written -e @file), and comes
    out as the same text: what a run publishes holds no braces, so nothing from a host is run as a template."""
    estate = estate_factory(count=2)
    pwned = tmp_path / "pwned"
    policy = "Corp {{ 7 * 7 }} {{ lookup('ansible.builtin.pipe', 'touch %s') }}" % pwned
    setup = tmp_path / "setup.yml"
    setup.write_text(BASELINE_PLAY.format(hosts=estate.hosts[0].name, policy="!unsafe " + json.dumps(policy)))
    run_all([Run(tmp_path, "setup", ansible_env, str(setup), estate.inventory_path)])
    assert estate.hosts[0].host.state().assigned == policy
    shares = awx_slices([s.name for s in estate.hosts], 2)
    slice_runs = run_all([Run(tmp_path, "slice%d" % k, ansible_env, "emergency_block.yml",
                              slice_inventory(estate.inventory_path, share, str(tmp_path / ("s%d.yml" % k))),
                              extravars={"awx_job_id": 50 + k}) for k, share in enumerate(shares, 1)])
    assert [r.runner.rc for r in slice_runs] == [0, 0]
    record_dir = tmp_path / "record"
    merge = Run(tmp_path, "merge", ansible_env, "merge_results.yml", estate.inventory_path,
                awx_extravars=dict(awx_merge_vars(slice_runs), rollout_record_dir=str(record_dir)), trusted=True).join()
    assert merge.runner.rc == 0, merge.runner.stdout.read()[-3000:]
    lines = lines_of(merge.results("Per-host result"))
    assert lines[1] == "%s: blocked and verified; static: 1 rule added to the assigned policy %s; dynamic filters: 2" \
        % (estate.hosts[0].name, policy), lines
    record = json.loads((record_dir / "emergency-block.json").read_text(encoding="utf-8"))
    assert policy in record["hosts"][estate.hosts[0].name]["in_force"][0]
    assert not pwned.exists()


def test_merge_without_artifacts_says_what_it_needs(ansible_env, tmp_path, estate_factory):
    """Run as a node with nothing before it: a clear error, nothing written."""
    estate = estate_factory(count=1)
    merge = Run(tmp_path, "empty-merge", ansible_env, "merge_results.yml", estate.inventory_path,
                awx_extravars={"rollout_record_dir": str(tmp_path / "none")}).join()
    assert merge.runner.rc == 2
    (msg,) = merge.failures().values()
    assert "winsec_ipsec_rollout_*" in msg and "set_stats" in msg
    assert not (tmp_path / "none").exists()



MISMATCH = """
- name: Merge the records of an unblock as if they were a block
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Merge
      winsec.ipsec.rollout_record:
        runs: ["{{{{ record | from_json }}}}"]
        hosts: []
        state: present
        dest: {dest}
"""


def test_the_module_refuses_runs_of_another_action_before_writing(ansible_env, tmp_path):
    """rollout_record's option runs, used directly: records of an unblock merged with state=present fail
    with what to pass, and no file is written."""
    record = {"format": 1, "action": "unblock", "check_mode": False, "about": {}, "generated": "t",
              "hosts": {"win1": {"host": "win1", "status": "done", "line": "unblocked and verified"}}}
    book = tmp_path / "mismatch.yml"
    book.write_text(MISMATCH.format(dest=tmp_path / "record"))
    run = Run(tmp_path, "mismatch", ansible_env, str(book), "localhost,",
              extravars={"record": json.dumps(record)}).join()
    assert run.runner.rc == 2
    (msg,) = run.failures().values()
    assert msg == "runs: the runs recorded an emergency unblock, but state=present; pass state=absent"
    assert not (tmp_path / "record").exists()
