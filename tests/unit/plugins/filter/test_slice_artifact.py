"""Filters to_slice_artifact / from_slice_artifact: what a run publishes for merge_results.yml."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winsec.ipsec.plugins.filter.slice_artifact import (
    PREFIX, from_slice_artifact, to_slice_artifact)

RECORD = {"format": 1, "hosts": {"win1": {"reason": "", "read_at": None, "line": "Corp {{ 7 * 7 }} {% raw %} ünï",
                                          "changes": [], "placement": {"dynamic": 2, "kept": True}}}}


def test_a_record_comes_back_as_it_went_and_the_string_is_never_a_template():
    text = to_slice_artifact(RECORD)
    assert text.startswith(PREFIX) and not set("{}%#") & set(text[len(PREFIX):])
    assert from_slice_artifact(text) == RECORD            # empty strings stay empty, nulls null


def test_similar_hosts_pack_small():
    hosts = {"win%04d" % i: dict(RECORD["hosts"]["win1"], host="win%04d" % i, commands=["netsh ipsec static add "
             "rule name=\"winsec-emergency Block Inbound UDP 1434\" policy=\"Corp\""] * 4) for i in range(500)}
    text = to_slice_artifact({"hosts": hosts})
    assert len(text) * 10 < len(repr(hosts))


@pytest.mark.parametrize("text, message", [
    ('{"format": 1}', r"expected a string starting with 'winsec.ipsec/zlib\+base64:'"),
    (None, r"expected a string starting with"),
    (PREFIX + "!!!", r"the published value is damaged"),
    (PREFIX + "aGVsbG8=", r"the published value is damaged"),
])
def test_anything_else_is_refused_saying_what_is_expected(text, message):
    with pytest.raises(AnsibleFilterError, match=message):
        from_slice_artifact(text)
