"""winsim's reg, sc, net, gpupdate, shutdown, ver and tool lookup."""
import pytest

from winsim.host import SimHost

VERSION = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
MISSING = "ERROR: The system was unable to find the specified registry key or value.\n"


@pytest.fixture
def host(tmp_path):
    return SimHost("web1", "127.0.0.2", "modern", str(tmp_path / "web1"))


def ok(result):
    assert (result.rc, result.stderr) == (0, ""), result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("personality, version, product", [
    ("modern", "6.3", "Windows Server 2022 Standard"), ("2008r2", "6.1", "Windows Server 2008 R2 Standard"),
    ("2003", "5.2", "Microsoft Windows Server 2003"), ("xp", "5.1", "Microsoft Windows XP"),
])
def test_os_detection_through_reg_query(tmp_path, personality, version, product):
    host = SimHost("h", "127.0.0.4", personality, str(tmp_path / personality))
    # reg.exe 3.0 of XP/2003 separates with tabs (tests/fixtures/captures/reg_query_xp_*), later ones with 4 spaces.
    sep = "\t" if personality in ("2003", "xp") else "    "
    line = "CurrentVersion{0}REG_SZ{0}{1}".format(sep, version)
    assert line in ok(host.run_tool(["reg", "query", VERSION, "/v", "CurrentVersion"]))
    text = ok(host.run_tool(["reg.exe", "QUERY", VERSION.replace("HKLM", "HKEY_LOCAL_MACHINE")]))
    assert "ProductName{0}REG_SZ{0}{1}".format(sep, product) in text
    assert host.state().os.generation == personality


def test_reg_query_missing_key_and_value(host):
    for args in (["query", r"HKLM\SOFTWARE\Nope"], ["query", VERSION, "/v", "Nope"],
                 ["delete", r"HKLM\SOFTWARE\Nope", "/f"]):
        assert host.run_tool(["reg"] + args).stderr == MISSING
        assert host.run_tool(["reg"] + args).rc == 1
    assert host.run_tool(["reg", "query", VERSION, "/x"]).rc == 1
    assert host.run_tool(["reg", "export", VERSION, "x.reg"]).rc == 1


def test_reg_add_and_delete_nodefaultexempt(host):
    key = r"HKLM\SYSTEM\CurrentControlSet\Services\PolicyAgent"
    assert host.state().no_default_exempt is None
    assert ok(host.run_tool(["reg", "add", key, "/v", "NoDefaultExempt", "/t", "REG_DWORD", "/d", "1", "/f"])) == \
        "The operation completed successfully.\n"
    assert host.state().no_default_exempt == 1
    refused = host.run_tool(["reg", "add", key, "/v", "NoDefaultExempt", "/t", "REG_DWORD", "/d", "0x3"])
    assert "overwrite" in refused.stdout and host.state().no_default_exempt == 1
    ok(host.run_tool(["reg", "add", key, "/v", "NoDefaultExempt", "/t", "REG_DWORD", "/d", "0x3"], stdin="y\n"))
    assert host.state().no_default_exempt == 3
    ok(host.run_tool(["reg", "delete", key, "/v", "NoDefaultExempt", "/f"]))
    assert host.state().no_default_exempt is None
    assert host.run_tool(["reg", "add", key, "/v", "X", "/t", "REG_DWORD", "/d", "ten", "/f"]).rc == 1


def test_sc_query_stop_start(host):
    assert "STATE              : 4  RUNNING" in ok(host.run_tool(["sc", "query", "PolicyAgent"]))
    assert "STOP_PENDING" in ok(host.run_tool(["sc.exe", "stop", "policyagent"]))
    assert "STATE              : 1  STOPPED" in ok(host.run_tool(["sc", "query", "PolicyAgent"]))
    again = host.run_tool(["sc", "stop", "PolicyAgent"])
    assert (again.rc, "FAILED 1062" in again.stdout) == (1062, True)
    assert "START_PENDING" in ok(host.run_tool(["sc", "start", "PolicyAgent"]))
    assert host.run_tool(["sc", "start", "PolicyAgent"]).rc == 1056
    assert host.run_tool(["sc", "query", "NoSuchService"]).rc == 1060


def test_net_stop_start_messages(tmp_path):
    xp = SimHost("xp1", "127.0.0.3", "xp", str(tmp_path / "xp"))
    assert "The IPSEC Services service was stopped successfully." in ok(xp.run_tool(["net", "stop", "policyagent"]))
    again = xp.run_tool(["net", "stop", "policyagent"])
    assert again.rc == 2 and "NET HELPMSG 3521" in again.stderr
    assert "started successfully" in ok(xp.run_tool(["net", "start", "IPSEC Services"]))
    assert xp.run_tool(["net", "start", "policyagent"]).rc == 2
    assert xp.run_tool(["net", "stop", "nosuch"]).rc == 2
    assert xp.run_tool(["net", "user"]).rc == 1


def test_gpupdate_and_shutdown_arguments(host):
    assert "Computer Policy update has completed successfully." in ok(
        host.run_tool(["gpupdate", "/target:computer", "/force"]))
    assert host.run_tool(["gpupdate", "/bogus"]).rc == 1
    assert host.run_tool(["shutdown", "/s", "/t", "0"]).rc == 1
    assert host.run_tool(["shutdown", "/t", "0"]).rc == 1
    ok(host.run_tool(["shutdown", "/r", "/t", "0", "/f"]))


@pytest.mark.parametrize("program, found", [
    ("netsh", True), ("NETSH.EXE", True), (r"C:\Windows\System32\netsh.exe", True),
    (r"%SystemRoot%\system32\netsh.exe", True), (r"C:\Temp\netsh.exe", False),
    ("ipseccmd", False), ("netdiag", False), ("notepad", False), ("ver.exe", False),
])
def test_tool_lookup_on_modern(host, program, found):
    result = host.run_tool([program, "/?"] if program.lower().startswith("c:\\temp") else [program])
    recognized = "is not recognized as the name of a cmdlet" not in result.stderr
    assert recognized == found


def test_tool_lookup_on_2003(tmp_path):
    host = SimHost("s", "127.0.0.6", "2003", str(tmp_path / "s"))
    for program in ("ipseccmd", r"C:\Program Files\Support Tools\ipseccmd.exe", "NetDiag.exe"):
        assert "is not recognized" not in host.run_tool([program, "show", "filters"]).stderr
    assert "[Version 5.2.3790]" in ok(host.run_tool(["ver"]))
    assert ok(host.run_tool(["hostname"])) == "s\r\n"
