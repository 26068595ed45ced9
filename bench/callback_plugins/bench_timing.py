# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Bench callback: the wall time of each play's setup and of each task, into $WINSEC_BENCH_TIMING
(JSON). A task's time runs from its start to the next task's or play's start, so it includes the
strategy's work for it on every host; "setup" is a play's time before its first task."""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self):
        super().__init__()
        self._rows = []
        self._current = None
        self._since = time.monotonic()

    def _mark(self, kind, name):
        now = time.monotonic()
        if self._current is not None:
            self._rows.append(dict(self._current, seconds=round(now - self._since, 3)))
        self._current, self._since = {"kind": kind, "name": name}, now

    def v2_playbook_on_play_start(self, play):
        self._mark("play setup", play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._mark("task", task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._mark("end", "")
        path = os.environ.get("WINSEC_BENCH_TIMING")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self._rows, handle)
