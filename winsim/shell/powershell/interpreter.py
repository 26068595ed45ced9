"""Runs a parsed script for one powershell.exe process."""
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .. import process
from . import dotnet
from ..cmdline import (Argument, NativePiece, Parameter, Verbatim, command_line_to_argv,
                       legacy_command_line)
from .dotnet import DotNetException, DotNetObject, DotNetType
from .runtime import (ErrorRecord, ExitScript, NativeErrorLine, PSError, PSVariable, RawText,
                      Version, _ps_type, collect, command_not_found, enumerate_output, members,
                      to_str, truthy)
from .parser import (ArgParam, ArgValue, ArgVerbatim, ArrayLit, Assign, Binary, Command, Exit,
                     Expandable, ExprElement, If, Index, Invoke, Lit, Member, Node, Paren,
                     ParseError, Parser, Pipeline, Redirect, Return, StaticMember, SubExpr, Throw,
                     Try, TypeLit, Unary, Var)
from .cmdlets import _COMMON_SWITCHES, CMDLETS, CmdletSpec

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
        # The process's named-mutex session (winsim/shell/mutexes.py); System.Threading.Mutex needs it.
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
            process.check()     # a terminated command stops here (winsim/shell/process.py)
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
        killed = False
        try:
            self.try_depth += 1
            try:
                self.run_block(st.body)
            finally:
                self.try_depth -= 1
        except process.ProcessKilled:
            killed = True       # a terminated process runs no finally block
            raise
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
            if st.finally_body is not None and not killed:
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
        if isinstance(obj, (PSError, ErrorRecord)):
            # An error record written to the output (`$_` in a catch block, `2>&1`) displays as
            # the error view does.
            self.write_out(self.format_error(obj if isinstance(obj, PSError) else obj.e))
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
        except dotnet.Unsupported as exc:
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

    # -- .NET (winsim/dotnet.py) ---------------------------------------------------------
    def unsupported(self, what: str, node: Node) -> PSError:
        return PSError("winsim: %s is outside the PowerShell subset winsim runs (see the Shell "
                       "section of winsim/README.md)." % what, "WinsimUnsupported",
                       "NotImplemented", "", "RuntimeException", (node.start, node.end))

    def open_mutex(self, initially_owned: bool, name: Optional[str]):
        if self.mutexes is None:
            raise dotnet.Unsupported("a mutex outside a host")
        return self.mutexes.open(initially_owned, name)

    def resolve_type(self, name: str, extent: Tuple[int, int]) -> DotNetType:
        found = dotnet.resolve(name, self.open_mutex)
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
        except dotnet.ArgumentConversion as exc:
            raise PSError('Cannot convert argument "%d", with value: "%s", for "%s" to type '
                          '"%s": "%s"' % (exc.index, exc.value, dotnet_name, exc.target,
                                           exc.detail),
                          "MethodArgumentConversionInvalidCastArgument", "NotSpecified", "",
                          "MethodException", extent, type_name="") from None
        except dotnet.Unsupported as exc:
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


