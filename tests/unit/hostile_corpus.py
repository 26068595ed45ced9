# -*- coding: utf-8 -*-
"""Names and values that try to break quoting, shared by every test that renders a command.

HOSTILE_NAMES: strings every renderer must either deliver exactly or reject with ValidationError.
UNREPRESENTABLE: strings no Windows command line can carry; they must always be rejected.
PS51_UNDELIVERABLE: strings Windows PowerShell 5.1 legacy argument passing cannot deliver intact
(a space after an odd number of double quotes, nothing else to make PowerShell wrap them).
"""

HOSTILE_NAMES = [
    "plain",
    "Block UDP 1434 Filter",
    "Block Inbound UDP 1434 Rule",
    " leading and trailing ",
    "two  spaces",
    "tab\tinside",
    'say "hi"',
    'say "hi there"',
    '"quoted"',
    'a"b',
    'ends with quote"',
    "\\",
    "trailing backslash\\",
    "C:\\Program Files\\dir\\",
    "two trailing\\\\",
    'backslash before quote\\"x',
    'odd \\\\\\"quote',
    "\\\\server\\share",
    "caret^ amp& pipe| pct% lt< gt> (paren) semi; dollar$ tick` apos' at@ hash#",
    "100%",
    "%PATH%",
    "!delayed!",
    "a&b",
    "a|b",
    "a^b",
    "<redirect>",
    "(group)",
    "$(Get-Date)",
    "${env:COMPUTERNAME}",
    "@splat",
    "#comment",
    "{script}",
    "'single'",
    "it's",
    "‘smart’ ‚quotes‛",
    "“smart double”",
    "en–dash and em—dash",
    "--%",
    "-x",
    "name=value with space",
    "name=\"already\"",
    "=",
    "日本語のポリシー",
    "全角\u3000スペース",
    "Größenänderung Übung",
    "emoji 🔥 policy",
    "zero\u200bwidth",
    "nbsp\u00a0here",
    "x" * 2000,
    ("long name with spaces " * 150).strip(),
]

UNREPRESENTABLE = [
    "nul\x00inside",
    "line\nfeed",
    "carriage\rreturn",
    "crlf\r\nend",
]

PS51_UNDELIVERABLE = [
    '"a b"',
    'x"y z',
    'backslash\\"quote then space',
]

# Values that must never pass as a port, protocol number or other integer option.
HOSTILE_INTEGERS = ["1434; x", "1434 & calc", "-1", -1, 65536, "65536", True, False, 80.0, "0x50", "", None,
                    "８０", "1e3", "80 80"]

# Values that must never pass as an address.
HOSTILE_ADDRESSES = ["10.0.0.256", "1.2.3", "01.2.3.4", "10.0.0.1; calc", "host name", "a..b", "-host",
                     "fe80::1%eth0", "10.0.0.9-10.0.0.1", "10.0.0.1-::1", "me any", "$(hostname)", "",
                     "'quoted'", '"quoted"', "日本.example", None]
