"""Secrets never show (issue 6, section 4): pre-shared keys and the connection's password.

One ansible-playbook run at -vvvvvv (the winrm connection then logs every command it sends and
its raw output) with --diff and ANSIBLE_LOG_PATH against modern and 2003 hosts (netsh) and an XP
host (ipseccmd, the key and Kerberos in one `-a` list): a rule with a PSK in check mode, the same
rule failing at an injected fault (the tool's error is all the output holds; on XP PowerShell's
error record echoes the script line, which names the stdin value, not the key), for real, again, a
key change, a commit-confirmed key change (its undo batch holds the old key), a policy whose rules
carry PSKs, ipsec_info, a PSK rule in the domain store (netsh -f script files), and a refused
change that carries a key. Every byte Ansible printed or logged, and every recorded result, is
searched for the secrets in every form they take on the way (plain, and the hex of their UTF-16LE
and UTF-8 bytes: `reg query` prints the stored rule blob as hex), also inside base64 blocks (the
encoded PowerShell scripts). The keys travel on the command's stdin, which no connection logs. The
one place a key must be is the host's own audit log: the tool's argv carries it (netsh `psk=`,
ipseccmd `-a P:`), as it does on Windows.
"""
import base64
import json
import os
import re
import subprocess

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALLBACKS = os.path.join(REPO, "tests", "integration", "playbooks", "callback_plugins")
KEYS = ("S3cretPsk-Alpha-7731", "S3cretPsk-Bravo-8842", "S3cretPsk-Charlie-9953")
POLICY = "Secure Partners"


def psk(key):
    return [{"kind": "psk", "value": key}, {"kind": "kerberos"}]


def tasks():
    rule = {"policy": POLICY, "name": "Partner SQL", "filters": ["10.9.0.0/255.255.0.0=0:1433:TCP"],
            "action": "permit", "auth": psk(KEYS[0])}
    domain = dict(rule, policy="Domain Partners", name="Domain SQL", store="domain", auth=psk(KEYS[2]))
    admin = "winsim_personality == 'modern'"
    return [
        {"name": "psk rule [check]", "winsec.ipsec.ipsec_rule": rule, "check_mode": True},
        # each host's first state-changing command fails (configure(fail_step=1)): nothing is changed
        {"name": "psk rule, injected failure [fails]", "winsec.ipsec.ipsec_rule": rule, "ignore_errors": True},
        {"name": "psk rule [run]", "winsec.ipsec.ipsec_rule": rule},
        {"name": "psk rule [again]", "winsec.ipsec.ipsec_rule": rule},
        {"name": "psk key changed [run]", "winsec.ipsec.ipsec_rule": dict(rule, auth=psk(KEYS[1]))},
        # its undo (the old key) waits in a batch file on the host; the result shows it masked
        {"name": "psk rule, confirmed [run]", "winsec.ipsec.ipsec_rule": dict(
            rule, name="Partner SQL 2", auth=psk(KEYS[0]), confirm_timeout=60)},
        {"name": "psk key changed, confirmed [run]", "winsec.ipsec.ipsec_rule": dict(
            rule, name="Partner SQL 2", auth=psk(KEYS[1]), confirm_timeout=60)},
        {"name": "policy with psk rules [run]", "winsec.ipsec.ipsec_policy": {
            "name": "Partner Policy", "assigned": True,
            "rules": [{"name": "Partner SMB", "filters": ["10.8.0.0/255.255.0.0=0:445:TCP"], "action": "permit",
                       "auth": psk(KEYS[2])}]}},
        {"name": "info", "winsec.ipsec.ipsec_info": {}},
        # the domain store (netsh -f script files; one administering host writes it)
        {"name": "domain psk rule [run]", "winsec.ipsec.ipsec_rule": domain, "when": admin},
        {"name": "domain psk rule [again]", "winsec.ipsec.ipsec_rule": domain, "when": admin},
        {"name": "domain psk key changed [run]", "winsec.ipsec.ipsec_rule": dict(domain, auth=psk(KEYS[1])),
         "when": admin},
        # ignore_errors last: when Ansible refuses the next task's arguments it quotes the playbook
        # lines just above that task, and a key written in plain in the playbook would show there
        {"name": "refused with a key [fails]", "winsec.ipsec.ipsec_policy": {
            "name": "Partner Policy", "assigned": True,
            "rules": [{"name": "Partner SMB", "filters": ["10.8.0.0/255.255.0.0=0:445:TCP"], "action": "permit",
                       "auth": psk(KEYS[2])},
                      {"name": "Cut WinRM", "filters": ["*=0:5985:TCP"], "action": "block", "auth": psk(KEYS[0])}]},
         "ignore_errors": True},
        {"name": "bad key [error]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            rule, auth=[{"kind": "psk", "value": KEYS[0] + "\n"}])},
    ]


def forms(secret):
    """A secret as it may travel: plain, and hex of its UTF-16LE / UTF-8 bytes (`reg query` prints a
    REG_BINARY value as one upper-case hex run; a .reg export as comma-separated lower-case bytes)."""
    found = {secret}
    for raw in (secret.encode("utf-16-le"), secret.encode("utf-8")):
        found |= {raw.hex().upper(), raw.hex(), ",".join("%02x" % b for b in raw)}
    return sorted(found)


def decoded_blocks(text):
    """Every long base64 run in `text`, decoded as UTF-16LE and as UTF-8 (scripts Ansible encoded)."""
    found = []
    for block in re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", text):
        try:
            raw = base64.b64decode(block + "=" * (-len(block) % 4))
        except ValueError:
            continue
        # UTF-16 at both byte alignments: a key inside a binary blob (ldifde prints ipsecData so) may start at either
        found += [raw.decode("utf-16-le", "ignore"), raw[1:].decode("utf-16-le", "ignore"),
                  raw.decode("utf-8", "ignore")]
    return found


@pytest.mark.winsim(count=3, personalities=("modern", "2003", "xp"))
def test_keys_and_password_appear_nowhere_but_the_tools_argv(estate, ansible_env, tmp_path):
    for served in estate.hosts:
        served.host.configure(fail_step=1)
    playbook = tmp_path / "secrets.yml"
    playbook.write_text(yaml.safe_dump([{"name": "secrets", "hosts": "all", "gather_facts": False,
                                         "tasks": tasks()}], sort_keys=False))
    log, record = tmp_path / "ansible.log", tmp_path / "results.jsonl"
    env = dict(ansible_env, ANSIBLE_LOG_PATH=str(log), ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
               ANSIBLE_CALLBACKS_ENABLED="winsec_record", WINSEC_RECORD=str(record))
    out = subprocess.run(["ansible-playbook", "-vvvvvv", "--diff", "-i", estate.inventory_path, str(playbook)],
                         env=env, capture_output=True, text=True, timeout=600)
    results = [json.loads(line) for line in record.read_text().splitlines()]
    by_task = {}
    for entry in results:
        by_task.setdefault(entry["task"], {})[entry["host"]] = entry
    sims = {served.host.personality: served.host for served in estate.hosts}

    # the playbook did what it says, so the search below is not over empty output
    for personality, sim in sims.items():
        def result(task):
            return by_task[task][sim.name]
        xp = personality == "xp"
        masked = " -a P:******** K" if xp else "psk=********"       # the key, then Kerberos
        check = result("psk rule [check]")["result"]
        assert check["changed"] and any(masked in c for c in check["commands"]), (personality, check)
        failed = result("psk rule, injected failure [fails]")
        assert failed["status"] == "failed", (personality, failed)
        if xp:
            # the tool's error went to stderr: PowerShell's error record quotes the script line
            assert "could not open the policy store" in failed["result"]["msg"], failed
            # (the stdin line that holds the key: 0, or 1 once the script body travels on stdin first)
            assert re.search(r"'-a' \$winsecin\[\d\] 'K'", failed["result"]["msg"]), failed
        run = result("psk rule [run]")["result"]
        assert run["changed"] and run["commands"] and run["diff"], (personality, run.get("msg"))
        # check mode predicted the run: the same commands, the same before/after
        assert (check["commands"], check["diff"]) == (run["commands"], run["diff"]), personality
        assert any("********" in c for c in run["commands"]), run["commands"]
        assert not result("psk rule [again]")["result"]["changed"], personality
        assert result("psk key changed [run]")["result"]["changed"], personality
        for task in ("psk rule, confirmed [run]", "psk key changed, confirmed [run]"):
            confirmed = result(task)["result"]
            assert confirmed["changed"] and confirmed["confirm"]["status"] == "confirmed", (task, confirmed)
        # the key change's undo puts the old key back: the undo batch holds it, the result masks it
        undo = result("psk key changed, confirmed [run]")["result"]["confirm"]["undo"]
        assert any(masked.strip() in line for line in undo), undo
        assert result("policy with psk rules [run]")["status"] == "ok", result("policy with psk rules [run]")
        refused = result("refused with a key [fails]")
        assert refused["status"] == "failed" and "allow_lockout" in refused["result"]["msg"], refused
        bad = result("bad key [error]")
        assert bad["status"] == "failed" and "auth[0].value" in bad["result"]["msg"], bad
        if personality == "modern":
            assert result("domain psk rule [run]")["result"]["changed"], result("domain psk rule [run]")
            assert not result("domain psk rule [again]")["result"]["changed"]      # the directory holds that key
            assert result("domain psk key changed [run]")["result"]["changed"]
        # the key really reached the host's tool (its argv, in the host's audit log) ...
        argv = [" ".join(e["argv"]) for e in sim.audit_entries() if e["changed"]]
        assert any(KEYS[1] in a for a in argv) and any(KEYS[2] in a for a in argv), (personality, argv)
        # ... and it is stored: the host decodes the rule with the new key
        [policy] = [p for p in sim.state().policies if p.name == POLICY]
        [rule] = [r for r in policy.rules if r.name == "Partner SQL"]
        assert [(a.kind, a.value) for a in rule.auth] == [("psk", KEYS[1]), ("kerberos", "")]

    shown = out.stdout + out.stderr + log.read_text() + record.read_text()
    assert "psk rule [run]" in out.stdout and "<127." in out.stdout      # verbose output, per host
    assert "WINRM EXEC" in out.stdout and "WINRM RESULT" in out.stdout    # the connection's own log is in it
    haystacks = [shown] + decoded_blocks(shown)
    for secret in KEYS + (estate.password,):
        for form in forms(secret):
            leaks = [h[max(0, h.find(form) - 200):h.find(form) + 100] for h in haystacks if form in h]
            assert not leaks, "%r leaked as %r:\n%s" % (secret, form, "\n---\n".join(leaks[:3]))
    # the scripts Ansible sent were searched too (the winrm connection logs them base64-encoded)
    assert len(haystacks) > 1 and "EncodedCommand" in shown


# ---- issue 12.2: every refusal path of `auth`, at default verbosity, -vvv, -vvvvvv and in the log file

REFUSED = ("S3cretRefused-Delta-1064", "S3cretRefused-Echo-2175")


# The keys come from a variables file given with -e @file, as a vault would give them: Ansible quotes
# the playbook lines above a task whose arguments it refuses, so a key written in a playbook shows.
KEY_VARS = {
    "quote": REFUSED[0] + '"',                      # netsh cannot take a double quote
    "xp_form": "'\" -w DS \"'" + REFUSED[0],          # the XP form of issue 12 (a quote, then a space)
    "quote_space": '"' + REFUSED[1] + " x",
    "tab": REFUSED[0] + "\t",
    "line_break": REFUSED[1] + "\nnext",
    "non_ascii": REFUSED[0] + "\u00e9",
    "line_separator": REFUSED[1] + "\u2028",
    "too_long": (REFUSED[0] + "-") * 50,
    "valid0": REFUSED[0],
    "valid1": REFUSED[1],
}


def refusal_tasks():
    """Each way a task carrying a key is refused, in ipsec_rule, ipsec_policy rules and the domain store."""
    rule = {"policy": POLICY, "name": "Refused SQL", "filters": ["10.9.0.0/255.255.0.0=0:1433:TCP"],
            "action": "permit"}
    policy = {"name": "Refused Policy", "rules": [{k: v for k, v in rule.items() if k != "policy"}]}
    tasks = []
    for label in [k for k in KEY_VARS if not k.startswith("valid")]:
        auth = [{"kind": "psk", "value": "{{ %s }}" % label}, {"kind": "kerberos"}]
        tasks.append({"name": "rule, %s [refused]" % label, "ignore_errors": True,
                      "winsec.ipsec.ipsec_rule": dict(rule, auth=auth)})
        tasks.append({"name": "policy rule, %s [refused]" % label, "ignore_errors": True,
                      "winsec.ipsec.ipsec_policy": dict(policy, rules=[dict(policy["rules"][0], auth=auth)])})
        tasks.append({"name": "domain rule, %s [refused]" % label, "ignore_errors": True,
                      "winsec.ipsec.ipsec_rule": dict(rule, auth=auth, store="domain")})
    # refusals of a valid key for other reasons: a value with kerberos, the dialect, the lockout guard,
    # an unknown key beside it
    tasks += [
        {"name": "kerberos with a value [refused]", "ignore_errors": True,
         "winsec.ipsec.ipsec_rule": dict(rule, auth=[{"kind": "kerberos", "value": "{{ valid0 }}"}])},
        {"name": "a name the dialect refuses [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            rule, policy='Web: "Block"', auth=[{"kind": "psk", "value": "{{ valid1 }}"}])},
        {"name": "a lockout with a key [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_policy": {
            "name": "Refused Policy", "assigned": True, "rules": [
                {"name": "Cut", "filters": ["*+0::TCP"], "action": "negotiate", "filteraction": "Cut",
                 "auth": [{"kind": "psk", "value": "{{ valid0 }}"}]}]}},
        {"name": "an unknown key beside a key [refused]", "ignore_errors": True, "winsec.ipsec.ipsec_rule": dict(
            rule, auth=[{"kind": "psk", "value": "{{ valid1 }}", "extra": 1}])},
    ]
    return tasks


@pytest.mark.winsim(count=3, personalities=("modern", "2003", "xp"))
@pytest.mark.parametrize("verbosity", ["", "-vvv", "-vvvvvv"])
def test_refused_keys_appear_nowhere_at_any_verbosity(estate, ansible_env, tmp_path, verbosity):
    playbook = tmp_path / "refused.yml"
    playbook.write_text(yaml.safe_dump([{"name": "refused keys", "hosts": "all", "gather_facts": False,
                                         "tasks": refusal_tasks()}], sort_keys=False))
    log, record = tmp_path / "ansible.log", tmp_path / "results.jsonl"
    env = dict(ansible_env, ANSIBLE_LOG_PATH=str(log), ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
               ANSIBLE_CALLBACKS_ENABLED="winsec_record", WINSEC_RECORD=str(record))
    keys = tmp_path / "keys.yml"
    keys.write_text(yaml.safe_dump(KEY_VARS))
    argv = ["ansible-playbook", "--diff", "-i", estate.inventory_path, "-e", "@%s" % keys, str(playbook)]
    argv += [verbosity] if verbosity else []
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    results = [json.loads(line) for line in record.read_text().splitlines()]
    refused = [r for r in results if r["task"].endswith("[refused]")]
    # every refusal happened, on every host, and named what it refused
    assert len(refused) == 3 * len(refusal_tasks()), (len(refused), out.stdout[-2000:])
    assert all(r["status"] == "failed" for r in refused), [r for r in refused if r["status"] != "failed"][:2]
    hidden = [r for r in refused if r["task"].startswith(("rule, ", "policy rule, ", "domain rule, "))]
    assert len(hidden) == 3 * 3 * 8 and all("(hidden)" in r["result"]["msg"] and "auth[0].value" in r["result"]["msg"]
                                            for r in hidden), [r["result"]["msg"] for r in hidden][:3]
    shown = out.stdout + out.stderr + log.read_text() + record.read_text()
    haystacks = [shown] + decoded_blocks(shown)
    leaks = {(secret, form) for secret in REFUSED for form in forms(secret) for h in haystacks if form in h}
    print("\n[figure] refused keys %s: %d refusals, secrets found in output: %d" % (
        verbosity or "default", len(refused), len(leaks)))
    assert not leaks, sorted(leaks)
