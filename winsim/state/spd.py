"""The dynamic part of the PolicyAgent's security policy database (SPD): rules and main-mode policies
added with `netsh ipsec dynamic` or ipseccmd without -w. They live in the service's memory and are
gone when it stops or the host restarts (KB 813878); SimHost keeps them in `dynamic` and `mmpolicies`.
"""
from dataclasses import dataclass

from .model import DynamicRule


@dataclass(frozen=True)
class DynamicEntry:
    """A dynamic rule in the SPD with the main/quick mode policies it was added with."""
    rule: DynamicRule
    mmpolicy: str = ""
    qmpolicy: str = ""


@dataclass(frozen=True)
class MmPolicy:
    """A dynamic main-mode policy (`netsh ipsec dynamic add mmpolicy`)."""
    name: str
    qmpermm: int = 0
    mmlifetime: int = 480
    softsaexpirationtime: int = 0
    mmsecmethods: str = ""
