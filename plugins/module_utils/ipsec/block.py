# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The emergency block (winsec.ipsec.ipsec_block): naming of the objects it owns and its planner.

Every object the block adds to a host (its own policy when none is assigned, the rules it adds to
an assigned policy, their filter lists and filter actions) is named `winsec-emergency ...`, so that
drift checks and baseline enforcement can tell an emergency block in place from drift.
"""
from __future__ import annotations

from .model import name_key

EMERGENCY_PREFIX = "winsec-emergency "


def is_emergency_name(name) -> bool:
    """True for a name the emergency block owns. Windows tools compare object names
    case-insensitively, so 'WINSEC-EMERGENCY x' is one of ours too."""
    if not isinstance(name, str):
        return False
    return name_key(name).startswith(name_key(EMERGENCY_PREFIX))
