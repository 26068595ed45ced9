"""A German Windows over WinRM (winsim personality modern_de: netsh prints its dynamic listings with German
labels). The static store is read from the registry and is right; the dynamic rules, read as text, are
unknown: ipsec_info reports them as null with a warning, ipsec_block does not call a block verified
when it cannot see its dynamic filters, and the drift check says they are unknown. Never a silent empty
list."""
import json
import os

import pytest
import yaml

from test_drift_check import PLAYBOOK, ansible_playbook
from test_modules_kb import run_playbook
from test_worm_block_role import CALLBACKS, play, record_dir, summary

RULE = ("netsh ipsec dynamic add rule srcaddr=any dstaddr=me protocol=TCP srcport=0 dstport=445 mirrored=yes "
        "conntype=all mmpolicy=AdminBlock actioninbound=block actionoutbound=block")


def playbook(tmp_path, tasks):
    path = tmp_path / "localized.yml"
    path.write_text(yaml.safe_dump([{"name": "localized", "hosts": "all", "gather_facts": False, "tasks": tasks}],
                                   sort_keys=False))
    return str(path)


def only(results):
    (result,) = results.values()
    return result


DYNAMIC_UNREAD = "the dynamic rules could not be read"


def warned(result):
    return [w for w in result.get("warnings") or () if DYNAMIC_UNREAD in w]


@pytest.mark.winsim(count=1, personalities=("modern_de",))
def test_info_and_block_on_a_german_host(estate, ansible_env, tmp_path):
    sim = estate.hosts[0].host
    for argv in (["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=AdminBlock"], RULE.split()):
        assert sim.run_tool(argv).rc == 0
    assert sim.run_tool("netsh ipsec static add policy name=Corp".split()).rc == 0
    tasks = [
        {"name": "info", "winsec.ipsec.ipsec_info": {}},
        {"name": "static block", "winsec.ipsec.ipsec_block": {"ports": [{"protocol": "UDP", "port": 1434}],
                                                              "mode": "static"}},
        {"name": "block", "winsec.ipsec.ipsec_block": {"ports": [{"protocol": "UDP", "port": 1434}]},
         "ignore_errors": True},
    ]
    results = run_playbook(estate, dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS), playbook(tmp_path, tasks))

    info = only(results["info"])
    assert not info["failed"]
    assert info["state"]["dynamic"] is None and info["state"]["mmpolicies"] is None
    assert warned(info)
    assert [p["name"] for p in info["state"]["policies"]] == ["Corp"]      # the registry reads right
    assert "The dynamic filters are unknown" in info["netdiag"]                # not shown as none

    static = only(results["static block"])          # needs no dynamic rule: applied and verified
    assert not static["failed"] and static["verified"] is True

    both = only(results["block"])
    assert both["failed"] and both["verified"] is False
    assert any("dynamic rules could not be read" in p for p in both["problems"])
    assert both.get("after", {}).get("dynamic") != []
    # the host's own rule is still there, untouched
    assert [e.rule.filter.dst_port for e in sim.dynamic] == [445]


ENFORCE = """
- name: Bring every host to the baseline
  hosts: all
  gather_facts: false
  roles:
    - role: winsec.ipsec.ipsec_baseline
      vars:
        ipsec_baseline_mode: enforce
"""


@pytest.mark.winsim(count=2, personalities=("modern_de", "modern"))
def test_drift_check_says_a_german_hosts_dynamic_rules_are_unknown(estate, ansible_env, tmp_path):
    """playbooks/drift_check.yml: both hosts match the baseline; the German host's dynamic rules, which
    the engine cannot read, are `unknown` with a warning, the English host's are read."""
    names = {served.personality: served.name for served in estate.hosts}
    german = estate.host(names["modern_de"]).host
    for argv in (["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=AdminBlock"], RULE.split()):
        assert german.run_tool(argv).rc == 0
    setup = tmp_path / "setup.yml"
    setup.write_text(ENFORCE)
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, str(setup))
    assert rc == 0, output[-4000:]
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, PLAYBOOK)
    assert rc == 0, output[-4000:]
    report = json.loads((tmp_path / "drift-report" / "drift.json").read_text(encoding="utf-8"))
    hosts = report["hosts"]
    assert {name: h["status"] for name, h in hosts.items()} == {names["modern_de"]: "in_sync",
                                                                names["modern"]: "in_sync"}
    assert hosts[names["modern_de"]]["dynamic"] == "unknown" and warned(hosts[names["modern_de"]])
    assert all(w.startswith(DYNAMIC_UNREAD) for w in hosts[names["modern_de"]]["warnings"])    # text, not a repr
    assert hosts[names["modern"]]["dynamic"] == "read" and not warned(hosts[names["modern"]])
    assert report["counts"]["dynamic_unknown"] == 1
    page = (tmp_path / "drift-report" / "drift.html").read_text(encoding="utf-8")
    assert "1 whose dynamic rules could not be read (unknown)" in page


@pytest.mark.winsim(count=1, personalities=("modern_de",))
def test_policy_and_rule_results_say_unknown_not_none(estate, ansible_env, tmp_path):
    """ipsec_policy and ipsec_rule report the host's state before and after; on a German host they used
    to show its dynamic rules as an empty list without a word (the engine's tolerant read)."""
    sim = estate.hosts[0].host
    for argv in (["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=AdminBlock"], RULE.split()):
        assert sim.run_tool(argv).rc == 0
    rule = {"name": "Block SQL", "filters": ["*+0:1434:UDP"], "filteraction": "Block"}
    tasks = [
        {"name": "policy", "winsec.ipsec.ipsec_policy": {"name": "Corp", "rules": [rule]}},
        {"name": "rule", "winsec.ipsec.ipsec_rule": {"policy": "Corp", "name": "Block telnet",
                                                     "filters": ["*+0:23:TCP"], "filteraction": "Block"}},
    ]
    results = run_playbook(estate, dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS), playbook(tmp_path, tasks))
    for name in ("policy", "rule"):
        result = only(results[name])
        assert not result["failed"] and result["changed"], (name, result.get("msg"))
        for state in ("before", "after"):
            assert result[state]["dynamic"] is None and result[state]["mmpolicies"] is None, (name, state)
        assert warned(result), name
    assert [e.rule.filter.dst_port for e in sim.dynamic] == [445]          # the host's own rule, untouched


@pytest.mark.winsim(count=1, personalities=("modern_de",))
def test_gathered_and_dynamic_block_on_a_german_host(estate, ansible_env, tmp_path):
    """ipsec_policy state=gathered showed a German host's dynamic rules as an empty list without a word,
    and ipsec_dynamic_block failed with the listing reader's own error, which quoted the listing's line."""
    sim = estate.hosts[0].host
    for argv in (["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=AdminBlock"], RULE.split()):
        assert sim.run_tool(argv).rc == 0
    tasks = [
        {"name": "gathered", "winsec.ipsec.ipsec_policy": {"state": "gathered"}},
        {"name": "dynamic", "winsec.ipsec.ipsec_dynamic_block": {"filters": ["*+0:1434:UDP"]}, "ignore_errors": True},
    ]
    results = run_playbook(estate, dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS), playbook(tmp_path, tasks))
    gathered = only(results["gathered"])
    assert not gathered["failed"]
    assert gathered["gathered"]["dynamic"] is None and gathered["gathered"]["mmpolicies"] is None
    assert warned(gathered)
    dynamic = only(results["dynamic"])
    assert dynamic["failed"] and not dynamic["changed"]
    assert "dynamic rules could not be read" in dynamic["msg"] and "planned and wrote nothing" in dynamic["msg"]
    assert "Regel" not in dynamic["msg"]                # the listing's German text is not repeated
    assert [e.rule.filter.dst_port for e in sim.dynamic] == [445]          # the host's own rule, untouched


@pytest.mark.winsim(count=2, personalities=("modern_de", "modern"))
def test_the_emergency_record_on_a_german_host(estate, ansible_env, tmp_path):
    """playbooks/emergency_block.yml on a German and an English host. Dynamic and static: the German host
    fails, says why, and nothing is written on it. Static only: it is blocked, and its record lists
    the static change and says its dynamic rules are unknown, not that it has none."""
    names = {served.personality: served.name for served in estate.hosts}
    german = estate.host(names["modern_de"]).host
    for argv in (["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=AdminBlock"], RULE.split()):
        assert german.run_tool(argv).rc == 0
    untouched = german.state()
    path = os.path.join(record_dir(estate), "emergency-block.json")

    out = play(estate, ansible_env, "emergency_block.yml", "-e", '{"emergency_waves": ["100%"]}')
    assert out.returncode != 0
    headline, results = summary(out.stdout)
    assert headline == "2 hosts: 1 blocked and verified, 1 failed, 0 not reached"
    assert "dynamic rules could not be read" in results[names["modern_de"]]
    record = json.load(open(path, encoding="utf-8"))["hosts"]
    assert record[names["modern_de"]]["status"] == "failed" and not record[names["modern_de"]]["changes"]
    assert german.state() == untouched

    out = play(estate, ansible_env, "emergency_block.yml", "-e", '{"emergency_waves": ["100%"]}',
               "-e", "worm_block_mode=static")
    assert out.returncode == 0, out.stdout[-4000:]
    entry = json.load(open(path, encoding="utf-8"))["hosts"][names["modern_de"]]
    assert entry["status"] == "done" and entry["line"].startswith("blocked and verified; static: own policy")
    assert "assigned policy: none -> 'winsec-emergency UDP 1434'" in entry["changes"]
    assert entry["changes"][-1] == "? dynamic rules: unknown (the host's listing of them could not be read)"
    # the warning as text: the record showed the repr of ansible-core's WarningSummary object
    assert entry["warnings"] and all(w.startswith(DYNAMIC_UNREAD) for w in entry["warnings"]), entry["warnings"]
    assert [e.rule.filter.dst_port for e in german.dynamic] == [445]       # the host's own rule, untouched
