"""bench/run.py end to end at tiny sizes: every section runs and the results files hold what the
report needs. Counts are checked (a raw task is one WinRM command, the KB procedure eleven, the
emergency block two cold and one warm or with nothing to do); no timing is asserted."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
VARIANTS = ("a_waves", "a", "cold", "noop", "read", "warm", "c", "a_again", "a_waves_again")
KB_RAW_TASKS = 11      # bench/playbooks/kb_raw.yml: 9 netsh commands and 2 verify commands


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "build", "collections"), REPO]))
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "run.py"), "--quick", "--out", str(out),
                           "--variants", ",".join(VARIANTS), "--profile", "always", "--repeat", "1",
                           "--workdir", str(out / "work")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "latest.json", encoding="utf-8") as handle:
        data = json.load(handle)
    return data, (out / "latest.md").read_text(encoding="utf-8"), done.stdout


def test_rollout_variants_ran_on_every_host_and_were_counted(results):
    data, _md, _stdout = results
    estate = data["rollout"]["estates"]["2"]
    assert list(estate) == list(VARIANTS)
    for key, run in estate.items():
        assert run["rc"] == 0 and run["hosts_ok"] == 2 and run["hosts_failed"] == 0, (key, run)
        assert run["wall_s"] > 0 and run["cpu_controller_s"] > 0
        assert run["requests_per_host"] >= 3 * run["commands_per_host"] > 0
        assert run["bytes_sent_per_host"] > 0 and run["bytes_received_per_host"] > 0
    assert estate["a"]["commands_per_host"] == estate["a_waves"]["commands_per_host"] == 1
    assert estate["a"]["writes_per_host"] == 0 and estate["a"]["tool_runs_per_host"] == 0
    assert estate["c"]["commands_per_host"] == KB_RAW_TASKS and estate["c"]["writes_per_host"] >= 9
    # the emergency block: a read and a write cold; one command when the state is known; nothing to do
    # writes nothing
    assert estate["cold"]["commands_per_host"] == 2 and estate["cold"]["hosts_changed"] == 2
    assert estate["cold"]["writes_per_host"] > 0
    assert estate["read"]["commands_per_host"] == 1 and estate["read"]["writes_per_host"] == 0
    assert estate["warm"]["commands_per_host"] == 1 and estate["warm"]["hosts_changed"] == 2
    assert estate["noop"]["commands_per_host"] == 1 and estate["noop"]["hosts_changed"] == 0
    assert estate["noop"]["writes_per_host"] == 0
    # the ratios the issue asks for, each with its target and verdict
    ratios = {r["ratio"]: r for r in data["rollout"]["ratios"]["2"]}
    assert {"warm/a_waves", "cold/a_waves", "noop/a_waves", "c/warm"} <= set(ratios)
    assert all(r["wall_ratio"] > 0 and r["met"] == (r["miss_factor"] is None) for r in ratios.values())


def test_profile_engine_and_capacity_sections(results):
    data, _md, _stdout = results
    for key in ("a_waves", "cold"):
        workers = data["profile"][key]["workers"]
        assert workers["profiles"] >= 1 and workers["by_own_time"] and workers["by_cumulative_time"]
    rows = data["engine"]["rows"]
    assert [r["filters"] for r in rows] == [100, 1000]
    for row in rows:
        for stage in ("parse_reg_query", "decode_store", "plan_rule", "plan_policy"):
            assert row[stage + "_ms"] >= 0 and row[stage + "_peak_mb"] >= 0
    assert rows[1]["reg_query_bytes"] > rows[0]["reg_query_bytes"]
    assert len(data["engine"]["linearity"]) == 1
    capacity = data["capacity"]
    assert capacity["error_count"] == 0 and capacity["commands"] > 0 and capacity["requests_per_s"] > 0
    assert capacity["rss_idle_mb"] > 0


def test_sizing_section_measured_each_run_and_derived_the_table(results):
    data, md, stdout = results
    sizing = data["sizing"]
    assert set(sizing["fixed"]) == {"20-cold", "20-warm"}
    assert [(r["kind"], r["forks"], r["hosts"]) for r in sizing["runs"]] == [("cold", 2, 3), ("warm", 2, 3)]
    for run in list(sizing["fixed"].values()) + sizing["runs"]:
        assert run["rc"] == 0 and run["hosts_failed"] == 0, run
        # the main process is part of the controller tree, and both did work
        assert 0 < run["cpu_main_s"] < run["cpu_controller_s"]
        assert run["memory"]["samples"] >= 1 and run["memory"]["main_rss_peak_mb"] > 0
    # the 1-host runs touched one host: cold is a read and a write, warm one command
    assert sizing["fixed"]["20-cold"]["commands_per_host"] == 2 and sizing["fixed"]["20-warm"]["commands_per_host"] == 1
    assert [r["hosts"] for r in sizing["table"]] == [1000, 10000, 50000]
    for row in sizing["table"]:
        for cell in row["cells"].values():
            assert cell["limit"] in ("CPU", "main process", "forks x WinRM latency")
            assert cell["nodes"] is None or cell["nodes"] >= 1
    for heading in ("## 5. Sizing", "### Execution nodes to block an estate within 5 minutes",
                    "nodes = ceil(H / (R x (300 s - T_fixed)))"):
        assert heading in md and heading in stdout


def test_results_file_names_targets_and_sections(results):
    data, md, stdout = results
    whats = {t["what"] for t in data["targets"]}
    assert any(w.startswith("warm change") for w in whats) and any(w.startswith("the KB procedure") for w in whats)
    assert any(w.endswith("WinRM commands per host") for w in whats)
    assert any(w.startswith("linear 100 -> 1000") for w in whats)     # 10k only in the full run
    for t in data["targets"]:
        assert t["met"] in (True, False) and (t["met"] or t["miss"])
    for heading in ("## Targets", "## 1. Estate rollout", "## 2. WinRM commands per host", "## 3. Engine",
                    "## 4. winsim capacity"):
        assert heading in md
    assert "load average" in md and data["meta"]["load_start"] >= 0
    assert "## Targets" in stdout       # printed as well as written


def test_from_json_renders_the_same_file_again(results, tmp_path):
    data, md, _stdout = results
    source = tmp_path / "run.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "run.py"), "--from-json", str(source),
                           "--out", str(tmp_path / "again")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "again" / "latest.md").read_text(encoding="utf-8") == md


def run(wall, cpu):
    return {"wall_s": wall, "cpu_controller_s": cpu}


def test_ratios_divide_by_the_mean_of_the_floor_runs_and_judge_by_issue_11s_targets():
    """Worked by hand: the floor in waves ran 2 s and 4 s (mean 3 s; CPU 1 s and 3 s, mean 2 s).
    Issue 11's targets: warm <= 1.5, cold <= 2.2, nothing to do <= 1.2 times the floor, the KB by hand
    >= 4 times the warm rollout."""
    from bench import rollout
    results = {"a_waves": run(2.0, 1.0), "a_waves_again": run(4.0, 3.0), "warm": run(4.5, 3.0),
               "cold": run(7.5, 4.0), "noop": run(3.0, 2.0), "c": run(9.0, 5.0)}
    rows = {r["ratio"]: r for r in rollout.ratios(results)}
    assert set(rows) == {"warm/a_waves", "cold/a_waves", "noop/a_waves", "c/warm"}    # the rest lack a run
    shown = {k: (r["wall_ratio"], r["controller_cpu_ratio"], r["target"], r["met"], r["miss_factor"])
             for k, r in rows.items()}
    assert shown == {
        "warm/a_waves": (1.5, 1.5, "<= 1.5", True, None),        # 4.5 / 3, exactly on target
        "cold/a_waves": (2.5, 2.0, "<= 2.2", False, 1.14),       # 7.5 / 3; off by 2.5 / 2.2
        "noop/a_waves": (1.0, 1.0, "<= 1.2", True, None),
        "c/warm": (2.0, 1.67, ">= 4", False, 2.0),               # 9 / 4.5; a minimum missed by 4 / 2
    }
