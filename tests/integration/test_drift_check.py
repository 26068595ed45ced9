"""playbooks/drift_check.yml against a three-host winsim estate (modern, 2003, XP) plus an
unreachable host and one whose check fails, over real WinRM.

All three hosts are first brought to the baseline with the ipsec_baseline role (enforce); then
the 2003 host gets an extra permit rule with a hostile name. The drift check must name exactly that
host and that rule, report the unreachable and the failed one as errors, send nothing that changes a host (the
winsim audit logs prove it), and write an HTML page that a real headless Chromium renders.
"""
import base64
import datetime
import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import zlib

import lxml.etree
import lxml.html
import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(REPO, "playbooks", "drift_check.yml")
PERSONALITIES = ("modern", "2003", "xp")
SLAMMER = "Block UDP 1434 Filter"
EXTRA_RULE = "Permit <script>alert(1)</script> RDP"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The page's status colours (drift.py _CSS): the cards' borders and numbers are drawn in them.
COLOURS = {"in_sync": (0x1A, 0x7F, 0x37), "drift": (0x9A, 0x67, 0x00), "error": (0xB4, 0x23, 0x18),
           "emergency": (0x05, 0x50, 0xAE)}

SETUP = """
- name: Bring every host to the baseline
  hosts: all
  gather_facts: false
  roles:
    - role: winsec.ipsec.ipsec_baseline
      vars:
        ipsec_baseline_mode: enforce

- name: Let one host drift
  hosts: {drifter}
  gather_facts: false
  tasks:
    - name: Add a rule the baseline does not have
      winsec.ipsec.ipsec_rule:
        policy: {policy}
        name: {rule}
        action: permit
        filters: ['*=0:3389:TCP']

- name: An emergency block on another host (its rule goes into the assigned baseline policy)
  hosts: {blocked}
  gather_facts: false
  tasks:
    - name: Block TCP 445
      winsec.ipsec.ipsec_block:
        ports: [{{protocol: TCP, port: 445}}]
"""


def emergency_objects(served):
    """What the emergency block added to the host's store, as the drift record lists it."""
    state = served.host.state()
    return (["rule %r in policy %r" % (r.name, p.name) for p in state.policies for r in p.rules
             if r.name.startswith("winsec-emergency ")]
            + ["filter list %r" % fl.name for fl in state.filterlists if fl.name.startswith("winsec-emergency ")]
            + ["filter action %r" % fa.name for fa in state.filteractions if fa.name.startswith("winsec-emergency ")])


# Every module returns the state fact; the report takes the time the host was read from it.
READ_FROM_FACT = "host read (winsec_ipsec_state.read_at)"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ansible_playbook(env, cwd, *argv):
    out = subprocess.run(["ansible-playbook", *argv], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=300)
    return out.returncode, out.stdout + out.stderr


def unpack(text):
    """What a run published for a merge of sliced runs (filter winsec.ipsec.to_slice_artifact), read back."""
    prefix = "winsec.ipsec/zlib+base64:"
    assert text.startswith(prefix), text[:80]
    return json.loads(zlib.decompress(base64.b64decode(text[len(prefix):])))


def with_broken_hosts(estate, path):
    """The estate's inventory plus `ghost`, a host whose WinRM port nobody listens on, and `misfit`,
    the modern host again under a name whose check fails (it asks for ipseccmd, which modern Windows lacks)."""
    inventory = yaml.safe_load(open(estate.inventory_path, encoding="utf-8"))
    modern = next(s for s in estate.hosts if s.personality == "modern")
    inventory["all"].setdefault("hosts", {}).update({
        "ghost": {"ansible_host": modern.address, "ansible_port": 1, "ansible_winrm_scheme": "http"},
        "misfit": dict(estate.host_vars(modern), ipsec_baseline_dialect="ipseccmd")})
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    return path


def is_write(argv):
    """A command that changes IPsec state, whatever the audit log's `changed` says."""
    words = [a.lower() for a in argv]
    tool = os.path.basename(words[0]).removesuffix(".exe") if words else ""
    if tool == "netsh":
        return any(verb in words for verb in ("add", "set", "delete", "exec")) or "-f" in words
    if tool == "ipseccmd":
        return "show" not in words
    if tool == "reg":
        return len(words) > 1 and words[1] != "query"
    return tool in ("sc", "net", "gpupdate", "shutdown") and "query" not in words


def chromium(*args, profile):
    """Start headless Chromium (both runs go at once); .communicate() gives (stdout, stderr)."""
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + str(profile), *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.winsim(count=3, personalities=PERSONALITIES)
def test_drift_check_names_the_drifting_host_changes_nothing_and_renders(estate, ansible_env, tmp_path):
    names = {served.personality: served.name for served in estate.hosts}
    drifter, blocked = names["2003"], names["modern"]
    setup = tmp_path / "setup.yml"
    setup.write_text(SETUP.format(drifter=drifter, policy=json.dumps(SLAMMER), rule=json.dumps(EXTRA_RULE),
                                  blocked=blocked))
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, str(setup))
    assert rc == 0, output[-4000:]

    inventory = with_broken_hosts(estate, str(tmp_path / "with-broken.yml"))
    audit_seen = {s.name: len(s.host.audit_entries()) for s in estate.hosts}
    started = utc_now()
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", inventory, PLAYBOOK,   # default report dir
                                  "-e", '{"drift_run_info": {"ticket": "CHG-1234"}}')
    finished = utc_now()
    assert rc == 0, output[-4000:]

    # Nothing that changes state reached any host; each host was read.
    for served in estate.hosts:
        new = served.host.audit_entries()[audit_seen[served.name]:]
        assert new, "%s was not read" % served.name
        assert [e["argv"] for e in new if e["changed"] or is_write(e["argv"])] == [], served.name
    rules = [r.name for p in estate.host(drifter).host.state().policies for r in p.rules]
    assert EXTRA_RULE in rules                                   # the check left the drift in place

    report_dir = tmp_path / "drift-report"
    report = json.loads((report_dir / "drift.json").read_text(encoding="utf-8"))
    assert report["counts"] == {"hosts": 5, "in_sync": 2, "drift": 1, "error": 2, "emergency_block": 1}
    verdicts = {name: (h["status"], h["in_sync"]) for name, h in report["hosts"].items()}
    assert verdicts == {names["modern"]: ("in_sync", True), names["xp"]: ("in_sync", True),
                        drifter: ("drift", False), "ghost": ("error", False), "misfit": ("error", False)}
    # The emergency block is in place on `blocked`, and it is not drift.
    assert {n for n, h in report["hosts"].items() if h["emergency_block"]} == {blocked}
    added = emergency_objects(estate.host(blocked))
    assert added[0].startswith("rule 'winsec-emergency ") and added[0].endswith(" in policy %r" % SLAMMER)
    assert report["hosts"][blocked]["emergency"] == added
    assert report["hosts"][blocked]["commands"] == []

    # What an auditor asks: who ran it, where, with which collection, against what, read when.
    galaxy = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8"))
    run = report["run"]
    assert run["controller"] == socket.gethostname() and run["user"] == getpass.getuser()
    assert run["ticket"] == "CHG-1234"                           # drift_run_info, added by the user
    assert run["collection"]["version"] == galaxy["version"] and run["collection"]["source"].startswith("galaxy.yml")
    (baseline,) = report["baseline_definitions"]
    assert baseline["definition"]["rules"] == [
        {"name": "Block Inbound UDP 1434 Rule", "filters": ["*=0:1434:UDP"], "action": "block"},
        {"name": "Block Outbound UDP 1434 Rule", "filters": ["0=*:1434:UDP"], "action": "block"}]
    assert (baseline["definition"]["emergency"], baseline["definition"]["other_policies"]) == ("keep", "drift")
    assert baseline["hosts"] == list(report["hosts"])           # every host was checked against the same content
    assert report["hosts"]["ghost"]["read_at"] == ""             # never read: no time claimed
    for name in names.values():
        read_at = report["hosts"][name]["read_at"]
        assert started <= read_at <= finished, (name, read_at)
        assert report["hosts"][name]["read_at_source"] == READ_FROM_FACT
    drift = report["hosts"][drifter]
    assert drift["summary"] == ["- rule %r in policy %r" % (EXTRA_RULE, SLAMMER),
                                "- filter list %r" % EXTRA_RULE, "- filter action 'Permit'"]
    assert "Dest Port : 3389" in drift["diff"]["before"] and "Dest Port : 3389" not in drift["diff"]["after"]
    assert drift["commands"][0] == ('netsh ipsec static delete rule name="%s" policy="%s"' % (EXTRA_RULE, SLAMMER))
    assert drift["os"]["generation"] == "2003" and drift["assigned"] == SLAMMER
    assert report["hosts"]["ghost"]["errors"][0].startswith("unreachable: ")
    assert report["hosts"]["misfit"]["errors"][0].startswith("failed: ipseccmd is not available")
    assert report["hosts"][names["xp"]]["dialect"] == "ipseccmd"

    junit = lxml.etree.parse(str(report_dir / "drift.xml")).getroot()
    assert [junit.get(k) for k in ("tests", "failures", "errors")] == ["5", "1", "2"]
    assert junit.xpath("//testcase[failure]/@name") == [drifter]
    assert junit.xpath("//testcase[error]/@name") == ["ghost", "misfit"]
    assert junit.xpath("//testcase[@name='ghost']/error/@type") == ["unreachable"]
    assert "emergency block in place (not drift)" in junit.xpath("string(//testcase[@name='%s']/system-out)" % blocked)
    assert junit.xpath("//properties/property[@name='run.user']/@value") == [getpass.getuser()]

    # The page in a real browser: its DOM holds a row per host, and the screenshot is not blank.
    assert os.access(CHROMIUM, os.X_OK), "chromium not found: `make browser` installs it (apt-get install -y chromium)"
    url = (report_dir / "drift.html").as_uri()
    png = tmp_path / "drift.png"
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
    assert rows == {name: status for name, (status, _) in verdicts.items()}
    assert not page.xpath("//script")                            # the hostile rule name stayed text
    assert EXTRA_RULE in page.text_content()
    row = page.xpath("//table[@id='hosts']/tbody/tr[@data-host='%s']" % blocked)[0]
    assert row.xpath(".//span[contains(@class, 'badge')]/text()") == ["in sync", "emergency block in place"]
    assert getpass.getuser() in page.xpath("string(//section[@id='run'])")
    assert "*=0:1434:UDP" in page.xpath("string(//div[@id='baselines'])")

    assert shot.returncode == 0 and png.exists(), shot_err[-2000:]
    from PIL import Image
    with Image.open(png) as image:
        assert image.size == (1280, 900)
        colours = {rgb for _count, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert len(colours) > 100, "the screenshot looks blank: %d colours" % len(colours)
    assert all(rgb in colours for rgb in COLOURS.values()), "status colours missing from the rendered page"


ENFORCE = """
- name: Enforce the baseline
  hosts: all
  gather_facts: false
  roles:
    - role: winsec.ipsec.ipsec_baseline
      vars:
        ipsec_baseline_mode: enforce
"""

SCENE = """
- name: Set the scene
  hosts: all
  gather_facts: false
  tasks:
    - name: An emergency block (its rule goes into the assigned baseline policy)
      winsec.ipsec.ipsec_block:
        ports: [{{protocol: TCP, port: 445}}]
    - name: A rule the baseline does not have
      winsec.ipsec.ipsec_rule:
        policy: {policy}
        name: Permit RDP
        action: permit
        filters: ['*=0:3389:TCP']
    - name: Another policy, unassigned
      winsec.ipsec.ipsec_rule:
        policy: Old test policy
        name: Old rule
        filters: ['*=0:139:TCP']
"""


def policies(served):
    """{policy: [rule names]} and the assigned policy, as the emulated host holds them."""
    state = served.host.state()
    return ({p.name: sorted(r.name for r in p.rules if not r.default_response) for p in state.policies},
            state.assigned)


@pytest.mark.winsim(count=2, personalities=("modern", "2003"))
def test_enforce_leaves_an_emergency_block_alone_unless_told_and_allows_other_policies(estate, ansible_env, tmp_path):
    first, second = estate.hosts
    (tmp_path / "enforce.yml").write_text(ENFORCE)
    (tmp_path / "scene.yml").write_text(SCENE.format(policy=json.dumps(SLAMMER)))
    baseline_rules = ["Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"]
    for playbook in ("enforce.yml", "scene.yml"):
        rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, playbook)
        assert rc == 0, output[-4000:]
    added = emergency_objects(first)
    emergency_rules = [line.split("'")[1] for line in added if line.startswith("rule ")]
    emergency_actions = {line.split("'")[1] for line in added if line.startswith("filter action ")}
    assert emergency_rules and emergency_actions
    assert policies(first) == ({SLAMMER: sorted(baseline_rules + emergency_rules + ["Permit RDP"]),
                                "Old test policy": ["Old rule"]}, SLAMMER)

    # Default (keep): the extra rule and the other policy go, the emergency block stays as it was.
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, "enforce.yml")
    assert rc == 0, output[-4000:]
    for served in (first, second):
        assert policies(served) == ({SLAMMER: sorted(baseline_rules + emergency_rules)}, SLAMMER), served.name
        assert emergency_objects(served) == added, served.name
    # ... and the drift check calls that in sync with the block in place; with other policies allowed,
    # a new one is listed, not drift.
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, "scene.yml",
                                  "--limit", second.name)
    assert rc == 0, output[-4000:]
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, PLAYBOOK,
                                  "-e", "ipsec_baseline_other_policies=allow", "-e", "drift_report_dir=allow")
    assert rc == 0, output[-4000:]
    report = json.loads((tmp_path / "allow" / "drift.json").read_text(encoding="utf-8"))
    summary = {n: (h["status"], h["emergency_block"], h["other_policies"], h["summary"])
               for n, h in report["hosts"].items()}
    assert summary == {
        first.name: ("in_sync", True, [], []),
        second.name: ("drift", True, ["Old test policy"], ["- rule 'Permit RDP' in policy %r" % SLAMMER,
                                                           "- filter list 'Permit RDP'", "- filter action 'Permit'"])}
    assert report["baseline_definitions"][0]["definition"]["other_policies"] == "allow"

    # remove: the block counts as drift and enforce deletes it with the rest.
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, "enforce.yml",
                                  "--limit", second.name, "-e", "ipsec_baseline_emergency=remove")
    assert rc == 0, output[-4000:]
    assert policies(second) == ({SLAMMER: baseline_rules}, SLAMMER)
    assert emergency_objects(second) == []

    # The block's own policy in force: enforce refuses to lift it, and writes nothing.
    own = tmp_path / "own.yml"
    own.write_text("""
- hosts: all
  gather_facts: false
  tasks:
    - name: No policy assigned
      winsec.ipsec.ipsec_policy:
        name: %s
        assigned: false
    - name: So the block assigns its own policy
      winsec.ipsec.ipsec_block:
        ports: [{protocol: TCP, port: 445}]
""" % json.dumps(SLAMMER))
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, str(own), "--limit", second.name)
    assert rc == 0, output[-4000:]
    seen = len(second.host.audit_entries())
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, "enforce.yml",
                                  "--limit", second.name)
    assert rc == 2 and "would lift the block" in output and "ipsec_baseline_emergency: remove" in output, output[-4000:]
    assert [e["argv"] for e in second.host.audit_entries()[seen:] if e["changed"] or is_write(e["argv"])] == []
    assert policies(second)[1].startswith("winsec-emergency ")


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_role_variables_are_checked_before_any_connection_and_documented(estate, ansible_env, tmp_path):
    (tmp_path / "enforce.yml").write_text(ENFORCE)
    served = estate.hosts[0]
    seen = len(served.host.audit_entries())
    for bad, named in (('{"ipsec_baseline_assigned": "perhaps"}', "ipsec_baseline_assigned"),
                       ('{"ipsec_baseline_rules": [{"name": "r"}]}', "filters"),
                       ('{"ipsec_baseline_emergency": "ignore"}', "ipsec_baseline_emergency"),
                       ('{"ipsec_baseline_polling_interval": "often"}', "ipsec_baseline_polling_interval")):
        rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, "enforce.yml", "-e", bad)
        assert rc == 2 and "Validation of arguments failed" in output and named in output, (bad, output[-3000:])
    assert served.host.audit_entries()[seen:] == []              # nothing reached the host

    out = subprocess.run(["ansible-doc", "-t", "role", "winsec.ipsec.ipsec_baseline"], env=ansible_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    for option in ("ipsec_baseline_mode", "ipsec_baseline_emergency", "ipsec_baseline_other_policies",
                   "ipsec_baseline_rules"):
        assert option in out.stdout
    for name in ("drift_record", "drift_enforce_steps"):          # the role's filters are documented too
        out = subprocess.run(["ansible-doc", "-t", "filter", "winsec.ipsec." + name], env=ansible_env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "ERROR" not in out.stderr, out.stderr[-2000:]


KEY = "S3cretPsk-Drift-4417"
PSK_BASELINE = {
    "ipsec_baseline_name": "Partners baseline",
    "ipsec_baseline_rules": [
        {"name": "Partner SQL", "action": "permit", "filters": ["10.9.0.0/255.255.0.0=0:1433:TCP"],
         "auth": [{"kind": "psk", "value": KEY}, {"kind": "kerberos"}]},
        {"name": "Block Telnet", "filters": ["*=0:23:TCP"]}]}


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_a_baseline_with_a_key_is_reported_in_full_but_the_key_never(estate, ansible_env, tmp_path):
    """The report shows the baseline's content (15.5), and a pre-shared key is a secret: masked in the
    drift record, drift.json, drift.html and drift.xml, and absent from ansible-playbook's output at -v and
    from what the run publishes for a merge of sliced runs (set_stats, printed with show_custom_stats)."""
    (tmp_path / "enforce.yml").write_text(ENFORCE)
    (tmp_path / "baseline.json").write_text(json.dumps(PSK_BASELINE))
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, "enforce.yml",
                                  "-e", "@baseline.json")
    assert rc == 0, output[-4000:]
    rc, output = ansible_playbook(dict(ansible_env, ANSIBLE_SHOW_CUSTOM_STATS="1"), tmp_path,
                                  "-i", estate.inventory_path, PLAYBOOK, "-v", "-e", "@baseline.json")
    assert rc == 0, output[-4000:]
    (published,) = re.findall(r'"winsec_ipsec_drift_\w+": "(winsec\.ipsec/zlib\+base64:[A-Za-z0-9+/=]+)"',
                              output.split("CUSTOM STATS")[1])
    published = json.dumps(unpack(published))
    assert '"value": "********"' in published and KEY not in published     # the baseline published, its key masked
    assert KEY not in output
    report_dir = tmp_path / "drift-report"
    report = json.loads((report_dir / "drift.json").read_text(encoding="utf-8"))
    assert report["counts"]["in_sync"] == 1, report["hosts"]
    (baseline,) = report["baseline_definitions"]
    assert baseline["definition"]["rules"][0]["auth"] == [{"kind": "psk", "value": "********"}, {"kind": "kerberos"}]
    assert baseline["definition"]["rules"][0]["filters"] == ["10.9.0.0/255.255.0.0=0:1433:TCP"]
    for name in ("drift.json", "drift.html", "drift.xml"):
        assert KEY not in (report_dir / name).read_text(encoding="utf-8"), name
