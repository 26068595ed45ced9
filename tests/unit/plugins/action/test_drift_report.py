"""The drift_report action's merge of sliced drift checks (option runs) and its one-sentence summary."""
import pytest

from ansible_collections.winsec.ipsec.plugins.action.drift_report import merge_runs, summary
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import drift


def record(host, status="in_sync"):
    return dict(drift.host_record(None, host, "Baseline"), status=status, in_sync=status == "in_sync", errors=[])


def run(hosts, records, key="winsec_ipsec_drift_7"):
    return {"format": 1, "published_as": key, "hosts": hosts, "records": records}


def test_runs_add_their_records_and_hosts_and_the_report_is_the_one_run_report():
    runs = [run(["win1", "win4"], [record("win1"), record("win4", "drift")]),
            run(["win2", "ghost"], [record("win2")], "winsec_ipsec_drift_8")]
    records, hosts, published = merge_runs(runs, [], [])
    assert published == ["winsec_ipsec_drift_7", "winsec_ipsec_drift_8"]
    assert [r["host"] for r in records] == ["win1", "win4", "win2"] and hosts == ["win1", "win4", "win2", "ghost"]
    merged = drift.build_report(records, hosts, generated="t")
    one = drift.build_report([record("win1"), record("win4", "drift"), record("win2")],
                             ["ghost", "win1", "win2", "win4"], generated="t")
    assert merged == one
    assert summary(merged, {"html": "/r/drift.html", "json": "/r/drift.json"}) == (
        "4 hosts: 2 in sync, 1 drifting, 1 errors, 0 with an emergency block in place. Drifting: win4. "
        "Errors: ghost. Report: /r/drift.html")
    assert summary(merged, {"json": "/r/drift.json"}).endswith("Report: /r/drift.json")


@pytest.mark.parametrize("runs, message", [
    ([{"hosts": [], "records": []}], r"runs\[0\]: not what drift_check.yml publishes"),
    ([run(["win1"], "win1")], r"runs\[0\]: not what drift_check.yml publishes"),
    ([run(["win1"], [record("win1")]), run(["win1"], [record("win1")])],
     r"runs\[1\]: host win1 was checked in runs\[0\] too"),
])
def test_runs_that_do_not_fit_are_refused(runs, message):
    with pytest.raises(ValueError, match=message):
        merge_runs(runs, [], [])
    with pytest.raises(ValueError, match=r"runs\[0\]: host win1 was checked in records too"):
        merge_runs([run(["win1"], [record("win1")])], [record("win1")], [])
