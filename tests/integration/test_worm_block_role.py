"""Role worm_block through playbooks/emergency_block.yml and unblock.yml, over WinRM against winsim:
one task per host on the success path; the block lands in the policy the host has assigned (which
stays in force) or in the block's own policy; a second run changes nothing; the undo restores each
host exactly; bad or removed variables fail before any host is contacted; the rollout record is
written as JSON and as an HTML page that a real headless Chromium renders."""
import json
import os
import subprocess

import lxml.html
import pytest

from test_drift_check import CHROMIUM, chromium
from test_modules_kb import RoundTrips
from test_safety_traps import assign_domain_policy
from winsim.state.firewall import Packet, _collect, effective_entries, packet_verdict
from winsim.state.registry import LOCAL_ROOT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALLBACKS = os.path.join(REPO, "tests", "integration", "playbooks", "callback_plugins")
OWN = "winsec-emergency UDP 1434"
OWN_LINE = "blocked and verified; static: own policy %s added and assigned; dynamic filters: 2" % OWN
BASELINE = "Corp <i>Baseline</i> & Telnet"
BASELINE_PLAY = """
- name: Assign a baseline that blocks Telnet
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: The baseline
      winsec.ipsec.ipsec_policy:
        name: {policy}
        assigned: true
        rules:
          - name: Block Telnet
            filters: ['*=0:23:TCP']
"""
# The page's status colours (rollout_record.py _CSS): done, failed, not reached.
COLOURS = {"done": (0x1A, 0x7F, 0x37), "failed": (0xB4, 0x23, 0x18)}


def record_dir(estate):
    return os.path.join(os.path.dirname(estate.inventory_path), "record")


def play(estate, env, playbook, *extra):
    """ansible-playbook on the estate; the rollout record goes next to its inventory."""
    env = dict(env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS)
    path = playbook if os.path.isabs(playbook) else os.path.join(REPO, "playbooks", playbook)
    argv = ["ansible-playbook", "-i", estate.inventory_path, path, "-e", "rollout_record_dir=" + record_dir(estate),
            *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def recap(out):
    """{host: {'ok': n, 'changed': n, 'failed': n, ...}} from the PLAY RECAP."""
    hosts = {}
    for line in out.split("PLAY RECAP")[-1].splitlines():
        if " : " in line:
            name, counts = line.split(" : ", 1)
            hosts[name.strip()] = {k: int(v) for k, v in (p.split("=") for p in counts.split())}
    return hosts


def summary(out):
    """(headline, {host: result}) from the summary task's output (the default callback prints JSON)."""
    assert "TASK [Per-host result]" in out, out[-4000:]
    after = out.split("TASK [Per-host result]", 1)[1]
    body = after[after.index("=> {") + 3:]
    lines = json.loads(body[:body.index("\n}") + 2])["msg"]
    assert lines[-1].startswith("rollout record: "), lines
    return lines[0], dict(line.split(": ", 1) for line in lines[1:-1])


def rerun_changes_nothing_then_unblock(estate, env):
    """emergency_block.yml again (nothing may change), then unblock.yml (must succeed)."""
    again = play(estate, env, "emergency_block.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(c["changed"] == 0 for h, c in recap(again.stdout).items() if h != "localhost")
    undo = play(estate, env, "unblock.yml")
    assert undo.returncode == 0, undo.stdout[-4000:]
    return again, undo


def filtering(sims, port, protocol):
    """What each host enforces, for a failed `blocks` assertion."""
    lines = []
    for sim in sims:
        packet = Packet("10.0.0.5", sim.address, protocol, 50000, port)
        store = sim.hive.load_store(LOCAL_ROOT)
        lines.append("%s %s %s: verdict %r; agent %s; domain %r; generation %s; assigned %r; policies %r; exempt %r; "
                     "entries %r; fresh %r" % (
                         sim.name, sim.personality.name, sim.address, packet_verdict(sim, packet), sim.agent_running,
                         sim.domain_assignment(), sim._generation, store.assigned,
                         [(p.name, [(r.name, r.filterlist, r.filteraction, r.active) for r in p.rules])
                          for p in store.policies], getattr(sim, "exempt_in_effect", None),
                         effective_entries(sim), _collect(sim)))
    return "\n".join(lines)


def blocks(sim, port, protocol):
    """Whether the host's filtering drops traffic from elsewhere to its `port`."""
    return packet_verdict(sim, Packet("10.0.0.5", sim.address, protocol, 50000, port)) is not None


@pytest.mark.winsim(count=2, personalities=("modern", "xp"))
def test_block_verify_idempotent_and_undo(estate, ansible_env):
    trips = RoundTrips(estate)
    first = play(estate, ansible_env, "emergency_block.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    headline, results = summary(first.stdout)
    assert headline == "2 hosts: 2 blocked and verified, 0 failed, 0 not reached"
    assert results == {served.name: OWN_LINE for served in estate.hosts}
    for served in estate.hosts:
        state = served.host.state()
        assert state.assigned == OWN                          # nothing was assigned: the block's own policy
        assert [r.name for r in state.policy(OWN).rules if r.name] == [OWN]
        assert {(d.filter.dst_port, d.filter.protocol) for d in state.dynamic} == {(1434, 17)}
        assert len(state.dynamic) == 2 and blocks(served.host, 1434, 17)
        # one read and one write, whatever the block holds
        assert len(trips.calls[served.name]) == 2
    # The success path: a host ran one task (the recap counts no more for it; the wave stop is a meta
    # task the controller evaluates); the checks and the summary ran once, for the first host.
    counts = recap(first.stdout)
    assert counts[estate.hosts[-1].name] == {"ok": 1, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0,
                                              "rescued": 0, "ignored": 0}
    record = json.load(open(os.path.join(record_dir(estate), "emergency-block.json"), encoding="utf-8"))
    assert record["counts"] == {"hosts": 2, "done": 2, "failed": 0, "not_reached": 0}

    before_again = {s.name: len(trips.calls[s.name]) for s in estate.hosts}
    rerun_changes_nothing_then_unblock(estate, ansible_env)
    for served in estate.hosts:
        state = served.host.state()
        assert state.policy(OWN) is None and state.assigned == "" and state.dynamic == ()
        assert len(trips.calls[served.name]) - before_again[served.name] <= 4   # two runs, at most 2 commands each
    undo = json.load(open(os.path.join(record_dir(estate), "emergency-unblock.json"), encoding="utf-8"))
    assert undo["headline"] == "2 hosts: 2 unblocked and verified, 0 failed, 0 not reached"
    assert all(h["in_force"][0].endswith("was unassigned and deleted") for h in undo["hosts"].values())


@pytest.mark.winsim(count=4, personalities=("modern", "2003", "xp", "modern"))
def test_a_baseline_stays_in_force_the_undo_restores_it_and_the_record_renders(estate, ansible_env, tmp_path):
    """Three hosts (current, 2003, XP) have a baseline assigned that blocks Telnet: the block goes
    into it, Telnet stays blocked, the undo restores the hosts exactly. The fourth host is under a
    domain policy: dynamic filters only, and the record says where the persistent block belongs.
    The record's page, in a real browser, lists every host."""
    *kept, member = estate.hosts
    setup = tmp_path / "baseline.yml"
    setup.write_text(BASELINE_PLAY.format(hosts=":".join(s.name for s in kept), policy=json.dumps(BASELINE)))
    assert play(estate, ansible_env, str(setup)).returncode == 0
    assign_domain_policy(member.host)
    member.host.refresh_group_policy(force=True)         # gpupdate: the domain policy reaches the member
    assert member.host.domain_assignment() is not None
    before = {s.name: s.host.state() for s in estate.hosts}
    assert all(blocks(s.host, 23, 6) for s in kept), filtering([s.host for s in kept], 23, 6)

    out = play(estate, ansible_env, "emergency_block.yml", "-e", '{"emergency_waves": ["100%"]}')
    assert out.returncode == 0, out.stdout[-4000:]
    headline, results = summary(out.stdout)
    assert headline == "4 hosts: 4 blocked and verified, 0 failed, 0 not reached"
    for served in kept:
        assert results[served.name] == ("blocked and verified; static: 1 rule added to the assigned policy %s; "
                                        "dynamic filters: 2" % BASELINE)
        state = served.host.state()
        assert state.assigned == BASELINE and state.policy(OWN) is None
        assert sorted(r.name for r in state.policy(BASELINE).rules if r.name) == ["Block Telnet", OWN]
        assert blocks(served.host, 23, 6) and blocks(served.host, 1434, 17)      # the baseline stays in force
    assert results[member.name].startswith("blocked and verified; static: none, domain (GPO) policy")
    assert "playbooks/domain_rollout.yml" in results[member.name]
    assert member.host.state().assigned == before[member.name].assigned and blocks(member.host, 1434, 17)

    record = json.load(open(os.path.join(record_dir(estate), "emergency-block.json"), encoding="utf-8"))
    assert record["counts"] == {"hosts": 4, "done": 4, "failed": 0, "not_reached": 0}
    for served in kept:
        entry = record["hosts"][served.name]
        assert entry["in_force"][0] == ("the host's assigned policy %r stays assigned and in force; the block's "
                                        "rules are in it" % BASELINE)
        assert "+ rule %r in policy %r" % (OWN, BASELINE) in entry["changes"]
        assert not any(line.startswith("assigned policy:") for line in entry["changes"])
        assert entry["read_at"] and entry["written_at"] == entry["read_at"] and entry["commands"]
    assert "domain_rollout.yml" in record["hosts"][member.name]["in_force"][0]
    render_and_check(record_dir(estate), "emergency-block.html", {s.name: "done" for s in estate.hosts}, tmp_path,
                     texts=[BASELINE])

    out = play(estate, ansible_env, "unblock.yml")
    assert out.returncode == 0, out.stdout[-4000:]
    for served in estate.hosts:
        after = served.host.state()
        assert after.policies == before[served.name].policies and after.assigned == before[served.name].assigned
        assert after.filterlists == before[served.name].filterlists and after.dynamic == ()
    assert all(blocks(s.host, 23, 6) and not blocks(s.host, 1434, 17) for s in kept)


def render_and_check(directory, name, statuses, tmp_path, texts=()):
    """The page in a real headless Chromium: a row per host with its status, no script from hosts'
    text, each of `texts` shown as text, and a screenshot that is not blank and shows the colours."""
    assert os.access(CHROMIUM, os.X_OK), "chromium not found: `make browser` installs it (apt-get install -y chromium)"
    url = "file://" + os.path.join(directory, name)
    png = tmp_path / (name + ".png")
    dom = chromium("--dump-dom", url, profile=tmp_path / "chromium-dom")
    shot = chromium("--screenshot=" + str(png), "--window-size=1280,900", url, profile=tmp_path / "chromium-shot")
    try:
        dom_out, dom_err = dom.communicate(timeout=120)
        _, shot_err = shot.communicate(timeout=120)
    finally:
        for browser in (dom, shot):
            if browser.poll() is None:
                browser.kill()
    assert dom.returncode == 0, dom_err[-2000:]
    page = lxml.html.fromstring(dom_out)
    rows = {r.get("data-host"): r.get("data-status") for r in page.xpath("//table[@id='hosts']/tbody/tr")}
    assert rows == statuses
    assert not page.xpath("//script") and not page.xpath("//main//i")      # hosts' text stayed text
    assert all(text in page.text_content() for text in texts)
    assert shot.returncode == 0 and png.exists(), shot_err[-2000:]
    from PIL import Image
    with Image.open(png) as image:
        assert image.size == (1280, 900)
        colours = {rgb for _count, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert len(colours) > 100, "the screenshot looks blank: %d colours" % len(colours)
    wanted = {COLOURS[s] for s in statuses.values() if s in COLOURS}
    assert wanted <= colours, "status colours missing from the rendered page"
    return page


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_bad_ports_fail_naming_the_variable_and_reach_no_host(estate, ansible_env):
    trips = RoundTrips(estate)
    out = play(estate, ansible_env, "emergency_block.yml",
               "-e", '{"worm_block_ports": [{"protocol": "UDP", "port": "1434; x"}]}')
    assert out.returncode != 0
    assert "worm_block_ports" in out.stdout and "'port' is of type" in out.stdout, out.stdout[-3000:]
    assert trips.total() == 0 and estate.hosts[0].host.audit_entries() == []


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_removed_variables_fail_naming_them_and_reach_no_host(estate, ansible_env, tmp_path):
    trips = RoundTrips(estate)
    standalone = tmp_path / "role.yml"          # the role in a play of one's own
    standalone.write_text("- hosts: all\n  gather_facts: false\n  roles:\n    - role: winsec.ipsec.worm_block\n"
                          "      vars:\n        worm_block_assign: true\n")
    out = play(estate, ansible_env, str(standalone))
    assert out.returncode != 0
    assert ("worm_block_policy and worm_block_assign were removed in winsec.ipsec 2.0.0: the static rule now goes "
            "into the policy the host has assigned") in out.stdout, out.stdout[-2000:]
    out = play(estate, ansible_env, "emergency_block.yml", "-e", "worm_block_policy=Block UDP 1434 Filter")
    assert out.returncode != 0
    assert ("worm_block_policy and worm_block_assign were removed in winsec.ipsec 2.0.0: the static rule now goes "
            "into the policy the host has assigned") in out.stdout, out.stdout[-2000:]
    assert trips.total() == 0 and estate.hosts[0].host.audit_entries() == []


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_with_a_fact_cache_a_change_is_one_command_and_a_stale_fact_is_never_written(estate, ansible_env, tmp_path):
    """With Ansible's jsonfile fact cache the undo costs one WinRM command per host. Then another
    controller (no cache) assigns a baseline on one host: the cached fact says no policy is
    assigned, so a plan from it would assign the block's own policy over the baseline. The run's
    script finds the host changed and writes nothing; the block, planned again from what that
    script read, goes into the baseline, which stays assigned."""
    env = dict(ansible_env, ANSIBLE_CACHE_PLUGIN="jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    trips = RoundTrips(estate)

    def run(environment, playbook, *extra):
        seen = {s.name: len(trips.calls[s.name]) for s in estate.hosts}
        out = play(estate, environment, playbook, *extra)
        assert out.returncode == 0, out.stdout[-4000:]
        return out, {s.name: trips.calls[s.name][seen[s.name]:] for s in estate.hosts}

    _, cold = run(env, "emergency_block.yml")
    assert all(len(calls) == 2 for calls in cold.values())           # read, then write
    _, undo = run(env, "unblock.yml")
    assert all(len(calls) == 1 for calls in undo.values())           # the cached fact stood for the read
    assert all(s.host.state().assigned == "" and s.host.state().dynamic == () for s in estate.hosts)

    changed, same = estate.hosts
    setup = tmp_path / "baseline.yml"
    setup.write_text(BASELINE_PLAY.format(hosts=changed.name, policy=json.dumps(BASELINE)))
    run(ansible_env, str(setup))                                      # another controller: no cache
    out, again = run(env, "emergency_block.yml")
    assert len(again[same.name]) == 1 and same.host.state().assigned == OWN
    # the stale plan was never written: the first script changed nothing, the second wrote the block
    assert len(again[changed.name]) == 2
    assert not [e for e in again[changed.name][0] if e["changed"]]
    assert [e for e in again[changed.name][1] if e["changed"]]
    state = changed.host.state()
    assert state.assigned == BASELINE and state.policy(OWN) is None
    assert sorted(r.name for r in state.policy(BASELINE).rules if r.name) == ["Block Telnet", OWN]
    assert summary(out.stdout)[1][changed.name] == (
        "blocked and verified; static: 1 rule added to the assigned policy %s; dynamic filters: 2" % BASELINE)
