"""IPsec filtering applied to a winsim host's own management traffic.

KB 813878 warns that IPsec filters "can cause network programs to lose data and to stop
responding"; a block on the port WinRM listens on cuts the administrator off the host. The
transport (winsim/transport/server.py) asks `blocked_reason` before it serves a request and before it sends
a reply; when the host's effective policy blocks that TCP traffic it drops the connection without a
reply, as a filtered host would.

The effective policy is what the IPsec driver enforces ([D] KB 813878 "IPSec filtering rules and
Group Policy"; docs/policy-store.md 2.4): the GPO-assigned domain policy (from its cached copy) when there is
one, else the assigned local policy; plus the dynamic filters; nothing while PolicyAgent is
stopped. Traffic the default exemptions cover is never filtered (KB 254728, KB 810207, cc756041), with the
NoDefaultExempt value the host read at its last boot or service start (`SimHost.exempt_in_effect`).

Simplifications, each [I] not verified on real Windows:
- Of the filters matching a packet, the most specific wins (Windows orders filters by a weight
  of address, protocol and port specificity); on a tie a block wins.
- A negotiate action without `soft` blocks: winsim's clients never speak IKE.
- DNS-name and DNS/WINS/DHCP/GATEWAY filter addresses match nothing (winsim resolves no names
  and has no such servers).

The filter set is cached per host and rebuilt only when the host's state generation changes.
"""
from __future__ import annotations

import ipaddress
import threading
import weakref
from typing import List, NamedTuple, Optional, Tuple

from .model import Address, Filter
from .registry import CACHE_ROOT, LOCAL_ROOT

TCP, UDP, RSVP = 6, 17, 46
IKE_PORT, KERBEROS_PORT = 500, 88


class Packet(NamedTuple):
    src: str
    dst: str
    protocol: int
    src_port: int
    dst_port: int


class Entry(NamedTuple):
    filter: Filter
    blocks: bool
    where: str          # what put the filter there, for messages


_cache_lock = threading.Lock()
_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()     # host -> (generation, entries)


def effective_entries(host) -> Tuple[Entry, ...]:
    """The filters the host enforces now (cached per state generation)."""
    generation = host._generation
    with _cache_lock:
        cached = _cache.get(host)
        if cached and cached[0] == generation:
            return cached[1]
    entries = tuple(_collect(host))
    with _cache_lock:
        _cache[host] = (generation, entries)
    return entries


def _collect(host) -> List[Entry]:
    if not host.agent_running:
        return []       # stopping PolicyAgent removes the IPsec policy from the driver (cc739550)
    found: List[Entry] = []
    if host.domain_assignment() is not None:
        store = host.hive.load_store(CACHE_ROOT)
        policy = store.policies[0] if store.policies else None
        label = "domain policy %r" % (policy.name if policy else "")
    else:
        store = host.hive.load_store(LOCAL_ROOT)
        policy = store.policy(store.assigned) if store.assigned else None
        label = "local policy %r" % (policy.name if policy else "")
    for rule in (policy.rules if policy else ()):
        action = store.filteraction(rule.filteraction)
        flist = store.filterlist(rule.filterlist)
        if not rule.active or action is None or flist is None:
            continue
        blocks = action.action == "block" or (action.action == "negotiate" and not action.soft)
        for f in flist.filters:
            found.append(Entry(f, blocks, "rule %r of the %s" % (rule.name, label)))
    for entry in host.dynamic:
        rule = entry.rule
        blocks = "block" in (rule.inbound, rule.outbound)
        found.append(Entry(rule.filter, blocks, "a dynamic filter"))
    return found


def _ip(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def address_matches(address: Address, ip: str, me: str) -> bool:
    if address.kind == "any":
        return True
    if address.kind == "me":
        return ip == me
    target = _ip(ip)
    if target is None:
        return False
    if address.kind == "ip":
        try:
            network = ipaddress.ip_network("%s/%s" % (address.value, address.mask or
                                                      ("32" if ":" not in address.value else "128")),
                                           strict=False)
        except ValueError:
            return False
        return target in network
    if address.kind == "range":
        low, high = _ip(address.value), _ip(address.end)
        return low is not None and high is not None and low <= target <= high
    return False


def _side_matches(f: Filter, p: Packet, me: str) -> bool:
    return (f.protocol in (0, p.protocol) and f.src_port in (0, p.src_port) and f.dst_port in (0, p.dst_port)
            and address_matches(f.src, p.src, me) and address_matches(f.dst, p.dst, me))


def filter_matches(f: Filter, p: Packet, me: str) -> bool:
    """Whether `f` matches the packet, or (mirrored) the packet's reverse direction."""
    if _side_matches(f, p, me):
        return True
    reverse = Packet(p.dst, p.src, p.protocol, p.dst_port, p.src_port)
    return f.mirrored and _side_matches(f, reverse, me)


def _specificity(address: Address) -> int:
    if address.kind in ("me", "range"):
        return 32
    if address.kind == "ip":
        try:
            return ipaddress.ip_network("%s/%s" % (address.value, address.mask or "32"), strict=False).prefixlen
        except ValueError:
            return 0
    return 0


def weight(f: Filter) -> Tuple[int, int, int]:
    return (_specificity(f.src) + _specificity(f.dst), int(f.protocol != 0),
            int(f.src_port != 0) + int(f.dst_port != 0))


def broadcast(dst: str, me: str) -> bool:
    """Whether `dst` is a broadcast or multicast address as seen by the host whose address is `me`:
    multicast, the limited broadcast 255.255.255.255, or the directed broadcast of the host's own
    network. winsim models no subnet mask: its hosts live on loopback addresses, whose network is
    127.0.0.0/8, so that network's broadcast is the only directed one; the host's own address is
    never a broadcast (a host at 127.1.0.255 is an ordinary unicast address in 127/8)."""
    ip, own = _ip(dst), _ip(me)
    if ip is None or ip == own:
        return False
    if ip.is_multicast or str(ip) == "255.255.255.255":
        return True
    return own is not None and own.is_loopback and ip == ipaddress.ip_network("127.0.0.0/8").broadcast_address


def exempt(p: Packet, generation: str, value: Optional[int], me: str) -> bool:
    """Default exemptions (KB 254728, KB 811832; on 2003 KB 810207 and cc756041): IKE always;
    Kerberos and RSVP at 0 (and 2 on 2003+); broadcast and multicast at 0 and 1 (2000/XP know only
    0 and 1, both exempting them). `me` is the host's own address."""
    legacy = generation in ("2000", "xp")
    setting = (0 if legacy else 3) if value is None else value
    setting = min(setting, 3)
    if p.protocol == UDP and IKE_PORT in (p.src_port, p.dst_port):
        return True
    kerberos_rsvp = setting == 0 or (not legacy and setting == 2)
    if kerberos_rsvp and (p.protocol == RSVP or (p.protocol in (TCP, UDP) and KERBEROS_PORT in (p.src_port, p.dst_port))):
        return True
    return broadcast(p.dst, me) and (legacy or setting in (0, 1))


def packet_verdict(host, p: Packet) -> Optional[str]:
    """None when the packet passes; else what blocks it."""
    if exempt(p, host.personality.name, getattr(host, "exempt_in_effect", None), host.address):
        return None
    matching = [e for e in effective_entries(host) if filter_matches(e.filter, p, host.address)]
    if not matching:
        return None
    best = max(weight(e.filter) for e in matching)
    top = [e for e in matching if weight(e.filter) == best]
    blocking = [e for e in top if e.blocks]
    return blocking[0].where if blocking else None


def blocked_reason(host, client: str, client_port: int, port: int) -> Optional[str]:
    """Why TCP from client:client_port to the host's `port` (or its reply) is blocked, or None."""
    if not hasattr(host, "hive"):
        return None     # a transport-only test host: nothing filters
    with host._lock:
        tick = getattr(host, "run_due_tasks", None)
        if tick is not None:
            tick()
        inbound = Packet(client, host.address, TCP, client_port, port)
        outbound = Packet(host.address, client, TCP, port, client_port)
        why = packet_verdict(host, inbound) or packet_verdict(host, outbound)
    if why:
        return "%s blocks TCP %s:%d -> %s:%d" % (why, client, client_port, host.address, port)
    return None
