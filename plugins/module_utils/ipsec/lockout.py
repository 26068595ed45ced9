# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Would a state cut the connection Ansible manages the host through?

DESIGN "Safety rules" and KB 813878's warning that filters can make programs "stop responding":
a block rule (static, in the assigned policy, or dynamic) that matches the management traffic -
TCP from the controller to the host's WinRM/SSH/connection port, or the host's replies - is a
lockout. A filter matches when its protocol is TCP or any, its ports are that port or 0 (any), its
addresses take in the controller (any, a subnet or range holding it) and the host (me, any, or
the host's address), in its own direction or, when mirrored, the reverse one.

Conservative where it cannot know: the controller's address is the one the controller's routing
would use toward the host (`controller_address`), which NAT may change; a DNS-name or
DNS/WINS/DHCP/GATEWAY side never counts as the controller; a filter naming a specific source port
is taken to miss the client's ephemeral port. Permit rules that are more specific are not
credited: any matching block is reported.

Standard library only.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import List, Sequence

from .filterspec import format_filterspec
from .model import Address, Filter, HostState

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
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


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
        prefix = address.mask or ("128" if ":" in address.value else "32")
        try:
            return target in ipaddress.ip_network("%s/%s" % (address.value, prefix), strict=False)
        except ValueError:
            return False
    if address.kind == "range":
        low, high = _ip(address.value), _ip(address.end)
        return low is not None and high is not None and low <= target <= high
    return False


def _one_way(src: Address, dst: Address, sport: int, dport: int, port: int,
             controller: str, host: str) -> bool:
    """Does (src, dst, sport, dport) match a request controller -> host:port or its reply?"""
    def is_host(a):
        return a.kind == "me" or _holds(a, host, unknown=True)

    def is_controller(a):
        return a.kind != "me" and _holds(a, controller, unknown=False)
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


def _spec(f: Filter) -> str:
    try:
        return format_filterspec(f)
    except ValueError:       # a side filterspec cannot write (DNS name, range): the plain fields
        return "%s:%s -> %s:%s protocol %s" % (f.src, f.src_port, f.dst, f.dst_port, f.protocol)


def connection_blocks(state: HostState, ports: Sequence[int], controller: str = "",
                      host: str = "") -> List[str]:
    """What in `state` blocks management traffic: the assigned policy's active block rules and
    the dynamic rules that block, each named with its filter and the port it cuts."""
    found = []
    who = " from the controller (%s)" % controller if controller else ""
    assigned = state.policy(state.assigned) if state.assigned else None
    for rule in (assigned.rules if assigned else ()):
        action = state.filteraction(rule.filteraction)
        flist = state.filterlist(rule.filterlist)
        if not rule.active or action is None or action.action != "block" or flist is None:
            continue
        for f in flist.filters:
            for port in ports:
                if filter_cuts(f, port, controller, host):
                    found.append("rule %r of the assigned policy %r (filter list %r, filter %s) blocks TCP "
                                 "port %d%s" % (rule.name, assigned.name, flist.name, _spec(f), port, who))
    for d in state.dynamic:
        for port in ports:
            if "block" in (d.inbound, d.outbound) and filter_cuts(d.filter, port, controller, host):
                found.append("the dynamic filter %s blocks TCP port %d%s" % (_spec(d.filter), port, who))
    return list(dict.fromkeys(found))


def refusal(cut: Sequence[str]) -> str:
    return ("refusing a change that would cut the management connection: %s. KB 813878 warns that IPsec "
            "filters can make programs stop responding; a host that blocks the port Ansible reaches it on "
            "can no longer be managed, nor this change undone, from here (only from its console). Narrow the "
            "filter (e.g. a source address that excludes the controller), or set allow_lockout: true if that "
            "is intended - with confirm_timeout the host then undoes the change by itself unless the "
            "controller reaches it again" % "; ".join(cut))


__all__ = ["MANAGEMENT_PORTS", "controller_address", "filter_cuts", "connection_blocks", "refusal"]
