# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The one action-plugin class winsec.ipsec's modules share: each plugin names its documentation,
its handler and its `required_if`; validation and error handling are module_utils/ipsec/args.py's
run_action."""
from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import run_action


class WinsecAction(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    DOCS: dict = {}             # the module's parsed DOCUMENTATION (plugin_utils/docs.py)
    REQUIRED_IF: tuple = ()     # Ansible's required_if rules for the argument spec

    @staticmethod
    def handle(ctx) -> dict:
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        kwargs = {"required_if": list(self.REQUIRED_IF)} if self.REQUIRED_IF else {}
        return run_action(self, task_vars, self.DOCS, self.handle, **kwargs)
