"""How the engine scales with the size of a host's IPsec store.

For N filters: a store is written by winsim's registry writer (untimed setup; winsim shares no code
with the engine, so the engine reads bytes another writer wrote) and rendered as winsim's `reg query
/s` prints it (what the read script brings back), then each stage a task runs on the controller is
timed on its own: parse_reg_query (text -> registry tree), decode_store (tree -> HostState),
plan_rule (one more rule on top of that store: the Slammer block), plan_policy (the whole block
list again, which must plan nothing: every filter is compared, as in a re-run or a drift check).
Peak memory per stage by tracemalloc, in a second pass so that tracing does not slow the timed one.
"""
from __future__ import annotations

import gc
import ipaddress
import time
import tracemalloc

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan as plan_mod
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import registry
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ANY, ME, Address, Filter
from winsim.state import model as sim
from winsim.state import store as sim_store
from winsim.state.registry import LOCAL_ROOT as SIM_LOCAL_ROOT, RegTree as SimTree
from winsim.tools import reg as sim_reg

IPSEC_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec"
FILTERS_PER_LIST = 500          # a big block list split the way an admin splits it: rules of 500
STAGES = ("parse_reg_query", "decode_store", "plan_rule", "plan_policy")


def blocklist(filters: int):
    """The rules of a block list of `filters` distinct source addresses (UDP 1434): triples of
    (rule, filter list, filter action) by the collection's naming conventions."""
    first = int(ipaddress.IPv4Address("10.0.0.1"))
    triples = []
    for start in range(0, filters, FILTERS_PER_LIST):
        count = min(FILTERS_PER_LIST, filters - start)
        members = [Filter(Address("ip", str(ipaddress.IPv4Address(first + start + i)), "255.255.255.255"), ME,
                          17, 0, 1434, False) for i in range(count)]
        triples.append(plan_mod.rule_objects("Blocklist %05d" % (start // FILTERS_PER_LIST + 1), members))
    return triples


def host_store(filters: int):
    """The block list as a host holds it once ipsec_policy has written it: one assigned policy with
    rules of FILTERS_PER_LIST filters, named as plan.rule_objects names them, all using one "Block"
    action; in winsim's own model, written to a registry tree by winsim's writer."""
    first = int(ipaddress.IPv4Address("10.0.0.1"))
    lists, rules = [], []
    for start in range(0, filters, FILTERS_PER_LIST):
        name = "Blocklist %05d" % (start // FILTERS_PER_LIST + 1)
        count = min(FILTERS_PER_LIST, filters - start)
        lists.append(sim.FilterList(name, tuple(
            sim.Filter(sim.Address("ip", str(ipaddress.IPv4Address(first + start + i)), "255.255.255.255"), sim.ME,
                       17, 0, 1434, False) for i in range(count))))
        rules.append(sim.Rule(name, filterlist=name, filteraction="Block"))
    state = sim.HostState(policies=(sim.Policy("Blocklist", rules=tuple(rules)),), filterlists=tuple(lists),
                          filteractions=(sim.FilterAction("Block", "block"),), assigned="Blocklist")
    tree = SimTree()
    sim_store.write_store(state, SIM_LOCAL_ROOT, "modern", 0, tree)
    return tree


def rendered_store(filters: int) -> str:
    return sim_reg.render_query(host_store(filters), IPSEC_KEY, recursive=True)


def _stages(text: str, filters: int) -> list:
    """[(stage, callable)] in order; a callable takes what the stages before it produced. The
    desired objects are built here, before any timer starts."""
    rule, flist, faction = plan_mod.rule_objects("Block Inbound UDP 1434 Rule", [Filter(ANY, ME, 17, 0, 1434, False)])
    desired, objects = plan_mod.policy_objects("Blocklist", blocklist(filters))
    return [
        ("parse_reg_query", lambda done: registry.parse_reg_query(text)),
        ("decode_store", lambda done: registry.decode_store(done["parse_reg_query"])),
        ("plan_rule", lambda done: plan_mod.plan_rule(done["decode_store"], "Blocklist", rule, flist, faction)),
        ("plan_policy", lambda done: plan_mod.plan_policy(done["decode_store"], desired, rules_objects=objects)),
    ]


def measure(filters: int, repeat: int = 3) -> dict:
    """CPU time (best of `repeat`) and peak memory of each stage for a store of `filters` filters."""
    text = rendered_store(filters)
    wall = {stage: float("inf") for stage in STAGES}
    cpu = dict(wall)
    stages = _stages(text, filters)
    for _ in range(repeat):
        done = {}
        for stage, run in stages:
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            done[stage] = run(done)
            cpu[stage] = min(cpu[stage], time.process_time() - started_cpu)
            wall[stage] = min(wall[stage], time.perf_counter() - started)
        _check(done, filters)
    peaks = {}
    done = {}
    for stage, run in stages:
        gc.collect()
        tracemalloc.start()
        done[stage] = run(done)
        peaks[stage] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # CPU time is what the stages cost; wall time on a shared machine adds other processes' turns.
    result = {"filters": filters, "reg_query_bytes": len(text.encode("utf-8")),
              "total_ms": round(1000 * sum(cpu.values()), 1), "total_wall_ms": round(1000 * sum(wall.values()), 1)}
    for stage in STAGES:
        result[stage + "_ms"] = round(1000 * cpu[stage], 1)
        result[stage + "_peak_mb"] = round(peaks[stage] / 2 ** 20, 1)
    return result


def _check(done: dict, filters: int) -> None:
    """The stages did the real work: every filter decoded, the new rule planned, the same list not."""
    decoded = sum(len(fl.filters) for fl in done["decode_store"].filterlists)
    if decoded != filters:
        raise AssertionError("decode_store returned %d filters, %d were written" % (decoded, filters))
    if not done["plan_rule"].changes:
        raise AssertionError("plan_rule planned nothing on a store without the Slammer rule")
    if done["plan_policy"].changes:
        raise AssertionError("plan_policy planned %d changes for the block list the store already holds"
                             % len(done["plan_policy"].changes))


def linearity(rows: list[dict]) -> list[dict]:
    """Per step between sizes: how much more time per filter the larger size costs (1.0 = linear)."""
    steps = []
    for small, large in zip(rows, rows[1:]):
        per_small = small["total_ms"] / small["filters"]
        per_large = large["total_ms"] / large["filters"]
        steps.append({"from": small["filters"], "to": large["filters"],
                      "time_per_filter_ratio": round(per_large / per_small, 2) if per_small else None})
    return steps


def profile_stage(filters: int, count: int = 15) -> dict:
    """cProfile (CPU time) of the whole decode + plan at `filters`: where the time goes."""
    import cProfile
    import pstats

    from .profiles import summarize

    text = rendered_store(filters)
    stages = _stages(text, filters)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    done = {}
    for stage, run in stages:
        done[stage] = run(done)
    profile.disable()
    return dict(summarize(pstats.Stats(profile), count), filters=filters)


def gc_share(filters: int, repeat: int = 3) -> dict:
    """decode_store's CPU time per filter with Python's cyclic garbage collector on and off: how
    much of a growth in cost per filter the collector's passes over a growing heap explain."""
    tree = registry.parse_reg_query(rendered_store(filters))
    best = {}
    for collector in (True, False):
        best[collector] = float("inf")
        for _ in range(repeat):
            gc.collect()
            if not collector:
                gc.disable()
            started = time.process_time()
            state = registry.decode_store(tree)
            best[collector] = min(best[collector], time.process_time() - started)
            gc.enable()
            del state
    return {"filters": filters, "decode_us_per_filter": round(1e6 * best[True] / filters, 2),
            "decode_us_per_filter_gc_off": round(1e6 * best[False] / filters, 2)}

