"""What kind of Windows a winsim host pretends to be: its version values, the tools it carries and
the language its tools print in.

Version numbers are Microsoft's (NT 5.0 = 2000, 5.1 = XP, 5.2 = Server 2003, 6.1 = 2008 R2,
6.3 in `CurrentVersion` on every Windows 10 / Server 2016+ system, the real major version living in
`CurrentMajorVersionNumber`). Tool availability: `netsh ipsec` from Server 2003 on ([D] "Netsh
commands for Internet Protocol security", Windows Server 2003; XP has no ipsec context, [I]),
ipseccmd from the XP SP2 Support Tools (KB 813878), netdiag from the 2000/XP/2003 Support Tools and
not on Vista+ [I], ipsecpol from the Windows 2000 Resource Kit (KB 813878).
ldifde ships with Server 2003 ([D] ldifde, Windows Server 2003 docs; in system32 [I]) and from
2008 on with the AD DS role or the RSAT AD DS tools ([D] ldifde): winsim's 2003, 2008r2 and modern
hosts act as if it were installed; XP and 2000 have none.

Display language: real netsh prints its labels in the display language. `modern_de` is a German
Windows Server 2022: its `netsh ipsec dynamic show` output uses the German labels of NETSH_LABELS
(the outputs the engine parses as text; static state is read from the registry, which is the same
in every language).
"""
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

SYSTEM32_MODERN = r"C:\Windows\System32"
SYSTEM32_LEGACY = r"C:\WINDOWS\system32"
SUPPORT_TOOLS = r"C:\Program Files\Support Tools"     # KB 813878: default Support Tools folder
RESOURCE_KIT = r"C:\Program Files\Resource Kit"       # KB 813878: default folder of ipsecpol.exe

# NoDefaultExempt lives under the IPSEC driver key up to 2003 and under PolicyAgent from Vista on
# ([D] KB 254728, KB 810207; Vista+ [E]: docs/windows-tools.md "Default exemptions").
EXEMPT_KEY_LEGACY = r"SYSTEM\CurrentControlSet\Services\IPSEC"
EXEMPT_KEY_MODERN = r"SYSTEM\CurrentControlSet\Services\PolicyAgent"


@dataclass(frozen=True, eq=False)
class Personality:
    """Compares equal to its name and prints as it, so `host.personality == 'xp'` reads naturally
    while the shell reads `host.personality.powershell`."""
    name: str
    product_name: str
    current_version: str          # HKLM\...\Windows NT\CurrentVersion\CurrentVersion
    build: str                    # CurrentBuildNumber
    csd_version: str              # service pack, '' when none
    major: Optional[int]          # CurrentMajorVersionNumber (Windows 10 era only)
    tools: Dict[str, str]         # tool name (no .exe) -> folder it is installed in
    netsh_ipsec: bool             # has the `netsh ipsec` context
    powershell: str               # '' when there is none
    exempt_key: str
    service_display: str          # PolicyAgent's display name (the Services console's) [I] per version
    blob_flavor: str              # the codec's encode flavor: 'modern' (Vista+) or 'legacy'
    system_root: str
    language: str = "en"          # the display language of tool output: 'en' or 'de'

    def label(self, text: str) -> str:
        """A netsh output label or heading in this host's display language."""
        return NETSH_LABELS.get(self.language, {}).get(text, text)

    def tool_folder(self, tool: str) -> Optional[str]:
        return self.tools.get(tool)

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        if isinstance(other, Personality):
            return other.name == self.name
        return isinstance(other, str) and other == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def _tools(system32: str, *names: str, extra: Tuple[Tuple[str, str], ...] = ()) -> Dict[str, str]:
    table = {name: system32 for name in names}
    table.update(dict(extra))
    return table


# schtasks.exe ships with XP and later; Windows 2000 has only `at` ([D] schtasks docs).
_CORE = ("netsh", "reg", "sc", "net", "gpupdate", "shutdown", "schtasks", "hostname", "ver")
_SERVER = _CORE + ("ldifde",)

PERSONALITIES = {
    "modern": Personality(
        name="modern", product_name="Windows Server 2022 Standard", current_version="6.3",
        build="20348", csd_version="", major=10,
        tools=_tools(SYSTEM32_MODERN, *_SERVER), netsh_ipsec=True, powershell="5.1",
        exempt_key=EXEMPT_KEY_MODERN, service_display="IPsec Policy Agent", blob_flavor="modern",
        system_root=r"C:\Windows"),
    "2008r2": Personality(
        name="2008r2", product_name="Windows Server 2008 R2 Standard", current_version="6.1",
        build="7601", csd_version="Service Pack 1", major=None,
        tools=_tools(SYSTEM32_MODERN, *_SERVER), netsh_ipsec=True, powershell="2.0",
        exempt_key=EXEMPT_KEY_MODERN, service_display="IPsec Policy Agent", blob_flavor="modern",
        system_root=r"C:\Windows"),
    "2003": Personality(
        name="2003", product_name="Microsoft Windows Server 2003", current_version="5.2",
        build="3790", csd_version="Service Pack 2", major=None,
        tools=_tools(SYSTEM32_LEGACY, *_SERVER,
                     extra=(("ipseccmd", SUPPORT_TOOLS), ("netdiag", SUPPORT_TOOLS))),
        netsh_ipsec=True, powershell="2.0",
        exempt_key=EXEMPT_KEY_LEGACY, service_display="IPSEC Services", blob_flavor="legacy",
        system_root=r"C:\WINDOWS"),
    "xp": Personality(
        name="xp", product_name="Microsoft Windows XP", current_version="5.1",
        build="2600", csd_version="Service Pack 3", major=None,
        tools=_tools(SYSTEM32_LEGACY, *_CORE,
                     extra=(("ipseccmd", SUPPORT_TOOLS), ("netdiag", SUPPORT_TOOLS))),
        netsh_ipsec=False, powershell="2.0",
        exempt_key=EXEMPT_KEY_LEGACY, service_display="IPSEC Services", blob_flavor="legacy",
        system_root=r"C:\WINDOWS"),
    # Windows 2000 has no WinRM; this personality exists for offline tests of ipsecpol rendering.
    "2000": Personality(
        name="2000", product_name="Microsoft Windows 2000", current_version="5.0",
        build="2195", csd_version="Service Pack 4", major=None,
        tools=_tools(r"C:\WINNT\system32", "netsh", "reg", "sc", "net", "hostname", "ver",
                     extra=(("ipsecpol", RESOURCE_KIT), ("netdiag", SUPPORT_TOOLS))),
        netsh_ipsec=False, powershell="",
        exempt_key=EXEMPT_KEY_LEGACY, service_display="IPSEC Policy Agent", blob_flavor="legacy",
        system_root=r"C:\WINNT"),
}


# German labels of `netsh ipsec dynamic show rule|mmpolicy|all`. No German capture of that output is
# public, so no label here is attested *as an output label*. Where netsh's own German help text uses
# a word for the same thing, that word is taken ([T] = Microsoft's German UI string of `netsh ipsec
# dynamic set rule /?`, https://uitranslation.com/?lang=de-de&term=2b37af2de8f2); the others are
# winsim's translation, [I]. Values (YES, PERMIT, <Any IP Address>, ...) stay English [I].
NETSH_LABELS: Dict[str, Dict[str, str]] = {
    "de": {
        "Rules": "Regeln",                                      # [I]
        "Main Mode Policies": "Hauptmodusrichtlinien",          # [I] plural of [T] Hauptmodusrichtlinie
        "IPsec Statistics": "IPsec-Statistik",                  # [I]
        "Rule Type": "Regeltyp",                                # [I]
        "Connection Type": "Verbindungstyp",                    # [T] conntype
        "Source Address": "Quell-IP-Adresse",                   # [T] srcaddr
        "Source Mask": "Quelladressmaske",                      # [T] srcmask
        "Destination Address": "Ziel-IP-Adresse",               # [T] dstaddr
        "Destination Mask": "Zieladressmaske",                  # [T] dstmask
        "Protocol": "Protokoll",                                # [I]
        "Source Port": "Quellport",                             # [T] srcport
        "Destination Port": "Zielport",                         # [T] dstport
        "Mirrored": "Gespiegelt",                               # [I]
        "Main Mode Policy": "Hauptmodusrichtlinie",             # [T] mmpolicy
        "Quick Mode Policy": "Schnellmodusrichtlinie",          # [T] qmpolicy
        "Inbound Action": "Aktion für eingehende Pakete",       # [T] actioninbound
        "Outbound Action": "Aktion für ausgehende Pakete",      # [T] actionoutbound
        "Policy Name": "Richtlinienname",                       # [I]
        "Soft SA Expiration Time": "Soft-SA-Ablaufzeit",        # [I]
        "Main Mode Life Time": "Hauptmodusgültigkeitsdauer",    # [I]
        "QM Per MM": "SM pro HM",                               # [I]
    },
}

PERSONALITIES["modern_de"] = replace(PERSONALITIES["modern"], name="modern_de", language="de")


def get(name: str) -> Personality:
    try:
        return PERSONALITIES[name]
    except KeyError:
        raise ValueError("personality %r is not known; expected one of %s"
                         % (name, ", ".join(sorted(PERSONALITIES)))) from None


def version_string(p: Personality) -> str:
    """`ver` output's version: 10.0.build on Windows 10-era systems, else major.minor.build."""
    if p.major:
        return "%d.0.%s" % (p.major, p.build)
    return "%s.%s" % (p.current_version, p.build)
