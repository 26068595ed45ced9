# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""A module's DOCUMENTATION, doc fragments merged: the one source of its argument spec.

The action plugins call this when they are imported. Ansible's linear strategy imports an action
plugin in the controller before it forks a worker per host, so the workers inherit the parsed docs
instead of each parsing the YAML again (bench/RESULTS.md measured about 40 ms per task otherwise).
"""
from __future__ import annotations

from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring


def module_documentation(docs_module) -> dict:
    """The parsed DOCUMENTATION of the module stub `docs_module` (plugins/modules/<name>.py)."""
    return get_docstring(docs_module.__file__, fragment_loader, collection_name="winsec.ipsec", is_module=True)[0]
