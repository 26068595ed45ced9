"""winsim runs KB 813878's own command sequences typed as Ansible raw tasks over WinRM: ipseccmd on
XP (verified with netdiag /test:ipsec /debug as the KB does), netsh on a current server; the store
read with reg query decodes to the KB's policy; a PolicyAgent restart clears the dynamic filters;
a reboot keeps the static policy."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import netdiag, registry

from test_modules_kb import run_playbook

SLAMMER = "Block UDP 1434 Filter"


@pytest.mark.winsim(count=2, personalities=("xp", "modern"))
def test_kb_sequences_as_raw_commands(estate, ansible_env):
    tasks = run_playbook(estate, ansible_env, "kb_raw.yml")
    failures = {(t, h): r.get("msg") or r.get("stderr") for t, rs in tasks.items() for h, r in rs.items()
                if r.get("failed")}
    assert not failures
    xp, modern = (served.name for served in estate.hosts)

    report = netdiag.parse(tasks["XP - verify as the KB does"][xp]["stdout"])
    assert (report.store, report.policy, report.filter_count) == ("local", SLAMMER, 2)
    flags = sorted((f.direction, f.action, f.dst_port, f.protocol) for f in report.filters)
    assert flags == [("Inbound", "block", 1434, 17), ("Outbound", "block", 1434, 17)]

    for host in (xp, modern):
        for task in ("Read the store", "Read the store after the reboot"):
            state = registry.decode_store(registry.parse_reg_query(tasks[task][host]["stdout"]))
            assert state.assigned == SLAMMER, (host, task)
            rules = {r.name for r in state.policy(SLAMMER).rules if r.name}
            assert "Block Inbound UDP 1434 Rule" in rules
    for served in estate.hosts:
        assert served.host.state().dynamic == ()          # restart and reboot dropped them
        assert served.host.state().assigned == SLAMMER     # static policy survived the reboot
    dynamic_adds = [e for served in estate.hosts for e in served.host.audit_entries()
                    if "dynamic" in " ".join(e["argv"]).lower() or e["argv"][-1:] == ["[*=0:1434:UDP]"]]
    assert dynamic_adds and all(e["rc"] == 0 for e in dynamic_adds)
