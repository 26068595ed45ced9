"""A small Windows PowerShell (5.1, and 2.0 for the 2003/XP personalities) interpreter.

It runs the subset documented in the "Shell" section of winsim/README.md and fails everything
else the way PowerShell fails: an error record on stderr and a non-zero exit, never a silent
success. Statement structure and argument mode are parsed by one hand-written recursive-descent
parser because argument mode is where fidelity matters (tree-sitter-powershell splits
`name="A B"` into three tokens, and one parser for both keeps their boundaries consistent).

Error texts follow Windows PowerShell 5.1's NormalView layout ("At line:L char:C", the `+ ~~~`
marker, CategoryInfo, FullyQualifiedErrorId); message strings are PowerShell's own resource texts.
"""
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import pstypes
from .cmdline import (Argument, NativePiece, Parameter, Verbatim, command_line_to_argv,
                      legacy_command_line)
from .pstypes import DotNetException, DotNetObject, DotNetType

# ---------------------------------------------------------------------------------------------
# Errors


class ParseError(Exception):
    def __init__(self, message: str, fqid: str, offset: int, length: int = 1):
        super().__init__(message)
        self.message, self.fqid, self.offset, self.length = message, fqid, offset, length


class PSError(Exception):
    """An error record. Raised when terminating; written and swallowed when not."""

    def __init__(self, message: str, fqid: str, category: str, target: str = "",
                 reason: str = "RuntimeException", extent: Optional[Tuple[int, int]] = None,
                 prefix: str = "", script_terminating: bool = False, type_name: str = "String",
                 activity: str = "", dotnet: Optional[DotNetException] = None):
        super().__init__(message)
        self.message, self.fqid, self.category, self.target = message, fqid, category, target
        self.reason, self.extent, self.prefix = reason, extent, prefix
        self.script_terminating, self.type_name = script_terminating, type_name
        self.activity = activity        # CategoryInfo's [Activity]: the cmdlet, when one failed
        self.dotnet = dotnet            # the .NET exception inside, for `catch [Type]`
        self.src: Optional[str] = None  # the script text its extent points into (Invoke-Expression)


class ExitScript(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def command_not_found(name: str, extent, invoked: bool, major: int) -> PSError:
    # 3.0+ prefix the record with the command, `& : ` for the call operator; 2.0 has no prefix
    # ([I] from published transcripts of both versions).
    prefix = "" if major < 3 else ("& : " if invoked else name + " : ")
    return PSError("The term '%s' is not recognized as the name of a cmdlet, function, script "
                   "file, or operable program. Check the spelling of the name, or if a path was "
                   "included, verify that the path is correct and try again." % name,
                   "CommandNotFoundException", "ObjectNotFound", name, "CommandNotFoundException",
                   extent, prefix=prefix)


NOT_RECOGNIZED = "is not recognized as the name of a cmdlet"

# ---------------------------------------------------------------------------------------------
# Values


class NativeErrorLine(str):
    """A native command's stderr line brought into the pipeline by `2>&1` (an ErrorRecord in
    PowerShell 5.1: it converts to its text; the first one of a command displays as a full
    NativeCommandError record)."""
    record: Optional[str] = None


class RawText(str):
    """A native command's stdout on its way to the console untouched (no capture, no merge)."""


class Version:
    def __init__(self, text: str):
        parts = [int(p) for p in text.split(".")]
        self.Major, self.Minor = parts[0], parts[1] if len(parts) > 1 else 0
        self.text = text

    def __str__(self):
        return self.text


class PSVariable:
    def __init__(self, name: str, value: Any):
        self.Name, self.Value = name, value


class ExceptionObject(DotNetObject):
    def __init__(self, type_name: str, message: str, inner: Optional["ExceptionObject"] = None):
        self.type_name, self.message, self.inner = type_name, message, inner

    def properties(self):
        return {"message": self.message, "innerexception": self.inner}

    def __str__(self):
        return "%s: %s" % (self.type_name, self.message)


class ErrorRecord(DotNetObject):
    """`$_` in a catch block: the error record (about_Try_Catch_Finally)."""

    type_name = "System.Management.Automation.ErrorRecord"

    def __init__(self, e: "PSError", major: int):
        self.e = e
        inner = None
        if e.dotnet is not None:
            inner = ExceptionObject(e.dotnet.type_name, e.dotnet.text(major))
        name = e.reason if "." in e.reason else "System.Management.Automation." + e.reason
        self.exception = ExceptionObject(name, e.message, inner)

    def properties(self):
        return {"exception": self.exception, "fullyqualifiederrorid": self.e.fqid,
                "targetobject": self.e.target or None}

    def __str__(self):
        return self.e.message


def members(obj: Any) -> Dict[str, Any]:
    if isinstance(obj, DotNetObject):
        return obj.properties()
    if isinstance(obj, dict):
        return {str(k).lower(): v for k, v in obj.items()}
    if isinstance(obj, (Version, PSVariable)):
        return {k.lower(): v for k, v in vars(obj).items() if k[0].isupper()}
    if isinstance(obj, str):
        return {"length": len(obj)}
    if isinstance(obj, list):
        return {"count": len(obj), "length": len(obj)}
    return {}


def _ps_type(v: Any) -> str:
    return {str: "[System.String]", int: "[System.Int32]", bool: "[System.Boolean]",
            list: "[System.Object[]]", dict: "[System.Collections.Hashtable]"}.get(type(v),
                                                                                    type(v).__name__)


def to_str(v: Any) -> str:
    """PowerShell's string conversion (arrays joined by $OFS, a space)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return " ".join(to_str(x) for x in v)
    if isinstance(v, PSVariable):
        return "System.Management.Automation.PSVariable"
    return str(v)


def truthy(v: Any) -> bool:
    if isinstance(v, list):
        if not v:
            return False
        return truthy(v[0]) if len(v) == 1 else True
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    if isinstance(v, str):
        return v != ""
    return True


def enumerate_output(v: Any) -> List[Any]:
    """What a value writes to the pipeline: arrays are unrolled, $null writes nothing."""
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def collect(objs: List[Any]) -> Any:
    """A captured pipeline's value: nothing -> $null, one object -> itself, more -> array."""
    if not objs:
        return None
    return objs[0] if len(objs) == 1 else list(objs)


# ---------------------------------------------------------------------------------------------
# Syntax tree (plain tuples would do; small classes keep the evaluator readable)


class Node:
    start = 0
    end = 0


class Lit(Node):
    def __init__(self, value):
        self.value = value


class Expandable(Node):
    def __init__(self, parts):
        self.parts = parts          # str or Node


class Var(Node):
    def __init__(self, name):
        self.name = name


class SubExpr(Node):
    def __init__(self, statements, force_array=False):
        self.statements, self.force_array = statements, force_array


class Paren(Node):
    def __init__(self, pipeline):
        self.pipeline = pipeline


class Unary(Node):
    def __init__(self, op, operand):
        self.op, self.operand = op, operand


class Binary(Node):
    def __init__(self, op, left, right):
        self.op, self.left, self.right = op, left, right


class ArrayLit(Node):
    def __init__(self, items):
        self.items = items


class Member(Node):
    def __init__(self, target, name):
        self.target, self.name = target, name


class Index(Node):
    def __init__(self, target, index):
        self.target, self.index = target, index


class Redirect:
    def __init__(self, stream, append, merge, target):
        self.stream, self.append, self.merge, self.target = stream, append, merge, target


class Command(Node):
    def __init__(self, name, name_text, invoke, elements, redirects):
        self.name, self.name_text, self.invoke = name, name_text, invoke
        self.elements, self.redirects = elements, redirects


class ExprElement(Node):
    def __init__(self, expr, redirects):
        self.expr, self.redirects = expr, redirects


class ArgParam:
    def __init__(self, text, argument=None, space_after=False):
        self.text, self.argument, self.space_after = text, argument, space_after


class ArgValue:
    def __init__(self, node, comma=False):
        self.node, self.comma = node, comma


class ArgVerbatim:
    def __init__(self, text):
        self.text = text


class Pipeline(Node):
    def __init__(self, elements):
        self.elements = elements


class Assign(Node):
    def __init__(self, target, value):
        self.target, self.value = target, value


class If(Node):
    def __init__(self, clauses, else_body):
        self.clauses, self.else_body = clauses, else_body


class Exit(Node):
    def __init__(self, value):
        self.value = value


class Throw(Node):
    def __init__(self, value):
        self.value = value


class Return(Node):
    def __init__(self, value):
        self.value = value


class TypeLit(Node):
    def __init__(self, name):
        self.name = name


class StaticMember(Node):
    def __init__(self, target, name):
        self.target, self.name = target, name


class Invoke(Node):
    """A method call: `target.Name(args)`, or `target::Name(args)` when static."""

    def __init__(self, target, name, args, static):
        self.target, self.name, self.args, self.static = target, name, args, static


class Try(Node):
    def __init__(self, body, catches, finally_body):
        # catches: [(type names with their extents, body)]; no names = catch-all
        self.body, self.catches, self.finally_body = body, catches, finally_body


# ---------------------------------------------------------------------------------------------
# Parser

_ARG_END = set(" \t\r\n;|&(){},<>")
_VAR_NAME = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*:)?[A-Za-z0-9_?]+|\$|\^|\?")
_COMPARISON = re.compile(
    r"-([ci]?)(eq|ne|gt|ge|lt|le|like|notlike|match|notmatch|contains|notcontains|in|notin|"
    r"replace|join)(?![A-Za-z0-9_])", re.I)
_LOGICAL = re.compile(r"-(and|or|xor)(?![A-Za-z0-9_])", re.I)
_NOT = re.compile(r"-not(?![A-Za-z0-9_])", re.I)
_FORMAT = re.compile(r"-f(?![A-Za-z0-9_])", re.I)
_NUMBER = re.compile(r"(0x[0-9a-fA-F]+|\d+)(?![A-Za-z0-9_.])")
_REDIRECT = re.compile(r"(\*|[1-6])?(>>?)(&[12])?")
_UNSUPPORTED_KEYWORDS = {
    "function", "filter", "foreach", "for", "while", "do", "until", "switch", "catch",
    "finally", "trap", "param", "begin", "process", "end", "break", "continue", "data",
    "dynamicparam", "class", "enum", "using", "workflow", "configuration", "parallel",
    "sequence", "inlinescript"}
# PowerShell's tokenizer takes the typographic quotes as quotes too (CharTraits.IsSingleQuote,
# IsDoubleQuote in the PowerShell sources).
SQ = "'\u2018\u2019\u201a\u201b"
DQ = '"\u201c\u201d\u201e'
_TYPE_NAME = re.compile(r"\[\s*([A-Za-z_][A-Za-z0-9_.]*(?:\[\])?)\s*\]")
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
            "v": "\v"}


class Parser:
    def __init__(self, src: str, version: int = 5):
        self.src = src
        self.n = len(src)
        self.i = 0
        self.version = version
        self.method_args = False    # inside a method call's ( ): a comma separates arguments

    # -- helpers --------------------------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.src[j] if j < self.n else ""

    def startswith(self, text: str) -> bool:
        return self.src.startswith(text, self.i)

    def error(self, message: str, fqid: str, offset: Optional[int] = None, length: int = 1):
        raise ParseError(message, fqid, self.i if offset is None else offset, length)

    def skip_blank(self, newlines: bool = False):
        while self.i < self.n:
            c = self.src[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "`" and self.peek(1) in ("\n", "\r"):
                self.i += 2
                if self.src[self.i - 1] == "\r" and self.peek() == "\n":
                    self.i += 1
            elif self.startswith("<#"):
                end = self.src.find("#>", self.i + 2)
                if end < 0:
                    self.error("Missing the end of the comment block, '#>'.",
                               "MissingEndOfComment", self.n)
                self.i = end + 2
            elif c == "#":
                while self.i < self.n and self.src[self.i] not in "\r\n":
                    self.i += 1
            else:
                break

    def at_statement_end(self) -> bool:
        c = self.peek()
        return c == "" or c in "\r\n;)}"

    def word(self) -> str:
        m = re.compile(r"[A-Za-z][A-Za-z0-9_-]*").match(self.src, self.i)
        if not m:
            return ""
        end = m.end()
        if end < self.n and self.src[end] not in _ARG_END:
            return ""
        return m.group(0)

    # -- statements -----------------------------------------------------------------------
    def parse_script(self) -> List[Node]:
        body = self.parse_statements(end="")
        if self.i < self.n:
            self.unexpected()
        return body

    def unexpected(self):
        token = re.compile(r"[^\s]+").match(self.src, self.i)
        text = token.group(0) if token else self.peek()
        if text.startswith("}"):
            self.error("Unexpected token '}' in expression or statement.", "UnexpectedToken")
        self.error("Unexpected token '%s' in expression or statement." % text, "UnexpectedToken",
                   length=len(text))

    def parse_statements(self, end: str) -> List[Node]:
        saved, self.method_args = self.method_args, False    # $( ) and @( ) inside arguments
        try:
            return self._parse_statements(end)
        finally:
            self.method_args = saved

    def _parse_statements(self, end: str) -> List[Node]:
        body: List[Node] = []
        while True:
            self.skip_blank(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip_blank(newlines=True)
            c = self.peek()
            if c == "" or (end and c == end):
                return body
            if c in ")}":
                self.unexpected()
            body.append(self.parse_statement())
            self.skip_blank()
            if not self.at_statement_end():
                if self.startswith("&&") or self.startswith("||"):
                    self.error("The token '%s' is not a valid statement separator in this "
                               "version." % self.src[self.i:self.i + 2], "InvalidEndOfLine",
                               length=2)
                self.unexpected()

    def parse_statement(self) -> Node:
        start = self.i
        kw = self.word().lower()
        if kw == "if":
            node = self.parse_if()
        elif kw == "try":
            node = self.parse_try()
        elif kw in ("exit", "throw", "return"):
            self.i += len(kw)
            self.skip_blank()
            value = None
            if not self.at_statement_end() and self.peek() != "|":
                value = self.parse_pipeline()
            node = {"exit": Exit, "throw": Throw, "return": Return}[kw](value)
        elif kw in ("else", "elseif"):
            self.error("Unexpected token '%s' in expression or statement." % kw,
                       "UnexpectedToken", length=len(kw))
        elif kw in _UNSUPPORTED_KEYWORDS:
            self.error("winsim: the '%s' statement is outside the PowerShell subset winsim "
                       "runs (see the Shell section of winsim/README.md)." % kw,
                       "WinsimUnsupportedStatement", length=len(kw))
        else:
            node = self.parse_assignment_or_pipeline()
        node.start, node.end = start, self.i
        return node

    def parse_if(self) -> Node:
        clauses = []
        else_body = None
        keyword = "if"
        while True:
            self.i += len(keyword)
            self.skip_blank(newlines=True)
            if self.peek() != "(":
                self.error("Missing '(' after '%s' in if statement." % keyword,
                           "MissingOpenParenthesisInIfStatement")
            self.i += 1
            self.skip_blank(newlines=True)
            if self.peek() in ("", ")"):
                self.error("Missing condition in if statement after '%s ('." % keyword,
                           "IfStatementMissingCondition")
            cond = self.parse_pipeline()
            self.skip_blank(newlines=True)
            if self.peek() != ")":
                self.error("Missing closing ')' after expression in '%s' statement." % keyword,
                           "MissingEndParenthesisAfterStatement")
            self.i += 1
            clauses.append((cond, self.parse_block("if ( condition )")))
            save = self.i
            self.skip_blank(newlines=True)
            keyword = self.word().lower()
            if keyword == "elseif":
                continue
            if keyword == "else":
                self.i += 4
                else_body = self.parse_block("else")
            else:
                self.i = save
            return If(clauses, else_body)

    def parse_try(self) -> Node:
        """try { } catch [T1], [T2] { } catch { } finally { } (about_Try_Catch_Finally; present
        since PowerShell 2.0). Messages are PowerShell's ParserStrings."""
        self.i += 3
        self.skip_blank(newlines=True)
        if self.peek() != "{":
            self.error("The Try statement is missing its statement block.",
                       "MissingTryStatementBlock")
        body = self.parse_block("try")
        catches, finally_body = [], None
        while True:
            save = self.i
            self.skip_blank(newlines=True)
            kw = self.word().lower()
            if kw == "catch":
                if catches and not catches[-1][0]:
                    self.error("The empty Catch block must be the last Catch block.",
                               "EmptyCatchNotLast", length=5)
                self.i += 5
                types = []
                while True:
                    self.skip_blank(newlines=True)
                    if self.peek() != "[":
                        break
                    m = _TYPE_NAME.match(self.src, self.i)
                    if not m:
                        self.error("Missing type name after '['.", "MissingTypename", self.i + 1)
                    types.append((m.group(1), (self.i, m.end())))
                    self.i = m.end()
                    self.skip_blank(newlines=True)
                    if self.peek() != ",":
                        break
                    self.i += 1
                    self.skip_blank(newlines=True)
                    if self.peek() != "[":
                        self.error("Missing type literal in catch clause.",
                                   "MissingTypeLiteralToken")
                if self.peek() != "{":
                    self.error("The Catch block is missing its statement block.",
                               "MissingCatchHandlerBlock")
                catches.append((types, self.parse_block("catch")))
            elif kw == "finally":
                self.i += 7
                self.skip_blank(newlines=True)
                if self.peek() != "{":
                    self.error("The Finally block is missing its statement block.",
                               "MissingFinallyStatementBlock")
                finally_body = self.parse_block("finally")
                break
            else:
                self.i = save
                break
        if not catches and finally_body is None:
            self.error("The Try statement is missing its Catch or Finally block.",
                       "MissingCatchOrFinally")
        return Try(body, catches, finally_body)

    def parse_block(self, after: str) -> List[Node]:
        self.skip_blank(newlines=True)
        if self.peek() != "{":
            self.error("Missing statement block after %s." % after, "MissingStatementBlock")
        open_at = self.i
        self.i += 1
        body = self.parse_statements(end="}")
        if self.peek() != "}":
            self.error("Missing closing '}' in statement block or type definition.",
                       "MissingEndCurlyBrace", open_at)
        self.i += 1
        return body

    def parse_assignment_or_pipeline(self) -> Node:
        if self.peek() == "$":
            save = self.i
            m = _VAR_NAME.match(self.src, self.i + 1)
            if m:
                self.i = m.end()
                self.skip_blank()
                if self.peek() == "=" and self.peek(1) != "=":
                    self.i += 1
                    self.skip_blank(newlines=True)
                    value = self.parse_statement_value()
                    return Assign(m.group(0), value)
            self.i = save
        return self.parse_pipeline()

    def parse_statement_value(self) -> Node:
        kw = self.word().lower()
        if kw == "if":
            self.error("winsim: assigning an if statement is outside the subset.",
                       "WinsimUnsupportedStatement")
        return self.parse_pipeline()

    # -- pipelines and commands -----------------------------------------------------------
    def expression_starts(self) -> bool:
        c = self.peek()
        if c and c in "$(![" + SQ + DQ:
            return True
        if c == "@" and self.peek(1) in "('\"{":
            return True
        if c.isdigit() and _NUMBER.match(self.src, self.i):
            return True
        if c == "-" and (self.peek(1).isdigit() or _NOT.match(self.src, self.i)):
            return True
        return False

    def parse_pipeline(self) -> Pipeline:
        start = self.i
        elements = []
        if self.expression_starts():
            e_start = self.i
            expr = self.parse_expression()
            element = ExprElement(expr, self.parse_redirections())
            element.start, element.end = e_start, self.i
            elements.append(element)
        else:
            elements.append(self.parse_command())
        while True:
            self.skip_blank()
            if self.peek() == "|" and self.peek(1) != "|":
                self.i += 1
                self.skip_blank(newlines=True)
                if self.at_statement_end() or self.peek() == "|":
                    self.error("An empty pipe element is not allowed.", "EmptyPipeElement")
                if self.expression_starts():
                    self.error("Expressions are only allowed as the first element of a "
                               "pipeline.", "ExpressionsMustBeFirstInPipeline")
                elements.append(self.parse_command())
            else:
                break
        pipe = Pipeline(elements)
        pipe.start, pipe.end = start, self.i
        return pipe

    def parse_redirections(self) -> List[Redirect]:
        redirects = []
        while True:
            self.skip_blank()
            r = self.try_redirection()
            if r is None:
                return redirects
            redirects.append(r)

    def try_redirection(self) -> Optional[Redirect]:
        if self.peek() == "<":
            self.error("The '<' operator is reserved for future use.", "RedirectionNotSupported")
        m = _REDIRECT.match(self.src, self.i)
        if not m:
            return None
        stream = m.group(1) or "1"
        self.i = m.end()
        if m.group(3):
            return Redirect(stream, False, m.group(3)[1], None)
        self.skip_blank()
        if self.at_statement_end() or self.peek() == "|":
            self.error("Missing file specification after redirection operator.",
                       "MissingFileSpecification")
        return Redirect(stream, m.group(2) == ">>", None, self.parse_argument())

    def parse_command(self) -> Command:
        start = self.i
        invoke = False
        if self.peek() == "&":
            if self.peek(1) == "&":
                self.error("The token '&&' is not a valid statement separator in this version.",
                           "InvalidEndOfLine", length=2)
            invoke = True
            self.i += 1
            self.skip_blank()
            if self.at_statement_end():
                self.error("Missing expression after '&' in pipeline element.",
                           "MissingExpression")
            name = self.parse_argument()
        elif self.peek() == ".":
            self.error("winsim: dot-sourcing is outside the subset.", "WinsimUnsupportedStatement")
        elif self.peek() == "{":
            self.error("winsim: script blocks are outside the subset.",
                       "WinsimUnsupportedStatement")
        else:
            name = self.parse_argument()
        if self.i == start:
            self.unexpected()
        name_text = self.src[start:self.i].lstrip("&").strip()
        elements: List[Any] = []
        redirects: List[Redirect] = []
        while True:
            self.skip_blank()
            c = self.peek()
            if c == "" or c in "\r\n;|)}":
                break
            if c == "&":
                if self.peek(1) == "&":
                    self.error("The token '&&' is not a valid statement separator in this "
                               "version.", "InvalidEndOfLine", length=2)
                self.error("The ampersand (&) character is not allowed. The & operator is "
                           "reserved for future use; wrap an ampersand in double quotation marks "
                           "(\"&\") to pass it as part of a string.", "AmpersandNotAllowed")
            r = self.try_redirection()
            if r is not None:
                redirects.append(r)
                continue
            if self.version >= 3 and self.startswith("--%") and (
                    self.peek(3) == "" or self.peek(3) in " \t\r\n"):
                # about_Parsing: the stop-parsing token (PowerShell 3.0+) passes the rest of the
                # line as is; only %NAME% is expanded. An unquoted `|` still ends it
                # (PowerShell-Docs issue #6149; quotes are tracked, issue #7635).
                elements.append(ArgValue(Lit("--%")))
                self.i += 3
                end = self.i
                quoted = False
                while end < self.n and self.src[end] not in "\r\n" and (
                        quoted or self.src[end] != "|"):
                    quoted ^= self.src[end] == '"'
                    end += 1
                elements.append(ArgVerbatim(self.src[self.i:end].lstrip(" \t")))
                self.i = end
                break
            if c == "-" and re.match(r"[A-Za-z_?]", self.peek(1) or " "):
                param = self.try_parameter()
                if param is not None:
                    elements.append(param)
                    continue
            before = self.i
            elements.append(self.parse_argument_list())
            if self.i == before:
                self.unexpected()
        cmd = Command(name, name_text, invoke, elements, redirects)
        cmd.start, cmd.end = start, self.i
        return cmd

    def try_parameter(self) -> Optional[ArgParam]:
        """A `-name` token. PowerShell's tokenizer ends a parameter name at blanks, `:` (kept),
        `.` and the other operator characters; a quote or `$` inside makes the whole word a plain
        argument instead (Tokenizer.ScanParameter)."""
        j = self.i + 1
        while j < self.n and self.src[j] not in _ARG_END and self.src[j] not in ":.[":
            if self.src[j] in "`$" + SQ + DQ:
                return None
            j += 1
        colon = j < self.n and self.src[j] == ":"
        if colon:
            j += 1
        text = self.src[self.i:j]
        self.i = j
        if not colon:
            return ArgParam(text)
        space = self.peek() in (" ", "\t")
        self.skip_blank()
        if self.at_statement_end() or self.peek() == "|":
            return ArgParam(text)
        return ArgParam(text, self.parse_argument_list(), space)

    def parse_argument_list(self) -> ArgValue:
        first = self.parse_argument()
        items = [first]
        while True:
            save = self.i
            self.skip_blank()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.skip_blank(newlines=True)
            items.append(self.parse_argument())
        if len(items) == 1:
            return ArgValue(first)
        return ArgValue(ArrayLit(items), comma=True)

    def parse_argument(self) -> Node:
        """One argument-mode value: a quoted string ends the argument at its closing quote
        (`'a'b` is two arguments); a variable or bare word may be a compound (`$env:TEMP\\x`)."""
        start = self.i
        c = self.peek()
        if c and c in SQ:
            node = Lit(self.read_single_quoted())
        elif c and c in DQ:
            node = Expandable(self.read_double_quoted())
        elif c == "@" and self.peek(1) in "'\"" and self.src[self.i + 2:self.i + 3] in "\r\n":
            node = self.parse_primary()
        elif c == "(" or (c in "$@" and self.peek(1) == "("):
            node = self.parse_postfix(self.parse_primary())
        elif c == "$" and (_VAR_NAME.match(self.src, self.i + 1) or self.peek(1) == "{"):
            node = self.parse_postfix(self.parse_primary(), argument_mode=True)
            if self.peek() and self.peek() not in _ARG_END:
                node = Expandable([node] + self.read_bare_word())
        elif c == "{":
            self.error("winsim: script blocks are outside the subset.",
                       "WinsimUnsupportedStatement")
        else:
            node = Expandable(self.read_bare_word())
        node.start, node.end = start, self.i
        return node

    def read_bare_word(self) -> List[Any]:
        parts: List[Any] = []
        buf: List[str] = []

        def flush():
            if buf:
                parts.append("".join(buf))
                buf.clear()

        while self.i < self.n:
            c = self.src[self.i]
            if c in _ARG_END:
                break
            if c == "`":
                nxt = self.peek(1)
                if nxt in ("\r", "\n"):
                    break       # line continuation: skip_blank takes it
                if nxt == "":
                    nxt = "`"   # a backtick at the very end escapes nothing
                buf.append(_ESCAPES.get(nxt, nxt))
                self.i += 2
            elif c in SQ:
                buf.append(self.read_single_quoted())
            elif c in DQ:
                flush()
                parts.extend(self.read_double_quoted())
            elif c == "$" and (_VAR_NAME.match(self.src, self.i + 1) or self.peek(1) in "{("):
                flush()
                parts.append(self.read_dollar())
            else:
                buf.append(c)
                self.i += 1
        flush()
        return parts

    # -- strings ---------------------------------------------------------------------------
    def read_single_quoted(self) -> str:
        open_at = self.i
        self.i += 1
        out = []
        while True:
            if self.i >= self.n:
                self.error("The string is missing the terminator: '.",
                           "TerminatorExpectedAtEndOfString", open_at)
            c = self.src[self.i]
            if c in SQ:
                if self.peek(1) and self.peek(1) in SQ:
                    out.append(self.peek(1))
                    self.i += 2
                    continue
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1

    def read_double_quoted(self) -> List[Any]:
        open_at = self.i
        self.i += 1
        return self.read_expandable(open_at)

    def read_expandable(self, open_at: Optional[int] = None) -> List[Any]:
        """The text and $-expressions of an expandable string: up to its closing quote when open_at
        (where the "..." opened) is given, else to the end of the source (a here-string body)."""
        parts: List[Any] = []
        buf: List[str] = []
        while True:
            if self.i >= self.n:
                if open_at is None:
                    break
                self.error('The string is missing the terminator: ".',
                           "TerminatorExpectedAtEndOfString", open_at)
            c = self.src[self.i]
            if open_at is not None and c in DQ:
                if self.peek(1) and self.peek(1) in DQ:
                    buf.append(self.peek(1))
                    self.i += 2
                    continue
                self.i += 1
                break
            if c == "`" and self.i + 1 < self.n:
                nxt = self.src[self.i + 1]
                buf.append(_ESCAPES.get(nxt, nxt))
                self.i += 2
            elif c == "$" and (_VAR_NAME.match(self.src, self.i + 1) or self.peek(1) in "{("):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.read_dollar())
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append("".join(buf))
        return parts

    def read_here_string(self) -> Node:
        quote = self.peek(1)
        open_at = self.i
        self.i += 2
        if self.peek() == "\r":
            self.i += 1
        if self.peek() != "\n":
            self.error("No characters are allowed after a here-string header but before the end "
                       "of the line.", "UnexpectedCharactersAfterHereStringHeader")
        self.i += 1
        closing = re.compile(r"\r?\n" + re.escape(quote) + "@", re.M)
        m = closing.search(self.src, self.i - 1)
        if self.src.startswith(quote + "@", self.i):
            body, after = "", self.i + 2     # empty here-string: the footer right away
        elif not m:
            self.error("The string is missing the terminator: %s@." % quote,
                       "TerminatorExpectedAtEndOfString", open_at)
        else:
            body, after = self.src[self.i:m.start()], m.end()
        if quote == "'":
            self.i = after
            return Lit(body)
        parts = Parser(body, self.version).read_expandable()
        self.i = after
        return Expandable(parts)

    def read_dollar(self) -> Node:
        start = self.i
        if self.peek(1) == "(":
            self.i += 2
            body = self.parse_statements(end=")")
            if self.peek() != ")":
                self.error("Missing closing ')' in subexpression.",
                           "MissingEndParenthesisInSubexpression", start)
            self.i += 1
            node = SubExpr(body)
        elif self.peek(1) == "{":
            end = self.src.find("}", self.i + 2)
            if end < 0:
                self.error("Missing '}' in variable name.", "MissingEndCurlyBrace", start)
            node = Var(self.src[self.i + 2:end])
            self.i = end + 1
        else:
            m = _VAR_NAME.match(self.src, self.i + 1)
            name = m.group(0)
            if name.endswith(":"):
                name = name[:-1]
            node = Var(name)
            self.i = m.end()
        node.start, node.end = start, self.i
        return node

    # -- expressions -----------------------------------------------------------------------
    def parse_expression(self) -> Node:
        left = self.parse_comparison()
        while True:
            save = self.i
            self.skip_blank()
            m = _LOGICAL.match(self.src, self.i)
            if not m:
                self.i = save
                return left
            self.i = m.end()
            self.skip_blank(newlines=True)
            right = self.parse_comparison()
            left = self.span(Binary(m.group(1).lower(), left, right), left.start)

    def span(self, node: Node, start: int) -> Node:
        node.start, node.end = start, self.i
        return node

    def parse_comparison(self) -> Node:
        left = self.parse_additive()
        while True:
            save = self.i
            self.skip_blank()
            m = _COMPARISON.match(self.src, self.i)
            if not m:
                if self.peek() == "-" and re.match(r"-[A-Za-z]+", self.src[self.i:]):
                    op = re.match(r"-[A-Za-z]+", self.src[self.i:]).group(0)
                    if op.lower() not in ("-and", "-or", "-xor", "-not"):
                        self.error("Unexpected token '%s' in expression or statement." % op,
                                   "UnexpectedToken", length=len(op))
                self.i = save
                return left
            op = (m.group(1).lower() or "i") + m.group(2).lower()
            if m.group(2).lower() in ("in", "notin") and self.version < 3:
                self.error("Unexpected token '%s' in expression or statement." % m.group(0),
                           "UnexpectedToken", length=len(m.group(0)))
            self.i = m.end()
            self.skip_blank(newlines=True)
            right = self.parse_additive()
            left = self.span(Binary(op, left, right), left.start)

    def parse_additive(self) -> Node:
        left = self.parse_format()
        while True:
            save = self.i
            self.skip_blank()
            c = self.peek()
            if c == "+" or (c == "-" and self.peek(1) in " \t$('\"0123456789"):
                self.i += 1
                self.skip_blank(newlines=True)
                right = self.parse_format()
                left = self.span(Binary(c, left, right), left.start)
            else:
                self.i = save
                return left

    def parse_format(self) -> Node:
        """`'{0} {1}' -f $a, $b`: binds tighter than + and comparisons (operator precedence)."""
        left = self.parse_unary()
        while True:
            save = self.i
            self.skip_blank()
            m = _FORMAT.match(self.src, self.i)
            if not m:
                self.i = save
                return left
            self.i = m.end()
            self.skip_blank(newlines=True)
            left = self.span(Binary("f", left, self.parse_unary()), left.start)

    def parse_unary(self) -> Node:
        start = self.i
        m = _NOT.match(self.src, self.i)
        if m or self.peek() == "!":
            self.i = m.end() if m else self.i + 1
            self.skip_blank()
            return self.span(Unary("not", self.parse_unary()), start)
        if self.peek() == "-" and self.peek(1).isdigit():
            self.i += 1
            return self.span(Unary("neg", self.parse_unary()), start)
        return self.parse_comma()

    def parse_comma(self) -> Node:
        start = self.i
        first = self.parse_postfix(self.parse_primary())
        items = [first]
        while not self.method_args:
            save = self.i
            self.skip_blank()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.skip_blank(newlines=True)
            items.append(self.parse_postfix(self.parse_primary()))
        return first if len(items) == 1 else self.span(ArrayLit(items), start)

    def parse_postfix(self, node: Node, argument_mode: bool = False) -> Node:
        start = node.start
        while True:
            static = self.startswith("::")
            if (self.peek() == "." or static) and re.match(r"[A-Za-z_]",
                                                           self.peek(2 if static else 1) or " "):
                m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.src,
                                                                self.i + (2 if static else 1))
                self.i = m.end()
                if self.peek() == "(":
                    node = self.span(Invoke(node, m.group(0), self.parse_method_arguments(),
                                            static), start)
                else:
                    node = self.span((StaticMember if static else Member)(node, m.group(0)),
                                     start)
            elif self.peek() == "[":
                self.i += 1
                self.skip_blank()
                index = self.parse_expression()
                self.skip_blank()
                if self.peek() != "]":
                    self.error("Array index expression is missing or not valid.",
                               "MissingArrayIndexExpression")
                self.i += 1
                node = self.span(Index(node, index), start)
            else:
                return node

    def parse_method_arguments(self) -> List[Node]:
        """`(a, b)` after a method name: each argument is an expression; a comma separates them."""
        open_at = self.i
        self.i += 1
        args: List[Node] = []
        saved, self.method_args = self.method_args, True
        try:
            self.skip_blank(newlines=True)
            if self.peek() == ")":
                self.i += 1
                return args
            while True:
                if self.peek() in ("", ")", ","):
                    self.error("Missing expression after ','." if args else
                               "Missing ')' in method call.",
                               "MissingExpressionAfterToken" if args else
                               "MissingEndParenthesisInMethodCall")
                args.append(self.parse_expression())
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.i += 1
                    self.skip_blank(newlines=True)
                    continue
                if self.peek() != ")":
                    self.error("Missing ')' in method call.",
                               "MissingEndParenthesisInMethodCall", open_at)
                self.i += 1
                return args
        finally:
            self.method_args = saved

    def parse_type_literal(self) -> Node:
        m = _TYPE_NAME.match(self.src, self.i)
        if not m:
            self.error("Missing type name after '['.", "MissingTypename", self.i + 1)
        self.i = m.end()
        # `[type]$x` is a cast (about_Type_Conversion's [type] prefix): outside the subset.
        after = re.compile(r"[ \t]*([$(@'\"\[0-9])").match(self.src, self.i)
        if after and not self.startswith("::"):
            self.error("winsim: casts ('[%s]' before a value) are outside the subset."
                       % m.group(1), "WinsimUnsupportedStatement")
        return TypeLit(m.group(1))

    def parse_primary(self) -> Node:
        start = self.i
        c = self.peek()
        if c and c in SQ:
            node = Lit(self.read_single_quoted())
        elif c and c in DQ:
            node = Expandable(self.read_double_quoted())
        elif c == "@" and self.peek(1) in "'\"":
            node = self.read_here_string()
        elif c == "@" and self.peek(1) == "(":
            self.i += 2
            body = self.parse_statements(end=")")
            if self.peek() != ")":
                self.error("Missing closing ')' in subexpression.",
                           "MissingEndParenthesisInSubexpression", start)
            self.i += 1
            node = SubExpr(body, force_array=True)
        elif c == "@" and self.peek(1) == "{":
            self.error("winsim: hash tables are outside the subset.", "WinsimUnsupportedStatement")
        elif c == "$":
            node = self.read_dollar()
        elif c == "(":
            self.i += 1
            self.skip_blank(newlines=True)
            if self.peek() == ")":
                self.error("An expression was expected after '('.", "ExpectedExpression")
            kw = self.word().lower()
            if kw in ("exit", "throw", "return", "if"):
                self.error("winsim: '%s' inside parentheses is outside the subset." % kw,
                           "WinsimUnsupportedStatement")
            saved, self.method_args = self.method_args, False
            inner = self.parse_assignment_or_pipeline()
            self.method_args = saved
            self.skip_blank(newlines=True)
            if self.peek() != ")":
                self.error("Missing closing ')' in expression.",
                           "MissingEndParenthesisInExpression", start)
            self.i += 1
            node = Paren(inner)
        elif c == "[":
            node = self.parse_type_literal()
        elif c.isdigit():
            m = _NUMBER.match(self.src, self.i)
            if not m:
                self.unexpected()
            self.i = m.end()
            text = m.group(0)
            node = Lit(int(text, 16) if text.lower().startswith("0x") else int(text))
        else:
            if c == "" or c in "\r\n;":
                self.error("You must provide a value expression following the operator.",
                           "ExpectedValueExpression")
            self.unexpected()
        node.start, node.end = start, self.i
        return node


# ---------------------------------------------------------------------------------------------
# Interpreter

# (name as typed, argv, argument text after the program, stdin) -> Result, or None when no such
# program exists.
NativeRunner = Callable[[str, List[str], str, str], Any]


def _wildcard(pattern: str) -> "re.Pattern":
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1:j] + "]")
                i = j
        elif c == "`" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S | re.I)


def _dotnet_substitution(m: "re.Match", replacement: str) -> str:
    """A .NET Regex.Replace substitution: $1, ${name}, $0 and $& (the match), $$ (a dollar);
    anything else stays as written."""
    def group(token):
        key = token[2:-1] if token.startswith("${") else token[1:]
        if key == "&":
            key = "0"
        try:
            value = m.group(int(key) if key.isdigit() else key)
        except IndexError:      # no such group: .NET leaves the text as written
            return token
        return value or ""
    return re.sub(r"\$\$|\$\{\w+\}|\$\d+|\$&",
                  lambda t: "$" if t.group(0) == "$$" else group(t.group(0)), replacement)


class Interpreter:
    """Runs one script for one powershell.exe process."""

    def __init__(self, source: str, env: Dict[str, str], version: str, fs: Dict[str, str],
                 run_native: NativeRunner, write_out: Callable[[str], None],
                 write_err: Callable[[str], None], write_error_record: Callable[[str], None],
                 sleep: Callable[[float], None] = lambda seconds: None,
                 path_exists: Callable[[str], bool] = lambda path: False,
                 input_lines: Sequence[str] = (), mutexes=None):
        self.src = source
        # The process's named-mutex session (winsim/mutexes.py); System.Threading.Mutex needs it.
        self.mutexes = mutexes
        self.try_depth = 0                  # inside a try body, errors go to its catch
        self.emit: Callable[[Any], None] = self.render      # where statement output goes
        self.capture_output = False         # Invoke-Expression whose output is captured
        self.cmdlet_to_console = False
        # `$input`: the lines of a redirected standard input (about_Automatic_Variables). It is an
        # enumerator: once read, it is empty.
        self.input_lines: List[str] = list(input_lines)
        self.sleep = sleep
        self.path_exists = path_exists     # folders and installed tools, beyond `fs`
        self.env = env
        self.major = int(version.split(".")[0])
        self.fs = fs
        self.run_native = run_native
        self.write_out, self.write_err = write_out, write_err
        self.write_error_record = write_error_record
        self.vars: Dict[str, Any] = {
            "true": True, "false": False, "null": None, "?": True,
            "erroractionpreference": "Continue", "ofs": " ",
            "psversiontable": {"PSVersion": Version(version),
                               "CLRVersion": Version("4.0.30319.42000" if self.major >= 3
                                                     else "2.0.50727.8806"),
                               "PSEdition": "Desktop"} if self.major >= 5 else
                              {"PSVersion": Version(version),
                               "CLRVersion": Version("2.0.50727.8806")},
        }
        self.strict = False

    # -- driver ---------------------------------------------------------------------------
    def run(self) -> int:
        try:
            statements = Parser(self.src, self.major).parse_script()
        except ParseError as e:
            self.write_error_record(self.format_parse_error(e))
            return 1
        try:
            self.run_block(statements)
        except ExitScript as e:
            return e.code
        except PSError as e:
            self.report(e)
            return 1
        return 0 if self.vars["?"] else 1

    def run_block(self, statements: Sequence[Node]):
        for st in statements:
            try:
                self.run_statement(st)
            except PSError as e:
                self.vars["?"] = False
                if e.script_terminating or self.preference() == "stop" or self.try_depth:
                    raise
                self.report(e)

    def preference(self) -> str:
        return to_str(self.vars.get("erroractionpreference")).lower()

    def run_statement(self, st: Node):
        if isinstance(st, Try):
            self.run_try(st)
            return
        if isinstance(st, If):
            for cond, body in st.clauses:
                value = collect(self.run_pipeline(cond, capture=True))
                self.vars["?"] = True
                if truthy(value):
                    self.run_block(body)
                    return
            if st.else_body is not None:
                self.run_block(st.else_body)
            return
        if isinstance(st, Exit):
            code = 0
            if st.value is not None:
                value = collect(self.run_pipeline(st.value, capture=True))
                code = self.to_int(value, st.value)
            raise ExitScript(code)
        if isinstance(st, Return):
            if st.value is not None:
                for obj in self.run_pipeline(st.value, capture=self.capture_output):
                    self.emit(obj)
            raise ExitScript(0 if self.vars["?"] else 1)
        if isinstance(st, Throw):
            value = collect(self.run_pipeline(st.value, capture=True)) if st.value else None
            message = to_str(value) or "ScriptHalted"
            raise PSError(message, message, "OperationStopped", message, "RuntimeException",
                          (st.start, st.end), script_terminating=True)
        if isinstance(st, Assign):
            self.assign(st.target, self.assigned_value(st.value))
            return
        for obj in self.run_pipeline(st, capture=self.capture_output):
            self.emit(obj)

    def run_try(self, st: "Try"):
        """A terminating error in the body goes to the first catch whose type matches the error's
        .NET exception (or the wrapped one, as PowerShell unwraps MethodInvocationException), else
        to the catch-all; finally runs in any case, exit included (about_Try_Catch_Finally)."""
        try:
            self.try_depth += 1
            try:
                self.run_block(st.body)
            finally:
                self.try_depth -= 1
        except PSError as e:
            self.vars["?"] = False
            handler = self.find_catch(st, e)
            if handler is None:
                raise
            saved = self.vars.get("_")
            self.vars["_"] = ErrorRecord(e, self.major)
            try:
                self.run_block(handler)
            finally:
                self.vars["_"] = saved
        finally:
            if st.finally_body is not None:
                self.run_block(st.finally_body)

    def find_catch(self, st: "Try", e: PSError) -> Optional[List[Node]]:
        chain = e.dotnet.chain if e.dotnet is not None else []
        for types, body in st.catches:
            if not types:
                return body
            for name, extent in types:
                t = self.resolve_type(name, extent)
                if t.full_name in chain:
                    return body
        return None

    def to_int(self, value: Any, node: Node) -> int:
        if value is None:
            return 0
        if isinstance(value, list):
            value = to_str(value)       # PowerShell cannot convert an array either
        try:
            return int(to_str(value).strip()) if isinstance(value, (int, str)) else int(value)
        except ValueError:
            raise PSError('Cannot convert value "%s" to type "System.Int32". Error: "Input '
                          'string was not in a correct format."' % to_str(value),
                          "InvalidCastFromStringToInteger", "InvalidArgument", to_str(value),
                          "RuntimeException", (node.start, node.end))

    def assign(self, target: str, value: Any):
        lower = target.lower()
        if lower.startswith("env:"):
            name = target[4:]
            for key in list(self.env):
                if key.lower() == name.lower():
                    del self.env[key]
            if value is not None and to_str(value) != "":
                self.env[name] = to_str(value)
            return
        if lower == "null":
            return          # `$null = tool` discards the output
        if lower in ("true", "false", "?"):
            raise PSError("Cannot overwrite variable %s because it is read-only or constant."
                          % target, "VariableNotWritable", "WriteError", target,
                          "SessionStateUnauthorizedAccessException")
        if lower == "erroractionpreference" and to_str(value).lower() not in (
                "stop", "continue", "silentlycontinue", "inquire", "ignore", "suspend"):
            raise PSError('Cannot convert value "%s" to type "System.Management.Automation.'
                          'ActionPreference".' % to_str(value), "RuntimeException",
                          "MetadataError", to_str(value), "ArgumentTransformationMetadataException")
        self.vars[lower.split(":", 1)[1] if lower.startswith(("script:", "global:", "local:"))
                  else lower] = value

    # -- output ---------------------------------------------------------------------------
    def render(self, obj: Any):
        if isinstance(obj, PSError):
            self.write_out(self.format_error(obj))
        elif isinstance(obj, RawText):
            self.write_out(obj)
        elif isinstance(obj, NativeErrorLine):
            self.write_out((obj.record or obj) + "\r\n")
        else:
            self.write_out(self.format_object(obj) + "\r\n")

    def format_object(self, obj: Any) -> str:
        if isinstance(obj, dict):
            width = max([len(str(k)) for k in obj] + [4]) + 1
            lines = ["", "Name".ljust(width) + "Value", "----".ljust(width) + "-----"]
            lines += [str(k).ljust(width) + to_str(v) for k, v in obj.items()]
            return "\r\n".join(lines) + "\r\n"
        if isinstance(obj, PSVariable):
            return "\r\nName                           Value\r\n----                           " \
                   "-----\r\n%-30s %s\r\n" % (obj.Name, to_str(obj.Value))
        if isinstance(obj, Version):
            return "\r\nMajor  Minor\r\n-----  -----\r\n%-6d %d\r\n" % (obj.Major, obj.Minor)
        return to_str(obj)

    # -- errors ---------------------------------------------------------------------------
    def position(self, extent: Optional[Tuple[int, int]]) -> List[str]:
        if extent is None:
            return []
        start, end = extent
        line_no = self.src.count("\n", 0, start) + 1
        line_start = self.src.rfind("\n", 0, start) + 1
        line_end = self.src.find("\n", start)
        line_end = len(self.src) if line_end < 0 else line_end
        line = self.src[line_start:line_end].rstrip("\r")
        end = max(min(end, line_end), start + 1)    # at least one ~, past the end if need be
        if self.major < 3:
            # PowerShell 2.0 marks the spot with <<<< after the offending text.
            cut = end - line_start
            return ["At line:%d char:%d" % (line_no, end - line_start + 1),
                    "+ %s <<<< %s" % (line[:cut], line[cut:])]
        return ["At line:%d char:%d" % (line_no, start - line_start + 1), "+ " + line,
                "+ " + " " * (start - line_start) + "~" * (end - start)]

    def format_error(self, e: PSError) -> str:
        saved, self.src = self.src, e.src or self.src
        try:
            lines = [e.prefix + e.message] + self.position(e.extent)
        finally:
            self.src = saved
        lines.append("    + CategoryInfo          : %s: (%s:%s) [%s], %s"
                     % (e.category, e.target, e.type_name, e.activity, e.reason))
        lines.append("    + FullyQualifiedErrorId : %s" % e.fqid)
        return "\r\n".join(lines) + "\r\n \r\n"

    def format_parse_error(self, e: ParseError) -> str:
        lines = self.position((e.offset, e.offset + e.length)) + [e.message]
        lines.append("    + CategoryInfo          : ParserError: (:) [], "
                     "ParentContainsErrorRecordException")
        lines.append("    + FullyQualifiedErrorId : %s" % e.fqid)
        return "\r\n".join(lines) + "\r\n \r\n"

    def report(self, e: PSError, sink: Optional[Callable[[Any], None]] = None):
        if sink is not None:
            sink(e)
        else:
            self.write_error_record(self.format_error(e))

    # -- pipelines ------------------------------------------------------------------------
    def assigned_value(self, pipe: Node) -> Any:
        """A lone expression is assigned as it is (`$a = @()` stays an empty array); anything
        with a command is collected from the pipeline (one object, an array, or $null)."""
        if isinstance(pipe, Pipeline) and len(pipe.elements) == 1 and \
                isinstance(pipe.elements[0], ExprElement) and not pipe.elements[0].redirects:
            value = self.eval(pipe.elements[0].expr)
            self.vars["?"] = True
            return value
        return collect(self.run_pipeline(pipe, capture=True))

    def run_pipeline(self, pipe: Node, capture: bool) -> List[Any]:
        if isinstance(pipe, Assign):
            self.assign(pipe.target, self.assigned_value(pipe.value))
            return []
        if not isinstance(pipe, Pipeline):
            return enumerate_output(self.eval(pipe))
        data: Optional[List[Any]] = None
        last = len(pipe.elements) - 1
        succeeded = True        # $? covers the whole pipeline (`tool 2>&1 | Out-Null`)
        for n, element in enumerate(pipe.elements):
            to_console = (not capture) and n == last
            if isinstance(element, ExprElement):
                out = enumerate_output(self.eval(element.expr))
                self.vars["?"] = True
                data = self.apply_redirects(element.redirects, out, [], element)
            else:
                data = self.run_command(element, data, to_console)
            succeeded = succeeded and self.vars["?"]
        self.vars["?"] = succeeded
        return data or []

    def apply_redirects(self, redirects: Sequence[Redirect], out: List[Any], errors: List[Any],
                        element: Node) -> List[Any]:
        """Streams: 1 output, 2 errors, * all. Errors not merged or redirected are reported."""
        err_target = "report"
        for r in redirects:
            if r.merge:
                if r.stream in ("2", "*") and r.merge == "1":
                    err_target = "merge"
                continue
            target = self.eval(r.target)
            path = None if target is None else to_str(target)
            if r.stream in ("1", "*"):
                if path is not None:
                    self.file_write(path, [self.format_object(o) for o in out], r.append)
                out = []
            if r.stream in ("2", "*"):
                if path is not None:
                    self.file_write(path, [self.error_text(x) for x in errors], r.append)
                err_target = "drop"
        if err_target == "merge":
            out = out + errors
        elif err_target == "report":
            for x in errors:
                if isinstance(x, PSError):
                    self.report(x)
        return out

    def error_text(self, x: Any) -> str:
        return self.format_error(x) if isinstance(x, PSError) else str(x)

    def run_command(self, cmd: Command, data: Optional[List[Any]], to_console: bool) -> List[Any]:
        name = cmd.name
        if isinstance(name, Expandable) and all(isinstance(p, str) for p in name.parts):
            name_value = "".join(name.parts)
        else:
            name_value = to_str(self.eval(name))
        cmdlet = CMDLETS.get(name_value.lower())
        if cmdlet is not None:
            return self.run_cmdlet(cmdlet, name_value, cmd, data, to_console)
        return self.run_native_command(name_value, cmd, data, to_console)

    # -- native commands ------------------------------------------------------------------
    def native_pieces(self, cmd: Command) -> List[NativePiece]:
        pieces: List[NativePiece] = []
        for el in cmd.elements:
            if isinstance(el, ArgVerbatim):
                pieces.append(Verbatim(el.text))
            elif isinstance(el, ArgParam):
                arg = self.native_argument(el.argument) if el.argument is not None else None
                pieces.append(Parameter(el.text, arg, el.space_after))
            else:
                pieces.append(self.native_argument(el))
        return pieces

    def native_argument(self, el: ArgValue) -> Argument:
        value = self.eval(el.node)
        if isinstance(value, list):
            return Argument([to_str(v) for v in value], comma_joined=el.comma)
        return Argument(to_str(value))

    def expand_percent(self, text: str) -> str:
        def sub(m):
            for key, value in self.env.items():
                if key.lower() == m.group(1).lower():
                    return value
            return m.group(0)
        return re.sub(r"%([^%]+)%", sub, text)

    def run_native_command(self, name: str, cmd: Command, data: Optional[List[Any]],
                           to_console: bool) -> List[Any]:
        args_text = legacy_command_line(self.native_pieces(cmd), self.expand_percent,
                                        stop_parsing=self.major >= 3)
        # .NET's Process.Start puts the resolved program path in quotes before the arguments;
        # the tool then splits that line itself (CommandLineToArgvW).
        line = '"%s"' % name + (" " + args_text if args_text else "")
        argv = [name] + command_line_to_argv(line)[1:]
        stdin = ""
        if data is not None:
            # $OutputEncoding is US-ASCII in Windows PowerShell: what a native tool reads from a
            # pipe has '?' for every non-ASCII character (about_Preference_Variables).
            text = "".join(self.format_object(o) + "\r\n" for o in data)
            stdin = text.encode("ascii", "replace").decode("ascii")
        result = self.run_native(name, argv, args_text, stdin)
        if result is None:
            raise command_not_found(name, (cmd.start, cmd.end), cmd.invoke, self.major)
        redirects = cmd.redirects
        err_redirected = any(r.stream in ("2", "*") for r in redirects)
        out_redirected = any(r.stream in ("1", "*") and not r.merge for r in redirects)
        merged = any(r.merge == "1" and r.stream in ("2", "*") for r in redirects)
        lines_err = result.stderr.splitlines()
        self.vars["lastexitcode"] = result.rc
        # Redirected stderr lines are error records in Windows PowerShell, so they make $? false
        # even when the exit code is 0 (PowerShell issues #10512, #13393; fixed only in 7.x).
        self.vars["?"] = result.rc == 0 and not (err_redirected and lines_err)
        if err_redirected and lines_err and self.preference() == "stop":
            # Windows PowerShell wraps redirected stderr lines in ErrorRecords, so with
            # $ErrorActionPreference = 'Stop' the first one is a terminating NativeCommandError
            # (PowerShell issue #3996; changed only in 7.2+ by PSNotApplyErrorActionToStderr).
            raise self.native_error(name, lines_err[0], cmd)
        if not err_redirected:
            self.write_err(result.stderr)
        if to_console and not out_redirected and not merged and not cmd.redirects:
            return [RawText(result.stdout)] if result.stdout else []
        out: List[Any] = list(result.stdout.splitlines())
        errors: List[Any] = []
        for n, text in enumerate(lines_err):
            line = NativeErrorLine(text)
            if n == 0:
                line.record = self.format_error(self.native_error(name, text, cmd)).rstrip("\r\n ")
            errors.append(line)
        if not err_redirected:
            errors = []
        return self.apply_redirects(redirects, out, errors, cmd)

    def native_error(self, name: str, text: str, cmd: Command) -> PSError:
        return PSError(text, "NativeCommandError", "NotSpecified", text, "RemoteException",
                       (cmd.start, cmd.end), prefix=name + " : ")

    # -- cmdlets --------------------------------------------------------------------------
    def run_cmdlet(self, cmdlet, name: str, cmd: Command, data: Optional[List[Any]],
                   to_console: bool = False) -> List[Any]:
        spec = cmdlet.spec(self)
        bound = self.bind(spec, name, cmd)
        action = to_str(bound.pop("erroraction", None) or "").lower() or self.preference()
        errors: List[Any] = []
        out: List[Any] = []
        self.vars["?"] = True

        def error(e: PSError):
            self.vars["?"] = False
            if e.extent is None:
                e.extent = (cmd.start, cmd.end)
            if action == "stop":
                raise e
            if action not in ("silentlycontinue", "ignore"):
                errors.append(e)

        # Whether its output goes straight to the console (Invoke-Expression streams then).
        self.cmdlet_to_console = to_console and not cmd.redirects
        try:
            cmdlet.run(self, bound, data, out.append, error)
        except pstypes.Unsupported as exc:
            raise self.unsupported(str(exc), cmd) from None
        except PSError as e:
            if e.extent is None and e.src is None:
                e.extent = (cmd.start, cmd.end)
            raise
        return self.apply_redirects(cmd.redirects, out, errors, cmd)

    def bind(self, spec: "CmdletSpec", name: str, cmd: Command) -> Dict[str, Any]:
        bound: Dict[str, Any] = {}
        positional: List[Any] = []
        pending: Optional[str] = None
        for el in cmd.elements:
            if isinstance(el, ArgParam):
                if pending:
                    raise self.missing_argument(pending, name, cmd)
                pname = self.resolve_parameter(spec, el.text.lstrip("-").rstrip(":"), name, cmd)
                if el.argument is not None:
                    bound[pname] = self.eval(el.argument.node)
                elif pname in spec.switches or pname in _COMMON_SWITCHES:
                    bound[pname] = True
                else:
                    pending = pname
            elif isinstance(el, ArgVerbatim):
                positional.append(el.text)
            else:
                value = self.eval(el.node)
                if pending:
                    bound[pending] = value
                    pending = None
                else:
                    positional.append(value)
        if pending:
            raise self.missing_argument(pending, name, cmd)
        for pname in spec.positional:
            if positional and pname not in bound:
                if pname == spec.remaining and len(positional) > 1:
                    bound[pname], positional = positional, []
                else:
                    bound[pname] = positional.pop(0)
        if positional:
            raise PSError("A positional parameter cannot be found that accepts argument '%s'."
                          % to_str(positional[0]), "PositionalParameterNotFound," + spec.full_name,
                          "InvalidArgument", "", "ParameterBindingException", (cmd.start, cmd.end),
                          prefix=name + " : ")
        return bound

    def resolve_parameter(self, spec, given: str, name: str, cmd: Command) -> str:
        names = list(spec.params) + list(spec.switches) + ["erroraction"] + \
            [c for c in _COMMON_SWITCHES if c not in spec.switches]
        aliases = {"ea": "erroraction", "vb": "verbose", "db": "debug"}
        aliases.update(spec.aliases)
        low = given.lower()
        if low in aliases:
            return aliases[low]
        if low in names:
            return low
        matches = [n for n in names if n.startswith(low)]
        if len(matches) == 1:
            return matches[0]
        if not matches or not low:
            raise PSError("A parameter cannot be found that matches parameter name '%s'." % given,
                          "NamedParameterNotFound," + spec.full_name, "InvalidArgument", "",
                          "ParameterBindingException", (cmd.start, cmd.end), prefix=name + " : ")
        raise PSError("Parameter cannot be processed because the parameter name '%s' is "
                      "ambiguous." % given, "AmbiguousParameter," + spec.full_name,
                      "InvalidArgument", "", "ParameterBindingException", (cmd.start, cmd.end),
                      prefix=name + " : ")

    def missing_argument(self, pname: str, name: str, cmd: Command) -> PSError:
        return PSError("Missing an argument for parameter '%s'. Specify a parameter of type "
                       "'System.String' and try again." % pname, "MissingArgument",
                       "InvalidArgument", "", "ParameterBindingException", (cmd.start, cmd.end),
                       prefix=name + " : ")

    # -- files ----------------------------------------------------------------------------
    def fs_key(self, path: str) -> Optional[str]:
        want = path.replace("/", "\\").lower()
        for key in self.fs:
            if key.replace("/", "\\").lower() == want:
                return key
        return None

    def file_write(self, path: str, lines: List[str], append: bool):
        key = self.fs_key(path) or path
        text = "".join(line + "\r\n" for line in lines)
        self.fs[key] = (self.fs.get(key, "") + text) if append else text

    # -- expressions ----------------------------------------------------------------------
    def eval(self, node: Node) -> Any:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Expandable):
            return "".join(p if isinstance(p, str) else to_str(self.eval(p)) for p in node.parts)
        if isinstance(node, Var):
            return self.get_var(node)
        if isinstance(node, SubExpr):
            out: List[Any] = []
            for st in node.statements:
                if isinstance(st, (Exit, Throw, Return, If)):
                    self.run_statement(st)
                else:
                    out.extend(self.run_pipeline(st, capture=True))
            return list(out) if node.force_array else collect(out)
        if isinstance(node, Paren):
            return collect(self.run_pipeline(node.pipeline, capture=True))
        if isinstance(node, ArrayLit):
            return [self.eval(x) for x in node.items]
        if isinstance(node, Unary):
            value = self.eval(node.operand)
            if node.op == "not":
                return not truthy(value)
            return -self.to_int(value, node)
        if isinstance(node, Member):
            target = self.eval(node.target)
            found = members(target)
            if node.name.lower() in found:
                return found[node.name.lower()]
            if self.strict:
                # Strict mode hides even the 3.0 intrinsic Count/Length of scalars.
                raise PSError("The property '%s' cannot be found on this object. Verify that the "
                              "property exists." % node.name, "PropertyNotFoundStrict",
                              "NotSpecified", "", "PropertyNotFoundException",
                              (node.start, node.end))
            if node.name.lower() in ("count", "length") and self.major >= 3:
                return 0 if target is None else 1     # PowerShell 3.0+: every object counts
            return None
        if isinstance(node, Index):
            return self.index(self.eval(node.target), self.eval(node.index))
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, TypeLit):
            return self.resolve_type(node.name, (node.start, node.end))
        if isinstance(node, StaticMember):
            target = self.eval(node.target)
            if not isinstance(target, DotNetType):
                raise self.unsupported("'::%s' on a value that is not a type" % node.name, node)
            getter = target.static_properties.get(node.name.lower())
            if getter is not None:
                return getter()
            if node.name.lower() in target.static_methods:
                raise self.unsupported("a method of [%s] used without calling it"
                                       % target.full_name, node)
            return None         # PowerShell: an unknown static property is $null
        if isinstance(node, Invoke):
            return self.invoke(node)
        raise AssertionError("unknown node %r" % node)

    # -- Invoke-Expression ----------------------------------------------------------------
    def run_inline(self, source: str, emit: Optional[Callable[[Any], None]]):
        """Run `source` in this scope (Invoke-Expression): its variables stay, its `exit` ends the
        whole script. `emit` None: its output goes straight to the console, as it would at the
        end of a top-level pipeline; else to `emit` (captured)."""
        source = source.replace("\r\n", "\n")
        try:
            statements = Parser(source, self.major).parse_script()
        except ParseError as e:
            saved = self.src
            self.src = source
            try:
                where = self.position((e.offset, e.offset + e.length))
            finally:
                self.src = saved
            # The ParseException's message holds the position in the expression, then the text.
            raise PSError("\r\n".join(where + [e.message]),
                          e.fqid + ",Microsoft.PowerShell.Commands.InvokeExpressionCommand",
                          "ParserError", "", "ParseException", type_name="",
                          prefix="Invoke-Expression : ", activity="Invoke-Expression") from None
        saved_state = self.src, self.emit, self.capture_output
        self.src = source
        self.emit, self.capture_output = (self.render, False) if emit is None else (emit, True)
        try:
            self.run_block(statements)
        except PSError as e:
            if e.src is None:
                e.src = source
            raise
        finally:
            self.src, self.emit, self.capture_output = saved_state

    # -- .NET (winsim/pstypes.py) ---------------------------------------------------------
    def unsupported(self, what: str, node: Node) -> PSError:
        return PSError("winsim: %s is outside the PowerShell subset winsim runs (see the Shell "
                       "section of winsim/README.md)." % what, "WinsimUnsupported",
                       "NotImplemented", "", "RuntimeException", (node.start, node.end))

    def open_mutex(self, initially_owned: bool, name: Optional[str]):
        if self.mutexes is None:
            raise pstypes.Unsupported("a mutex outside a host")
        return self.mutexes.open(initially_owned, name)

    def resolve_type(self, name: str, extent: Tuple[int, int]) -> DotNetType:
        found = pstypes.resolve(name, self.open_mutex)
        if found is not None:
            return found
        if self.major < 3:
            raise PSError("Unable to find type [%s]: make sure that the assembly containing this "
                          "type is loaded." % name, "TypeNotFound", "InvalidOperation", name,
                          "RuntimeException", extent)
        raise PSError("Unable to find type [%s]." % name, "TypeNotFound", "InvalidOperation",
                      name, "RuntimeException", extent, type_name="TypeName")

    def invoke(self, node: "Invoke") -> Any:
        target = self.eval(node.target)
        args = [self.eval(a) for a in node.args]
        extent = (node.start, node.end)
        if node.static:
            if not isinstance(target, DotNetType):
                raise self.unsupported("'::%s(' on a value that is not a type" % node.name, node)
            table, shown = target.static_methods, "[%s]" % target.full_name
        elif target is None:
            raise PSError("You cannot call a method on a null-valued expression.",
                          "InvokeMethodOnNull", "InvalidOperation", "", "RuntimeException",
                          extent, type_name="")
        elif isinstance(target, DotNetObject):
            table, shown = target.methods(), "[%s]" % target.type_name
        else:
            raise self.unsupported("the method %s() of a %s" % (node.name, _ps_type(target)), node)
        entry = table.get(node.name.lower())
        if entry is None:
            raise self.unsupported("the method %s of %s" % (node.name, shown), node)
        dotnet_name, overloads = entry
        fn = overloads.get(len(args))
        if fn is None:
            raise self.unsupported("%s.%s with %d argument(s)" % (shown, dotnet_name, len(args)),
                                   node)
        try:
            return fn(*args)
        except DotNetException as exc:
            # PowerShell wraps it: MethodInvocationException, FullyQualifiedErrorId the inner
            # exception's type name in 3.0+, DotNetMethodException in 2.0.
            raise PSError('Exception calling "%s" with "%d" argument(s): "%s"'
                          % (dotnet_name, len(args), exc.text(self.major)),
                          exc.short_name if self.major >= 3 else "DotNetMethodException",
                          "NotSpecified", "", "MethodInvocationException", extent,
                          type_name="", dotnet=exc) from None
        except pstypes.ArgumentConversion as exc:
            raise PSError('Cannot convert argument "%d", with value: "%s", for "%s" to type '
                          '"%s": "%s"' % (exc.index, exc.value, dotnet_name, exc.target,
                                           exc.detail),
                          "MethodArgumentConversionInvalidCastArgument", "NotSpecified", "",
                          "MethodException", extent, type_name="") from None
        except pstypes.Unsupported as exc:
            raise self.unsupported(str(exc), node) from None

    def get_var(self, node: Var) -> Any:
        name = node.name.lower()
        if name.startswith("env:"):
            for key, value in self.env.items():
                if key.lower() == name[4:]:
                    return value
            return None
        if name.startswith(("script:", "global:", "local:")):
            name = name.split(":", 1)[1]
        if name == "input":
            lines, self.input_lines = self.input_lines, []
            return lines
        if name in self.vars:
            return self.vars[name]
        if self.strict:
            raise PSError("The variable '$%s' cannot be retrieved because it has not been set."
                          % node.name, "VariableIsUndefined", "InvalidOperation", node.name,
                          "RuntimeException", (node.start, node.end))
        return None

    def index(self, target: Any, index: Any) -> Any:
        if isinstance(target, dict):
            for key, value in target.items():
                if str(key).lower() == to_str(index).lower():
                    return value
            return None
        if isinstance(target, (list, str)) and isinstance(index, int):
            try:
                return target[index]
            except IndexError:
                return None
        if target is None:
            raise PSError("Cannot index into a null array.", "NullArray", "InvalidOperation", "",
                          "RuntimeException")
        return None

    def binary(self, node: Binary) -> Any:
        op = node.op
        if op in ("and", "or"):
            left = truthy(self.eval(node.left))
            if op == "and" and not left:
                return False
            if op == "or" and left:
                return True
            return truthy(self.eval(node.right))
        left, right = self.eval(node.left), self.eval(node.right)
        if op == "xor":
            return truthy(left) != truthy(right)
        if op == "+":
            if isinstance(left, list):
                return left + (right if isinstance(right, list) else [right])
            if isinstance(left, int) and not isinstance(left, bool):
                return left + self.to_int(right, node)
            return to_str(left) + to_str(right)
        if op == "-":
            return self.to_int(left, node) - self.to_int(right, node)
        if op == "f":
            return self.format(to_str(left), enumerate_output(right), node)
        case = op[0] == "c"
        name = op[1:]
        if name == "join":
            return to_str(right).join(to_str(x) for x in enumerate_output(left))
        if name == "replace":
            pattern, replacement = (right + [""])[:2] if isinstance(right, list) else (right, "")
            regex = self.regex(pattern, case, node)

            def substitute(item):
                return regex.sub(lambda m: _dotnet_substitution(m, to_str(replacement)), to_str(item))
            # On a collection -replace maps every element (about_Comparison_Operators: it "returns the
            # replacement result" rather than filtering); 'a1','b1' -replace '1','2' is 'a2','b2'.
            if isinstance(left, list):
                return [substitute(item) for item in left]
            return substitute(left)
        if name in ("contains", "notcontains"):
            found = any(self.compare("eq", x, right, case, node) for x in enumerate_output(left))
            return found if name == "contains" else not found
        if name in ("in", "notin"):
            found = any(self.compare("eq", left, x, case, node) for x in enumerate_output(right))
            return found if name == "in" else not found
        if isinstance(left, list):
            return [x for x in left if self.compare(name, x, right, case, node, set_matches=False)]
        return self.compare(name, left, right, case, node)

    def format(self, template: str, args: List[Any], node: Node) -> str:
        """.NET composite formatting: {n} and {n,width}, {{ and }}; other format strings are
        outside the subset and fail."""
        def field(m):
            if m.group(0) in ("{{", "}}"):
                return m.group(0)[0]
            index, width, spec = int(m.group(1)), m.group(2), m.group(3)
            if spec is not None or index >= len(args):
                raise PSError("Error formatting a string: %s." % (
                    "Index (zero based) must be greater than or equal to zero and less than the "
                    "size of the argument list" if index >= len(args)
                    else "winsim: format string ':%s' is outside the subset" % spec),
                    "FormatError", "InvalidOperation", template, "RuntimeException",
                    (node.start, node.end))
            text = to_str(args[index])
            if width:
                w = int(width)
                text = text.rjust(w) if w > 0 else text.ljust(-w)
            return text
        return re.sub(r"\{\{|\}\}|\{(\d+)\s*(?:,\s*(-?\d+))?\s*(?::([^}]*))?\}", field,
                      template)

    def regex(self, pattern: Any, case: bool, node: Node):
        # .NET spells named groups (?<name>...) and \k<name>; Python wants (?P<name>...).
        text = re.sub(r"\(\?<(?![=!])", "(?P<", to_str(pattern))
        text = re.sub(r"\\k<(\w+)>", r"(?P=\1)", text)
        try:
            return re.compile(text, 0 if case else re.I)
        except re.error as exc:
            raise PSError('The regular expression pattern %s is not valid.' % to_str(pattern),
                          "InvalidRegularExpression", "InvalidOperation", to_str(pattern),
                          "RuntimeException", (node.start, node.end)) from exc

    def compare(self, name: str, left: Any, right: Any, case: bool, node: Node,
                set_matches: bool = True) -> bool:
        if name in ("match", "notmatch"):
            m = self.regex(right, case, node).search(to_str(left))
            if m and set_matches and name == "match":
                groups = {0: m.group(0)}
                groups.update({n + 1: g for n, g in enumerate(m.groups()) if g is not None})
                groups.update({k: v for k, v in m.groupdict().items() if v is not None})
                self.vars["matches"] = groups
            return bool(m) == (name == "match")
        if name in ("like", "notlike"):
            pattern = _wildcard(to_str(right))
            if case:
                pattern = re.compile(pattern.pattern, re.S)
            return bool(pattern.match(to_str(left))) == (name == "like")
        if left is None or right is None:
            equal = left is None and right is None
            if name in ("eq", "ne"):
                return equal == (name == "eq")
            left = "" if left is None else left
            right = "" if right is None else right
        # The right operand converts to the left operand's type (about_Comparison_Operators).
        if isinstance(left, bool):
            a, b = left, truthy(right)
        elif isinstance(left, int):
            try:
                a, b = left, int(to_str(right).strip(), 0) if isinstance(right, str) else int(right)
            except ValueError:
                if name in ("eq", "ne"):
                    return name == "ne"
                raise PSError('Could not compare "%s" to "%s". Error: "Cannot convert value "%s" '
                              'to type "System.Int32"."' % (left, to_str(right), to_str(right)),
                              "ComparisonFailure", "NotSpecified", "", "RuntimeException",
                              (node.start, node.end))
        else:
            a, b = to_str(left), to_str(right)
            if not case:
                a, b = a.lower(), b.lower()
        return {"eq": a == b, "ne": a != b, "gt": a > b, "ge": a >= b, "lt": a < b,
                "le": a <= b}[name]


# ---------------------------------------------------------------------------------------------
# Cmdlets


_COMMON_SWITCHES = ("verbose", "debug")     # accepted by every cmdlet (about_CommonParameters)


class CmdletSpec:
    def __init__(self, full_name, params=(), switches=(), positional=(), aliases=None,
                 remaining=None):
        self.full_name = full_name
        self.remaining = remaining and remaining.lower()   # ValueFromRemainingArguments
        self.params = [p.lower() for p in params]
        self.switches = [s.lower() for s in switches]
        self.positional = [p.lower() for p in positional]
        self.aliases = aliases or {}


class Cmdlet:
    def __init__(self, spec: Callable[[Interpreter], CmdletSpec], run):
        self.spec, self.run = spec, run


def _write_output(interp, bound, data, out, error):
    for obj in enumerate_output(bound.get("inputobject")):
        out(obj)
    for obj in data or []:
        out(obj)


def _write_host(interp, bound, data, out, error):
    # Write-Host goes to the host, not the pipeline: redirection and capture do not take it.
    separator = to_str(bound["separator"]) if "separator" in bound else " "
    text = separator.join(to_str(o) for o in enumerate_output(bound.get("object")))
    interp.write_out(text + ("" if bound.get("nonewline") else "\r\n"))


def _write_warning(interp, bound, data, out, error):
    # The console host shows the warning stream as "WARNING: text" on its output.
    interp.write_out("WARNING: %s\r\n" % to_str(bound.get("message")))


def _write_verbose(interp, bound, data, out, error):
    if bound.get("verbose"):
        interp.write_out("VERBOSE: %s\r\n" % to_str(bound.get("message")))


def _write_error(interp, bound, data, out, error):
    message = to_str(bound.get("message"))
    error(PSError(message, "Microsoft.PowerShell.Commands.WriteErrorException", "NotSpecified",
                  "", "WriteErrorException", type_name=""))


def _out_null(interp, bound, data, out, error):
    return None


def _out_string(interp, bound, data, out, error):
    items = list(data or []) + enumerate_output(bound.get("inputobject"))
    out("".join(interp.format_object(o) + "\r\n" for o in items))


def _path_of(interp, bound, error) -> Optional[str]:
    path = bound.get("literalpath", bound.get("path"))
    if path is None:
        error(PSError("Cannot bind argument to parameter 'Path' because it is null.",
                      "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData", "",
                      "ParameterBindingValidationException"))
        return None
    return to_str(path)


def _not_found(path: str) -> PSError:
    return PSError("Cannot find path '%s' because it does not exist." % path,
                   "PathNotFound", "ObjectNotFound", path, "ItemNotFoundException")


def _set_content(interp, bound, data, out, error, append=False):
    path = _path_of(interp, bound, error)
    if path is None:
        return
    values = enumerate_output(bound.get("value")) if "value" in bound else list(data or [])
    name = to_str(bound.get("encoding") or "Default")
    if name.lower() not in _FILE_ENCODINGS:
        error(PSError("Cannot bind parameter 'Encoding'. Cannot convert value \"%s\" to type "
                      "\"Microsoft.PowerShell.Commands.FileSystemCmdletProviderEncoding\". Error: "
                      "\"Unable to match the identifier name %s to a valid enumerator name. "
                      "Specify one of the following enumerator names and try again: %s\""
                      % (name, name, ", ".join(_ENCODING_NAMES)),
                      "CannotConvertArgumentNoMessage", "InvalidArgument", "",
                      "ParameterBindingException"))
        return
    # The file keeps text, but only what its encoding can hold: Windows PowerShell's Set-Content
    # writes the ANSI code page by default (Windows-1252 on an en-US system, [I] other locales),
    # so other characters become '?' as .NET's encoder replaces them.
    codec = _FILE_ENCODINGS[name.lower()]
    lines = [to_str(v) for v in values]
    if codec:
        lines = [line.encode(codec, "replace").decode(codec) for line in lines]
    interp.file_write(path, lines, append)


_ENCODING_NAMES = ("Unknown", "String", "Unicode", "Byte", "BigEndianUnicode", "UTF8", "UTF7",
                   "UTF32", "Ascii", "Default", "Oem", "BigEndianUTF32")
# FileSystemCmdletProviderEncoding -> the codec that loses characters (None: all of Unicode).
_FILE_ENCODINGS = {name.lower(): None for name in _ENCODING_NAMES}
_FILE_ENCODINGS.update({"ascii": "ascii", "default": "cp1252", "oem": "cp437"})


def _get_content(interp, bound, data, out, error):
    path = _path_of(interp, bound, error)
    if path is None:
        return
    key = interp.fs_key(path)
    if key is None:
        error(_not_found(path))
        return
    text = interp.fs[key]
    if bound.get("raw"):
        out(text)
        return
    for line in text.splitlines():
        out(line)


def _remove_item(interp, bound, data, out, error):
    path = _path_of(interp, bound, error)
    if path is None:
        return
    key = interp.fs_key(path)
    if key is None:
        error(_not_found(path))
        return
    del interp.fs[key]


def _test_path(interp, bound, data, out, error):
    path = _path_of(interp, bound, error)
    if path is not None:
        out(interp.fs_key(path) is not None or interp.path_exists(path))


def _set_strict_mode(interp, bound, data, out, error):
    if bound.get("off"):
        interp.strict = False
    elif "version" in bound:
        interp.strict = True
    else:
        error(PSError("Parameter set cannot be resolved using the specified named parameters.",
                      "AmbiguousParameterSet,Microsoft.PowerShell.Commands.SetStrictModeCommand",
                      "InvalidArgument", "", "ParameterBindingException"))


def _get_variable(interp, bound, data, out, error):
    for name in enumerate_output(bound.get("name")):
        key = to_str(name).lower()
        if key in interp.vars:
            out(PSVariable(to_str(name), interp.vars[key]))
        else:
            error(PSError("Cannot find a variable with the name '%s'." % to_str(name),
                          "VariableNotFound,Microsoft.PowerShell.Commands.GetVariableCommand",
                          "ObjectNotFound", to_str(name), "ItemNotFoundException"))


def _start_sleep(interp, bound, data, out, error):
    # No real waiting: the host's simulated clock moves instead.
    try:
        seconds = float(to_str(bound.get("seconds") or 0)) + \
            float(to_str(bound.get("milliseconds") or 0)) / 1000
    except ValueError:
        error(PSError("Cannot bind parameter 'Seconds'. Cannot convert value \"%s\" to type "
                      "\"System.Int32\"." % to_str(bound.get("seconds")),
                      "CannotConvertArgumentNoMessage,"
                      "Microsoft.PowerShell.Commands.StartSleepCommand",
                      "InvalidArgument", "", "ParameterBindingException"))
        return
    interp.sleep(seconds)


def _invoke_expression(interp, bound, data, out, error):
    commands = enumerate_output(bound["command"]) if "command" in bound else list(data or [])
    if not commands or any(c is None for c in commands):
        raise PSError("Cannot bind argument to parameter 'Command' because it is null.",
                      "ParameterArgumentValidationErrorNullNotAllowed,"
                      "Microsoft.PowerShell.Commands.InvokeExpressionCommand", "InvalidData", "",
                      "ParameterBindingValidationException", type_name="",
                      prefix="Invoke-Expression : ", activity="Invoke-Expression")
    emit = None if interp.cmdlet_to_console else out
    for command in commands:
        interp.run_inline(to_str(command), emit)


def _new_object(interp, bound, data, out, error):
    def fail(message, fqid, category, reason):
        return PSError(message, fqid + ",Microsoft.PowerShell.Commands.NewObjectCommand",
                       category, "", reason, type_name="", prefix="New-Object : ",
                       activity="New-Object")
    if "comobject" in bound or "property" in bound:
        raise pstypes.Unsupported("New-Object -ComObject or -Property")
    name = to_str(bound.get("typename"))
    found = pstypes.resolve(name, interp.open_mutex)
    if found is None:
        raise fail("Cannot find type [%s]: %s the assembly containing this type is loaded."
                   % (name, "verify that" if interp.major >= 3 else "make sure that"),
                   "TypeNotFound", "InvalidType", "PSArgumentException")
    args = bound.get("argumentlist")
    args = [] if args is None else (list(args) if isinstance(args, list) else [args])
    ctor = (found.constructors or {}).get(len(args))
    if ctor is None:
        raise pstypes.Unsupported("New-Object [%s] with %d argument(s)" % (found.full_name,
                                                                           len(args)))
    try:
        out(ctor(*args))
    except DotNetException as exc:
        raise fail('Exception calling ".ctor" with "%d" argument(s): "%s"'
                   % (len(args), exc.text(interp.major)), "ConstructorInvokedThrowException",
                   "InvalidOperation", "MethodInvocationException") from None


_PATH = ("Path", "LiteralPath")
CMDLETS = {}
for _names, _spec, _run in [
    (("write-output", "echo", "write"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteOutputCommand", ["InputObject"],
                          ["NoEnumerate"], ["InputObject"], remaining="InputObject"),
     _write_output),
    (("write-host",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteHostCommand",
                          ["Object", "ForegroundColor", "BackgroundColor", "Separator"],
                          ["NoNewline"], ["Object"], remaining="Object"), _write_host),
    (("write-error",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteErrorCommand", ["Message"], [],
                          ["Message"]), _write_error),
    (("write-warning",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteWarningCommand", ["Message"], [],
                          ["Message"]), _write_warning),
    (("write-verbose",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteVerboseCommand", ["Message"],
                          ["Verbose"], ["Message"]), _write_verbose),
    (("out-null",), lambda i: CmdletSpec("Microsoft.PowerShell.Commands.OutNullCommand",
                                         ["InputObject"]), _out_null),
    (("out-string",), lambda i: CmdletSpec("Microsoft.PowerShell.Commands.OutStringCommand",
                                           ["InputObject", "Width"], ["Stream"]), _out_string),
    (("set-content", "sc"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.SetContentCommand",
                          _PATH + ("Value", "Encoding"), ["Force", "NoNewline"] if i.major >= 5
                          else ["Force"], ["Path", "Value"], {"pspath": "literalpath"}),
     _set_content),
    (("add-content", "ac"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.AddContentCommand",
                          _PATH + ("Value", "Encoding"), ["Force"], ["Path", "Value"]),
     lambda *a: _set_content(*a, append=True)),
    (("get-content", "gc", "cat", "type"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.GetContentCommand",
                          _PATH + ("Encoding", "TotalCount", "ReadCount"),
                          ["Raw", "Force"] if i.major >= 3 else ["Force"], ["Path"]),
     _get_content),
    (("remove-item", "del", "rm", "ri", "erase", "rd", "rmdir"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.RemoveItemCommand", _PATH,
                          ["Force", "Recurse"], ["Path"]), _remove_item),
    (("test-path",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.TestPathCommand", _PATH + ("PathType",),
                          ["IsValid"], ["Path"]), _test_path),
    (("set-strictmode",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.SetStrictModeCommand", ["Version"],
                          ["Off"], []), _set_strict_mode),
    (("get-variable", "gv"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.GetVariableCommand", ["Name", "Scope"],
                          ["ValueOnly"], ["Name"]), _get_variable),
    (("invoke-expression", "iex"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.InvokeExpressionCommand", ["Command"],
                          [], ["Command"]), _invoke_expression),
    (("new-object",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.NewObjectCommand",
                          ["TypeName", "ArgumentList", "ComObject", "Property"], ["Strict"],
                          ["TypeName", "ArgumentList"], {"args": "argumentlist"}), _new_object),
    (("start-sleep", "sleep"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.StartSleepCommand",
                          ["Seconds", "Milliseconds"], [], ["Seconds"]), _start_sleep),
]:
    for _name in _names:
        CMDLETS[_name] = Cmdlet(_spec, _run)
