"""playbooks/drift_check.yml against a three-host winsim estate (modern, 2003, XP) plus an
unreachable host and one whose check fails, over real WinRM.

All three hosts are first brought to the baseline with the ipsec_baseline role (enforce); then
the 2003 host gets an extra permit rule with a hostile name. The drift check must name exactly that
host and that rule, report the unreachable and the failed one as errors, send nothing that changes a host (the
winsim audit logs prove it), and write an HTML page that a real headless Chromium renders.
"""
import json
import os
import shutil
import subprocess

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
COLOURS = {"in_sync": (0x1A, 0x7F, 0x37), "drift": (0x9A, 0x67, 0x00), "error": (0xB4, 0x23, 0x18)}

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
"""


def ansible_playbook(env, cwd, *argv):
    out = subprocess.run(["ansible-playbook", *argv], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=300)
    return out.returncode, out.stdout + out.stderr


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
    drifter = names["2003"]
    setup = tmp_path / "setup.yml"
    setup.write_text(SETUP.format(drifter=drifter, policy=json.dumps(SLAMMER), rule=json.dumps(EXTRA_RULE)))
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", estate.inventory_path, str(setup))
    assert rc == 0, output[-4000:]

    inventory = with_broken_hosts(estate, str(tmp_path / "with-broken.yml"))
    audit_seen = {s.name: len(s.host.audit_entries()) for s in estate.hosts}
    rc, output = ansible_playbook(ansible_env, tmp_path, "-i", inventory, PLAYBOOK)   # default report dir
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
    assert report["counts"] == {"hosts": 5, "in_sync": 2, "drift": 1, "error": 2}
    verdicts = {name: (h["status"], h["in_sync"]) for name, h in report["hosts"].items()}
    assert verdicts == {names["modern"]: ("in_sync", True), names["xp"]: ("in_sync", True),
                        drifter: ("drift", False), "ghost": ("error", False), "misfit": ("error", False)}
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

    assert shot.returncode == 0 and png.exists(), shot_err[-2000:]
    from PIL import Image
    with Image.open(png) as image:
        assert image.size == (1280, 900)
        colours = {rgb for _count, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert len(colours) > 100, "the screenshot looks blank: %d colours" % len(colours)
    assert all(rgb in colours for rgb in COLOURS.values()), "status colours missing from the rendered page"
