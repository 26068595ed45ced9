"""The emergency block: the names it owns and its planner (placement, exact undo, idempotence)."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import block as B


@pytest.mark.parametrize("name, owned", [
    ("winsec-emergency UDP 1434", True),
    ("WINSEC-EMERGENCY UDP 1434 in", True),          # Windows compares names case-insensitively
    ("Winsec-Emergency x", True),
    ("winsec-emergency", False),                     # the prefix includes the space
    ("winsec-emergencyX", False),
    (" winsec-emergency x", False),
    ("Corp Baseline", False),
    ("", False),
    (None, False),
])
def test_is_emergency_name(name, owned):
    assert B.is_emergency_name(name) is owned
