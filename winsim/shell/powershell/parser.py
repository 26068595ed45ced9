"""The PowerShell parser: statements, argument mode and expressions into a syntax tree."""
import re
from typing import Any, List, Optional

# ---------------------------------------------------------------------------------------------
# Errors


class ParseError(Exception):
    def __init__(self, message: str, fqid: str, offset: int, length: int = 1):
        super().__init__(message)
        self.message, self.fqid, self.offset, self.length = message, fqid, offset, length



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


