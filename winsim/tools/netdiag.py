"""netdiag.exe /test:ipsec [/debug] (2000/XP/2003 Support Tools), rendered by winsim from the host's
running state in the layout of Microsoft's published samples (KB 813878; tests/fixtures/netdiag/):

    IP Security test . . . . . . . . . : Passed
        Local IPSec Policy Active: 'Block UDP 1434 Filter'
        IP Security Policy Path: SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\\ipsecPolicy{GUID}

        There are 2 filters
        No Name
            Filter Id: {GUID}
            Policy Id: {GUID}
            Src Addr : 0.0.0.0 Src Mask : 0.0.0.0
            Dest Addr : 192.168.1.1 Dest Mask : 255.255.255.255
            Tunnel Addr : 0.0.0.0 Src Port : 0 Dest Port : 1434
            Protocol : 17 TunnelFilter: No
            Flags : Inbound Block

[V] the labels, the field pairs on one line, the numeric protocol, "0" (me) shown as the host's own
address and "*" as 0.0.0.0/0.0.0.0, one entry per one-way filter with "Inbound"/"Outbound Block".
The KB's markdown lost the indentation and joined some lines; the indentation here is [I]. Also [I]:
a mirrored filter shown as its two one-way halves sharing one Filter Id; Policy Id = the filter
action's GUID (dynamic rules: a GUID per action pair); direction Outbound unless the destination is
"me"; Permit/Negotiate flags; the Directory (domain) lines; the text when PolicyAgent is stopped;
DNS names and server types shown as 0.0.0.0/0.0.0.0; static filters before dynamic ones.
"""
import uuid
from typing import List

from ..result import Result

TEST_LINE = "IP Security test . . . . . . . . . : "                                   # [V] KB 813878
NO_POLICY = "IPSec policy service is active, but no policy is assigned."              # [V] KB 813878
NOT_RUNNING = "IPSec policy service is not active."                                   # [I]
LOCAL_PATH = "SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\\ipsecPolicy"   # [V] KB 813878
FLAGS = {"block": "Block", "permit": "Permit", "negotiate": "Negotiate"}              # Block [V]; others [I]
_NS = uuid.UUID("0b8e6f0e-5d0c-4a51-9a5e-0c5a1e2f7d31")


def _side(addr, local_address: str):
    """(address, mask) as netdiag prints one side of a filter."""
    if addr.kind == "me":
        return local_address, "255.255.255.255"
    if addr.kind == "ip" and ":" not in addr.value:
        return addr.value, addr.mask or "255.255.255.255"
    return "0.0.0.0", "0.0.0.0"                 # any; [I] DNS names, server types


def _entries(flt, filter_id: str, policy_id: str, tunnel: str, local_address: str, inbound: str, outbound: str):
    halves = [(flt.src, flt.dst, flt.src_port, flt.dst_port)]
    if flt.mirrored:
        halves.append((flt.dst, flt.src, flt.dst_port, flt.src_port))
    out = []
    for src, dst, sport, dport in halves:
        direction = "Inbound" if dst.kind == "me" else "Outbound"
        action = inbound if direction == "Inbound" else outbound
        (sa, sm), (da, dm) = _side(src, local_address), _side(dst, local_address)
        out.append([flt.description or "No Name",
                    "    Filter Id: " + filter_id,
                    "    Policy Id: " + policy_id,
                    "    Src Addr : %s Src Mask : %s" % (sa, sm),
                    "    Dest Addr : %s Dest Mask : %s" % (da, dm),
                    "    Tunnel Addr : %s Src Port : %d Dest Port : %d" % (tunnel or "0.0.0.0", sport, dport),
                    "    Protocol : %d TunnelFilter: %s" % (flt.protocol, "Yes" if tunnel else "No"),
                    "    Flags : %s %s" % (direction, FLAGS[action])])
    return out


def _derived(*parts: str) -> str:
    return "{%s}" % str(uuid.uuid5(_NS, "/".join(parts))).upper()


def _static_entries(store, policy, local_address: str):
    out = []
    for rule in policy.rules:
        if not rule.active or not rule.filterlist:
            continue
        flist, action = store.filterlist(rule.filterlist), store.filteraction(rule.filteraction)
        if flist is None or action is None:
            continue
        policy_id = (action.guid or _derived("action", action.name)).upper()
        for i, flt in enumerate(flist.filters):
            filter_id = (flt.guid or _derived(flist.name, str(i))).upper()
            out += _entries(flt, filter_id, policy_id, rule.tunnel, local_address, action.action, action.action)
    return out


def render(host, debug: bool) -> str:
    if not host.agent_running:
        return TEST_LINE + "Skipped\n    " + NOT_RUNNING + "\n"
    state = host.running_state()
    lines = [TEST_LINE + "Passed"]
    entries: List[List[str]] = []
    if state.domain is not None:
        cache = host.cached_domain_state()
        lines.append("    Directory IPSec Policy Active: '%s'" % state.domain.name)
        path = state.domain.path
        if cache.policies:
            entries = _static_entries(cache, cache.policies[0], host.address)
    elif state.assigned:
        policy = state.policy(state.assigned)
        lines.append("    Local IPSec Policy Active: '%s'" % policy.name)
        path = LOCAL_PATH + policy.guid.upper()
        entries = _static_entries(state, policy, host.address)
    else:
        lines.append("    " + NO_POLICY)
        path = ""
    for i, entry in enumerate(host.dynamic):
        rule = entry.rule
        policy_id = _derived("dynamic", rule.inbound, rule.outbound)
        filter_id = (rule.filter.guid or _derived("dynamic filter", str(i))).upper()
        entries += _entries(rule.filter, filter_id, policy_id, "", host.address, rule.inbound, rule.outbound)
    if debug:
        if path:
            lines.append("    IP Security Policy Path: " + path)
        if entries:
            lines += ["", "    There are %d filters" % len(entries)]
            for entry in entries:
                lines += ["    " + line for line in entry]
    return "\n".join(lines) + "\n"


def run(host, argv: List[str], stdin: str = "") -> Result:
    tests, debug = [], False
    for arg in argv[1:]:
        low = arg.lower()
        if low.startswith("/test:"):
            tests.append(low[6:])
        elif low in ("/debug", "/v"):
            debug = debug or low == "/debug"
        elif low in ("/q", "/l"):
            pass
        else:
            # [I] netdiag prints its usage for an unknown switch
            return Result(stderr="winsim: netdiag does not know %s; emulated: /test:ipsec [/debug] [/v] [/q]\n" % arg,
                          rc=1)
    if tests != ["ipsec"]:
        return Result(stderr="winsim emulates only netdiag /test:ipsec, not %s.\n"
                      % (" ".join("/test:" + t for t in tests) or "the full run"), rc=1)
    return Result(stdout="\n" + render(host, debug) + "\nThe command completed successfully\n")
