# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Would a state cut the connection Ansible manages the host through?

KB 813878 warns that filters can make programs "stop responding": a rule (static, in the assigned
policy, or dynamic) that matches the management traffic - TCP from the controller to the host's
WinRM/SSH/connection port, or the host's replies - and does not let it through is a lockout. That
is a block, and equally a negotiate action without `soft` (fall back to clear): the controller does
not answer IKE, so the negotiation fails and the traffic is dropped ("Allow unsecured communication
with non-IPsec-aware computers" is what `soft` means in the IP Security Policy Management console).
A filter matches when its protocol is TCP or any, its ports are that port or 0 (any), its
addresses take in the controller and the host, in its own direction or, when mirrored, the reverse.

What the guard cannot know counts against the change:
- a DNS name is resolved by Windows when the filter is created (netsh and ipseccmd), on the host,
  with the host's resolver: it may be the controller or the host (`localhost`), so it counts as both;
- a server type (DNS, WINS, DHCP, GATEWAY) is whatever the host's network settings say: it may be
  the controller;
- an IPv4 address written as IPv6 (::ffff:a.b.c.d, ::a.b.c.d) counts as the IPv4 address;
- a mask is applied bit by bit, so a non-contiguous one read from a host is not a way around.
The controller's address is the one the controller's routing uses toward the host
(`controller_address`), which NAT may change; when it is unknown, only filters from any address
count. A filter naming a specific source port on the controller's side is taken to miss the
client's ephemeral port. Permit rules that are more specific are not credited: any matching
block is reported.

Standard library only.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import List, Sequence

from .filterspec import format_filterspec
from .model import Address, Filter, HostState, ipv4_inside

# WinRM HTTP/HTTPS and SSH: what a Windows connection of Ansible can be riding on.
MANAGEMENT_PORTS = (5985, 5986, 22)
TCP = 6


def controller_address(remote: str, port: int = 5985) -> str:
    """The source address this controller uses toward `remote` ('' when unknown): a UDP socket
    is 'connected' (no packet is sent) and asked for its local address."""
    try:
        family = socket.AF_INET6 if ":" in remote else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((remote, port or 9))
            return probe.getsockname()[0]
    except (OSError, ValueError, TypeError):
        return ""


def _ip(text: str):
    """An address as the IPv4 packets of the connection would carry it (IPv4-mapped IPv6 unwrapped)."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ipv4_inside(ip) or ip


def _mask_bits(address: Address, ip) -> int:
    """The mask of an 'ip' address as an integer (dotted, or a prefix length); a host mask if none."""
    width = ip.max_prefixlen
    mask = address.mask
    if not mask:
        return (1 << width) - 1
    if mask.isdigit():
        prefix = min(int(mask), width)
        if ip.version == 4 and ":" in address.value:      # an IPv4-mapped IPv6 prefix (::ffff:0:0/96 + n)
            prefix = max(0, min(int(mask), 128) - 96)
        return ((1 << width) - 1) ^ ((1 << (width - prefix)) - 1)
    dotted = _ip(mask)
    return int(dotted) if dotted is not None and dotted.version == ip.version else (1 << width) - 1


def _holds(address: Address, ip: str, unknown: bool) -> bool:
    """Whether `address` takes in `ip`; `unknown` is the answer for an ip/range when ip is ''."""
    if address.kind == "any":
        return True
    if address.kind in ("ip", "range") and not ip:
        return unknown
    target = _ip(ip)
    if target is None:
        return False
    if address.kind == "ip":
        value = _ip(address.value)
        if value is None or value.version != target.version:
            return False
        bits = _mask_bits(address, value)
        return int(value) & bits == int(target) & bits
    if address.kind == "range":
        low, high = _ip(address.value), _ip(address.end)
        return (low is not None and high is not None and low.version == high.version == target.version
                and low <= target <= high)
    return False


def _one_way(src: Address, dst: Address, sport: int, dport: int, port: int,
             controller: str, host: str) -> bool:
    """Does (src, dst, sport, dport) match a request controller -> host:port or its reply?"""
    def is_host(a):
        return a.kind in ("me", "dns") or _holds(a, host, unknown=True)

    def is_controller(a):
        return a.kind in ("dns", "server") or (a.kind != "me" and _holds(a, controller, unknown=False))
    request = is_controller(src) and is_host(dst) and sport == 0 and dport in (0, port)
    reply = is_host(src) and is_controller(dst) and sport in (0, port) and dport == 0
    return request or reply


def filter_cuts(f: Filter, port: int, controller: str = "", host: str = "") -> bool:
    """Whether `f` matches management TCP traffic to the host's `port` from `controller`."""
    if f.protocol not in (0, TCP):
        return False
    if _one_way(f.src, f.dst, f.src_port, f.dst_port, port, controller, host):
        return True
    return f.mirrored and _one_way(f.dst, f.src, f.dst_port, f.src_port, port, controller, host)


def action_stops(action) -> bool:
    """Whether a filter action keeps the controller's traffic out: block, or negotiate without soft
    (the controller never answers IKE)."""
    return action is not None and (action.action == "block" or (action.action == "negotiate" and not action.soft))


def _what(action: str) -> str:
    return "blocks" if action == "block" else "requires IPsec negotiation, which the controller cannot answer, on"


def _spec(f: Filter) -> str:
    try:
        text = format_filterspec(f)
    except ValueError:       # a side filterspec cannot write (DNS name, range): the plain fields
        text = "%s:%s -> %s:%s protocol %s" % (f.src, f.src_port, f.dst, f.dst_port, f.protocol)
    named = [str(a) for a in (f.src, f.dst) if a.kind in ("dns", "server")]
    if named:
        text += (" - %s may be the controller or this host: Windows resolves it on the host, so write the "
                 "address instead" % " and ".join(dict.fromkeys(named)))
    return text


def connection_blocks(state: HostState, ports: Sequence[int], controller: str = "",
                      host: str = "") -> List[str]:
    """What in `state` stops management traffic: the assigned policy's active rules that block or
    negotiate, and the dynamic rules that do, each named with its filter and the port it cuts."""
    found = []
    who = " from the controller (%s)" % controller if controller else ""
    assigned = state.policy(state.assigned) if state.assigned else None
    for rule in (assigned.rules if assigned else ()):
        action = state.filteraction(rule.filteraction)
        flist = state.filterlist(rule.filterlist)
        if not rule.active or not action_stops(action) or flist is None:
            continue
        for f in flist.filters:
            for port in ports:
                if filter_cuts(f, port, controller, host):
                    found.append("rule %r of the assigned policy %r (filter list %r, filter %s) %s TCP "
                                 "port %d%s" % (rule.name, assigned.name, flist.name, _spec(f), _what(action.action),
                                                port, who))
    # Unknown dynamic rules (None: a listing the engine could not read) are the same before and after a
    # static change, which is all this guard compares.
    for d in state.dynamic or ():
        stops = [a for a in (d.inbound, d.outbound) if a in ("block", "negotiate")]
        if not stops:
            continue
        for port in ports:
            if filter_cuts(d.filter, port, controller, host):
                found.append("the dynamic filter %s %s TCP port %d%s" % (_spec(d.filter), _what(min(stops)), port, who))
    return list(dict.fromkeys(found))


def refusal(cut: Sequence[str]) -> str:
    return ("refusing a change that would cut the management connection: %s. KB 813878 warns that IPsec "
            "filters can make programs stop responding; a host that blocks the port Ansible reaches it on "
            "can no longer be managed, nor this change undone, from here (only from its console). Narrow the "
            "filter (e.g. a source address that excludes the controller), or set allow_lockout: true if that "
            "is intended - with confirm_timeout the host then undoes the change by itself unless the "
            "controller reaches it again" % "; ".join(cut))


__all__ = ["MANAGEMENT_PORTS", "controller_address", "filter_cuts", "action_stops", "connection_blocks", "refusal"]
