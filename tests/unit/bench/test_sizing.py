"""The sizing arithmetic of bench/sizing.py against figures worked out by hand."""
import math

import pytest

from bench import sizing


def test_marginal_leaves_the_fixed_part_out():
    # 101 hosts cost 21 s, one host 1 s: the 100 hosts more cost 20 s, 0.2 s each
    assert sizing.marginal(21.0, 1.0, 101) == pytest.approx(0.2)
    assert sizing.marginal(5.0, 3.0, 1) == 5.0           # no second point: the total
    with pytest.raises(ValueError, match="hosts must be at least 1"):
        sizing.marginal(1.0, 1.0, 0)


def test_fork_seconds_is_the_requests_waits_plus_the_workers_cpu():
    assert sizing.fork_seconds(10, 0.02, 0.1) == pytest.approx(0.3)
    assert sizing.fork_seconds(10, 0.1, 0.1) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="must be >= 0"):
        sizing.fork_seconds(10, -0.02, 0.1)


def test_node_rate_cpu_bound():
    # 2 cores / 0.1 s = 20 hosts/s; main 1 / 0.02 = 50; forks 50 / 0.3 = 166.7
    rate = sizing.node_rate(0.1, 0.02, 0.3, 50, 2)
    assert rate["limit"] == "CPU" and rate["hosts_per_s"] == pytest.approx(20.0)
    assert rate["ceilings"]["main process"] == pytest.approx(50.0)
    assert rate["ceilings"]["forks x WinRM latency"] == pytest.approx(166.6667, rel=1e-4)


def test_node_rate_latency_bound_when_forks_wait_on_slow_hosts():
    # 5 forks, each busy 1.08 s per host (10 requests x 100 ms + 80 ms CPU): 4.63 hosts/s < CPU's 20
    rate = sizing.node_rate(0.1, 0.02, sizing.fork_seconds(10, 0.1, 0.08), 5, 2)
    assert rate["limit"] == "forks x WinRM latency"
    assert rate["hosts_per_s"] == pytest.approx(5 / 1.08)
    # more forks lift the same node to its CPU
    assert sizing.node_rate(0.1, 0.02, 1.08, 200, 2)["limit"] == "CPU"


def test_node_rate_main_process_bound_on_a_bigger_node():
    # 4 cores: CPU 40 hosts/s, but the strategy's one process at 80 ms per host does 12.5
    rate = sizing.node_rate(0.1, 0.08, 0.3, 200, 4)
    assert rate["limit"] == "main process" and rate["hosts_per_s"] == pytest.approx(12.5)
    # with no main-process cost measured its ceiling is no limit at all
    assert sizing.node_rate(0.1, 0.0, 0.3, 50, 2)["ceilings"]["main process"] == math.inf


def test_node_rate_rejects_what_it_cannot_divide_by():
    for args in ((0, 0.02, 0.3, 50, 2), (0.1, 0.02, 0, 50, 2), (0.1, 0.02, 0.3, 0, 2), (0.1, 0.02, 0.3, 50, 0)):
        with pytest.raises(ValueError, match="must be > 0"):
            sizing.node_rate(*args)


def test_nodes_needed():
    # 20 hosts/s for the 250 s the 50 s fixed part leaves: 5,000 hosts per node
    assert sizing.nodes_needed(1000, 20.0, 50.0) == 1
    assert sizing.nodes_needed(10000, 20.0, 50.0) == 2
    assert sizing.nodes_needed(50000, 20.0, 50.0) == 10          # exactly 10 nodes' worth: not 11
    assert sizing.nodes_needed(50001, 20.0, 50.0) == 11
    assert sizing.nodes_needed(0, 20.0, 50.0) == 0
    assert sizing.nodes_needed(1000, 20.0, 50.0, budget_s=60.0) == 5     # 200 hosts per node
    # the fixed part alone fills the budget: no number of nodes makes it
    assert sizing.nodes_needed(1000, 20.0, 300.0) is None
    assert sizing.nodes_needed(1000, 20.0, 301.0) is None
    with pytest.raises(ValueError, match="the rate > 0"):
        sizing.nodes_needed(1000, 0.0, 50.0)


def _run(kind, latency, forks, hosts, cpu, main, winsim=5.0, requests=10.0, wall=30.0):
    return {"kind": kind, "latency_ms": latency, "forks": forks, "hosts": hosts, "cpu_controller_s": cpu,
            "cpu_main_s": main, "cpu_winsim_s": winsim, "requests_per_host": requests, "wall_s": wall,
            "rc": 0, "hosts_failed": 0, "hosts_per_min": 60 * hosts / wall, "load_before": 1.0}


def _sizing(latencies=(20, 1000)):
    runs, fixed = [], {}
    for latency in latencies:
        for kind in sizing.KINDS:
            fixed["%d-%s" % (latency, kind)] = _run(kind, latency, 50, 1, 1.0, 1.0, winsim=1.0, wall=20.0)
            for forks in (50, 200):
                runs.append(_run(kind, latency, forks, 101, 21.0, 3.0))
    return {"node_cores": 2, "latencies_ms": list(latencies), "forks": [50, 200], "runs": runs, "fixed": fixed,
            "hosts": 101}


def test_derive_and_table_from_known_runs():
    data = _sizing()
    d = sizing.derive(data["runs"], data["fixed"], 20, "cold", 50)
    # c = (21 - 1) / 100 = 0.2, main (3 - 1) / 100 = 0.02, worker 0.18; t_fork = 10 x 0.02 + 0.18 = 0.38
    assert d["cpu_s"] == pytest.approx(0.2) and d["main_s"] == pytest.approx(0.02)
    assert d["fork_s"] == pytest.approx(0.38) and d["fixed_s"] == 20.0
    assert d["winsim_s"] == pytest.approx(0.04)
    rows = {(r["latency_ms"], r["hosts"]): r["cells"] for r in sizing.table(data)}
    # 20 ms: CPU-bound at 2 / 0.2 = 10 hosts/s, 280 s after the 20 s fixed: 2,800 hosts per node
    assert {k: c["nodes"] for k, c in rows[(20, 1000)].items()} == {"cold-50": 1, "cold-200": 1, "warm-50": 1,
                                                                    "warm-200": 1}
    assert rows[(20, 10000)]["cold-50"] == {"nodes": 4, "limit": "CPU", "hosts_per_min": 600, "fixed_s": 20.0}
    assert rows[(20, 50000)]["cold-200"]["nodes"] == 18                   # 50,000 / 2,800 = 17.9
    # 1,000 ms: t_fork = 10 x 1 + 0.18 = 10.18 s; 50 forks do 4.91 hosts/s, 1,375 per node; 200 forks: CPU again
    assert rows[(1000, 10000)]["cold-50"]["limit"] == "forks x WinRM latency"
    assert rows[(1000, 10000)]["cold-50"]["nodes"] == 8                   # 10,000 / 1,375.2 = 7.3
    assert rows[(1000, 10000)]["cold-200"] == {"nodes": 4, "limit": "CPU", "hosts_per_min": 600, "fixed_s": 20.0}


def test_table_says_none_when_the_fixed_part_fills_the_budget():
    data = _sizing(latencies=(20,))
    data["fixed"]["20-warm"]["wall_s"] = 300.0
    rows = sizing.table(data)
    assert all(r["cells"]["warm-50"]["nodes"] is None for r in rows)
    assert all(r["cells"]["cold-50"]["nodes"] >= 1 for r in rows)


def test_run_limit_names_the_largest_share():
    # winsim 9 CPU s in 10 s: 0.9 of its one core; the controller's main process 3 s: 0.3
    run = _run("cold", 20, 50, 100, cpu=6.0, main=3.0, winsim=9.0, wall=10.0)
    limit = sizing.run_limit(run, cores=2, fork_s=0.3)
    assert limit["limit"] == "winsim (one process)" and limit["share"] == 0.9
    assert limit["shares"]["machine CPU (controller + winsim)"] == 0.75        # 15 s / 10 s / 2 cores
    assert limit["shares"]["forks x WinRM latency"] == 0.06                     # 10 hosts/s of 50 / 0.3
    # forks waiting on latency: 100 hosts in 10 s with 5 forks busy 0.5 s each (10 hosts/s allowed)
    slow = _run("cold", 100, 5, 100, cpu=2.0, main=0.5, winsim=1.0, wall=10.0)
    assert sizing.run_limit(slow, cores=2, fork_s=0.5)["limit"] == "forks x WinRM latency"


def test_node_memory_is_main_plus_one_private_share_per_fork():
    assert sizing.node_memory_mb({"main_rss_peak_mb": 70.0, "worker_uss_median_mb": 16.0}, 200) == 3270.0
    assert sizing.node_memory_mb({"main_rss_peak_mb": 70.0, "worker_uss_median_mb": None}, 200) is None


def test_run_limit_under_the_saturation_share_names_no_ceiling():
    # 10 s of wall: winsim 3 s (0.3 of its core), main 2 s, both sides 8 s of 2 cores (0.4): nothing full
    run = _run("cold", 20, 50, 100, cpu=5.0, main=2.0, winsim=3.0, wall=10.0)
    limit = sizing.run_limit(run, cores=2, fork_s=0.3)
    assert limit["limit"] == "no ceiling reached: the CPU went to other processes"
    assert limit["largest"] == "machine CPU (controller + winsim)" and limit["share"] == 0.4


def test_table_for_a_bigger_node_reaches_the_main_process_ceiling():
    # 16 cores: CPU 16 / 0.2 = 80 hosts/s, but the main process's 1 / 0.02 = 50 is lower
    rows = {(r["latency_ms"], r["hosts"]): r["cells"] for r in sizing.table(_sizing(), cores=16)}
    assert rows[(20, 50000)]["cold-200"]["limit"] == "main process"
    assert rows[(20, 50000)]["cold-200"]["nodes"] == 4                   # 50,000 / (50 x 280) = 3.6
    assert rows[(20, 50000)]["cold-200"]["hosts_per_min"] == 3000
    # at 1,000 ms, 50 forks still wait on the hosts: 4.91 hosts/s
    assert rows[(1000, 10000)]["cold-50"]["limit"] == "forks x WinRM latency"


def test_derive_falls_back_to_the_average_when_the_marginal_cost_is_noise():
    data = _sizing(latencies=(20,))
    # 3 hosts cost less than 1 did (load noise): (1.8 - 2.0) / 2 < 0; the average is 1.8 / 3 = 0.6
    run = sizing._run(data["runs"], 20, "cold", 50)
    run.update(hosts=3, cpu_controller_s=1.8, cpu_main_s=0.9)
    data["fixed"]["20-cold"].update(cpu_controller_s=2.0, cpu_main_s=1.0)
    d = sizing.derive(data["runs"], data["fixed"], 20, "cold", 50)
    assert d["averaged"] is True
    assert d["cpu_s"] == pytest.approx(0.6) and d["main_s"] == pytest.approx(0.3)
    assert d["fork_s"] == pytest.approx(10 * 0.02 + 0.3)
    assert sizing.derive(data["runs"], data["fixed"], 20, "warm", 50)["averaged"] is False


def test_a_failed_run_gives_no_figure_and_the_others_still_do():
    data = _sizing(latencies=(20,))
    sizing._run(data["runs"], 20, "cold", 200).update(rc=2, hosts_failed=3)
    data["fixed"]["20-warm"]["cpu_main_s"] = None          # the launcher never wrote its CPU split
    assert sizing.derive(data["runs"], data["fixed"], 20, "cold", 200) is None
    assert sizing.derive(data["runs"], data["fixed"], 20, "warm", 50) is None
    rows = sizing.table(data)
    assert all(r["cells"]["cold-200"]["limit"] == sizing.FAILED and r["cells"]["cold-200"]["nodes"] is None
               for r in rows)
    assert all(r["cells"]["warm-50"]["limit"] == sizing.FAILED for r in rows)
    assert [r["cells"]["cold-50"]["nodes"] for r in rows] == [1, 4, 18]     # as hand-worked above
    derived = sizing.derived(dict(data, cpus=2))
    assert sizing._run(derived["runs"], 20, "cold", 200)["limited_by"] is None
    text = "\n".join(sizing.render(derived, None, lambda header, rows: [repr(r) for r in rows]))
    assert sizing.FAILED in text
