"""Filter worm_block_rules: the KB 813878 rules role worm_block sends, and its errors."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winsec.ipsec.plugins.filter.worm_block import worm_block_rules


def test_slammer_both_directions_as_the_kb_names_them():
    assert worm_block_rules([{"protocol": "udp", "port": 1434}]) == [
        {"name": "Block Inbound UDP 1434 Rule", "filters": ["*=0:1434:UDP"], "action": "block"},
        {"name": "Block Outbound UDP 1434 Rule", "filters": ["0=*:1434:UDP"], "action": "block"}]


def test_one_direction_each():
    rules = worm_block_rules([{"protocol": "TCP", "port": "445", "direction": "in"},
                              {"protocol": "TCP", "port": 80, "direction": "out"}])
    assert [(r["name"], r["filters"]) for r in rules] == [
        ("Block Inbound TCP 445 Rule", ["*=0:445:TCP"]), ("Block Outbound TCP 80 Rule", ["0=*:80:TCP"])]


@pytest.mark.parametrize("ports, message", [
    ([], "worm_block_ports: [] is not valid"),
    ("UDP 1434", "expected a non-empty list"),
    ([{"protocol": "ICMP", "port": 1}], "worm_block_ports[0].protocol: 'ICMP'"),
    ([{"protocol": "UDP", "port": 0}], "worm_block_ports[0].port: 0"),
    ([{"protocol": "UDP", "port": 65536}], "expected an integer 1-65535"),
    ([{"protocol": "UDP", "port": "1434; x"}], "worm_block_ports[0].port: '1434; x'"),
    ([{"protocol": "UDP", "port": True}], "worm_block_ports[0].port: True"),
    ([{"protocol": "UDP", "port": 1434, "direction": "up"}], "worm_block_ports[0].direction: 'up'"),
    ([{"protocol": "UDP", "port": 1434, "dir": "in"}], "unknown keys dir"),
    (["UDP/1434"], "worm_block_ports[0]: 'UDP/1434'"),
])
def test_bad_entries_name_the_entry_and_what_is_accepted(ports, message):
    with pytest.raises(AnsibleFilterError, match=None) as err:
        worm_block_rules(ports)
    assert message in str(err.value)
