# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Test helper: append every task result to the JSON-lines file named by $WINSEC_RECORD.

ansible-core 2.19 ships no json stdout callback (it moved to ansible.posix), and the integration
tests want each task's full result per host, in order.
"""
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: winsec_record
type: aggregate
short_description: record task results as JSON lines (winsec.ipsec tests)
description: Appends {task, host, status, action, result} per task result to the file named by WINSEC_RECORD.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "winsec_record"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, status):
        path = os.environ.get("WINSEC_RECORD")
        if not path:
            return
        line = {"task": result.task_name, "host": result._host.get_name(), "status": status,
                "action": result._task.action,
                "result": json.loads(json.dumps(result._result, default=str))}
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")
