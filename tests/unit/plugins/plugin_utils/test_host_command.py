"""plugin_utils/host_command.py: one engine script over the task's connection (stdin, no log), and a
write command that the controller never ends half way once it started."""
import base64

import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.host import HostError
from ansible_collections.winsec.ipsec.plugins.plugin_utils import host_command
from tests.unit.plugins.module_utils.ipsec.test_remote import psk_step, step


class FakeContext:
    def __init__(self):
        self.no_log = False


def test_execute_sends_secrets_as_stdin_and_keeps_output_out_of_the_connection_log():
    seen = []

    class Action:
        _connection = type("Connection", (), {"_play_context": FakeContext()})()
        _play_context = FakeContext()

        def _low_level_execute_command(self, cmd, sudoable=True, in_data=None):
            seen.append((cmd, in_data, self._connection._play_context.no_log))
            return {"rc": 0, "stdout": "out", "stderr": ""}
    action = Action()
    script = remote.write_script([psk_step("k1", "k0")], verify=False)
    assert host_command.run_script(action, script) == (0, "out", "")
    [(cmd, in_data, no_log)] = seen
    assert type(cmd) is str and cmd == str(script) and "k1" not in cmd and no_log
    assert in_data == "%s\r\npsk=k1\r\npsk=k0\r\nwinsec-end\r\n" % script.stdin[0]      # body first
    assert action._connection._play_context.no_log is False      # restored
    host_command.run_script(action, remote.read_script())
    assert seen[-1][1] is None and seen[-1][2]      # a read prints the store, which may hold keys
    action._low_level_execute_command = lambda cmd, sudoable=True, in_data=None: {"rc": 1, "stdout": remote.STDIN_LOST}
    with pytest.raises(HostError, match="standard input"):
        host_command.run_script(action, script)


# -- a write command is never ended by the controller once it started ----------------------------

class FakeProtocol:
    """pywinrm's Protocol as Ansible's winrm connection plugin uses it; its one command needs
    `runs` more Receives to end after the stdin arrived, and the `drops`-th Receive loses the
    connection. A terminate Signal or a shell Delete while it runs ends it half way."""

    def __init__(self, drops=1, runs=2):
        self.drops, self.runs = drops, runs
        self.receives, self.log, self.stdin = 0, [], b""
        self.state = "idle"

    def _get_soap_header(self, **kw):
        return {"action": kw["action"]}

    def run_command(self, shell_id, command, args=(), console_mode_stdin=True):
        self.state = "waiting for stdin"
        return "C1"

    def send_message(self, message):
        if "shell/Send" in message:
            import xmltodict
            stream = xmltodict.parse(message)["env:Envelope"]["env:Body"]["rsp:Send"]["rsp:Stream"]
            self.stdin += base64.b64decode(stream["#text"])
            if stream.get("@End") == "true":
                self.state = "running"
            return b"<r/>"
        self.receives += 1
        if self.receives == self.drops:
            raise ConnectionResetError("connection reset by peer (Receive %d)" % self.receives)
        if self.state == "running":
            self.runs -= 1
            if self.runs <= 0:
                self.state = "done"
        done = self.state == "done"
        state = "Done" if done else "Running"
        return ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com'
                '/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">'
                '%s</rsp:Stream><rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/'
                'windows/shell/CommandState/%s">%s</rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>'
                % (base64.b64encode(b"out" if done else b"").decode(), state,
                   "<rsp:ExitCode>0</rsp:ExitCode>" if done else "")).encode()

    def cleanup_command(self, shell_id, command_id):
        self.log.append("terminate while %s" % self.state)
        if self.state == "running":
            self.state = "ended half way"

    def close_shell(self, shell_id, close_session=True):
        self.log.append("delete while %s" % self.state)
        if self.state == "running":
            self.state = "ended half way"


def winrm_action(protocol):
    """An action plugin whose connection is Ansible's own winrm plugin, talking to `protocol`."""
    from ansible.plugins.connection.winrm import Connection

    conn = Connection.__new__(Connection)
    conn.protocol, conn.shell_id, conn._connected = protocol, "S1", True
    conn._shell, conn._winrm_host, conn._play_context = ShellModule(), "win01", FakeContext()
    conn._connect = lambda: conn

    class Action:
        _connection = conn
        _play_context = conn._play_context

        def _low_level_execute_command(self, cmd, sudoable=True, in_data=None):
            rc, out, err = conn.exec_command(cmd, in_data=in_data)
            return {"rc": rc, "stdout": out.decode(), "stderr": err.decode()}
    return Action(), conn


def test_a_lost_receive_never_ends_the_write_command_half_way():
    from ansible.errors import AnsibleConnectionFailure
    script = remote.write_script([step("netsh", "a")])
    # Ansible's winrm plugin alone: a lost Receive, then its cleanup terminates the running command
    protocol = FakeProtocol()
    action, conn = winrm_action(protocol)
    with pytest.raises(Exception, match="connection reset"):
        action._low_level_execute_command(str(script), in_data="".join(x + "\r\n" for x in script.stdin))
    assert protocol.log == ["terminate while running"] and protocol.state == "ended half way"
    # through run_script: no terminate while it runs; it waits on the same shell until the command ended
    protocol = FakeProtocol()
    action, conn = winrm_action(protocol)
    with pytest.raises(AnsibleConnectionFailure, match="has since run to its end on the host. It was not interrupted") as err:
        host_command.run_script(action, script)
    assert protocol.state == "done" and protocol.log == ["terminate while done"], protocol.log
    assert protocol.stdin.decode().splitlines() == list(script.stdin)
    assert "netsh" not in str(err.value) and "Receive 1" in str(err.value)
    conn.close()
    assert protocol.log[-1] == "delete while done"
    assert "_winrm_run_command" not in vars(conn) and "cleanup_command" not in vars(protocol)    # unpatched


def test_a_host_that_stays_unreachable_keeps_the_write_running_and_its_shell_open():
    protocol = FakeProtocol(drops=1)
    protocol.send_message = (lambda original: lambda message: (
        original(message) if "shell/Send" in message or protocol.receives == 0 else
        (_ for _ in ()).throw(ConnectionResetError("unreachable"))))(protocol.send_message)
    action, conn = winrm_action(protocol)
    keeper = host_command.KeepRunning(conn, sleep=lambda s: None)
    with keeper:
        with pytest.raises(ConnectionResetError):
            conn.exec_command(str(remote.write_script([step("netsh", "a")])), in_data="x\r\n")
        assert keeper.command_id == "C1" and not keeper.done
        assert keeper.wait_for_end(limit=0.05) is False
    assert conn.shell_id is None and protocol.log == [] and protocol.state == "running"
    conn.close()
    assert protocol.log == [] and protocol.state == "running"      # closing the connection ended nothing


def test_reconnect_goes_through_the_connections_own_reset_and_deletes_no_shell():
    protocol = FakeProtocol()
    action, conn = winrm_action(protocol)
    connects = []
    conn._connect = lambda: connects.append("connect") or conn
    host_command.reconnect(conn)()
    assert connects == ["connect"] and conn.shell_id is None and conn.protocol is None
    assert protocol.log == []       # the old shell was not deleted: a command in it runs to its end
