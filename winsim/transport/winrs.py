"""The WinRM Shell resource (WinRS, `windows/shell/cmd`) of one host: shells, commands, their streams.

Create -> Command -> (Send) -> Receive... -> Signal -> Delete, as [MS-WSMV] 3.1.4.5.2 and
3.1.4.11-3.1.4.14 describe. Each command runs `host.run(command, arguments, stdin)` in a worker
thread; Receive waits on a condition (no polling) until output is ready or OperationTimeout ends.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import logging
import threading
import time
import uuid

from ..result import Result
from ..shell import process
from . import wsman

log = logging.getLogger("winsim.winrs")

# WinRM's default IdleTimeout is 7200 s (`winrm get winrm/config/winrs`); shells left behind by
# clients that never sent Delete are dropped after that long, at the next Create.
SHELL_IDLE_TIMEOUT = 7200.0
# Room kept in each Receive reply for the envelope around the base64 streams.
ENVELOPE_OVERHEAD = 4096


class DropConnection(Exception):
    """Close the client's socket without any reply (fault injection: a network cut mid-command)."""


def codec_for(codepage: int) -> str:
    """The Python codec for a Windows console code page; unknown pages fail as WinRS would refuse them."""
    name = "utf-8" if codepage == 65001 else "cp%d" % codepage
    try:
        codecs.lookup(name)
    except LookupError:
        # [I] not verified on real Windows: the exact fault for an unusable WINRS_CODEPAGE.
        raise wsman.invalid_header("WINRS_CODEPAGE %d is not a code page this host knows." % codepage) from None
    return name


class Command:
    """One process started by Command; its output is handed out by successive Receives."""

    def __init__(self, command_id: str, command: str, arguments: list[str], wait_for_stdin: bool):
        self.command_id = command_id
        self.command = command
        self.arguments = arguments
        self.cond = threading.Condition()
        self.stdin = bytearray()
        self.stdin_closed = not wait_for_stdin
        self.started = False
        self.finished = False
        self.terminated = False
        self.exit_code = 0
        self.pending: list[tuple[str, bytes]] = []  # output produced and not yet received
        self.drop_on_done = False  # fault injection: cut the connection instead of reporting Done
        # Set by Signal (terminate, ctrl_c, ctrl_break) and by deleting the shell: the process ends
        # at its next statement or program start ([MS-WSMV] 2.2.5.6; winsim/shell/process.py).
        self.kill = threading.Event()


class Shell:
    def __init__(self, shell_id: str, owner: str, codepage: int, input_streams: str, output_streams: str):
        self.shell_id = shell_id
        self.owner = owner
        self.codepage = codepage
        self.codec = codec_for(codepage)
        self.input_streams = input_streams
        self.output_streams = output_streams
        self.commands: dict[str, Command] = {}
        self.last_used = time.monotonic()


class ShellService:
    """Dispatches the Shell resource's actions for one host. Thread-safe: one instance per host."""

    def __init__(self, host, machine: str):
        self.host = host
        self.machine = machine
        self.shells: dict[str, Shell] = {}
        self.lock = threading.Lock()
        self.commands_seen = 0
        self.drop_command: int | None = None  # absolute command number whose Done reply is dropped
        # Commands started and not yet finished. A started command runs to its end whatever its
        # client does (Windows keeps the shell and its process until IdleTimeout).
        self.running = 0
        self.idle = threading.Condition()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no command of this host runs; False if one still does after timeout s."""
        with self.idle:
            return self.idle.wait_for(lambda: self.running == 0, timeout=timeout)

    # fault injection -------------------------------------------------------------------------
    def drop_during_command(self, k: int | None) -> None:
        """Cut the connection during the k-th command from now (1 = the next one); None clears it."""
        with self.lock:
            self.drop_command = None if k is None else self.commands_seen + k

    def reset(self) -> None:
        """What a reboot does to WinRM: every shell and command is gone; clients holding a ShellId
        get the shell-not-found fault."""
        with self.lock:
            shells, self.shells = list(self.shells.values()), {}
        for shell in shells:
            self._end_commands(shell)

    # dispatch --------------------------------------------------------------------------------
    def handle(self, request: wsman.Request, user: str, address: str) -> bytes:
        if request.resource_uri != wsman.SHELL_CMD_URI:
            raise wsman.resource_not_found(request.resource_uri or "(none)")
        if request.action == wsman.ACTION_CREATE:
            return self._create(request, user, address)
        handler = {
            wsman.ACTION_COMMAND: self._command,
            wsman.ACTION_SEND: self._send,
            wsman.ACTION_RECEIVE: self._receive,
            wsman.ACTION_SIGNAL: self._signal,
            wsman.ACTION_DELETE: self._delete,
        }.get(request.action)
        if handler is None:
            raise wsman.action_not_supported(request.action)
        return handler(request, self._shell(request, user))

    def _shell(self, request: wsman.Request, user: str) -> Shell:
        # pywinrm writes Name="ShellId", [MS-WSMV]'s examples Name="ShellID": take either.
        shell_id = next((v for k, v in request.selectors.items() if k.lower() == "shellid"), "")
        with self.lock:
            shell = self.shells.get(shell_id)
        # A shell belongs to the user who created it; to anyone else it does not exist.
        if shell is None or shell.owner.lower() != user.lower():
            raise wsman.shell_not_found(shell_id or "(none)")
        shell.last_used = time.monotonic()
        return shell

    @staticmethod
    def _command_of(shell: Shell, command_id: str) -> Command:
        command = shell.commands.get(command_id)
        if command is None:
            raise wsman.command_not_found(command_id or "(none)")
        return command

    # actions ---------------------------------------------------------------------------------
    def _create(self, request: wsman.Request, user: str, address: str) -> bytes:
        body = request.body_child("rsp", "Shell")
        codepage_text = request.options.get("WINRS_CODEPAGE", "437")  # 437: OEM page of en-US Windows
        if not codepage_text.isdigit():
            raise wsman.invalid_header("WINRS_CODEPAGE %r is not a number." % codepage_text)
        for name in ("Environment", "WorkingDirectory"):
            if body.find(wsman.q("rsp", name)) is not None:
                raise wsman.unsupported_feature("winsim does not emulate rsp:%s for a shell." % name)
        input_streams = (body.findtext(wsman.q("rsp", "InputStreams")) or "stdin").strip()
        output_streams = (body.findtext(wsman.q("rsp", "OutputStreams")) or "stdout stderr").strip()
        shell = Shell(str(uuid.uuid4()).upper(), user, int(codepage_text), input_streams, output_streams)
        now = time.monotonic()
        with self.lock:
            for stale in [s for s in self.shells.values() if now - s.last_used > SHELL_IDLE_TIMEOUT]:
                del self.shells[stale.shell_id]
            self.shells[shell.shell_id] = shell
        return wsman.created_envelope(request, shell.shell_id, address, user, input_streams, output_streams)

    def _command(self, request: wsman.Request, shell: Shell) -> bytes:
        line = request.body_child("rsp", "CommandLine")
        command = (line.findtext(wsman.q("rsp", "Command")) or "").strip()
        if not command:
            raise wsman.invalid_body("rsp:CommandLine has no rsp:Command.")
        # WinRS appends each rsp:Arguments to the command line after a space; pywinrm sends one
        # element holding all arguments already joined.
        arguments = [node.text or "" for node in line.iterfind(wsman.q("rsp", "Arguments"))]
        # WINRS_SKIP_CMD_SHELL=TRUE starts the program without cmd.exe ([MS-WSMV] 3.1.4.11); the
        # hosts always take the line as cmd.exe /c would, so that request is refused, not mis-run.
        if request.options.get("WINRS_SKIP_CMD_SHELL", "FALSE").upper() == "TRUE":
            raise wsman.unsupported_feature("winsim runs every command line through cmd.exe; "
                                            "WINRS_SKIP_CMD_SHELL=TRUE is not emulated.")
        # WINRS_CONSOLEMODE_STDIN=FALSE is how Ansible announces that stdin follows through Send;
        # such a command starts once stdin is closed (Send End="true"). [MS-WSMV] 3.1.4.11.
        wait_for_stdin = request.options.get("WINRS_CONSOLEMODE_STDIN", "TRUE").upper() == "FALSE"
        cmd = Command(str(uuid.uuid4()).upper(), command, arguments, wait_for_stdin)
        with self.lock:
            self.commands_seen += 1
            if self.commands_seen == self.drop_command:
                cmd.drop_on_done = True
                self.drop_command = None
            shell.commands[cmd.command_id] = cmd
        if not wait_for_stdin:
            self._start(shell, cmd)
        return wsman.command_envelope(request, cmd.command_id)

    def _send(self, request: wsman.Request, shell: Shell) -> bytes:
        send = request.body_child("rsp", "Send")
        for stream in send.iterfind(wsman.q("rsp", "Stream")):
            if stream.get("Name") != "stdin":
                raise wsman.invalid_body("Send accepts the stdin stream only, not %r." % stream.get("Name"))
            cmd = self._command_of(shell, stream.get("CommandId", ""))
            try:
                data = base64.b64decode((stream.text or "").strip(), validate=True)
            except binascii.Error:
                raise wsman.invalid_body("The stdin stream is not base64.") from None
            with cmd.cond:
                if cmd.stdin_closed:
                    # [I] not verified on real Windows: text for input after the end of stdin.
                    raise wsman.invalid_body("stdin of command %s is already closed." % cmd.command_id)
                cmd.stdin += data
                cmd.stdin_closed = stream.get("End", "false").lower() == "true"
                start = cmd.stdin_closed
            if start:
                self._start(shell, cmd)
        return wsman.send_envelope(request)

    def _receive(self, request: wsman.Request, shell: Shell) -> bytes:
        desired = request.body_child("rsp", "Receive").find(wsman.q("rsp", "DesiredStream"))
        if desired is None:
            raise wsman.invalid_body("rsp:Receive has no rsp:DesiredStream.")
        cmd = self._command_of(shell, desired.get("CommandId", ""))
        with cmd.cond:
            # [MS-WSMV] 3.1.4.14: with no output before OperationTimeout the answer is fault
            # 2150858793 and the client asks again; waiting here keeps the client from spinning.
            if not cmd.cond.wait_for(lambda: cmd.pending or cmd.finished or cmd.terminated,
                                     timeout=request.operation_timeout):
                raise wsman.timed_out()
            budget = max(1024, (request.max_envelope_size - ENVELOPE_OVERHEAD) * 3 // 4)
            streams = []
            while cmd.pending and budget > 0:
                name, data = cmd.pending[0]
                part, rest = data[:budget], data[budget:]
                streams.append((name, part, False))
                budget -= len(part)
                if rest:
                    cmd.pending[0] = (name, rest)
                else:
                    cmd.pending.pop(0)
            done = (cmd.finished or cmd.terminated) and not cmd.pending
            if done and cmd.drop_on_done:
                cmd.drop_on_done = False
                raise DropConnection("fault injection: connection cut during command %s" % cmd.command_id)
            if done:
                streams += [(name, b"", True) for name in shell.output_streams.split()]
        return wsman.receive_envelope(request, cmd.command_id, streams, cmd.exit_code if done else None)

    def _signal(self, request: wsman.Request, shell: Shell) -> bytes:
        signal = request.body_child("rsp", "Signal")
        code = (signal.findtext(wsman.q("rsp", "Code")) or "").strip()
        if code not in (wsman.SIGNAL_TERMINATE, wsman.SIGNAL_CTRL_C, wsman.SIGNAL_CTRL_BREAK):
            raise wsman.invalid_body("Unknown signal code %r." % code)
        cmd = self._command_of(shell, signal.get("CommandId", ""))
        cmd.kill.set()
        with cmd.cond:
            cmd.terminated = True
            cmd.cond.notify_all()
        with self.lock:
            shell.commands.pop(cmd.command_id, None)
        return wsman.signal_envelope(request)

    def _delete(self, request: wsman.Request, shell: Shell) -> bytes:
        with self.lock:
            self.shells.pop(shell.shell_id, None)
        self._end_commands(shell)
        return wsman.delete_envelope(request)

    @staticmethod
    def _end_commands(shell: Shell) -> None:
        for cmd in list(shell.commands.values()):
            cmd.kill.set()
            with cmd.cond:
                cmd.terminated = True
                cmd.cond.notify_all()

    # running ---------------------------------------------------------------------------------
    def _start(self, shell: Shell, cmd: Command) -> None:
        with cmd.cond:
            if cmd.started:
                return
            cmd.started = True
        with self.idle:
            self.running += 1
        threading.Thread(target=self._run, args=(shell, cmd), daemon=True,
                         name="winrs-%s" % cmd.command_id[:8]).start()

    @staticmethod
    def _output(shell: Shell, cmd: Command, name: str, text: str) -> None:
        """Output written while the command runs: the next Receive hands it out."""
        if text:
            with cmd.cond:
                cmd.pending.append((name, text.encode(shell.codec, errors="replace")))
                cmd.cond.notify_all()

    def _run(self, shell: Shell, cmd: Command) -> None:
        try:
            try:
                with process.running(cmd.kill, lambda name, text: self._output(shell, cmd, name, text)):
                    result = self.host.run(cmd.command, cmd.arguments, bytes(cmd.stdin))
            except process.ProcessKilled:
                log.info("%s: command %s terminated", self.machine, cmd.command_id)
                result = Result("", "", 1)  # [I] the exit code WinRS gives a terminated process
            except Exception as err:  # a bug in the stand-in must show, never pass as success
                log.exception("%s: host.run failed for %r", self.machine, cmd.command)
                result = Result("", "winsim internal error running %s: %s: %s\r\n"
                                % (cmd.command, type(err).__name__, err), 1)
            with cmd.cond:
                for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                    if text:
                        cmd.pending.append((name, text.encode(shell.codec, errors="replace")))
                cmd.exit_code = result.rc
                cmd.finished = True
                cmd.cond.notify_all()
        finally:
            with self.idle:
                self.running -= 1
                self.idle.notify_all()
