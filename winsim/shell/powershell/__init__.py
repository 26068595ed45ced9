"""A small Windows PowerShell (5.1, and 2.0 for the 2003/XP personalities) interpreter.

It runs the subset documented in the "Shell" section of winsim/README.md and fails everything
else the way PowerShell fails: an error record on stderr and a non-zero exit, never a silent
success. Statement structure and argument mode are parsed by one hand-written recursive-descent
parser because argument mode is where fidelity matters (tree-sitter-powershell splits
`name="A B"` into three tokens, and one parser for both keeps their boundaries consistent).

Error texts follow Windows PowerShell 5.1's NormalView layout ("At line:L char:C", the `+ ~~~`
marker, CategoryInfo, FullyQualifiedErrorId); message strings are PowerShell's own resource texts.

Modules: parser (syntax tree), interpreter (statements, pipelines, expressions, native commands),
cmdlets, runtime (values and error records), dotnet (the .NET types the scripts use).
"""
from .cmdlets import CMDLETS
from .interpreter import Interpreter
from .parser import ParseError, Parser
from .runtime import NOT_RECOGNIZED, ExitScript, PSError

__all__ = ["CMDLETS", "ExitScript", "Interpreter", "NOT_RECOGNIZED", "ParseError", "PSError", "Parser"]
