# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Report files the controller-side actions (drift_report, rollout_record) write."""
from __future__ import annotations

import os
import tempfile


def write_if_changed(path: str, text: str) -> bool:
    """Write `text` to `path` atomically (mode 0644) unless it already holds it; whether it wrote.

    A reader never sees half a report: the text goes to a temporary file in the same folder, which
    then replaces the old one (os.replace is atomic on one file system)."""
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    except FileNotFoundError:
        pass
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".winsec-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return True
