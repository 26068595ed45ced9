"""`hostname` and cmd's `ver`: what a script may ask to learn which Windows it is on."""
from .. import personalities
from ..result import Result


def run_hostname(host, argv, stdin="") -> Result:
    if len(argv) > 1:
        # [I] hostname.exe refuses arguments on Vista+ ("sethostname: Use the Network Control Panel Applet...")
        return Result(stderr="sethostname: Use the Network Control Panel Applet to set hostname.\n", rc=1)
    return Result(stdout=host.name + "\r\n")


def run_ver(host, argv, stdin="") -> Result:
    """cmd.exe's `ver`: a blank line, then `Microsoft Windows [Version x.y.z]` (XP: `Microsoft
    Windows XP [Version 5.1.2600]`)."""
    p = host.profile
    product = "Microsoft Windows XP" if p.name == "xp" else "Microsoft Windows"
    return Result(stdout="\r\n%s [Version %s]\r\n" % (product, personalities.version_string(p)))
