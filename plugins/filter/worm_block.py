# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Filter worm_block_rules: ports to block -> KB 813878 rules (role worm_block).

Doing this in one filter instead of set_fact loops keeps the role at a few tasks per host: every
task, even a local one, costs a forked worker per host. Documentation: worm_block_rules.yml.

Filter worm_block_failures: the ipsec_block results that count as failed hosts, for the wave stop of
playbooks/emergency_block.yml (a meta task, evaluated in the controller without forking a worker).
The rollout record decides the same way (module_utils/ipsec/rollout_record.py host_failure).
Documentation: worm_block_failures.yml.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.rollout_record import host_failure

DIRECTIONS = {"in": ("in",), "out": ("out",), "both": ("in", "out")}


def _entry(index, item):
    where = "worm_block_ports[%d]" % index
    if not hasattr(item, "get"):
        raise AnsibleFilterError("%s: %r is not valid; expected a dict {protocol, port, direction}" % (where, item))
    unknown = sorted(set(item) - {"protocol", "port", "direction"})
    if unknown:
        raise AnsibleFilterError("%s: unknown keys %s; expected protocol, port, direction" % (where, ", ".join(unknown)))
    protocol = str(item.get("protocol", "")).upper()
    if protocol not in ("TCP", "UDP"):
        raise AnsibleFilterError("%s.protocol: %r is not valid; expected TCP or UDP" % (where, item.get("protocol")))
    port = item.get("port")
    if isinstance(port, bool) or not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise AnsibleFilterError("%s.port: %r is not valid; expected an integer 1-65535" % (where, port))
    direction = str(item.get("direction", "both")).lower()
    if direction not in DIRECTIONS:
        raise AnsibleFilterError("%s.direction: %r is not valid; expected in, out or both"
                                 % (where, item.get("direction")))
    return protocol, int(port), DIRECTIONS[direction]


def worm_block_rules(ports):
    """[{protocol, port, direction}] -> [{name, filters, action}] named and written as KB 813878 does:
    inbound `*=0:PORT:PROTO` ("Block Inbound UDP 1434 Rule"), outbound `0=*:PORT:PROTO`."""
    if not isinstance(ports, (list, tuple)) or not ports:
        raise AnsibleFilterError("worm_block_ports: %r is not valid; expected a non-empty list of "
                                 "{protocol, port, direction}" % (ports,))
    rules = []
    for index, item in enumerate(ports):
        protocol, port, directions = _entry(index, item)
        for direction in directions:
            spec = ("*=0:%d:%s" if direction == "in" else "0=*:%d:%s") % (port, protocol)
            rules.append({"name": "Block %s %s %d Rule" % ("Inbound" if direction == "in" else "Outbound",
                                                           protocol, port),
                          "filters": [spec], "action": "block"})
    return rules


def worm_block_failures(results):
    """[ipsec_block result, ...] -> the reasons of those that count as a failed host, in order."""
    if not isinstance(results, (list, tuple)):
        raise AnsibleFilterError("worm_block_failures: %r is not valid; expected a list of task results"
                                 % (type(results).__name__,))
    return [reason for reason in (host_failure(r) for r in results) if reason is not None]


class FilterModule:
    def filters(self):
        return {"worm_block_rules": worm_block_rules, "worm_block_failures": worm_block_failures}
