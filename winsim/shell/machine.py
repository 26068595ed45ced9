"""What a winsim host does with a command line that arrives over WinRM.

    execute(host, command_line, stdin=b'') -> Result

The WinRM `cmd` shell runs each command through cmd.exe ([I]: builtins such as `dir` and `echo`
work over `winrs`, which is what that implies), so the line goes to the cmd.exe subset first;
`PowerShell ...` on it starts the PowerShell subset, anything else goes to the host's tools
through `host.run_tool(argv, stdin)`.

The host object provides `name`, `personality` (winsim.personalities.Personality: `powershell`
is '5.1', '2.0' or '' for none, `system_root`), `run_tool(argv, stdin='') -> Result` and
optionally `fs`, a dict path -> text shared by Set-Content, Get-Content and the tools.
"""
import base64
import binascii
import re
import weakref
from typing import Dict, List, Optional
from xml.sax.saxutils import escape

from . import cmdexe, mutexes, process
from .powershell import NOT_RECOGNIZED, Interpreter
from ..result import Result

_FALLBACK_FS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def execute(host, command_line: str, stdin: bytes = b"") -> Result:
    text = stdin.decode("utf-8", "replace") if isinstance(stdin, bytes) else (stdin or "")
    return cmdexe.run_line(Machine(host), command_line, text)


class Machine:
    """One process tree on a host: its environment, files and way of starting programs."""

    def __init__(self, host):
        self.host = host
        personality = getattr(host, "personality", None)
        self.ps_version = getattr(personality, "powershell", "5.1") if personality else "5.1"
        root = getattr(personality, "system_root", None) or r"C:\Windows"
        self.system_root = root
        self.env: Dict[str, str] = {
            "COMPUTERNAME": str(getattr(host, "name", "WINSIM")).upper(),
            "SystemRoot": root, "windir": root, "SystemDrive": root[:2],
            "TEMP": root + r"\TEMP", "TMP": root + r"\TEMP",
            "ComSpec": root + r"\system32\cmd.exe", "OS": "Windows_NT",
            "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
        }
        self.errorlevel = 0
        # Set by cmd.exe for the one program whose output goes straight to the client; the first
        # powershell.exe started takes it (winsim/shell/process.py).
        self.console = None
        fs = getattr(host, "fs", None)
        if fs is None:
            try:
                fs = _FALLBACK_FS.setdefault(host, {})
            except TypeError:       # a host that cannot be weakly referenced: per command only
                fs = {}
        self.fs = fs

    # -- environment and files (cmd side) ----------------------------------------------------
    def getenv(self, name: str) -> Optional[str]:
        for key, value in self.env.items():
            if key.lower() == name.lower():
                return value
        return None

    def setenv(self, name: str, value: str):
        for key in [k for k in self.env if k.lower() == name.lower()]:
            del self.env[key]
        if value:
            self.env[name] = value

    def _key(self, path: str) -> Optional[str]:
        want = path.replace("/", "\\").lower()
        return next((k for k in self.fs if k.replace("/", "\\").lower() == want), None)

    def read_file(self, path: str) -> Optional[str]:
        key = self._key(path)
        return None if key is None else self.fs[key]

    def write_file(self, path: str, text: str, append: bool):
        key = self._key(path) or path
        self.fs[key] = (self.fs.get(key, "") + text) if append else text

    def path_exists(self, path: str) -> bool:
        """Folders a Windows host has (the drive, the system root and TEMP, the tools' install
        folders) and installed tools named by their path; files live in `fs`."""
        want = path.rstrip("\\").lower()
        personality = getattr(self.host, "personality", None)
        folders = {"c:", self.system_root.lower(), (self.getenv("TEMP") or "").lower(),
                   (self.system_root + r"\system32").lower()}
        folders.update(f.lower() for f in (getattr(personality, "tools", None) or {}).values())
        if want in folders:
            return True
        resolve = getattr(self.host, "resolve_tool", None)
        return "\\" in want and resolve is not None and resolve(path) is not None

    def sleep(self, seconds: float):
        """Start-Sleep: the host's simulated clock moves (SimHost.advance_time); nobody waits."""
        advance = getattr(self.host, "advance_time", None)
        if advance is not None and seconds > 0:
            advance(seconds)

    def ver_text(self) -> str:
        personality = getattr(self.host, "personality", None)
        try:
            from ..personalities import version_string
            return "Microsoft Windows [Version %s]" % version_string(personality)
        except (AttributeError, TypeError):
            return "Microsoft Windows"

    # -- starting programs ------------------------------------------------------------------
    def run_process(self, name: str, argv: List[str], args_text: str,
                    stdin: str) -> Optional[Result]:
        """Start `name`; None when no such program exists (each shell words that itself)."""
        process.check()     # a terminated command starts nothing more (winsim/shell/process.py)
        program = re.split(r"[\\/]", name)[-1].lower()
        if program.endswith(".exe"):
            program = program[:-4]
        if program in ("cmd", "powershell"):
            if program == "powershell" and not self.ps_version:
                return None
            # A child process inherits a copy of the environment; what it sets stays its own.
            saved = dict(self.env), self.errorlevel
            self.errorlevel = 0
            console, self.console = self.console, None
            try:
                if program == "cmd":
                    return cmdexe.run_cmd_process(self, args_text, stdin)
                return run_powershell(self, argv[1:], stdin, console)
            finally:
                self.env.clear()
                self.env.update(saved[0])
                self.errorlevel = saved[1]
        # run_tool is called even for an unknown name so that the host's audit log sees it; the
        # calling shell then words the failure its own way (PowerShell or cmd.exe).
        result = self.host.run_tool(argv, stdin)
        resolve = getattr(self.host, "resolve_tool", None)
        missing = resolve(argv[0]) is None if resolve else (
            result.rc != 0 and NOT_RECOGNIZED.split(" as ")[0] in result.stderr)
        return None if missing else result


# -- powershell.exe ---------------------------------------------------------------------------

_PS_SWITCHES = ["version", "psconsolefile", "nologo", "noexit", "sta", "mta", "noprofile",
                "noninteractive", "inputformat", "outputformat", "windowstyle", "encodedcommand",
                "configurationname", "file", "executionpolicy", "command", "help"]
_PS_VALUED = {"version", "psconsolefile", "inputformat", "outputformat", "windowstyle",
              "configurationname", "executionpolicy"}
_PS_ALIASES = {"ec": "encodedcommand", "e": "encodedcommand", "ep": "executionpolicy",
               "ex": "executionpolicy", "c": "command", "f": "file", "nop": "noprofile",
               "noni": "noninteractive", "w": "windowstyle", "?": "help"}


def run_powershell(machine: Machine, args: List[str], stdin: str, console=None) -> Result:
    """powershell.exe with its arguments (after the program name), per `powershell -?`."""
    script = None
    encoded = False
    from_stdin = False
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg or arg[0] not in "-/":
            script = " ".join(args[i:])
            break
        name = arg[1:].lower()
        name = _PS_ALIASES.get(name) or next((s for s in _PS_SWITCHES if s.startswith(name) and
                                              name), None)
        if name is None:
            script = " ".join(args[i:])     # an unknown switch starts the command text
            break
        if name == "command":
            script = " ".join(args[i + 1:])
            if script == "-":
                script, from_stdin = stdin, True
            break
        if name == "encodedcommand":
            try:
                script = base64.b64decode(args[i + 1], validate=True).decode("utf-16-le")
            except (IndexError, binascii.Error, UnicodeDecodeError):
                return Result("", "Cannot process the command because the value specified with "
                                  "-EncodedCommand is not properly encoded. The value must be "
                                  "Base64 encoded.\r\n", 1)
            encoded = True
            i += 2
            continue
        if name == "file":
            if i + 1 >= len(args) or machine.read_file(args[i + 1]) is None:
                return Result("", "The argument '%s' to the -File parameter does not exist. "
                                  "Provide the path to an existing '.ps1' file as an argument to "
                                  "the -File parameter.\r\n" % (args[i + 1] if i + 1 < len(args)
                                                                 else ""), -196608)
            script = machine.read_file(args[i + 1])
            break
        i += 2 if name in _PS_VALUED else 1
    if script is None:
        script, from_stdin = stdin, True    # no command: PowerShell reads commands from stdin ([I] as one script)
    return run_script(machine, script, clixml=encoded, stdin="" if from_stdin else stdin,
                      console=console)


def stdin_lines(text: str) -> List[str]:
    """Standard input as PowerShell's `$input` enumerates it: lines split at CR LF, LF or CR (.NET
    TextReader.ReadLine), no empty line after a final line break. [I] powershell.exe decodes the
    bytes with the console's input code page; winsim takes UTF-8 (winsec.ipsec sends ASCII only)."""
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def run_script(machine: Machine, script: str, clixml: bool = False, stdin: str = "",
               console=None) -> Result:
    """Run PowerShell source. With clixml, PowerShell's own error records go to stderr as CLIXML,
    as powershell.exe -EncodedCommand does when its stderr is redirected (PowerShell issue #5912,
    WinRb/WinRM#106); native tools' stderr still passes through as plain text. `stdin` (when the
    script came from the command line, not from stdin itself) is what `$input` enumerates."""
    out: List[str] = []
    err: List[tuple] = []

    def run_native(name, argv, args_text, stdin):
        return machine.run_process(name, argv, args_text, stdin)

    # One powershell.exe: its mutex handles close, and what it owns is abandoned, when it ends.
    session = mutexes.namespace_for(machine.host).session()
    # With a console (the WinRS client), output leaves as it is written; else in the Result.
    write_out = out.append if console is None else (lambda text: console("stdout", text))
    interp = Interpreter(script.replace("\r\n", "\n"), machine.env, machine.ps_version or "5.1",
                         machine.fs, run_native, write_out,
                         lambda text: err.append(("raw", text)) if text else None,
                         lambda text: err.append(("ps", text)), machine.sleep,
                         machine.path_exists, stdin_lines(stdin), session)
    try:
        rc = interp.run()
    finally:
        session.end()
    return Result("".join(out), _stderr(err, clixml), rc)


def _stderr(events: List[tuple], clixml: bool) -> str:
    if not clixml:
        return "".join(text for _, text in events)
    parts: List[str] = []
    header_written = False
    run: List[str] = []

    def flush():
        nonlocal header_written
        if run:
            if not header_written:
                parts.append("#< CLIXML\r\n")
                header_written = True
            parts.append('<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
                         '2004/04">%s</Objs>' % "".join(run))
            run.clear()

    for kind, text in events:
        if kind == "raw":
            flush()
            parts.append(text)
        else:
            for line in text.splitlines(True):
                run.append('<S S="Error">%s</S>' % clixml_escape(line))
    flush()
    return "".join(parts)


def clixml_escape(text: str) -> str:
    """A string as PowerShell's serializer writes it: XML escapes, control characters and a
    literal `_x` as _xHHHH_."""
    text = re.sub(r"_(?=x[0-9A-Fa-f]{4}_)", "_x005F_", text)
    text = re.sub(r"[\x00-\x1f]", lambda m: "_x%04X_" % ord(m.group(0)), text)
    return escape(text)
