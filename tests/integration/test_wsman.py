"""winsim's WinRM transport against real clients: pywinrm and Ansible's winrm connection.

The host behind the transport is a recorder (RecordingHost) so that these tests prove what the
transport delivers and returns, independent of the shell and tools emulation.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
import winrm
import xmltodict
import yaml
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol

from conftest import REPO, allocate_addresses
from winsim import estate as estate_mod
from winsim.result import Result

SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


class RecordingHost:
    """Records every run(); answers by command: sleep S, big N, fail, PowerShell -EncodedCommand."""

    def __init__(self, name, address, personality, state_dir, users=None, domain_store=None):
        self.name, self.address, self.personality = name, address, personality
        self.calls: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    def run(self, command, arguments, stdin=b""):
        with self.lock:
            self.calls.append((command, list(arguments), stdin))
        words = " ".join(arguments).split()
        if command == "sleep":
            time.sleep(float(words[0]))
            return Result("slept\r\n", "", 0)
        if command == "big":
            return Result("x" * int(words[0]), "", 0)
        if command == "fail":
            return Result("", "it failed\r\n", 7)
        if command.lower() == "powershell" and "-EncodedCommand" in words:
            script = base64.b64decode(words[words.index("-EncodedCommand") + 1]).decode("utf-16-le")
            return Result("%s ran: %s\r\n" % (self.name, script.strip()), "", 0)
        if command == "echo-stdin":
            return Result(stdin.decode("utf-8"), "", 0)
        return Result("%s: %s %s\r\n" % (self.name, command, " ".join(arguments)), "", 0)


def session(estate, host, scheme="http", transport="basic", password=None, **kw):
    return winrm.Session(estate.endpoint(host, scheme), auth=(estate.user, password or estate.password),
                         transport=transport, server_cert_validation="ignore", **kw)


def protocol(estate, host, scheme="http", transport="basic", **kw):
    return Protocol(estate.endpoint(host, scheme), transport=transport, username=estate.user,
                    password=estate.password, server_cert_validation="ignore", **kw)


@pytest.fixture
def recorded(estate_factory):
    return estate_factory(1, host_factory=RecordingHost)


@pytest.mark.parametrize("scheme,transport", [("http", "basic"), ("https", "basic"), ("http", "ntlm"),
                                              ("https", "ntlm")])
def test_run_cmd_reaches_the_host_and_returns_its_output(recorded, scheme, transport):
    host = recorded.hosts[0]
    result = session(recorded, host, scheme, transport).run_cmd("ipconfig", ["/all"])
    assert result.status_code == 0
    assert result.std_out == b"win001: ipconfig /all\r\n"
    assert host.host.calls == [("ipconfig", ["/all"], b"")]


def test_ntlm_over_http_encrypts_every_message(recorded):
    host = recorded.hosts[0]
    result = session(recorded, host, "http", "ntlm").run_cmd("fail")
    assert (result.status_code, result.std_err) == (7, b"it failed\r\n")
    # Create, Command, Receive, Signal, Delete: all sealed ([MS-WSMV] 2.2.9.1.1).
    assert host.encrypted_requests >= 5


@pytest.mark.parametrize("scheme,transport", [("http", "basic"), ("https", "basic"), ("http", "ntlm")])
def test_wrong_password_is_401_and_runs_nothing(recorded, scheme, transport):
    host = recorded.hosts[0]
    with pytest.raises(InvalidCredentialsError):
        session(recorded, host, scheme, transport, password="not-" + recorded.password).run_cmd("ipconfig")
    assert host.host.calls == []
    assert host.service.shells == {}
    assert host.auth_failures >= 1


def test_estates_with_different_passwords_coexist_under_ntlm(estate_factory):
    first = estate_factory(1, host_factory=RecordingHost, password="first-Passw0rd")
    second = estate_factory(1, host_factory=RecordingHost, password="second-Passw0rd")
    for estate in (first, second):
        assert session(estate, estate.hosts[0], transport="ntlm").run_cmd("ver").status_code == 0
    with pytest.raises(InvalidCredentialsError):
        session(second, second.hosts[0], transport="ntlm", password="first-Passw0rd").run_cmd("ver")
    assert [c[0] for c in second.hosts[0].host.calls] == ["ver"]


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
@pytest.mark.parametrize("spelling", ["WIN001\\administrator", ".\\ADMINISTRATOR"])
def test_user_names_are_case_insensitive_and_may_name_the_machine(recorded, transport, spelling):
    host = recorded.hosts[0]
    client = winrm.Session(recorded.endpoint(host), auth=(spelling, recorded.password), transport=transport,
                           server_cert_validation="ignore")
    assert client.run_cmd("ver").status_code == 0


def test_unknown_user_is_refused(recorded):
    host = recorded.hosts[0]
    client = winrm.Session(recorded.endpoint(host), auth=("Guest", recorded.password), transport="basic",
                           server_cert_validation="ignore")
    with pytest.raises(InvalidCredentialsError):
        client.run_cmd("ipconfig")
    assert host.host.calls == []


def test_receive_waits_for_operation_timeout_then_the_command_completes(recorded):
    host = recorded.hosts[0]
    client = protocol(recorded, host, operation_timeout_sec=1, read_timeout_sec=3)
    shell = client.open_shell(codepage=65001)
    command = client.run_command(shell, "sleep", ["1.6"])
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):
        client.get_command_output_raw(shell, command)
    waited = time.monotonic() - started
    assert 0.9 <= waited < 2.5, "Receive must block for OperationTimeout, not answer at once"
    assert client.get_command_output(shell, command) == (b"slept\r\n", b"", 0)
    client.cleanup_command(shell, command)
    client.close_shell(shell)


def test_waiting_for_output_costs_no_cpu(recorded):
    client = protocol(recorded, recorded.hosts[0], operation_timeout_sec=5, read_timeout_sec=7)
    shell = client.open_shell()
    command = client.run_command(shell, "sleep", ["1.0"])
    cpu, wall = time.process_time(), time.monotonic()
    assert client.get_command_output(shell, command)[2] == 0
    assert time.monotonic() - wall >= 0.9
    assert time.process_time() - cpu < 0.3, "client or server spun while the command ran"
    client.close_shell(shell)


def test_many_hosts_serve_concurrent_clients(estate_factory):
    estate = estate_factory(40, ["modern", "2008r2", "2003", "xp"], host_factory=RecordingHost)
    answers, errors = {}, []

    def drive(hosts):
        for host in hosts:
            try:
                answers[host.name] = session(estate, host, transport="ntlm").run_cmd("hostname").std_out
            except Exception as error:      # reported below with the host, not lost in a thread
                errors.append("%s: %r" % (host.name, error))
    workers = [threading.Thread(target=drive, args=(estate.hosts[i::8],)) for i in range(8)]
    for worker in workers:
        worker.start()
    # A generous bound, only against a hang: this tests correctness under concurrency, not speed
    # (40 NTLM handshakes take seconds on a quiet machine and a minute on a loaded one).
    for worker in workers:
        worker.join(timeout=600)
    assert not errors and not any(w.is_alive() for w in workers), errors
    assert answers == {h.name: ("%s: hostname \r\n" % h.name).encode() for h in estate.hosts}


def test_signal_and_delete_reply_with_relates_to_and_end_the_shell(recorded):
    host = recorded.hosts[0]
    client = protocol(recorded, host)
    shell = client.open_shell()
    command = client.run_command(shell, "sleep", ["5"])
    client.cleanup_command(shell, command)  # terminate while running; pywinrm checks RelatesTo
    assert host.service.shells[shell].commands == {}
    client.close_shell(shell, close_session=False)  # pywinrm checks RelatesTo here too
    with pytest.raises(WSManFaultError) as fault:
        client.run_command(shell, "ipconfig")
    assert fault.value.code == 500
    assert fault.value.wsman_fault_code == 2150858843
    assert shell in fault.value.reason


def test_shell_selector_is_accepted_as_spelled_in_ms_wsmv(recorded):
    host = recorded.hosts[0]
    client = protocol(recorded, host)
    shell = client.open_shell()
    request = {"env:Envelope": client.build_wsman_header(
        action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete", resource_uri=SHELL_URI, shell_id=shell)}
    request["env:Envelope"]["env:Header"]["w:SelectorSet"]["w:Selector"]["@Name"] = "ShellID"
    request["env:Envelope"]["env:Body"] = {}
    client.send_message(xmltodict.unparse(request))
    assert shell not in host.service.shells


def _raw(client: Protocol, action: str, resource_uri: str = SHELL_URI, body=None) -> str:
    request = {"env:Envelope": client.build_wsman_header(action=action, resource_uri=resource_uri)}
    request["env:Envelope"]["env:Body"] = body or {}
    return client.send_message(xmltodict.unparse(request))


@pytest.mark.parametrize("action,resource_uri,code", [
    ("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", SHELL_URI, 2150858771),
    ("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
     "http://schemas.microsoft.com/powershell/Microsoft.PowerShell", 2150858752),
])
def test_unknown_actions_and_resources_fault_loudly(recorded, action, resource_uri, code):
    client = protocol(recorded, recorded.hosts[0])
    with pytest.raises(WSManFaultError) as fault:
        _raw(client, action, resource_uri)
    assert (fault.value.code, fault.value.wsman_fault_code) == (500, code)


@pytest.mark.parametrize("options", [{"env_vars": {"PATH": "C:\\x"}}, {"working_directory": "C:\\"}])
def test_shell_options_winsim_cannot_honour_are_refused(recorded, options):
    with pytest.raises(WSManFaultError) as fault:
        protocol(recorded, recorded.hosts[0]).open_shell(**options)
    assert fault.value.wsman_fault_code == 2150858818
    assert recorded.hosts[0].service.shells == {}


def test_a_winsim_bug_is_a_loud_fault_and_the_host_keeps_serving(recorded, monkeypatch):
    host = recorded.hosts[0]
    monkeypatch.setattr(host.service, "_command", lambda request, shell: 1 / 0)
    client = protocol(recorded, host)
    shell = client.open_shell()
    with pytest.raises(WSManFaultError) as fault:
        client.run_command(shell, "ver")
    assert fault.value.wsman_fault_code == 2150858755 and "ZeroDivisionError" in fault.value.reason
    monkeypatch.undo()
    assert client.get_command_output(shell, client.run_command(shell, "ver"))[2] == 0


def test_skipping_cmd_exe_is_refused_not_mis_run(recorded):
    client = protocol(recorded, recorded.hosts[0])
    shell = client.open_shell()
    with pytest.raises(WSManFaultError) as fault:
        client.run_command(shell, "ipconfig", skip_cmd_shell=True)
    assert fault.value.wsman_fault_code == 2150858818
    assert recorded.hosts[0].host.calls == []


def test_malformed_envelope_is_a_fault_not_a_crash(recorded):
    host = recorded.hosts[0]
    response = requests.post(recorded.endpoint(host), data=b"<not-soap", auth=(recorded.user, recorded.password),
                             headers={"Content-Type": "application/soap+xml;charset=UTF-8"}, timeout=5)
    assert response.status_code == 500
    assert b'Code="2150858791"' in response.content


def test_chunked_bodies_are_refused_not_read_as_empty(recorded):
    host = recorded.hosts[0]
    response = requests.post(recorded.endpoint(host), data=iter([b"<s:Envelope/>"]),
                             auth=(recorded.user, recorded.password), timeout=5)
    assert response.status_code == 411
    assert host.host.calls == []


def test_stdin_sent_ansible_style_reaches_the_command(recorded):
    host = recorded.hosts[0]
    client = protocol(recorded, host, transport="ntlm")
    shell = client.open_shell(codepage=65001)
    # Ansible announces stdin with WINRS_CONSOLEMODE_STDIN=FALSE, then streams it through Send.
    command = client.run_command(shell, "echo-stdin", console_mode_stdin=False)
    client.send_command_input(shell, command, b"first ")
    client.send_command_input(shell, command, "zweite Zeile \u00e9".encode("utf-8"), end=True)
    assert client.get_command_output(shell, command) == ("first zweite Zeile \u00e9".encode("utf-8"), b"", 0)
    assert host.host.calls[0][2] == "first zweite Zeile \u00e9".encode("utf-8")
    client.close_shell(shell)


def test_stdin_that_is_not_base64_is_a_fault(recorded):
    client = protocol(recorded, recorded.hosts[0])
    shell = client.open_shell()
    command = client.run_command(shell, "echo-stdin", console_mode_stdin=False)
    request = {"env:Envelope": client.build_wsman_header(
        action="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send", resource_uri=SHELL_URI,
        shell_id=shell)}
    request["env:Envelope"]["env:Body"] = {"rsp:Send": {"rsp:Stream": {
        "@Name": "stdin", "@CommandId": command, "@End": "true", "#text": "not base64!"}}}
    with pytest.raises(WSManFaultError) as fault:
        client.send_message(xmltodict.unparse(request))
    assert fault.value.wsman_fault_code == 2150858791
    assert recorded.hosts[0].host.calls == []


@pytest.mark.parametrize("codepage,encoding", [(65001, "utf-8"), (437, "cp437")])
def test_output_uses_the_shells_code_page(recorded, codepage, encoding):
    client = protocol(recorded, recorded.hosts[0])
    shell = client.open_shell(codepage=codepage)
    command = client.run_command(shell, "caf\u00e9")
    stdout, _stderr, rc = client.get_command_output(shell, command)
    assert stdout == "win001: caf\u00e9 \r\n".encode(encoding)
    client.close_shell(shell)


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_large_output_is_split_across_receives_within_max_envelope_size(recorded, transport, monkeypatch):
    host = recorded.hosts[0]
    replies = []
    receive = host.service._receive

    def counting_receive(request, shell):
        replies.append(receive(request, shell))
        return replies[-1]
    monkeypatch.setattr(host.service, "_receive", counting_receive)
    size = 400_000
    result = session(recorded, host, transport=transport).run_cmd("big", [str(size)])
    assert result.std_out == b"x" * size
    assert len(replies) >= 3, "400 kB of output cannot fit one 150 kB envelope"
    assert max(len(reply) for reply in replies) <= 153600


def test_hosts_have_their_own_addresses_and_inventory(estate_factory):
    estate = estate_factory(3, ["modern", "2003", "xp"], host_factory=RecordingHost)
    assert len({h.address for h in estate.hosts}) == 3
    for host in estate.hosts:
        assert session(estate, host).run_cmd("hostname").std_out == ("%s: hostname \r\n" % host.name).encode()
    with open(estate.inventory_path) as handle:
        inventory = yaml.safe_load(handle)
    common = inventory["all"]["vars"]
    assert common["ansible_connection"] == "winrm"
    assert common["ansible_winrm_transport"] == "basic"
    assert common["ansible_winrm_server_cert_validation"] == "ignore"
    assert (common["ansible_user"], common["ansible_password"]) == (estate.user, estate.password)
    groups = inventory["all"]["children"]["windows"]["children"]
    assert sorted(groups) == ["win_2003", "win_modern", "win_xp"]
    xp = estate.hosts[2]
    assert groups["win_xp"]["hosts"] == {xp.name: {"ansible_host": xp.address, "ansible_port": xp.http_port,
                                               "ansible_winrm_scheme": "http", "winsim_personality": "xp"}}


def test_https_only_serves_no_http(estate_factory):
    estate = estate_factory(1, host_factory=RecordingHost, https_only=True)
    host = estate.hosts[0]
    assert host.http_port is None
    assert session(estate, host, "https").run_cmd("ver").status_code == 0
    with open(estate.inventory_path) as handle:
        host_vars = yaml.safe_load(handle)["all"]["children"]["windows"]["children"]["win_modern"]["hosts"][host.name]
    assert (host_vars["ansible_winrm_scheme"], host_vars["ansible_port"]) == ("https", host.https_port)


def test_latency_is_injected_per_request_through_the_control_api(recorded):
    host = recorded.hosts[0]
    status = estate_mod.control(recorded.state_dir, host.name, {"latency_ms": 150})
    assert status["latency_ms"] == 150
    started = time.monotonic()
    session(recorded, host).run_cmd("ver")  # five requests
    assert time.monotonic() - started >= 5 * 0.15
    estate_mod.control(recorded.state_dir, host.name, {"latency_ms": 0})


def test_control_api_refuses_bad_credentials_and_bad_values(recorded):
    host = recorded.hosts[0]
    url = "http://%s:%d/winsim/control" % (host.address, host.http_port)
    refused = requests.post(url, json={"latency_ms": 900}, auth=(recorded.user, "wrong"), timeout=5)
    assert refused.status_code == 401 and host.latency_ms == 0
    bad = requests.post(url, json={"latency_ms": -1}, auth=(recorded.user, recorded.password), timeout=5)
    assert bad.status_code == 400 and "latency_ms" in bad.json()["error"]
    unknown = requests.post(url, json={"fail_step": 2}, auth=(recorded.user, recorded.password), timeout=5)
    assert unknown.status_code == 400 and "fail_step" in unknown.json()["error"]  # RecordingHost has no configure


def test_dropped_connection_during_the_kth_command(recorded):
    host = recorded.hosts[0]
    estate_mod.control(recorded.state_dir, host.name, {"drop_command": 2})
    client = session(recorded, host)
    assert client.run_cmd("one").status_code == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        session(recorded, host).run_cmd("two")
    # The command ran (its effect happened); only the answer was lost, as on a real network cut.
    assert [call[0] for call in host.host.calls] == ["one", "two"]
    assert session(recorded, host).run_cmd("three").status_code == 0


def test_reboot_through_the_control_api_ends_open_shells(estate):
    served = estate.hosts[0]
    client = protocol(estate, served)
    shell = client.open_shell()
    status = estate_mod.control(estate.state_dir, served.name, {"reboot": True})
    assert status["shells"] == 0
    with pytest.raises(WSManFaultError) as fault:
        client.run_command(shell, "hostname")
    assert fault.value.wsman_fault_code == 2150858843


def test_a_reboot_ends_running_commands_and_forgets_every_mutex(estate):
    from winsim.shell import mutexes
    served = estate.hosts[0]
    held = mutexes.namespace_for(served.host).session().open(True, "Global\\winsec.ipsec")
    assert mutexes.namespace_for(served.host).held() == {"Global\\winsec.ipsec": True}
    estate_mod.control(estate.state_dir, served.name, {"reboot": True})
    assert mutexes.namespace_for(served.host).held() == {}
    after = session(estate, served).run_ps(LOCK % 0 + "Write-Output free\n$winseclock.ReleaseMutex()")
    assert (after.std_out, after.status_code) == (b"free\r\n", 0)
    held.release()      # the old kernel's object: no effect on the new one


def test_ctl_command_line_sets_and_reports(recorded):
    host = recorded.hosts[0]
    run = subprocess.run([sys.executable, "-m", "winsim", "ctl", "--state", recorded.state_dir,
                          "--host", host.name, "set", "latency_ms=20", "drop_command=3"],
                         capture_output=True, text=True, timeout=30, cwd=REPO)
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert (status["latency_ms"], status["drop_command"]) == (20, host.service.commands_seen + 3)
    assert host.latency_ms == 20


def test_ansible_raw_adhoc_over_basic(recorded, ansible_env, tmp_path):
    marker = "hi-%s" % uuid.uuid4().hex[:8]
    run = subprocess.run(["ansible", "all", "-i", recorded.inventory_path, "-m", "raw", "-a", "echo %s" % marker],
                         capture_output=True, text=True, timeout=60, env=ansible_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "win001 | CHANGED | rc=0" in run.stdout
    assert "win001 ran: echo %s" % marker in run.stdout
    command, arguments, _stdin = recorded.hosts[0].host.calls[-1]
    assert command.lower() == "powershell" and "-EncodedCommand" in " ".join(arguments)


def test_ansible_playbook_raw_over_ntlm(recorded, ansible_env, tmp_path):
    inventory = recorded.write_inventory(str(tmp_path / "ntlm.yml"), transport="ntlm")
    marker = "hi-%s" % uuid.uuid4().hex[:8]
    playbook = tmp_path / "raw.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "all", "gather_facts": False,  # no real PowerShell behind winsim for the setup module
        "tasks": [{"raw": "echo %s" % marker, "register": "out"},
                  {"assert": {"that": ["'ran: echo %s' in out.stdout" % marker]}}]}]))
    run = subprocess.run(["ansible-playbook", "-i", inventory, str(playbook)],
                         capture_output=True, text=True, timeout=60, env=ansible_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok=2" in run.stdout and "failed=0" in run.stdout
    assert recorded.hosts[0].encrypted_requests >= 5


# The real SimHost behind the transport ------------------------------------------------------------

@pytest.mark.parametrize("scheme,transport", [("http", "basic"), ("https", "basic"), ("http", "ntlm")])
def test_real_host_answers_remote_commands_as_it_answers_locally(estate_factory, scheme, transport):
    estate = estate_factory(2, ["modern", "xp"])
    for served in estate.hosts:
        expected = served.host.run("hostname", [])
        result = session(estate, served, scheme, transport).run_cmd("hostname")
        assert (result.std_out.decode(), result.std_err.decode(), result.status_code) == \
            (expected.stdout, expected.stderr, expected.rc)
        assert served.host.audit_entries()[-1]["argv"] == ["hostname"]


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_real_host_wrong_password_leaves_no_audit_entry(estate, transport):
    served = estate.hosts[0]
    with pytest.raises(InvalidCredentialsError):
        session(estate, served, "http", transport, password="wrong").run_cmd("shutdown", ["/r"])
    assert served.host.audit_entries() == []


def test_real_host_raw_echo_through_ansible(estate, ansible_env):
    run = subprocess.run(["ansible", "all", "-i", estate.inventory_path, "-m", "raw", "-a", "echo hi"],
                         capture_output=True, text=True, timeout=60, env=ansible_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "CHANGED | rc=0 >>\nhi" in run.stdout
    assert estate.hosts[0].host.audit_entries() == []  # echo is PowerShell's own: no tool ran


def test_serve_and_ctl_from_the_command_line(tmp_path):
    state, inventory = tmp_path / "state", tmp_path / "hosts.yml"
    serve = subprocess.Popen([sys.executable, "-m", "winsim", "serve", "--hosts", "2", "--personalities",
                              "modern,xp", "--state", str(state), "--inventory", str(inventory),
                              "--base-address", allocate_addresses(2), "--http-port", "0", "--https-port", "0",
                              "--password", "Cli-Passw0rd"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # generous: the suite shares two cores
        while not inventory.exists() and serve.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inventory.exists(), "serve wrote no inventory"
        groups = yaml.safe_load(inventory.read_text())["all"]["children"]["windows"]["children"]
        xp_vars = groups["win_xp"]["hosts"]["win002"]
        client = winrm.Session("http://%s:%d/wsman" % (xp_vars["ansible_host"], xp_vars["ansible_port"]),
                               auth=("Administrator", "Cli-Passw0rd"), transport="ntlm",
                               server_cert_validation="ignore")
        answer = client.run_cmd("hostname")
        assert answer.status_code == 0, answer.std_err
        ctl = subprocess.run([sys.executable, "-m", "winsim", "ctl", "--state", str(state), "status"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert ctl.returncode == 0, ctl.stderr
        statuses = [json.loads(line) for line in ctl.stdout.splitlines()]
        assert [(s["name"], s["personality"], s["commands"]) for s in statuses] == \
            [("win001", "modern", 0), ("win002", "xp", 1)]
    finally:
        serve.terminate()
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, out + err


# Estate arguments ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"personalities": ["2000"]}, "has no WinRM"),
    ({"base_address": "127.255.255.255", "count": 2}, "leaves 127.0.0.0/8"),
    ({"transport": "kerberos"}, "'basic' or 'ntlm'"),
    ({"count": 0}, "at least 1"),
])
def test_estate_refuses_what_it_cannot_serve(tmp_path, kwargs, message):
    arguments = {"count": 1, "personalities": ["modern"], **kwargs}
    with pytest.raises(ValueError, match=message):
        estate_mod.Estate(str(tmp_path), arguments.pop("count"), arguments.pop("personalities"),
                          host_factory=RecordingHost, **arguments)


def test_a_restarted_estate_keeps_its_password_and_certificate(tmp_path):
    first = estate_mod.Estate(str(tmp_path), 1, base_address=allocate_addresses(1), http_port=0, https_port=0,
                              host_factory=RecordingHost)
    with first:
        certificate = (tmp_path / "tls" / "cert.pem").read_bytes()
    again = estate_mod.Estate(str(tmp_path), 1, base_address=allocate_addresses(1), http_port=0, https_port=0,
                              host_factory=RecordingHost)
    with again:
        assert again.password == first.password
        assert (tmp_path / "tls" / "cert.pem").read_bytes() == certificate
        assert session(again, again.hosts[0], "https").run_cmd("ver").status_code == 0


# Two commands on one host: concurrent, serialised only by the contract's named mutex -----------------

LOCK = ("$winseclock = New-Object System.Threading.Mutex($false, 'Global\\winsec.ipsec')\n"
        "try { $winsecheld = $winseclock.WaitOne(%d) } catch [System.Threading.AbandonedMutexException] "
        "{ $winsecheld = $true }\n"
        "if (-not $winsecheld) { Write-Output '#winsec# busy'; exit 3 }\n")


def _in_thread(fn):
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=fn()))
    thread.start()
    return thread, box


@pytest.mark.parametrize("personality", ["modern", "xp"])
def test_two_winrm_commands_run_concurrently_and_the_mutex_serialises_them(estate_factory, personality):
    from winsim.shell import mutexes
    estate = estate_factory(1, [personality])
    served = estate.hosts[0]
    # The test holds a gate mutex on the host: the first command waits for it while holding the lock.
    gate = mutexes.namespace_for(served.host).session().open(True, "Global\\gate")
    first, first_box = _in_thread(lambda: session(estate, served).run_ps(
        LOCK % 120000 + "hostname\n$g = New-Object Threading.Mutex($false, 'Global\\gate')\n"
        "$null = $g.WaitOne(30000)\nhostname\n$winseclock.ReleaseMutex()"))
    deadline = time.monotonic() + 20
    while len(served.host.audit_entries()) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = session(estate, served).run_ps(LOCK % 500 + "hostname")
    assert (busy.std_out, busy.status_code) == (b"#winsec# busy\r\n", 3)
    assert first.is_alive()             # the second command ran while the first was still running
    third, third_box = _in_thread(lambda: session(estate, served).run_ps(
        LOCK % 120000 + "Write-Output third\n$winseclock.ReleaseMutex()"))
    time.sleep(0.5)
    assert third.is_alive() and len(served.host.audit_entries()) == 1
    gate.release()
    first.join(30)
    third.join(30)
    name = served.host.run("hostname", []).stdout.encode()
    assert first_box["result"].std_out == name * 2 and first_box["result"].status_code == 0
    assert third_box["result"].std_out == b"third\r\n" and third_box["result"].status_code == 0
    assert mutexes.namespace_for(served.host).held() == {"Global\\gate": False}


# Faults at every HTTP request of one command with stdin (the contract's one-command write) ------------

BOOT = ("$winsecin = @($input)\n"
        "if ($winsecin.Count -ne 2 -or $winsecin[1] -ne 'winsec-end') { Write-Output '#winsec# stdin lost'; exit 1 }\n"
        "Invoke-Expression ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($winsecin[0])))\n")


def _one_write(estate, served, run_id):
    """One command as the engine sends a write: bootstrap on the command line, body and sentinel on
    stdin in two Sends; three registry writes under the lock. -> (stdout, rc)."""
    body = LOCK % 120000 + "".join(
        "$null = reg add HKLM\\SOFTWARE\\winsimfault /v %s-%d /d 1 /f\n" % (run_id, n) for n in range(3)) + \
        "$winseclock.ReleaseMutex()\nexit 0\n"
    stdin = (base64.b64encode(body.encode()).decode() + "\r\nwinsec-end\r\n").encode()
    client = protocol(estate, served)
    shell = client.open_shell(codepage=65001)
    command = client.run_command(shell, "PowerShell", ["-NoProfile", "-NonInteractive", "-EncodedCommand",
                                                       base64.b64encode(BOOT.encode("utf-16-le")).decode()],
                                 console_mode_stdin=False)
    client.send_command_input(shell, command, stdin[:20])
    client.send_command_input(shell, command, stdin[20:], end=True)
    out, _err, rc = client.get_command_output(shell, command)
    client.cleanup_command(shell, command)
    client.close_shell(shell)
    return out, rc


def _writes(served, run_id):
    return [e for e in served.host.audit_entries() if e["changed"] and any(run_id in a for a in e["argv"])]


@pytest.mark.parametrize("personality", ["modern", "xp"])
def test_a_cut_at_any_request_leaves_the_write_whole_or_not_started(estate_factory, personality):
    estate = estate_factory(1, [personality])
    served = estate.hosts[0]
    before = served.wsman_requests
    assert _one_write(estate, served, "clean") == (b"", 0) and len(_writes(served, "clean")) == 3
    requests_per_write = served.wsman_requests - before     # Create, Command, 2 Send, Receive..., Signal, Delete
    assert requests_per_write >= 7
    outcomes = {}
    for fault in ("drop_request", "drop_reply"):
        for k in range(1, requests_per_write + 1):
            run_id = "%s%d" % (fault, k)
            served.control({fault: k})
            with pytest.raises(requests.exceptions.ConnectionError):
                _one_write(estate, served, run_id)
            assert served.wait_idle(30)
            outcomes[run_id] = len(_writes(served, run_id))
    # Never in between: each write either ran whole or never started. It starts exactly when the
    # last Send (request 4) was handled: cut before it, nothing; cut after it, everything.
    assert outcomes == {"%s%d" % (fault, k): 3 if (k > 4 or (k == 4 and fault == "drop_reply")) else 0
                        for fault in ("drop_request", "drop_reply") for k in range(1, requests_per_write + 1)}
    status = served.status()
    assert (status["drop_request"], status["drop_reply"], status["running"]) == (None, None, 0)


def test_drop_request_and_drop_reply_through_ctl_and_their_bad_values(recorded):
    host = recorded.hosts[0]
    run = subprocess.run([sys.executable, "-m", "winsim", "ctl", "--state", recorded.state_dir,
                          "--host", host.name, "set", "drop_request=2", "drop_reply=5"],
                         capture_output=True, text=True, timeout=30, cwd=REPO)
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert (status["drop_request"], status["drop_reply"]) == (host.wsman_requests + 2, host.wsman_requests + 5)
    url = recorded.endpoint(host).replace("/wsman", estate_mod.CONTROL_PATH)
    for bad in (0, -1, True, "2"):
        reply = requests.post(url, json={"drop_reply": bad}, auth=(recorded.user, recorded.password), timeout=5)
        assert reply.status_code == 400 and "drop_reply must be k >= 1" in reply.json()["error"]
    run = subprocess.run([sys.executable, "-m", "winsim", "ctl", "--state", recorded.state_dir,
                          "--host", host.name, "clear"], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert run.returncode == 0 and (host.drop_request, host.drop_reply) == (None, None)


@pytest.mark.parametrize("personality", ["modern", "2003", "xp"])
def test_the_contract_snippets_end_to_end_with_stdin_over_pywinrm(estate_factory, personality):
    """The brief's bootstrap, lock and fingerprint lines exactly, the body and a secret on stdin:
    the host computes SHA-1 of a section's UTF-8 text and the secret reaches the tool unchanged."""
    import hashlib
    estate = estate_factory(1, [personality])
    served = estate.hosts[0]
    boot = ("$winsecin = @($input)\n"
            "if ($winsecin.Count -ne 3 -or $winsecin[2] -ne 'winsec-end') { Write-Output '#winsec# stdin lost'; exit 1 }\n"
            "Invoke-Expression ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($winsecin[0])))\n")
    body = (LOCK % 120000
            + "$winsecsha = New-Object System.Security.Cryptography.SHA1CryptoServiceProvider\n"
            "$null = reg add HKLM\\SOFTWARE\\winsimfp /v secret /d $winsecin[1] /f\n"
            "$out = reg query HKLM\\SOFTWARE\\winsimfp /v secret 2>&1\n$rc = $LASTEXITCODE\n"
            "$text = @($out) -join \"`n\"\nWrite-Output $text\n"
            "$winsecfp = [System.BitConverter]::ToString($winsecsha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($text)))\n"
            "Write-Output \"reg=$winsecfp rc=$rc\"\n$winseclock.ReleaseMutex()\nexit 0\n")
    secret = "s3 cr\u00e9t$x`y"
    stdin = "%s\r\n%s\r\nwinsec-end\r\n" % (base64.b64encode(body.encode()).decode(), secret)
    client = protocol(estate, served)
    shell = client.open_shell(codepage=65001)
    command = client.run_command(shell, "PowerShell", ["-NoProfile", "-NonInteractive", "-EncodedCommand",
                                                       base64.b64encode(boot.encode("utf-16-le")).decode()],
                                 console_mode_stdin=False)
    client.send_command_input(shell, command, stdin.encode("utf-8"), end=True)
    out, err, rc = client.get_command_output(shell, command)
    client.close_shell(shell)
    text, _, last = out.decode("utf-8").rstrip("\r\n").rpartition("\r\n")
    assert (rc, err) == (0, b"") and secret in text
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest().upper()
    assert last == "reg=%s rc=0" % "-".join(digest[i:i + 2] for i in range(0, 40, 2))


@pytest.mark.parametrize("personality", ["modern", "xp"])
@pytest.mark.parametrize("cut_receive", [False, True])
def test_signal_terminate_ends_a_running_command_mid_way_and_abandons_its_mutex(estate_factory, personality,
                                                                                 cut_receive):
    """[MS-WSMV] 2.2.5.6: terminate "Terminates the shell or command". Ansible's winrm connection sends
    it (cleanup_command) in a `finally` after every command, also when a Receive was cut while the
    command still runs: the command then ends at its next step, half done, and its mutex is abandoned."""
    from winsim.shell import mutexes
    estate = estate_factory(1, [personality])
    served = estate.hosts[0]
    gate = mutexes.namespace_for(served.host).session().open(True, "Global\\gate")
    body = (LOCK % 120000 + "$null = reg add HKLM\\SOFTWARE\\winsimkill /v one /d 1 /f\n"
            "$g = New-Object Threading.Mutex($false, 'Global\\gate')\n$null = $g.WaitOne(30000)\n"
            "$null = reg add HKLM\\SOFTWARE\\winsimkill /v two /d 1 /f\n$winseclock.ReleaseMutex()\n")
    client = protocol(estate, served)
    shell = client.open_shell()
    command = client.run_command(shell, "PowerShell", ["-EncodedCommand",
                                                       base64.b64encode(body.encode("utf-16-le")).decode()])
    deadline = time.monotonic() + 20
    while not _writes(served, "one") and time.monotonic() < deadline:
        time.sleep(0.05)
    if cut_receive:
        served.control({"drop_request": 1})     # the Receive is lost on the way
        with pytest.raises(requests.exceptions.ConnectionError):
            client.get_command_output(shell, command)
    client.cleanup_command(shell, command)      # Signal terminate, over a new connection after a cut
    gate.release()
    assert served.wait_idle(30)
    assert [e["argv"][4] for e in _writes(served, "winsimkill")] == ["one"]      # never "two"
    after = session(estate, served).run_ps(LOCK % 5000 + "Write-Output next\n$winseclock.ReleaseMutex()")
    assert (after.std_out, after.status_code) == (b"next\r\n", 0)   # the catch took the abandoned mutex


@pytest.mark.parametrize("personality", ["modern", "xp"])
def test_output_reaches_the_client_while_the_command_runs(estate_factory, personality):
    """[MS-WSMV] 3.1.4.14: Receive collects output from a running command; the Receive that
    reports Done comes only at its end."""
    from winsim.shell import mutexes
    estate = estate_factory(1, [personality])
    served = estate.hosts[0]
    gate = mutexes.namespace_for(served.host).session().open(True, "Global\\gate")
    body = ("Write-Output first\n$g = New-Object Threading.Mutex($false, 'Global\\gate')\n"
            "$null = $g.WaitOne(30000)\nWrite-Output second\nexit 4\n")
    client = protocol(estate, served)
    shell = client.open_shell()
    command = client.run_command(shell, "PowerShell", ["-EncodedCommand",
                                                       base64.b64encode(body.encode("utf-16-le")).decode()])
    stdout, _stderr, _rc, done = client._raw_get_command_output(shell, command)
    assert (stdout, done) == (b"first\r\n", False)
    gate.release()
    assert client.get_command_output(shell, command) == (b"second\r\n", b"", 4)
    client.close_shell(shell)
