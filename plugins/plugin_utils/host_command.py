# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""One engine script on the host, over the task's connection: the controller side of remote.py.

`run_script(action, script)` sends a remote.Script (its body and secrets as standard input) and
keeps a write command running on the host when the connection loses a request (KeepRunning);
`reconnect(connection)` gives the engine a fresh connection after a change may have cut the old
one (commit-confirmed, module_utils/ipsec/confirm.py). plugin_utils/action.py wires both into the
Context every handler gets.
"""
from __future__ import annotations

import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.host import HostError

# What a broken connection raises: Ansible's errors, and the OSError subclasses (requests'
# ConnectionError among them) that the winrm plugin lets through.
LOST_ERRORS = (AnsibleError, OSError)


def reconnect(connection):
    """A callable that resets `connection` through its own reset(): the next command opens a new
    session (winrm: a new shell; the old one is left to the host, never deleted mid-command)."""
    def again():
        connection.reset()
    return again


class KeepRunning:
    """A write command over Ansible's winrm connection runs to its end on the host, whatever happens to
    the connection.

    When a request of the command is lost, the winrm connection plugin sends WinRM's Signal
    `terminate` for it (`_winrm_exec`'s cleanup_command), and closing the connection deletes its
    shell; either ends the command ([MS-WSMV] 3.1.4.12 Signal, 3.1.4.3 Delete), which would leave
    the host between its old and new state in the middle of a batch. So while a write command
    runs, the terminate signal is held back until the command has reported its end; after a lost
    request this waits (a few Receive attempts on the same shell) until the command ended, and if
    the host stays unreachable it leaves the shell open (the command then ends by itself; WinRM
    keeps the shell until its IdleTimeout). Uses the winrm plugin's private methods of ansible-core
    2.19 (requirements/runtime.txt); without them the plain path runs.
    """

    NAMES = ("_connect", "_winrm_run_command", "_winrm_get_raw_command_output", "_winrm_send_input")

    def __init__(self, connection, sleep=None):
        self.conn = connection
        self.sleep = sleep or time.sleep
        self.command_id = None
        self.done = False
        self.protocol = None

    @classmethod
    def applies(cls, connection) -> bool:
        return getattr(connection, "transport", "") == "winrm" and all(hasattr(connection, n) for n in cls.NAMES)

    def __enter__(self):
        conn = self.conn
        conn._connect()
        self.protocol = protocol = conn.protocol
        run, raw, cleanup = conn._winrm_run_command, conn._winrm_get_raw_command_output, protocol.cleanup_command
        send = conn._winrm_send_input
        self.cleanup = cleanup

        def send_input(*args, **kwargs):
            # A lost Send is sent once more: if the first one had arrived, the bootstrap counts one line too
            # many and runs nothing (remote.bootstrap); if not, the command gets its whole stdin and runs.
            try:
                return send(*args, **kwargs)
            except Exception as err:    # noqa: BLE001 - any transport error
                if type(err).__name__ == "WinRMOperationTimeoutError":     # processed (the plugin's own view)
                    raise
                self.sleep(1)
                return send(*args, **kwargs)

        def run_command(*args, **kwargs):
            self.command_id = run(*args, **kwargs)
            return self.command_id

        def raw_output(*args, **kwargs):
            result = raw(*args, **kwargs)
            self.done = self.done or bool(result[3])
            return result

        def cleanup_command(shell_id, command_id):
            if self.done or command_id != self.command_id:
                return cleanup(shell_id, command_id)
            return None         # still running on the host: let it run to its end

        conn._winrm_run_command, conn._winrm_get_raw_command_output = run_command, raw_output
        conn._winrm_send_input = send_input
        protocol.cleanup_command = cleanup_command
        return self

    def __exit__(self, *exc):
        for owner, name in ((self.conn, "_winrm_run_command"), (self.conn, "_winrm_get_raw_command_output"),
                            (self.conn, "_winrm_send_input"), (self.protocol, "cleanup_command")):
            if owner is not None and name in vars(owner):
                delattr(owner, name)
        return False

    def wait_for_end(self, limit: float = 180.0) -> bool:
        """After a lost request: Receive on the same shell until the command ended (at most `limit`
        seconds: longer than a write waits for the host-side lock); False when it did not end or the
        host stayed unreachable (its shell is then left open, so that closing the connection ends
        nothing)."""
        deadline, delay = time.monotonic() + limit, 1.0
        while time.monotonic() < deadline:
            try:
                self.conn._winrm_get_raw_command_output(self.protocol, self.conn.shell_id, self.command_id)
            except Exception as err:    # noqa: BLE001 - any transport error: try again until the limit
                if type(err).__name__ != "WinRMOperationTimeoutError":     # not "still running": unreachable
                    self.sleep(delay)
                    delay = min(delay * 2, 8.0)
                continue
            if self.done:
                try:
                    self.cleanup(self.conn.shell_id, self.command_id)
                except Exception:   # noqa: BLE001 - the command ended; its cleanup is a courtesy
                    pass
                return True
        try:
            self.conn.reset()       # forgets the shell without deleting it (closing would end the command)
        except Exception:   # noqa: BLE001 - the host is unreachable: the next task connects anew
            pass
        return False


def run_script(action, script: str):
    """Run one remote.Script over the task's connection: (rc, stdout, stderr).

    A write script's body and secrets go as standard input (`in_data`, which the winrm, psrp and ssh
    connections pass on without logging it; its bootstrap reads it with `$input`), body first.
    Its output is kept out of the connection's own log (winrm and psrp log raw output at -vvvvv, ssh
    at -vvv, each unless the play context says no_log): the registry store it prints holds any
    pre-shared key the host has, whatever this task carries. The task's result shows what was read,
    keys masked. A write command is never ended by this side once it started (KeepRunning).
    """
    stdin = getattr(script, "stdin", ())
    # text, not bytes: psrp hands bytes lines to PowerShell as byte arrays; winrm and ssh encode text
    in_data = "".join(line + "\r\n" for line in stdin) if stdin else None
    context = getattr(action._connection, "_play_context", None) or action._play_context
    no_log = context.no_log
    context.no_log = True
    keeper = None
    if getattr(script, "kind", "") == "write" and KeepRunning.applies(action._connection):
        keeper = KeepRunning(action._connection)
    try:
        if keeper is not None:
            keeper.__enter__()
        res = action._low_level_execute_command(str(script), sudoable=False, in_data=in_data)
    except Exception as err:
        if keeper is None or keeper.command_id is None or keeper.done:
            raise
        ended = keeper.wait_for_end(getattr(script, "wait_limit", 180.0))
        raise AnsibleConnectionFailure(
            "the connection was lost while the write command ran (%s); %s. It was not interrupted: the host has "
            "the state before the task or after it, never a part of it. Run the task again: it reads the host "
            "and says which" % (err, "the command has since run to its end on the host" if ended else
                                "the host did not answer again, and the command was left to run to its end"))
    finally:
        if keeper is not None:
            keeper.__exit__(None, None, None)
        context.no_log = no_log
    if stdin and remote.stdin_lost(res.get("stdout", "")):
        raise HostError("the %s connection did not deliver the command's standard input, which carries the "
                        "script and any pre-shared keys; nothing of that command ran. Use the winrm, psrp or ssh "
                        "connection" % getattr(action._connection, "transport", "?"), changed=False)
    return res.get("rc", 0), res.get("stdout", ""), res.get("stderr", "")
