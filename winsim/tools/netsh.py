"""netsh.exe: the context shell. Command line mode (`netsh ipsec static add ...`), scripts
(`netsh -f file`, `netsh exec file`, commands on stdin), `-c context`, `pushd`/`popd`.

One netsh process keeps one `ipsec static` context, so `set store` holds for the rest of a script
and is forgotten by the next netsh process (docs/windows-tools.md "Store selection", [I]). Windows XP and 2000 have no ipsec
context (docs/windows-tools.md "Tools per Windows version", [I]). A script stops at its first failing command, netsh exits 1 [I].
"""
from typing import List, Optional, Sequence, Tuple

from ..result import Result
from .netsh_dynamic import HANDLERS as DYNAMIC_HANDLERS
from .netsh_dynamic import NOT_EMULATED_COMMANDS as DYNAMIC_NOT_EMULATED
from .netsh_dynamic import DynamicContext
from .netsh_params import NetshError, lookup, match_word
from .netsh_static import HANDLERS as STATIC_HANDLERS
from .netsh_static import StaticContext

NOT_FOUND = "The following command was not found: %s."
FILE_NOT_FOUND = "The system cannot find the file specified.\n"


def static_knows(words: Sequence[str]) -> bool:
    return bool(lookup(words, STATIC_HANDLERS) or match_word(words[0], ("exportpolicy", "importpolicy")))


def dynamic_knows(words: Sequence[str]) -> bool:
    return bool(lookup(words, DYNAMIC_HANDLERS) or lookup(words, DYNAMIC_NOT_EMULATED))


def split_line(line: str) -> List[str]:
    """netsh's own tokenizer for script lines: blanks separate, double quotes group and are
    dropped (`name="A B"` -> `name=A B`); no backslash escapes [I]."""
    words, current, quoted, started = [], [], False, False
    for ch in line:
        if ch == '"':
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted:
            if started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        words.append("".join(current))
    return words


def read_file(host, path: str) -> Optional[str]:
    """A file of the host's virtual file system; Windows paths compare case-insensitively."""
    if path in host.fs:
        return host.fs[path]
    wanted = path.replace("/", "\\").casefold()
    for name, text in host.fs.items():
        if name.replace("/", "\\").casefold() == wanted:
            return text
    return None


class Session:
    """One netsh process."""

    def __init__(self, host):
        self.host = host
        self.context: Tuple[str, ...] = ()
        self.stack: List[Tuple[str, ...]] = []
        self._static: Optional[StaticContext] = None
        self._dynamic: Optional[DynamicContext] = None

    def static(self) -> StaticContext:
        if self._static is None:
            self._static = StaticContext(self.host)
        return self._static

    def dynamic(self) -> DynamicContext:
        if self._dynamic is None:
            self._dynamic = DynamicContext(self.host)
        return self._dynamic

    def resolve_context(self, words: Sequence[str]) -> Tuple[Tuple[str, ...], List[str]]:
        """Leading context words (from the root) -> (context, the rest); ((), words) if none."""
        if not words or not self.host.profile.netsh_ipsec or match_word(words[0], ("ipsec",)) is None:
            return (), list(words)
        if len(words) == 1:
            return ("ipsec",), []
        sub = match_word(words[1], ("static", "dynamic"))
        if sub is None:
            return ("ipsec",), list(words[1:])
        return ("ipsec", sub), list(words[2:])

    def command(self, words: Sequence[str], typed: str) -> str:
        """Run one command typed in the current context: looked up there, then in its parents."""
        head = words[0].lower() if words else ""
        if head in ("pushd", "popd", "..", "exit", "quit", "bye", "exec"):
            return self.shell_command(words, typed)
        for depth in range(len(self.context), -1, -1):
            context, rest = self.resolve_context(list(self.context[:depth]) + list(words))
            if context == ("ipsec", "static") and rest and static_knows(rest):
                return self.static().run(rest)
            if context == ("ipsec", "dynamic") and rest and dynamic_knows(rest):
                return self.dynamic().run(rest)
            if context and not rest:
                self.context = context
                return ""
        raise NetshError(NOT_FOUND % typed)

    def shell_command(self, words: Sequence[str], typed: str) -> str:
        head = words[0].lower()
        if head == "pushd":
            self.stack.append(self.context)
            if len(words) > 1:
                return self.command(words[1:], " ".join(words[1:]))
            return ""
        if head == "popd":
            if not self.stack:
                raise NetshError(NOT_FOUND % typed)      # [I]
            self.context = self.stack.pop()
            return ""
        if head == "..":
            self.context = self.context[:-1]
            return ""
        if head == "exec":
            if len(words) != 2:
                raise NetshError(NOT_FOUND % typed)
            return self.script_file(words[1])
        raise _Exit()

    def script_file(self, path: str) -> str:
        text = read_file(self.host, path)
        if text is None:
            raise NetshError(FILE_NOT_FOUND)
        return self.script(text)

    def script(self, text: str) -> str:
        out = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                out.append(self.command(split_line(line), line))
            except NetshError as err:
                raise NetshError("".join(out) + err.text) from None
            except _Exit:
                break
        return "".join(out)


class _Exit(Exception):
    """`exit`/`quit`/`bye` in a script: stop reading it."""


def run(host, argv: List[str], stdin: str = "") -> Result:
    session = Session(host)
    args = list(argv[1:])
    try:
        while args and args[0].startswith("-") and len(args[0]) > 1:
            flag = args.pop(0).lower()
            if flag == "-f" and len(args) == 1:
                return Result(stdout=session.script_file(args[0]))
            if flag == "-c" and args:
                session.context, rest = session.resolve_context(split_line(args.pop(0)))
                if rest:
                    raise NetshError(NOT_FOUND % " ".join(rest))
                continue
            # -a alias files, -r/-u/-p remote machines and anything else: not emulated.
            raise NetshError("The following command was not found: %s." % " ".join([flag] + args))
        if not args:
            return Result(stdout=session.script(stdin))     # interactive netsh reading its input
        return Result(stdout=session.command(args, " ".join(args)))
    except NetshError as err:
        return Result(stdout=err.text, rc=1)
    except _Exit:
        return Result()
