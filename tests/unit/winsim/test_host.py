"""SimHost: persistence, PolicyAgent lifetime, fault injection, audit log, domain store, clock."""
import json

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import netdiag
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import (
    GPT_ROOT, LOCAL_ROOT, decode_store, parse_reg_query)
from winsim.host import GP_REFRESH_SECONDS, SimHost
from winsim.state.registry import CACHE_ROOT


def ok(result):
    assert (result.rc, result.stderr) == (0, ""), result.stdout + result.stderr
    return result.stdout


def netsh(host, *words):
    return host.run_tool(["netsh", "ipsec"] + list(words))


def registry_text(host, key=LOCAL_ROOT):
    return ok(host.run_tool(["reg", "query", key, "/s"]))


def slammer(host, policy="Slammer", assign="yes"):
    ok(netsh(host, "static", "add", "filter", "filterlist=UDP 1434", "srcaddr=any", "dstaddr=me",
             "protocol=UDP", "dstport=1434"))
    ok(netsh(host, "static", "add", "filteraction", "name=Block", "action=block"))
    ok(netsh(host, "static", "add", "policy", "name=" + policy, "assign=" + assign, "pollinginterval=5"))
    ok(netsh(host, "static", "add", "rule", "name=UDP 1434", "policy=" + policy, "filterlist=UDP 1434",
             "filteraction=Block"))


def dynamic_block(host):
    ok(netsh(host, "dynamic", "add", "mmpolicy", "name=mm"))
    ok(netsh(host, "dynamic", "add", "rule", "srcaddr=any", "dstaddr=me", "mmpolicy=mm", "protocol=TCP",
             "dstport=445", "actioninbound=block", "actionoutbound=block"))


@pytest.fixture
def host(tmp_path):
    return SimHost("web1", "127.0.0.2", "modern", str(tmp_path / "web1"))


def test_static_state_survives_a_new_simhost_dynamic_does_not(tmp_path, host):
    slammer(host)
    dynamic_block(host)
    text = registry_text(host)
    again = SimHost("web1", "127.0.0.2", "modern", str(tmp_path / "web1"))
    assert registry_text(again) == text
    assert again.state().assigned == "Slammer" and again.state().dynamic == ()


def test_reboot_keeps_static_and_drops_dynamic(host):
    slammer(host)
    dynamic_block(host)
    ok(host.run_tool(["shutdown", "/r", "/t", "0"]))
    state = host.state()
    assert state.assigned == "Slammer" and state.dynamic == () and state.policyagent == "running"
    dynamic_block(host)
    host.configure(reboot=True)
    assert host.state().dynamic == ()


def test_configure_stop_service_and_unknown_settings(host):
    dynamic_block(host)
    host.configure(stop_service=True, latency_ms=50)
    assert host.state().policyagent == "stopped" and host.state().dynamic == ()
    host.configure(stop_service=False)
    assert host.state().policyagent == "running"
    with pytest.raises(ValueError):
        host.configure(explode=True)


@pytest.mark.parametrize("command", [
    ["netsh", "ipsec", "static", "add", "policy", "name=Second"],
    ["netsh", "ipsec", "dynamic", "add", "mmpolicy", "name=other"],
    ["reg", "add", r"HKLM\SYSTEM\CurrentControlSet\Services\PolicyAgent", "/v", "NoDefaultExempt",
     "/t", "REG_DWORD", "/d", "1", "/f"],
    ["net", "stop", "policyagent"],
    ["sc", "stop", "PolicyAgent"],
])
def test_fail_step_fails_the_kth_change_and_changes_nothing(host, command):
    slammer(host)
    before = (registry_text(host), host.state())
    host.configure(fail_step=2)
    ok(host.run_tool(["netsh", "ipsec", "static", "show", "all"]))       # reads do not count
    ok(netsh(host, "static", "set", "policy", "name=Slammer", "description=first change"))
    before = (registry_text(host), host.state())
    failed = host.run_tool(command)
    assert failed.rc != 0 and (failed.stdout + failed.stderr).strip()
    assert (registry_text(host), host.state()) == before
    assert host.audit_entries()[-1]["changed"] is False
    ok(host.run_tool(command))                                             # only the k-th fails


def test_fail_step_in_a_netsh_script_stops_it_there(host):
    host.fs["s.txt"] = "ipsec static add policy name=A\nipsec static add policy name=B\nipsec static add policy name=C\n"
    host.configure(fail_step=2)
    result = host.run_tool(["netsh", "-f", "s.txt"])
    assert result.rc == 1 and "ERR IPsec[05073]" in result.stdout
    assert [p.name for p in host.state().policies] == ["A"]


def test_audit_log_records_every_invocation(host):
    ok(host.run_tool(["reg", "query", LOCAL_ROOT]))
    ok(netsh(host, "static", "add", "policy", "name=P"))
    assert netsh(host, "static", "add", "policy", "name=P").rc == 1
    assert host.run_tool(["nosuchtool", "x"]).rc == 1
    with open(host.audit_path, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    assert [(e["argv"][0], e["changed"], e["rc"]) for e in lines] == [
        ("reg", False, 0), ("netsh", True, 0), ("netsh", False, 1), ("nosuchtool", False, 1)]
    assert all(e["host"] == "web1" and e["time"].endswith("+00:00") for e in lines)
    assert lines[1]["argv"] == ["netsh", "ipsec", "static", "add", "policy", "name=P"]


def test_run_goes_through_the_shell(host):
    result = host.run("netsh", ["ipsec", "static", "add", "policy", 'name="Shell Policy"'])
    assert result.rc == 0
    assert host.state().policy("Shell Policy") is not None
    assert "ProductName" in host.run("reg", ["query", r'"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"']).stdout


# -- the domain ----------------------------------------------------------------------------------

@pytest.fixture
def domain(tmp_path):
    directory = str(tmp_path / "domain")
    dc = SimHost("dc1", "127.0.0.10", "2003", str(tmp_path / "dc1"), domain_store=directory)
    members = [SimHost("m%d" % i, "127.0.0.%d" % (11 + i), personality, str(tmp_path / ("m%d" % i)),
                       domain_store=directory)
               for i, personality in enumerate(("modern", "xp"))]
    return dc, members


def domain_policy_script(host):
    host.fs["gpo.txt"] = "\n".join([
        "pushd ipsec static",
        "set store location=domain domain=winsim.test",
        "add filteraction name=Block action=block",
        "add filter filterlist=SMB srcaddr=any dstaddr=me protocol=TCP dstport=445",
        "add policy name=\"Domain Block\" pollinginterval=10",
        "add rule name=SMB policy=\"Domain Block\" filterlist=SMB filteraction=Block",
        "set policy name=\"Domain Block\" assign=yes",
        "popd",
    ])
    ok(host.run_tool(["netsh", "-f", "gpo.txt"]))


def test_domain_policy_reaches_members_on_gpupdate(domain):
    dc, (modern, xp) = domain
    slammer(modern)
    domain_policy_script(dc)
    assert GPT_ROOT not in modern.hive.tree                           # nothing until Group Policy runs
    ok(modern.run_tool(["gpupdate", "/target:computer", "/force"]))
    text = ok(modern.run_tool(["reg", "query", GPT_ROOT]))
    assert "DSIPSECPolicyName    REG_SZ    Domain Block" in text
    policy = dc.domain.load().policy("Domain Block")
    assert "LDAP://CN=ipsecPolicy%s,CN=IP Security,CN=System,DC=winsim,DC=test" % policy.guid in text
    cache = decode_store(parse_reg_query(registry_text(modern, CACHE_ROOT)), CACHE_ROOT)
    assert [p.name for p in cache.policies] == ["Domain Block"]
    assert cache.filterlist("SMB").filters[0].dst_port == 445
    # The domain policy overrides the local assignment (KB 813878).
    state = modern.state()
    assert state.assigned == "Slammer" and state.domain.name == "Domain Block"
    report = netdiag.parse(netdiag.render(state, local_address=modern.address, debug=False))
    assert (report.store, report.policy) == ("domain", "Domain Block")
    ok(xp.run_tool(["gpupdate", "/target:computer"]))
    assert "Directory IPSec Policy Active: 'Domain Block'" in ok(xp.run_tool(["netdiag", "/test:ipsec"]))


def test_domain_policy_arrives_by_group_policy_interval(domain):
    dc, (modern, _) = domain
    domain_policy_script(dc)
    modern.advance_time(GP_REFRESH_SECONDS - 60)
    assert modern.domain_assignment() is None
    modern.advance_time(60)
    assert modern.domain_assignment().name == "Domain Block"


def test_changes_inside_an_assigned_policy_wait_for_its_polling_interval(domain):
    dc, (modern, _) = domain
    domain_policy_script(dc)
    ok(modern.run_tool(["gpupdate", "/target:computer"]))
    ok(dc.run_tool(["ipseccmd", "-w", "DS", "-p", "Domain Block", "-r", "UDP 1434", "-f", "*=0:1434:UDP",
                    "-n", "BLOCK"]))

    def cached_rules():
        cache = decode_store(parse_reg_query(registry_text(modern, CACHE_ROOT)), CACHE_ROOT)
        return sorted(r.name for r in cache.policies[0].rules if not r.default_response)

    ok(modern.run_tool(["gpupdate", "/target:computer"]))               # KB: GP refresh does not see it
    assert cached_rules() == ["SMB"]
    modern.advance_time(10 * 60)                                          # the policy's polling interval
    assert cached_rules() == ["SMB", "UDP 1434"]
    ok(dc.run_tool(["ipseccmd", "-w", "DS", "-p", "Domain Block", "-r", "UDP 1434", "-o"]))
    ok(modern.run_tool(["net", "stop", "policyagent"]))
    ok(modern.run_tool(["net", "start", "policyagent"]))                 # KB: a restart refreshes too
    assert cached_rules() == ["SMB"]


def test_unassigning_in_the_domain_removes_the_pointer(domain):
    dc, (modern, _) = domain
    domain_policy_script(dc)
    ok(modern.run_tool(["gpupdate", "/target:computer", "/force"]))
    dc.fs["unassign.txt"] = "ipsec static set store location=domain\nipsec static set policy name=\"Domain Block\" assign=no\n"
    ok(dc.run_tool(["netsh", "-f", "unassign.txt"]))
    ok(modern.run_tool(["gpupdate", "/target:computer", "/force"]))
    assert modern.domain_assignment() is None
    assert CACHE_ROOT not in modern.hive.tree
    assert modern.run_tool(["reg", "query", GPT_ROOT]).rc == 1


def test_a_state_dir_keeps_its_windows_version(tmp_path, host):
    with pytest.raises(ValueError):
        SimHost("web1", "127.0.0.2", "xp", str(tmp_path / "web1"))
