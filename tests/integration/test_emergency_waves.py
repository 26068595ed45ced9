"""playbooks/emergency_block.yml (and unblock.yml) when hosts fail, over WinRM against winsim: the
rollout stops at the failing wave and leaves later waves untouched, yet the run still ends with the
per-host summary, the failed hosts failed in the PLAY RECAP and a non-zero exit code."""
import json
import os

import pytest
import yaml

from test_modules_kb import RoundTrips
from test_worm_block_role import OWN, OWN_LINE, play, recap, record_dir, summary

BLOCKED = OWN_LINE
NOT_REACHED = "NOT blocked, not reached: the rollout stopped after a failed wave"
STEP_FAILED = "NOT blocked, failed: step 1 of "


def untouched(served, trips):
    """Not one WinRM command reached the host and nothing in its store changed."""
    return trips.calls[served.name] == [] and served.host.audit_entries() == [] \
        and served.host.state().assigned == "" and served.host.state().dynamic == ()


def take_offline(estate, served):
    """Point the inventory at a port where nothing listens: connection refused, as for a host that is down."""
    with open(estate.inventory_path) as handle:
        inventory = yaml.safe_load(handle)
    for group in inventory["all"]["children"]["windows"]["children"].values():
        if served.name in group["hosts"]:
            group["hosts"][served.name]["ansible_port"] = 1
    path = os.path.join(os.path.dirname(estate.inventory_path), "offline.yml")
    with open(path, "w") as handle:
        yaml.safe_dump(inventory, handle)
    estate.inventory_path = path


def canary_stopped_the_rollout(estate, ansible_env, reason):
    """Run the rollout with a failing canary (the first host): rc != 0, the summary names every host,
    the canary failed with `reason` (a prefix), the later hosts untouched and absent from the recap."""
    canary, *later = estate.hosts
    trips = RoundTrips(estate)
    out = play(estate, ansible_env, "emergency_block.yml")
    assert out.returncode != 0
    headline, results = summary(out.stdout)
    assert headline == "%d hosts: 0 blocked and verified, 1 failed, %d not reached" % (len(estate.hosts), len(later))
    assert results[canary.name].startswith("NOT blocked, failed: " + reason), results
    assert all(results[s.name] == NOT_REACHED for s in later), results
    assert all(untouched(s, trips) for s in later)
    counts = recap(out.stdout)
    assert counts[canary.name]["failed"] == 1 and not any(s.name in counts for s in later)
    # the rollout record says the same, with the canary's reason and no time for hosts never reached
    with open(os.path.join(record_dir(estate), "emergency-block.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["failed"] == [canary.name] and record["counts"]["not_reached"] == len(later)
    assert record["hosts"][canary.name]["line"] == results[canary.name]
    assert all(record["hosts"][s.name]["read_at"] is None for s in later)
    return results[canary.name]


@pytest.mark.winsim(count=4, personalities=("modern",))
def test_failed_canary_stops_the_rollout_and_the_summary_still_comes(estate, ansible_env):
    canary = estate.hosts[0]
    canary.host.configure(fail_step=1)      # its first state-changing command fails
    canary_stopped_the_rollout(estate, ansible_env, "step 1 of ")
    assert canary.host.state().dynamic == ()        # the module undid its own partial change


@pytest.mark.winsim(count=3, personalities=("modern",))
def test_unreachable_canary_is_reported_failed_and_stops_the_rollout(estate, ansible_env):
    take_offline(estate, estate.hosts[0])
    assert "Connection refused" in canary_stopped_the_rollout(estate, ansible_env, "unreachable: ")


@pytest.mark.winsim(count=6, personalities=("modern",))
def test_wave_over_the_limit_stops_before_the_next_wave(estate, ansible_env):
    canary, w2a, w2b, w2c, w3a, w3b = estate.hosts          # waves: 1, 3, the rest
    w2a.host.configure(fail_step=1)
    w2b.host.configure(stop_service=True)                    # the module refuses: PolicyAgent stopped
    trips = RoundTrips(estate)
    out = play(estate, ansible_env, "emergency_block.yml",
               "-e", '{"emergency_waves": [1, 3, "100%"], "emergency_max_fail_percentage": 50}')
    assert out.returncode != 0
    headline, results = summary(out.stdout)
    assert headline == "6 hosts: 2 blocked and verified, 2 failed, 2 not reached"
    assert results[canary.name] == results[w2c.name] == BLOCKED
    assert results[w2a.name].startswith(STEP_FAILED)
    assert results[w2b.name].startswith("NOT blocked, failed: ") and "PolicyAgent" in results[w2b.name]
    assert results[w3a.name] == results[w3b.name] == NOT_REACHED
    assert untouched(w3a, trips) and untouched(w3b, trips)
    assert w2c.host.state().assigned == OWN
    counts = recap(out.stdout)
    assert counts[w2a.name]["failed"] == counts[w2b.name]["failed"] == 1
    assert counts[canary.name]["failed"] == counts[w2c.name]["failed"] == 0


@pytest.mark.winsim(count=5, personalities=("modern",))
def test_wave_within_the_limit_goes_on_and_the_run_still_fails(estate, ansible_env):
    failing = estate.hosts[2]                                # 1 of wave 2's 3 hosts: 33 % <= 50 %
    failing.host.configure(fail_step=1)
    out = play(estate, ansible_env, "emergency_block.yml",
               "-e", '{"emergency_waves": [1, 3, "100%"], "emergency_max_fail_percentage": 50}')
    assert out.returncode != 0
    headline, results = summary(out.stdout)
    assert headline == "5 hosts: 4 blocked and verified, 1 failed, 0 not reached"
    assert results[failing.name].startswith("NOT blocked, failed: ")
    assert all(results[s.name] == BLOCKED and s.host.state().assigned == OWN
               for s in estate.hosts if s is not failing)
    assert recap(out.stdout)[failing.name]["failed"] == 1


@pytest.mark.winsim(count=2, personalities=("modern",))
def test_unblock_reports_each_host_and_fails_when_one_fails(estate, ansible_env):
    done, failing = estate.hosts
    assert play(estate, ansible_env, "emergency_block.yml").returncode == 0
    failing.host.configure(fail_step=1)
    out = play(estate, ansible_env, "unblock.yml")
    assert out.returncode != 0
    headline, results = summary(out.stdout)
    assert headline == "2 hosts: 1 unblocked and verified, 1 failed, 0 not reached"
    assert results[done.name] == ("unblocked and verified; static: policy %s removed after unassigning it; "
                                  "dynamic filters removed: 2" % OWN)
    assert results[failing.name].startswith("NOT unblocked, failed: ")
    assert done.host.state().policy(OWN) is None and failing.host.state().assigned == OWN
    assert recap(out.stdout)[failing.name]["failed"] == 1


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_check_mode_rollout_predicts_every_host_and_writes_nothing(estate, ansible_env):
    """--check is the dry run an admin makes first: it must pass verification on the predicted state
    (the dynamic filters only predicted by the first task included) and change nothing."""
    trips = RoundTrips(estate)
    out = play(estate, ansible_env, "emergency_block.yml", "--check")
    assert out.returncode == 0, out.stdout[-3000:]
    headline, results = summary(out.stdout)
    assert headline == "check mode, nothing written: 2 hosts: 2 blocked and verified, 0 failed, 0 not reached"
    assert all(results[s.name] == "check mode, would be " + BLOCKED for s in estate.hosts), results
    for served in estate.hosts:
        assert not [e for call in trips.calls[served.name] for e in call if e["changed"]]
        assert served.host.state().policies == () and served.host.state().dynamic == ()


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_a_single_host_is_one_host(estate, ansible_env):
    out = play(estate, ansible_env, "emergency_block.yml")
    assert out.returncode == 0, out.stdout[-3000:]
    assert summary(out.stdout)[0] == "1 host: 1 blocked and verified, 0 failed, 0 not reached"
