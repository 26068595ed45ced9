# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Filters to_slice_artifact and from_slice_artifact: what a run publishes with set_stats for a
merge of sliced runs (playbooks/merge_results.yml), and back. Documentation: the .yml files beside.

The value travels as AWX artifacts and then as the merge job's extra vars. It goes as one string of
zlib-compressed JSON in base64, behind a prefix that names the format:
- base64 has no braces, so the string can never be read as a template, whatever the trust Ansible
  gives the extra vars it came in (text from hosts - policy names, messages - is in it);
- AWX writes extra vars as YAML strings tagged !unsafe, and ansible-core 2.19 loads an empty one
  as null: one opaque string arrives byte for byte;
- a host's entry differs little from the next host's, so they compress well (AWX keeps artifacts in
  its database and copies them to the next job): 1,000 copies of the test estate's block entries,
  differing in host names and times, take 41 KB instead of 2.8 MB of JSON.
"""
from __future__ import annotations

import base64
import binascii
import json
import zlib

from ansible.errors import AnsibleFilterError

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import plain

PREFIX = "winsec.ipsec/zlib+base64:"


def to_slice_artifact(value):
    """A result (dicts, lists, strings, numbers) -> the string a run publishes."""
    text = json.dumps(plain(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return PREFIX + base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def from_slice_artifact(text):
    """The string a run published -> its result."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise AnsibleFilterError("from_slice_artifact: expected a string starting with %r, as emergency_block.yml, "
                                 "unblock.yml and drift_check.yml publish it (filter to_slice_artifact), got %.60r"
                                 % (PREFIX, text))
    try:
        return json.loads(zlib.decompress(base64.b64decode(text[len(PREFIX):], validate=True)).decode("utf-8"))
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as err:
        raise AnsibleFilterError("from_slice_artifact: the published value is damaged (%s): pass the artifact "
                                 "exactly as the run published it" % err) from None


class FilterModule:
    def filters(self):
        return {"to_slice_artifact": to_slice_artifact, "from_slice_artifact": from_slice_artifact}
