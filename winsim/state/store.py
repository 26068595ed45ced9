"""An IPsec policy store as registry keys and values, the way Windows keeps it ([MS-GPIPSEC] 2.2.1;
the local store under HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local).

`write_store(state, root, flavor, now, tree)` puts a HostState into `tree` under `root`;
`read_store(tree, root)` reads it back. The blobs are winsim's own (blobs.py). Value names, the
object layout and the reference form follow the captures under tests/fixtures/registry/:
- one subkey `<class>{guid}` per object with `className` (Windows 10 capture; the Windows 2000
  capture spells it `ClassName`), `name`, `ipsecName` (left out when the object has no name: the
  Windows 10 ISAKMP object, rules and default response action), `ipsecID`, `ipsecDataType` 0x100,
  `ipsecData`, `whenChanged` (Unix seconds), `ipsecOwnersReference`;
- references are HKLM-relative key paths, with `IPSEC` in capitals in the Windows 10 capture
  and `IPSec` as the key is spelled in the Windows 2000 one; the assigned policy is the root's
  `ActivePolicy` value (both captures).
Where the captures say nothing, the choice is marked [I] and listed in winsim/README.md.
"""
import ipaddress
import uuid
from dataclasses import replace
from typing import Dict, List, Tuple

from . import blobs
from .model import (
    ANY, ME, Address, AuthMethod, Filter, FilterAction, FilterList, HostState, Policy, QmOffer, Rule)
from .registry import RegTree, RegValue

POLICY, ISAKMP, NFA, NEGPOL, FILTER = ("ipsecPolicy", "ipsecISAKMPPolicy", "ipsecNFA", "ipsecNegotiationPolicy",
                                       "ipsecFilter")
CLASSES = (POLICY, ISAKMP, NFA, NEGPOL, FILTER)

# ipsecNegotiationPolicyAction / ...Type ([MS-GPIPSEC] 2.2.1.4.1; block, negotiate and both types
# are in the captures, permit and inbound pass-through only in the spec).
ACTION_BLOCK = "{3f91a819-7647-11d1-864d-d46a00000000}"
ACTION_PERMIT = "{8a171dd2-77e3-11d1-8659-a04f00000000}"
ACTION_NEGOTIATE = "{8a171dd3-77e3-11d1-8659-a04f00000000}"
ACTION_INPASS = "{3f91a81a-7647-11d1-864d-d46a00000000}"
TYPE_STANDARD = "{62f49e10-6c37-11d1-864c-14a300000000}"
TYPE_DEFAULT_RESPONSE = "{62f49e13-6c37-11d1-864c-14a300000000}"

CONNTYPES = {"all": blobs.IF_ALL, "lan": blobs.IF_LAN, "dialup": blobs.IF_DIALUP}
AUTH_KINDS = {"kerberos": blobs.AUTH_KERBEROS, "psk": blobs.AUTH_PSK, "cert": blobs.AUTH_CERT}
ESP_CIPHERS = {"": 0, "None": 0, "DES": 1, "3DES": 3}       # Windows 2000 capture: DES 1, 3DES 3
HASHES = {"": 0, "None": 0, "MD5": 1, "SHA1": 2}
SERVER_CODES = {"DNS": 1, "WINS": 2, "DHCP": 3, "GATEWAY": 4}   # [MS-GPIPSEC] 2.2.1.5.1; 0x80 + code on the dst side

# The main-mode methods a new policy gets. [I] netsh's defaults are not documented in a source we
# hold: modern hosts write the Windows 10 capture's single method (3DES, SHA1, DH group 2), legacy
# hosts the four of the Windows 2000 capture (3DES/SHA1/2, 3DES/MD5/2, DES/SHA1/1, DES/MD5/1) with
# its key-length and rounds words.
MODERN_MM = blobs.IsakmpBlob(methods=(blobs.MmMethod(3, 2, 2),))
LEGACY_MM = blobs.IsakmpBlob(mm_lifetime=0, methods=tuple(
    blobs.MmMethod(c, h, g, 64, 8, 64, lifetime_s=28800) for c, h, g in ((3, 2, 2), (3, 1, 2), (1, 2, 1), (1, 1, 1))))
_NS = uuid.UUID("8a0c54d7-1f3e-4f8e-9a43-0d3c0b6f2a11")      # winsim's own namespace for derived GUIDs


def _relative(root: str, flavor: str) -> str:
    rel = root.split("\\", 1)[1]
    return rel.replace("\\IPSec\\", "\\IPSEC\\") if flavor == "modern" else rel


def _derived_guid(*parts: str) -> str:
    return "{%s}" % uuid.uuid5(_NS, "/".join(parts))


def _guid(obj, *fallback: str) -> str:
    return obj.guid if getattr(obj, "guid", "") else _derived_guid(*fallback)


# -- writing ----------------------------------------------------------------------------------------

# The 8 bytes after each used algorithm slot: zero in the Windows 10 capture, 64 and 8 (key length
# and rounds, as in its ISAKMP methods) in every used slot of the Windows 2000 capture.
SLOT_EXTRA = {"modern": bytes(8), "legacy": (64).to_bytes(4, "little") + (8).to_bytes(4, "little")}


def _offer(o: QmOffer, pfs: int, flavor: str) -> blobs.Offer:
    algorithms = []
    if o.ah:
        algorithms.append(blobs.Algorithm(HASHES[o.ah], 0, blobs.OFFER_AH, SLOT_EXTRA[flavor]))
    if o.esp_conf or o.esp_auth:
        algorithms.append(blobs.Algorithm(ESP_CIPHERS[o.esp_conf], HASHES[o.esp_auth], blobs.OFFER_ESP,
                                          SLOT_EXTRA[flavor]))
    return blobs.Offer.of(*algorithms, lifetime_s=o.lifetime_s, lifetime_kb=o.lifetime_kb, pfs=pfs)


def negpol_blob(action: FilterAction, flavor: str) -> blobs.NegPolBlob:
    """Block and permit actions hold no offers (Windows 10 capture "Block": 25 bytes). [I] qmpfs is
    PFS = 1 in every offer and soft (fall back to clear) an offer with no algorithms at the end;
    neither is in a capture."""
    if action.action != "negotiate":
        return blobs.NegPolBlob()
    offers = tuple(_offer(o, int(action.qmpfs), flavor) for o in action.offers)
    if action.soft:
        offers += (blobs.Offer.of(pfs=int(action.qmpfs)),)
    return blobs.NegPolBlob(offers)


def _legacy_side(addr: Address, src: bool) -> Tuple[str, str, str, int]:
    """(address, mask, dns name, special) of one side in a legacy filter record."""
    if addr.kind == "any":
        return "0.0.0.0", "0.0.0.0", "", 0
    if addr.kind == "me":
        return "0.0.0.0", "255.255.255.255", "", 0       # [I] in no capture; ipsecpol's "0" = me
    if addr.kind == "server":
        return "0.0.0.0", "0.0.0.0", "", SERVER_CODES[addr.value.upper()] | (0 if src else 0x80)
    if addr.kind == "dns":
        return "0.0.0.0", "255.255.255.255", addr.value, 0   # [I] the resolved address is not kept
    if addr.kind == "ip" and ":" not in addr.value:
        return addr.value, addr.mask or "255.255.255.255", "", 0
    return "0.0.0.0", "0.0.0.0", "", 0                       # [I] v2-only: the v2 section holds it


def _needs_v2(addr: Address) -> bool:
    return addr.kind == "range" or ":" in addr.value


def _v2_side(addr: Address, other: Address) -> blobs.V2Address:
    def raw(text):
        ip = ipaddress.ip_address(text)
        return ip.packed.ljust(16, b"\x00"), (blobs.V2_IPV6 if ip.version == 6 else blobs.V2_IPV4)
    if addr.kind == "any":
        version = blobs.V2_IPV6 if ":" in other.value else blobs.V2_IPV4
        return blobs.V2Address(blobs.V2_ANY, version)
    if addr.kind == "me":
        return blobs.V2Address(blobs.V2_ME, blobs.V2_BOTH)
    if addr.kind == "server":
        return blobs.V2Address(blobs.V2_SERVERS[addr.value.upper()], blobs.V2_BOTH)
    if addr.kind == "range":
        (first, version), (last, _) = raw(addr.value), raw(addr.end)
        return blobs.V2Address(blobs.V2_RANGE, version, first, last)
    if addr.kind == "ip":
        packed, version = raw(addr.value)
        if not addr.mask:
            return blobs.V2Address(blobs.V2_SINGLE, version, packed)
        if version == blobs.V2_IPV6:
            return blobs.V2Address(blobs.V2_SUBNET, version, packed, bytes([int(addr.mask)]).ljust(16, b"\x00"))
        return blobs.V2Address(blobs.V2_SUBNET, version, packed, raw(addr.mask)[0])
    raise blobs.BlobError("[I] winsim does not write a %s address in a v2 filter section" % addr.kind)


def filter_blob(flist: FilterList, flavor: str) -> bytes:
    specs, v2 = [], []
    for i, f in enumerate(flist.filters):
        guid = _guid(f, flist.guid or flist.name, "filter", str(i))
        src, src_mask, src_dns, src_special = _legacy_side(f.src, True)
        dst, dst_mask, dst_dns, dst_special = _legacy_side(f.dst, False)
        specs.append(blobs.FilterSpec(guid, src, src_mask, dst, dst_mask, f.protocol, f.src_port, f.dst_port,
                                      int(f.mirrored), f.description, src_dns, dst_dns,
                                      special=src_special or dst_special))
        v2.append(blobs.V2Filter(guid, _v2_side(f.src, f.dst) if f.src.kind != "dns" else blobs.V2Address(),
                                 _v2_side(f.dst, f.src) if f.dst.kind != "dns" else blobs.V2Address(),
                                 f.protocol, f.src_port, f.dst_port, int(f.mirrored), f.description, src_dns, dst_dns))
    blob = blobs.FilterBlob(tuple(specs))
    if any(_needs_v2(f.src) or _needs_v2(f.dst) for f in flist.filters):
        if flavor != "modern":
            raise blobs.BlobError("IPv6 and address ranges need the v2 filter section, which Windows "
                                  "2000/XP/2003 do not write ([MS-GPIPSEC] 2.2.1.5.1)")
        return blobs.write_filter_v2(blob, tuple(v2))
    return blobs.write_filter(blob, flavor)


def nfa_blob(rule: Rule, flavor: str) -> bytes:
    auth = tuple(blobs.NfaAuth(blobs.AUTH_KERBEROS) if a.kind == "kerberos" else blobs.NfaAuth.text(AUTH_KINDS[a.kind], a.value)
                 for a in rule.auth)
    tunnel, endpoint, is_tunnel = "0.0.0.0", "", 0
    if rule.tunnel:
        is_tunnel = 1
        try:
            tunnel = str(ipaddress.IPv4Address(rule.tunnel))
        except ValueError:
            endpoint = rule.tunnel                   # [I] a non-IPv4 endpoint as Tunnel-End-Point-Name
    alt = None
    if flavor == "modern":
        # Windows 10 capture: the tail repeats the methods, Kerberos with no data bytes [I for the others].
        alt = tuple((a.kind, b"" if a.kind == blobs.AUTH_KERBEROS else a.data) for a in auth)
    blob = blobs.NfaBlob(auth, CONNTYPES[rule.conntype], "", tunnel, is_tunnel, int(rule.active), endpoint, alt,
                         1, tuple(0 for _ in auth))
    return blobs.write_nfa(blob, flavor)


def write_store(state: HostState, root: str, flavor: str, now: int, tree: RegTree) -> None:
    """Write `state` under `root` (which the caller has emptied) as netsh would leave it."""
    rel = _relative(root, flavor)
    class_value = "className" if flavor == "modern" else "ClassName"
    owners: Dict[str, List[str]] = {}

    def key(cls: str, guid: str) -> str:
        return "%s\\%s%s" % (root, cls, guid)

    def ref(cls: str, guid: str) -> str:
        return "%s\\%s%s" % (rel, cls, guid)

    def common(cls: str, guid: str, name: str, description: str, blob: bytes) -> str:
        k = key(cls, guid)
        tree.add_key(k)
        tree.set(k, class_value, RegValue("REG_SZ", cls))
        tree.set(k, "name", RegValue("REG_SZ", cls + guid))
        if name and name != guid:
            tree.set(k, "ipsecName", RegValue("REG_SZ", name))
        if description:
            tree.set(k, "description", RegValue("REG_SZ", description))
        tree.set(k, "ipsecID", RegValue("REG_SZ", guid))
        tree.set(k, "ipsecDataType", RegValue("REG_DWORD", 0x100))
        tree.set(k, "ipsecData", RegValue("REG_BINARY", blob))
        tree.set(k, "whenChanged", RegValue("REG_DWORD", now))
        return k

    tree.add_key(root)
    lists = {fl.name.casefold(): _guid(fl, "filterlist", fl.name) for fl in state.filterlists}
    actions = {fa.name.casefold(): _guid(fa, "filteraction", fa.name) for fa in state.filteractions}
    default_actions = {r.filteraction.casefold() for p in state.policies for r in p.rules if r.default_response}
    for fl in state.filterlists:
        common(FILTER, lists[fl.name.casefold()], fl.name, fl.description, filter_blob(fl, flavor))
    for fa in state.filteractions:
        guid = actions[fa.name.casefold()]
        k = common(NEGPOL, guid, fa.name, fa.description, blobs.write_negpol(negpol_blob(fa, flavor), flavor))
        action = {"block": ACTION_BLOCK, "permit": ACTION_PERMIT}.get(fa.action, ACTION_INPASS if fa.inpass
                                                                       else ACTION_NEGOTIATE)
        kind = TYPE_DEFAULT_RESPONSE if fa.name.casefold() in default_actions else TYPE_STANDARD
        tree.set(k, "ipsecNegotiationPolicyAction", RegValue("REG_SZ", action))
        tree.set(k, "ipsecNegotiationPolicyType", RegValue("REG_SZ", kind))
    for pol in state.policies:
        pguid = _guid(pol, "policy", pol.name)
        mm_guid = _derived_guid(pguid, "isakmp")         # [I] netsh's own choice of GUID is random
        mm = MODERN_MM if flavor == "modern" else replace(LEGACY_MM, instance=mm_guid)
        k = common(ISAKMP, mm_guid, "", "", blobs.write_isakmp(mm, flavor))
        tree.set(k, "ipsecOwnersReference", RegValue("REG_MULTI_SZ", (ref(POLICY, pguid),)))
        nfa_refs = []
        for i, rule in enumerate(pol.rules):
            nguid = _guid(rule, pguid, "rule", str(i), rule.name)
            k = common(NFA, nguid, rule.name, rule.description, nfa_blob(rule, flavor))
            aguid = actions.get(rule.filteraction.casefold())
            if aguid is not None:
                tree.set(k, "ipsecNegotiationPolicyReference", RegValue("REG_SZ", ref(NEGPOL, aguid)))
                owners.setdefault(key(NEGPOL, aguid), []).append(ref(NFA, nguid))
            lguid = lists.get(rule.filterlist.casefold()) if rule.filterlist else None
            if lguid is not None:
                tree.set(k, "ipsecFilterReference", RegValue("REG_MULTI_SZ", (ref(FILTER, lguid),)))
                owners.setdefault(key(FILTER, lguid), []).append(ref(NFA, nguid))
            tree.set(k, "ipsecOwnersReference", RegValue("REG_MULTI_SZ", (ref(POLICY, pguid),)))
            nfa_refs.append(ref(NFA, nguid))
        k = common(POLICY, pguid, pol.name, pol.description,
                   blobs.write_policy(blobs.PolicyBlob(pol.polling_interval * 60), flavor))
        tree.set(k, "ipsecISAKMPReference", RegValue("REG_SZ", ref(ISAKMP, mm_guid)))
        tree.set(k, "ipsecNFAReference", RegValue("REG_MULTI_SZ", tuple(nfa_refs)))
        if state.assigned and state.assigned.casefold() == pol.name.casefold():
            tree.set(root, "ActivePolicy", RegValue("REG_SZ", ref(POLICY, pguid)))
    for k, refs in owners.items():
        tree.set(k, "ipsecOwnersReference", RegValue("REG_MULTI_SZ", tuple(refs)))


# -- reading ----------------------------------------------------------------------------------------

def _text(tree: RegTree, key: str, name: str) -> str:
    value = tree.get(key, name)
    return value.data if value is not None and isinstance(value.data, str) else ""


def _refs(tree: RegTree, key: str, name: str) -> Tuple[str, ...]:
    """Reference values: REG_MULTI_SZ, or REG_SZ with one path (both occur in the wild)."""
    value = tree.get(key, name)
    if value is None:
        return ()
    items = value.data if isinstance(value.data, tuple) else (value.data,)
    return tuple(i.rpartition("\\")[2].casefold() for i in items if isinstance(i, str) and i)


def _class(tree: RegTree, key: str) -> str:
    cls = _text(tree, key, "className").casefold()
    return next((c for c in CLASSES if c.casefold() == cls), "")


def _address(ip: str, mask: str, dns: str, special: int) -> Address:
    if special:
        code = special & 0x7F
        return Address("server", next(n for n, c in SERVER_CODES.items() if c == code))
    if dns:
        return Address("dns", dns)
    if ip == "0.0.0.0" and mask == "0.0.0.0":
        return ANY
    if ip == "0.0.0.0" and mask == "255.255.255.255":
        return ME
    return Address("ip", ip, mask)


def _v2_address(a: blobs.V2Address, dns: str) -> Address:
    if dns:
        return Address("dns", dns)
    if a.kind == blobs.V2_ANY:
        return ANY
    if a.kind == blobs.V2_ME:
        return ME
    for name, code in blobs.V2_SERVERS.items():
        if a.kind == code:
            return Address("server", name)

    def text(raw):
        return str(ipaddress.ip_address(raw if a.version == blobs.V2_IPV6 else raw[:4]))
    if a.kind == blobs.V2_RANGE:
        return Address("range", text(a.address), end=text(a.secondary))
    if a.kind == blobs.V2_SINGLE:
        return Address("ip", text(a.address))
    if a.kind == blobs.V2_SUBNET:
        mask = str(a.secondary[0]) if a.version == blobs.V2_IPV6 else text(a.secondary)
        return Address("ip", text(a.address), mask)
    raise blobs.BlobError("v2 filter address type %d is unknown ([MS-GPIPSEC] 2.2.1.5.1)" % a.kind)


def _filters(raw: bytes) -> Tuple[Filter, ...]:
    legacy, v2 = blobs.read_filter_v2(raw)
    if v2:
        return tuple(Filter(_v2_address(f.src, f.src_dns), _v2_address(f.dst, f.dst_dns), f.protocol, f.src_port,
                            f.dst_port, bool(f.mirrored), f.description, f.guid) for f in v2)
    out = []
    for f in legacy.filters:
        src_special = f.special if f.special and not f.special & 0x80 else 0
        dst_special = f.special if f.special & 0x80 else 0
        out.append(Filter(_address(f.src, f.src_mask, f.src_dns, src_special),
                          _address(f.dst, f.dst_mask, f.dst_dns, dst_special),
                          f.protocol, f.src_port, f.dst_port, bool(f.mirrored), f.description, f.guid))
    return tuple(out)


def _offers(blob: blobs.NegPolBlob) -> Tuple[Tuple[QmOffer, ...], bool, bool]:
    offers, soft, pfs = [], False, False
    for o in blob.offers:
        pfs = pfs or o.pfs == 1
        if o.count == 0:
            soft = True
            continue
        ah = esp_conf = esp_auth = ""
        for a in o.slots[:o.count]:
            if a.kind == blobs.OFFER_AH:
                ah = next(n for n, c in HASHES.items() if c == a.ident and n)
            elif a.kind == blobs.OFFER_ESP:
                esp_conf = next((n for n, c in ESP_CIPHERS.items() if c == a.ident and n), "None")
                esp_auth = next((n for n, c in HASHES.items() if c == a.integrity and n), "None")
        offers.append(QmOffer(ah, esp_conf, esp_auth, o.lifetime_kb, o.lifetime_s))
    return tuple(offers), soft, pfs


def read_store(tree: RegTree, root: str) -> HostState:
    if root not in tree:
        return HostState()
    by_id: Dict[str, Tuple[str, str]] = {}       # "ipsecnfa{guid}" -> (key, class)
    for k in tree.subkeys(root):
        cls = _class(tree, k)
        if cls:
            by_id[k.rpartition("\\")[2].casefold()] = (k, cls)

    def name_of(k: str) -> str:
        return _text(tree, k, "ipsecName") or _text(tree, k, "ipsecID")

    def blob(k: str) -> bytes:
        value = tree.get(k, "ipsecData")
        if value is None or not isinstance(value.data, bytes):
            raise blobs.BlobError("%s has no ipsecData" % k)
        return value.data

    filterlists, filteractions, policies = [], [], []
    names: Dict[str, str] = {}
    for ident, (k, cls) in by_id.items():
        if cls == FILTER:
            fl = FilterList(name_of(k), _filters(blob(k)), _text(tree, k, "description"), _text(tree, k, "ipsecID"))
            filterlists.append(fl)
            names[ident] = fl.name
        elif cls == NEGPOL:
            offers, soft, pfs = _offers(blobs.read_negpol(blob(k)))
            action_guid = _text(tree, k, "ipsecNegotiationPolicyAction").casefold()
            action = {ACTION_BLOCK: "block", ACTION_PERMIT: "permit"}.get(action_guid, "negotiate")
            fa = FilterAction(name_of(k), action, _text(tree, k, "description"), action_guid == ACTION_INPASS,
                              soft, pfs, offers if action == "negotiate" else (), _text(tree, k, "ipsecID"))
            filteractions.append(fa)
            names[ident] = fa.name
    assigned = ""
    active = _refs(tree, root, "ActivePolicy")
    for ident, (k, cls) in by_id.items():
        if cls != POLICY:
            continue
        rules = []
        for nfa_id in _refs(tree, k, "ipsecNFAReference"):
            if nfa_id not in by_id:
                raise blobs.BlobError("%s refers to %s, which does not exist" % (k, nfa_id))
            nk = by_id[nfa_id][0]
            nfa = blobs.read_nfa(blob(nk))
            lists = _refs(tree, nk, "ipsecFilterReference")
            action = _refs(tree, nk, "ipsecNegotiationPolicyReference")
            auth = tuple(AuthMethod("kerberos") if a.kind == blobs.AUTH_KERBEROS else
                         AuthMethod({v: n for n, v in AUTH_KINDS.items()}[a.kind], a.value) for a in nfa.auth)
            tunnel = ""
            if nfa.is_tunnel:
                tunnel = nfa.tunnel_endpoint_name or nfa.tunnel_address
            conntype = {v: n for n, v in CONNTYPES.items()}[nfa.interface_type]
            rules.append(Rule(_text(tree, nk, "ipsecName"), names.get(lists[0], "") if lists else "",
                              names.get(action[0], "") if action else "", _text(tree, nk, "description"),
                              bool(nfa.is_active), conntype, auth, tunnel, not lists, _text(tree, nk, "ipsecID")))
        pol_blob = blobs.read_policy(blob(k))
        policies.append(Policy(name_of(k), _text(tree, k, "description"), pol_blob.polling_seconds // 60,
                               tuple(rules), _text(tree, k, "ipsecID")))
        if ident in active:
            assigned = policies[-1].name
    return HostState(policies=tuple(policies), filterlists=tuple(filterlists), filteractions=tuple(filteractions),
                     assigned=assigned)

