"""ipsec_policy store=domain over WinRM: read with ldifde, written with netsh -f, assigned through a GPO."""
import pytest

from test_modules_kb import RoundTrips, host_names, run_playbook, task_trips
from test_worm_block_role import CALLBACKS

PERSONALITIES = ["modern", "2003", "xp"]
POLICY = "Block UDP 1434 Filter"


def changed_on_host(entries):
    return [e for call in entries for e in call if e["changed"]]


@pytest.mark.parametrize("admin_os, member_os", [("modern", "2003"), ("2003", "modern")])
@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_domain_store_end_to_end(estate, ansible_env, admin_os, member_os):
    """The domain administered from a current server (PowerShell 5.1) and from Server 2003 (2.0)."""
    sims = {served.host.personality: served.host for served in estate.hosts}
    admin, member = sims[admin_os], sims[member_os]
    names = host_names(estate)
    trips = RoundTrips(estate)
    tasks = run_playbook(estate, ansible_env, "domain_store.yml",
                         extra_vars={"domain_admin": admin_os, "domain_member": "win_" + member_os})
    per_host = task_trips(tasks, trips)
    admin_trips = per_host[names[admin_os]]

    def result(task, who=admin_os):
        return tasks[task][names[who]]

    bad = result("assigned without a gpo")
    assert bad["failed"] and "gpo" in bad["msg"] and "Default Domain Policy" in bad["msg"]
    assert "round_trips" not in bad and "assigned without a gpo" not in admin_trips     # nothing sent
    unknown = result("a gpo the domain lacks")
    assert unknown["failed"] and "No Such GPO" in unknown["msg"] and "Default Domain Policy" in unknown["msg"]
    assert not changed_on_host(admin_trips["a gpo the domain lacks"])

    check = result("domain policy, check")
    assert check["changed"] and check["round_trips"] == 1 and not changed_on_host(admin_trips["domain policy, check"])
    assert any("gponame=\"Default Domain Policy\"" in c for c in check["commands"]), check["commands"]
    assert POLICY in check["diff"]["after"] and POLICY not in check["diff"]["before"]
    # the domain store shows as a member under the GPO would see it: a directory policy, LDAP path
    assert "Directory IPSec Policy Active: '%s'" % POLICY in check["diff"]["after"]
    assert "IP Security Policy Path: LDAP://CN=ipsecPolicy{" in check["diff"]["after"]
    assert ",CN=IP Security,CN=System,DC=winsim,DC=test" in check["diff"]["after"]
    assert "Local IPSec Policy" not in check["diff"]["after"] + check["diff"]["before"]

    real = result("domain policy")
    assert real["changed"] and real["round_trips"] == 2 and not real["failed"], real.get("msg")
    assert real["after"] == check["after"]                          # check mode predicted it
    assert real["after"]["assigned"] == POLICY
    assert [p["name"] for p in real["after"]["policies"]] == [POLICY]
    assert any("Group Policy refresh" in n for n in real["notes"])
    assert admin.state().policies == ()                              # the local store is untouched

    again = result("domain policy again")
    assert not again["changed"] and again["round_trips"] == 1

    assert real["domain_assignments"] == {"Default Domain Policy": POLICY}
    assert result("domain gathered")["domain_assignments"] == {"Default Domain Policy": POLICY}
    gathered = result("domain gathered")["gathered"]
    assert gathered["assigned"] == POLICY and [p["name"] for p in gathered["policies"]] == [POLICY]

    rule = result("domain rule")
    assert rule["changed"] and rule["round_trips"] == 2, rule.get("msg")
    [policy] = rule["after"]["policies"]
    assert sorted(r["name"] for r in policy["rules"]) == ["Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule",
                                                          "Block TCP 80"]
    assert rule["after"]["assigned"] == ""          # no gpo given: the assignment is not this task's business
    assert not result("domain rule again")["changed"]
    cut = result("a domain rule that cuts WinRM on every member")
    assert cut["failed"] and "allow_lockout" in cut["msg"] and "5985" in cut["msg"], cut["msg"]
    assert not changed_on_host(admin_trips["a domain rule that cuts WinRM on every member"])
    refused = result("a domain rule with confirm_timeout")
    assert refused["failed"] and "confirm_timeout" in refused["msg"] and "round_trips" not in refused

    info = tasks["member info"][names[member_os]]["state"]
    assert info["domain"]["name"] == POLICY and member.domain_assignment().name == POLICY

    refused = result("delete while assigned")
    assert refused["failed"] and "Default Domain Policy" in refused["msg"] and "unassign" in refused["msg"]
    assert not changed_on_host(admin_trips["delete while assigned"])

    unassigned = result("unassign")
    assert unassigned["changed"] and unassigned["after"]["assigned"] == ""
    deleted = result("delete")
    assert deleted["changed"] and deleted["after"]["policies"] == []
    assert admin.domain.load().policies == ()
    assert not result("delete again")["changed"]

    xp = result("no ldifde on XP", "xp")
    assert xp["failed"] and "ldifde" in xp["msg"] and xp["round_trips"] == 1


@pytest.mark.winsim(count=1, personalities=["modern"])
def test_domain_write_failing_midway_is_undone(estate, ansible_env):
    admin = estate.hosts[0].host
    admin.configure(fail_step=4)
    tasks = run_playbook(estate, ansible_env, "domain_store_fault.yml")
    failed = tasks["domain policy, failing midway"][admin.name]
    assert failed["failed"] and "step 4 of" in failed["msg"] and "undone" in failed["msg"], failed["msg"]
    assert failed["after"]["policies"] == [] and failed["round_trips"] == 2
    overridden = tasks["overridden, the one policy left"][admin.name]
    assert overridden["changed"] and [p["name"] for p in overridden["after"]["policies"]] == ["Only This"]
    assert [p.name for p in admin.domain.load().policies] == ["Only This"]
    assert admin.state().policies == ()


@pytest.mark.winsim(count=1, personalities=["2003"])
def test_domain_baseline_enforced_then_checked_for_drift(estate, ansible_env):
    admin = estate.hosts[0].host
    tasks = run_playbook(estate, ansible_env, "domain_baseline.yml", extra_vars={"domain_admin": admin.name})
    records = tasks["drift records"][admin.name]["msg"]
    assert records["in_sync"]["status"] == "in_sync", records["in_sync"]
    drifted = records["drifted"]
    assert drifted["status"] == "drift" and any("Block Telnet" in line for line in drifted["summary"]), drifted
    [policy] = admin.domain.load().policies
    assert sorted(r.name for r in policy.rules if not r.default_response) == [
        "Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule", "Block Telnet"]
    assert admin.state().policies == ()             # the host's own store was never the target


@pytest.mark.winsim(count=3, personalities=["modern", "2003", "modern"])
def test_domain_rollout_playbook_reaches_every_member(estate, ansible_env):
    """playbooks/domain_rollout.yml: one host writes the domain store, the members refresh and run it."""
    import os
    admin, *members = [served.host for served in estate.hosts]
    playbook = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "playbooks", "domain_rollout.yml")
    ansible_env = dict(ansible_env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS)
    tasks = run_playbook(estate, ansible_env, playbook, extra_vars={"domain_admin_host": admin.name})
    written = tasks["Merge the policy into the domain store and assign it through the GPO"][admin.name]
    assert written["changed"] and written["domain_assignments"] == {"Default Domain Policy": POLICY}
    verified = tasks["Verify that the member runs the domain policy"]
    assert sorted(verified) == sorted(m.name for m in members)
    assert all(not r["failed"] for r in verified.values()), verified
    assert all(m.domain_assignment().name == POLICY for m in members)
    assert admin.name not in verified and admin.state().policies == ()
    again = run_playbook(estate, ansible_env, playbook, extra_vars={"domain_admin_host": admin.name})
    assert not again["Merge the policy into the domain store and assign it through the GPO"][admin.name]["changed"]
