"""Every module state over real WinRM on modern, 2003 and XP (playbooks/states.yml, one run for
all three hosts): check mode changes nothing and predicts the real run, the second run changes
nothing, a check or no-op costs one WinRM command and a change two; errors fail before anything is
sent; rendered and parsed never contact the host."""
import os

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import registry

from test_modules_kb import RoundTrips, host_names, run_playbook, task_trips

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
PERSONALITIES = ("modern", "2003", "xp")


def rules_of(report, policy):
    [found] = [p for p in report["policies"] if p["name"] == policy]
    return sorted(r["name"] for r in found["rules"] if not r.get("default_response"))


def netdiag_sample(tmp_path):
    """The KB's own `netdiag /test:ipsec /debug` output (the fixture's text between its markers)."""
    with open(os.path.join(FIXTURES, "netdiag", "netdiag_ipsec_debug_local_policy_2filters_1.txt")) as handle:
        text = handle.read().split("# --- begin sample ---\n", 1)[1].split("# --- end sample", 1)[0]
    path = tmp_path / "netdiag.txt"
    path.write_text(text)
    return str(path)


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_every_state_on_modern_2003_and_xp(estate, ansible_env, tmp_path):
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "states.yml", extra_vars={
        "netdiag_file": netdiag_sample(tmp_path),
        "reg_file": os.path.join(FIXTURES, "registry", "gsecurity_win10_local_store.reg")})
    per_host = task_trips(tasks, trips)
    assert len(check_documented(tasks)) == 4
    for personality, host in host_names(estate).items():
        calls = per_host[host]
        fact = None         # the state fact the tasks so far left for this host (failed tasks set none)
        for task, results in tasks.items():
            r = results[host]
            where = "%s on %s: %s" % (task, personality, r.get("msg", ""))
            changed_calls = [e for call in calls.get(task, ()) for e in call if e["changed"]]
            known, fact = fact, (r.get("ansible_facts") or {}).get("winsec_ipsec_state", fact)
            if r.get("failed"):
                fact = known
            if task.endswith("[error]"):
                assert r.get("failed") and task not in calls, where      # failed before any trip
                continue
            if task.endswith("[fails]"):                                  # found out by reading
                assert r.get("failed") and r["round_trips"] == 1 and not changed_calls, where
                continue
            assert not r.get("failed"), where
            if task.endswith("[raw]") or r.get("skipped"):
                continue
            if task.endswith("[local]"):
                assert "round_trips" not in r and not r["changed"], where
            elif task.endswith("[check]"):
                assert r["changed"] and r["round_trips"] == 1 and not changed_calls, where
                check = r
            elif task.endswith("[run]"):
                # planned from the last task's state fact when there is one for this dialect (issue 11.3):
                # the write command alone; else a read, then the write
                usable = known is not None and known["sections"] is not None and known["dialect"] == r["dialect"]
                assert r["changed"] and r["round_trips"] == (1 if usable else 2) and changed_calls, where
                assert [bool([e for e in call if e["changed"]]) for call in calls[task]] == [False] * (
                    r["round_trips"] - 1) + [True], where
                if task.replace("[run]", "[check]") in tasks:
                    assert r["after"] == check["after"] and r["commands"] == check["commands"], where
            elif task.endswith("[again]"):
                assert not r["changed"] and r["round_trips"] == 1 and not changed_calls, where
            else:   # [info]
                assert not r["changed"] and r["round_trips"] == 1 and not changed_calls, where

        def result(task):
            return tasks[task][host]
        assert rules_of(result("replaced keeps SMB, drops NetBIOS, adds RDP [run]")["after"], "Baseline") == ["RDP", "SMB"]
        negotiated = result("a negotiate rule [run]")["after"]
        [secure] = [a for a in negotiated["filteractions"] if a["name"] == "Secure SQL"]
        assert secure["action"] == "negotiate" and secure["offers"] == [
            {"ah": "", "esp_conf": "3DES", "esp_auth": "SHA1", "lifetime_kb": 0, "lifetime_s": 0}]
        assert rules_of(result("gathered [info]")["gathered"], "Baseline") == ["RDP", "SMB", "Secure SQL"]
        polled = result("merged changes the polling interval only [run]")["after"]
        assert [p["polling_interval"] for p in polled["policies"]] == [60]
        assert rules_of(polled, "Baseline") == ["RDP", "SMB", "Secure SQL"]
        assert rules_of(result("rule absent [run]")["after"], "Baseline") == ["SMB", "Secure SQL"]
        unknown = result("rule absent from an unknown policy [fails]")["msg"]
        assert "policy" in unknown and "No Such Policy" in unknown
        fresh = result("rule in a missing policy creates it unassigned [run]")
        assert any("created unassigned" in n for n in fresh["notes"]) and fresh["after"]["assigned"] == ""
        displaced = result("assigning Baseline displaces Fresh [run]")
        assert displaced["after"]["assigned"] == "Baseline"
        assert any("unassigns policy 'Fresh'" in w for w in displaced["warnings"]), displaced["warnings"]
        assert "Policy Active: 'Fresh'" in displaced["diff"]["before"]
        assert "Policy Active: 'Baseline'" in displaced["diff"]["after"]
        if personality == "2003":
            forced = result("dialect ipseccmd chosen on 2003 [run]")
            assert forced["dialect"] == "ipseccmd" and forced["commands"][0].startswith("ipseccmd -w REG")
            assert [e["argv"][0] for call in calls["dialect ipseccmd chosen on 2003 [run]"]
                    for e in call if e["changed"]] == ["ipseccmd"]
        over = result("overridden leaves Baseline the only policy [run]")["after"]
        assert [p["name"] for p in over["policies"]] == ["Baseline"] and over["assigned"] == "Baseline"
        assert "filters[0]" in result("a bad port in a filterspec [error]")["msg"]
        assert "polling_interval" in result("a bad option type [error]")["msg"]
        assert "assigned" in result("deleted with assigned set [error]")["msg"]
        rendered = result("ipsecpol commands for Windows 2000 [local]")["rendered"]
        assert rendered and all(line.startswith("ipsecpol ") for line in rendered)
        assert any("-f *=0:1434:UDP" in line and "-x" in line for line in rendered)
        parsed = result("parse a saved netdiag output [local]")["parsed"]
        assert parsed["assigned"] == "Block UDP 1434 Filter" and parsed["policies"]
        assert result("parse a regedit export [local]")["parsed"]["policies"]
        saved = result("parse the saved reg query output [local]")["parsed"]
        assert rules_of(saved, "Baseline") == ["NetBIOS", "SMB"] and len(saved["policies"]) == 1
        assert "allow_lockout" in result("a dynamic block of WinRM itself [fails]")["msg"]
        assert len(result("two dynamic blocks [run]")["after"]["dynamic"]) == 2
        assert result("dynamic cleared [run]")["after"]["dynamic"] == []
        end = result("empty at the end [info]")["state"]
        assert end["policies"] == [] and end["dynamic"] == []


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_stopped_agent_failed_step_and_missing_tool(estate, ansible_env):
    """modern: PolicyAgent stopped; 2003: the 3rd state-changing command fails; XP: dialect netsh."""
    sims = {served.host.personality: served.host for served in estate.hosts}
    sims["modern"].configure(stop_service=True)
    # what the Group Policy IPsec extension records for a GPO-assigned policy (docs/policy-store.md 2.4)
    gpt = registry.GPT_ROOT
    sims["modern"].hive.tree.set(gpt, "DSIPSECPolicyName", registry.RegValue("REG_SZ", "Corp Baseline"))
    sims["modern"].hive.tree.set(gpt, "DSIPSECPolicyPath", registry.RegValue(
        "REG_SZ", "LDAP://CN=ipsecPolicy{6a1f0e1c-0000-4000-8000-000000000001},CN=IP Security,CN=System,DC=corp"))
    sims["modern"].hive.save()
    sims["2003"].configure(fail_step=3)
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "faults.yml")
    names = host_names(estate)
    per_host = task_trips(tasks, trips)
    stopped = tasks["dynamic block"][names["modern"]]
    assert stopped["failed"] and "sc start PolicyAgent" in stopped["msg"]
    assert stopped["round_trips"] == 1 and not [e for call in per_host[names["modern"]]["dynamic block"]
                                                for e in call if e["changed"]]

    failed = tasks["slammer policy"][names["2003"]]
    assert failed["failed"] and "step 3 of" in failed["msg"] and "undone" in failed["msg"], failed["msg"]
    assert failed["after"]["policies"] == [] and failed["round_trips"] == 2     # undone in the same trip
    assert sims["2003"].state().policies == ()

    under_gpo = tasks["a local change under a domain policy"][names["modern"]]
    assert under_gpo["changed"] and any("Corp Baseline" in w and "overrides" in w for w in under_gpo["warnings"])
    info = tasks["info under a domain policy"][names["modern"]]
    assert info["state"]["domain"]["name"] == "Corp Baseline" and info["state"]["policyagent"] == "stopped"

    big = tasks["a rule with 120 filters, more than one command line holds"][names["modern"]]
    [many] = [fl for fl in big["after"]["filterlists"] if fl["name"] == "Many ports"]
    assert not big["failed"] and len(many["filters"]) == 120
    # one write command whatever its size (issue 12.1): it used to be split over several scripts
    big_calls = per_host[names["modern"]]["a rule with 120 filters, more than one command line holds"]
    assert big["round_trips"] == len(big_calls) <= 2 and not any("scripts" in n for n in big.get("notes", ()))
    assert [bool([e for e in call if e["changed"]]) for call in big_calls][-1:] == [True]
    assert len([call for call in big_calls if [e for e in call if e["changed"]]]) == 1

    missing = tasks["slammer policy"][names["xp"]]
    assert missing["failed"] and missing["round_trips"] == 1 and "dialect" in missing["msg"] and "netsh" in missing["msg"], missing["msg"]
    assert not [e for call in trips.calls[names["xp"]] for e in call if e["changed"]]


def test_rendered_makes_no_connection(tmp_path, ansible_env):
    """A Windows 2000 host has no WinRM: state=rendered must work against an address nobody serves."""
    inventory = tmp_path / "w2k.yml"
    inventory.write_text("all:\n  hosts:\n    w2k:\n      ansible_host: 127.0.0.1\n      ansible_port: 9\n"
                         "      ansible_connection: winrm\n      ansible_user: x\n      ansible_password: y\n")

    class NoEstate:
        inventory_path = str(inventory)
    tasks = run_playbook(NoEstate, ansible_env, "rendered.yml")
    r = tasks["ipsecpol commands"]["w2k"]
    assert not r.get("failed") and not r.get("unreachable"), r
    assert r["rendered"] == [
        'ipsecpol -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -f *=0:1434:UDP -n BLOCK -x']
    domain = tasks["netsh commands for the domain store"]["w2k"]["rendered"]
    assert domain and all(line.startswith("netsh -f ") and "set store location=domain domain=corp.example" in line
                          for line in domain)


# Keys Ansible itself adds to a result, or that every action may return.
STANDARD_KEYS = {"changed", "failed", "skipped", "msg", "warnings", "diff", "invocation", "_ansible_no_log",
                 "_action", "exception", "_ansible_verbose_always", "_ansible_verbose_override",
                 "false_condition", "skip_reason"}


def documented_returns(action):
    import importlib
    import yaml
    module = importlib.import_module("ansible_collections.winsec.ipsec.plugins.modules." + action.rsplit(".", 1)[1])
    return set(yaml.safe_load(module.RETURN))


def check_documented(tasks):
    """Every key a winsec.ipsec module returned is in its RETURN documentation."""
    seen = set()
    for task, results in tasks.items():
        for r in results.values():
            action = r.get("_action", "")
            if not action.startswith("winsec.ipsec."):
                continue
            extra = set(r) - documented_returns(action) - STANDARD_KEYS
            assert not extra, (task, action, extra)
            seen.add(action)
    return seen
