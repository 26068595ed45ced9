"""The engine's own registry writer (plugins/module_utils/ipsec/registry.py `encode_store`, flavor
'legacy') held to the Windows 2000 capture, as winsim's writer is in test_independent_blobs.py.

Found while comparing the two writers with tests/fixtures/registry/vpnease_win2000_l2tp_template.reg
(real Windows 2000 ipsecData): the engine's legacy flavor writes
- the ISAKMP object of the Windows 10 capture (one 3DES/SHA1/DH2 method, all-zero instance GUID,
  MM lifetime 28800) where Windows 2000 wrote four methods (3DES/SHA1/2, 3DES/MD5/2, DES/SHA1/1,
  DES/MD5/1) with key-length 64 / rounds 8 / hash-length 64 words and MM lifetime 0;
- zeros where Windows 2000 wrote 64 and 8 after every used quick-mode algorithm slot.
Windows' readers probably ignore those words ([MS-GPIPSEC] 2.2.1.2.1 and 2.2.1.4.1 call them zero
or reserved), so this is fidelity, not function. The engine's legacy flavor now writes what Windows
2000 wrote (blobs.DEFAULT_ISAKMP_LEGACY and the 64/8 words).
"""
import struct

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import registry
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    FilterAction, HostState, Policy, QmOffer)

from tests.unit.winsim.state.test_independent_blobs import WIN2000, blobs_of, by_name, capture

from winsim.state import blobs


def engine_store(state):
    tree = registry.encode_store(state, registry.LOCAL_ROOT, "legacy", now=0x47868C00)
    objects = {}
    for key in tree.subkeys(registry.LOCAL_ROOT):
        values = {n.casefold(): v.data for n, v in tree.values(key).items()}
        if values.get("classname"):
            objects[key.rpartition("\\")[2]] = (values["classname"], values)
    return objects


def test_engine_legacy_isakmp_matches_windows_2000():
    ours = engine_store(HostState(policies=(Policy("VPNease L2TP policy"),)))
    [mine], [real] = blobs_of(ours, "ipsecISAKMPPolicy"), blobs_of(capture(WIN2000), "ipsecISAKMPPolicy")
    mine, real = blobs.read_isakmp(mine), blobs.read_isakmp(real)
    assert [(m.cipher, m.hash, m.group, m.key_bits, m.rounds, m.hash_bits) for m in mine.methods] == \
        [(m.cipher, m.hash, m.group, m.key_bits, m.rounds, m.hash_bits) for m in real.methods]
    assert mine.mm_lifetime == real.mm_lifetime


def test_engine_legacy_offer_slots_match_windows_2000():
    action = FilterAction("L2TP negotiate", "negotiate", offers=(QmOffer("", "3DES", "MD5", 0, 300),))
    ours = engine_store(HostState(filteractions=(action,)))
    mine = by_name(ours, "ipsecNegotiationPolicy")["L2TP negotiate"]["ipsecdata"]
    real = by_name(capture(WIN2000), "ipsecNegotiationPolicy")["L2TP negotiate"]["ipsecdata"]
    # the first (used) slot of the one offer: identifier, integrity, type, then the two words
    assert struct.unpack_from("<IIIII", mine, 44) == struct.unpack_from("<IIIII", real, 44)
