"""winsim's `netsh ipsec dynamic show`: the statistics part of `show all`, and the labels in the
host's display language (personalities.NETSH_LABELS)."""
from winsim import personalities
from winsim.host import SimHost
from winsim.tools.netsh_dynamic import STATISTICS


def show(host, what):
    result = host.run_tool(["netsh", "ipsec", "dynamic", "show"] + what.split())
    assert result.rc == 0
    return result.stdout


def test_show_all_prints_statistics_without_any_dynamic_policy(tmp_path):
    host = SimHost("h", "127.0.0.2", "modern", str(tmp_path / "h"))
    lines = show(host, "all").splitlines()
    assert lines[:2] == ["IPsec Statistics", "----------------"]
    assert [line.split(":")[0].rstrip() for line in lines[3:]] == list(STATISTICS)
    assert show(host, "rule") == "" and show(host, "mmpolicy all") == ""


def test_german_host_prints_german_labels(tmp_path):
    host = SimHost("h", "127.0.0.2", "modern_de", str(tmp_path / "h"))
    for words in ("add mmpolicy name=mm", "add rule srcaddr=any dstaddr=me protocol=udp dstport=1434 mmpolicy=mm "
                  "actioninbound=block actionoutbound=block"):
        assert host.run_tool(["netsh", "ipsec", "dynamic"] + words.split()).rc == 0
    text = show(host, "all")
    german = personalities.NETSH_LABELS["de"]
    for english in ("Rules", "Main Mode Policies", "Connection Type", "Inbound Action", "Policy Name"):
        assert german[english] in text and english not in text
    assert text.index(german["Main Mode Policies"]) < text.index(german["Rules"]) < text.index(
        german["IPsec Statistics"])
    assert "Zielport               : 1434" in text.splitlines()


def test_the_german_personality_is_modern_windows_in_german():
    de, en = personalities.get("modern_de"), personalities.get("modern")
    assert (de.language, en.language) == ("de", "en")
    assert (de.product_name, de.build, de.blob_flavor, de.tools) == (en.product_name, en.build, en.blob_flavor, en.tools)
    assert en.label("Rules") == "Rules" and de.label("Rules") == "Regeln"
