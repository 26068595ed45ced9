"""What running something on a winsim host gives back."""
from dataclasses import dataclass


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    rc: int = 0

    def __add__(self, other: "Result") -> "Result":
        """Output of two steps run one after the other; the exit code is the last one's."""
        return Result(self.stdout + other.stdout, self.stderr + other.stderr, other.rc)
