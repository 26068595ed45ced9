"""A German Windows over WinRM (winsim personality modern_de: netsh prints its dynamic listings with German
labels). The static store is read from the registry and is right; the dynamic rules, read as text, are
unknown: ipsec_info reports them as null with a warning, and ipsec_block does not call a block verified
when it cannot see its dynamic filters. Never a silent empty list."""
import pytest
import yaml

from test_modules_kb import run_playbook
from test_worm_block_role import CALLBACKS

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


def warned(result):
    return [w for w in result.get("warnings") or () if "dynamic rules could not be read" in w]


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

    static = only(results["static block"])          # needs no dynamic rule: applied and verified
    assert not static["failed"] and static["verified"] is True

    both = only(results["block"])
    assert both["failed"] and both["verified"] is False
    assert any("dynamic rules could not be read" in p for p in both["problems"])
    assert both.get("after", {}).get("dynamic") != []
    # the host's own rule is still there, untouched
    assert [e.rule.filter.dst_port for e in sim.dynamic] == [445]
