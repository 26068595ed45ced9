"""awx/emergency-block-workflow.json, the example workflow `awx import` reads: canary job, sliced job
for the rest of the estate, merge (docs/slicing.md). Without an AWX server the file is checked with
awxkit's own tables (the resources `awx import` reads, each resource's natural key), against the
repository (playbooks, the variables they accept), and then run as AWX would run it: its job
templates with their limits, slicing and extra vars, through ansible-runner against winsim, node by
node along its edges, the merge receiving the artifacts of the nodes before it.

What is AWX's and followed here (awx/main, github.com/ansible/awx): Inventory.get_sliced_hosts (a
slice job's hosts: enabled hosts ordered by name, [k::N], the job's limit applied within);
WorkflowJob.get_effective_artifacts and WorkflowJobNode.get_job_kwargs (a node's job gets the
artifacts of the nodes before it as extra vars); workflow extra vars go to every node's job.
"""
import json
import os
import re

import ansible_runner
import pytest
import yaml
from awxkit.api.pages.api import EXPORTABLE_RESOURCES
from awxkit.api.pages.page import get_registered_page
from awxkit.api.resources import resources

from winsim.state.firewall import Packet, packet_verdict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT = os.path.join(REPO, "awx", "emergency-block-workflow.json")
# What every AWX has before an import: the Default organization and the built-in Machine credential type.
AWX_DEFAULTS = ({"name": "Default", "type": "organization"},
                {"name": "Machine", "kind": "ssh", "type": "credential_type"})
RUNNER_ENV = ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_HOME", "ANSIBLE_HOST_KEY_CHECKING",
              "ANSIBLE_PYTHON_INTERPRETER", "ANSIBLE_NOCOLOR", "PATH")


@pytest.fixture(scope="module")
def export():
    with open(EXPORT, encoding="utf-8") as handle:
        return json.load(handle)  # as `awx import` reads its default format


def natural_keys(value):
    """Every natural key in the data: each dict that names a resource type."""
    if isinstance(value, dict):
        if isinstance(value.get("type"), str):
            yield value
        for item in value.values():
            yield from natural_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from natural_keys(item)


def page_class(kind):
    """awxkit's page class of a natural key's type, found as its import looks the type up."""
    endpoint = getattr(resources, kind, None)
    assert endpoint is not None, "no AWX resource type %r" % kind
    return get_registered_page(endpoint.replace(r"\d+", "1"))


def templates(export):
    return {jt["name"]: jt for jt in export["job_templates"]}


def workflow_nodes(export):
    (workflow,) = export["workflow_job_templates"]
    return {node["identifier"]: node for node in workflow["related"]["workflow_nodes"]}


def edges(node, kind):
    return [key["identifier"] for key in node["related"][kind + "_nodes"]]


def extra_vars(text):
    return yaml.safe_load(text or "") or {}


def test_awx_import_reads_every_resource_and_finds_every_reference(export):
    # import_assets reads only these keys; anything else in the file would be left out without a word.
    assert set(export) <= set(EXPORTABLE_RESOURCES), set(export) - set(EXPORTABLE_RESOURCES)
    assert export["workflow_job_templates"] and export["job_templates"]
    for key in natural_keys(export):
        fields = page_class(key["type"]).NATURAL_KEY
        # The importer finds an object by the key its page computes: exactly these fields and the type.
        assert set(key) == set(fields) | {"type"}, (key, fields)
    defined = [asset["natural_key"] for resource in export.values() for asset in resource]
    defined += [node["natural_key"] for node in workflow_nodes(export).values()]
    dangling = [key for key in natural_keys(export) if key not in defined and key not in AWX_DEFAULTS
                and not any(key in natural_keys(d) for d in defined)]
    assert not dangling, dangling


def test_the_graph_is_canary_then_sliced_estate_then_merge(export):
    nodes = workflow_nodes(export)
    jts = templates(export)
    by_playbook = {ident: jts[node["unified_job_template"]["name"]] for ident, node in nodes.items()}
    children = {i for node in nodes.values() for kind in ("success", "failure", "always") for i in edges(node, kind)}
    (root,) = set(nodes) - children
    (estate,) = edges(nodes[root], "success")
    (merge,) = edges(nodes[estate], "always")
    # docs/slicing.md: the merge runs after the sliced job whatever it did (a failed host fails its
    # slice), and after a failed canary (it then records every other host as not reached).
    assert edges(nodes[root], "failure") == [merge]
    assert not edges(nodes[merge], "success") + edges(nodes[merge], "failure") + edges(nodes[merge], "always")
    assert not nodes[merge]["all_parents_must_converge"]  # "any": the estate job never runs after a failed canary
    canary, sliced, merged = by_playbook[root], by_playbook[estate], by_playbook[merge]
    assert canary["playbook"] == sliced["playbook"] == "playbooks/emergency_block.yml"
    assert merged["playbook"] == "playbooks/merge_results.yml"
    assert canary["job_slice_count"] == 1 and re.fullmatch(r"[\w.-]+", canary["limit"]), canary["limit"]
    assert sliced["job_slice_count"] > 1 and sliced["use_fact_cache"] is True
    # The merge refuses a host in two runs, and runs that blocked other ports or another name.
    assert sliced["limit"] == "all:!" + canary["limit"]
    assert extra_vars(canary["extra_vars"]) == extra_vars(sliced["extra_vars"])
    assert merged["job_slice_count"] == 1 and not merged["limit"]


def accepted_vars(playbook):
    """The variables a playbook reads: its roles' argument specs and the names in its own expressions
    ({{ }} templates and the bare expressions of when, that, failed_when and changed_when)."""
    text = open(os.path.join(REPO, playbook), encoding="utf-8").read()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    expressions = re.findall(r"\{\{(.*?)\}\}", code, re.S)
    expressions += re.findall(r"^\s*(?:when|that|failed_when|changed_when):(.*)$", code, re.M)
    names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", " ".join(expressions)))
    for role in re.findall(r"name: winsec\.ipsec\.(\w+)", code):
        with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            names |= set(yaml.safe_load(handle)["argument_specs"]["main"]["options"])
    return names


def test_every_playbook_exists_and_accepts_the_variables_it_is_given(export):
    (workflow,) = export["workflow_job_templates"]
    for jt in export["job_templates"]:
        assert os.path.isfile(os.path.join(REPO, jt["playbook"])), jt["playbook"]
        given = set(extra_vars(jt["extra_vars"])) | set(extra_vars(workflow["extra_vars"]))
        assert given, jt["name"]
        assert given <= accepted_vars(jt["playbook"]), (jt["name"], given - accepted_vars(jt["playbook"]))


def test_a_misspelt_variable_is_not_accepted():
    assert "worm_block_ports" in accepted_vars("playbooks/emergency_block.yml")
    assert "worm_block_port" not in accepted_vars("playbooks/emergency_block.yml")
    assert "worm_block_ports" not in accepted_vars("playbooks/merge_results.yml")
    assert "rollout_record_dir" in accepted_vars("playbooks/merge_results.yml")
    assert "merge" not in accepted_vars("playbooks/merge_results.yml")  # a word of a task name, not a variable


class UnsafeDumper(yaml.SafeDumper):
    """Extra vars as AWX writes them for a job: every string !unsafe (awx/main/utils/safe_yaml.py)."""


UnsafeDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value))


def test_the_workflow_run_as_awx_runs_it_blocks_every_host_and_merges_one_record(
        export, estate_factory, ansible_env, tmp_path):
    estate = estate_factory(count=5)
    names = sorted(served.name for served in estate.hosts)
    with open(estate.inventory_path, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    (workflow,) = export["workflow_job_templates"]
    record_dir = tmp_path / "rollout-record"
    workflow_vars = dict(extra_vars(workflow["extra_vars"]), rollout_record_dir=str(record_dir))
    jobs = iter(range(101, 200))

    def slice_inventory(hosts, path):
        def keep(group):
            if "hosts" in group:
                group["hosts"] = {h: v for h, v in group["hosts"].items() if h in hosts}
            for child in (group.get("children") or {}).values():
                keep(child)
        copy = json.loads(json.dumps(inventory))
        keep(copy["all"])
        path.write_text(yaml.safe_dump(copy))
        return str(path)

    def run_job(jt, hosts, artifacts):
        """One job (or slice job) of a job template; returns (status, its artifacts)."""
        job = next(jobs)
        data = tmp_path / ("job%d" % job)
        (data / "env").mkdir(parents=True)
        variables = dict(extra_vars(jt["extra_vars"]), **workflow_vars, **artifacts, awx_job_id=job)
        (data / "env" / "extravars").write_text(yaml.dump(variables, Dumper=UnsafeDumper))
        kwargs = {"private_data_dir": str(data), "playbook": os.path.join(REPO, jt["playbook"]),
                  "inventory": slice_inventory(hosts, tmp_path / ("inventory%d.yml" % job)),
                  "envvars": {k: ansible_env[k] for k in RUNNER_ENV if k in ansible_env}, "quiet": True}
        if jt["limit"]:
            kwargs["limit"] = jt["limit"]
        runner = ansible_runner.run(**kwargs)
        (stats,) = [e for e in runner.events if e.get("event") == "playbook_on_stats"]
        return runner.status, stats["event_data"].get("artifact_data") or {}

    def run_node(jt, artifacts):
        count = jt["job_slice_count"]
        if count == 1:
            return run_job(jt, names, artifacts)
        results = [run_job(jt, names[k::count], artifacts) for k in range(count)]
        merged = {}
        for _status, published in results:
            merged.update(published)
        status = "successful" if all(s == "successful" for s, _ in results) else "failed"
        return status, merged

    # Walk the graph as AWX's workflow manager does: a node runs once a finished parent's edge fires.
    nodes = workflow_nodes(export)
    jts = templates(export)
    children = {i for node in nodes.values() for kind in ("success", "failure", "always") for i in edges(node, kind)}
    pending = list(set(nodes) - children)
    artifacts, ran = {}, []
    while pending:
        ident = pending.pop(0)
        status, published = run_node(jts[nodes[ident]["unified_job_template"]["name"]], dict(artifacts))
        ran.append((ident, status))
        artifacts.update(published)
        fired = edges(nodes[ident], "success" if status == "successful" else "failure") + \
            edges(nodes[ident], "always")
        pending += [child for child in fired if child not in pending]

    assert ran == [("canary", "successful"), ("estate", "successful"), ("merge", "successful")], ran
    # One key per run: the canary's and each slice's (docs/slicing.md).
    assert len([k for k in artifacts if k.startswith("winsec_ipsec_rollout_")]) == 1 + jts[
        nodes["estate"]["unified_job_template"]["name"]]["job_slice_count"]
    record = json.loads((record_dir / "emergency-block.json").read_text())
    assert sorted(record["hosts"]) == names
    assert {entry["status"] for entry in record["hosts"].values()} == {"done"}, record["hosts"]
    # And the hosts: the block's own policy assigned (none was), UDP 1434 from elsewhere dropped, 1433 not.
    for served in estate.hosts:
        assert served.host.state().assigned == "winsec-emergency slammer", served.name
        assert packet_verdict(served.host, Packet("10.0.0.5", served.host.address, 17, 50000, 1434)) is not None
        assert packet_verdict(served.host, Packet("10.0.0.5", served.host.address, 17, 50000, 1433)) is None
