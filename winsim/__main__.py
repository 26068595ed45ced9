"""Command line: `python -m winsim serve ...` runs an estate; `python -m winsim ctl ...` steers it.

    python -m winsim serve --hosts 3 --personalities modern,2003,xp --state /tmp/ws --inventory hosts.yml
    python -m winsim ctl --state /tmp/ws status
    python -m winsim ctl --state /tmp/ws --host win002 set latency_ms=250 drop_command=1
    python -m winsim ctl --state /tmp/ws --host win002 set drop_request=3    # or drop_reply=3
    python -m winsim ctl --state /tmp/ws --host win001 set fail_step=2
    python -m winsim ctl --state /tmp/ws --host win001 reboot
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from . import estate as estate_mod


def _serve(args) -> int:
    personalities = [p.strip() for p in args.personalities.split(",") if p.strip()]
    password = args.password or os.environ.get("WINSIM_PASSWORD")
    estate = estate_mod.Estate(args.state, args.hosts, personalities, base_address=args.base_address,
                               http_port=args.http_port, https_port=args.https_port,
                               https_only=args.https_only, user=args.user, password=password,
                               transport=args.transport, latency_ms=args.latency_ms)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with estate:
        if args.inventory:
            estate.write_inventory(args.inventory)
        for served in estate.hosts:
            print("%s %-8s %s http=%s https=%s" % (served.name, served.personality, served.address,
                                                  served.http_port, served.https_port), flush=True)
        print("winsim: %d hosts served; state in %s%s; Ctrl-C or SIGTERM stops"
              % (len(estate.hosts), estate.state_dir,
                 "; inventory " + os.path.abspath(args.inventory) if args.inventory else ""), flush=True)
        stopped.wait()
    return 0


def _value(text: str):
    """key=value values: JSON when they parse (3, true, null), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _ctl(args) -> int:
    with open(os.path.join(args.state, estate_mod.ESTATE_FILE)) as handle:
        names = [h["name"] for h in json.load(handle)["hosts"]]
    targets = args.host or names
    if args.action == "status":
        settings = {}
    elif args.action == "reboot":
        settings = {"reboot": True}
    elif args.action == "clear":
        settings = {"latency_ms": 0, "drop_command": None, "drop_request": None, "drop_reply": None}
    else:
        settings = {}
        for pair in args.settings:
            key, sep, text = pair.partition("=")
            if not sep or not key:
                print("winsim ctl: %r is not key=value (e.g. latency_ms=200, drop_command=1, fail_step=2)"
                      % pair, file=sys.stderr)
                return 2
            settings[key] = _value(text)
    failed = 0
    for name in targets:
        try:
            print(json.dumps(estate_mod.control(args.state, name, settings)))
        except (KeyError, RuntimeError, OSError) as err:
            print("winsim ctl: %s: %s" % (name, err), file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m winsim", description="Windows stand-ins that speak WinRM.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve an estate of hosts until stopped")
    serve.add_argument("--hosts", type=int, default=1, help="number of hosts (default 1)")
    serve.add_argument("--personalities", default="modern",
                       help="comma list, assigned round-robin: modern, 2008r2, 2003, xp")
    serve.add_argument("--state", required=True, help="state directory (registry, audit, TLS, estate.json)")
    serve.add_argument("--inventory", help="write an Ansible YAML inventory here")
    serve.add_argument("--latency-ms", type=int, default=0, help="delay added to every request")
    serve.add_argument("--https-only", action="store_true", help="no HTTP listener; inventory uses HTTPS")
    serve.add_argument("--base-address", default="127.0.0.2", help="first host address (default 127.0.0.2)")
    serve.add_argument("--http-port", type=int, default=5985, help="0 picks free ports")
    serve.add_argument("--https-port", type=int, default=5986, help="0 picks free ports")
    serve.add_argument("--user", default=estate_mod.DEFAULT_USER)
    serve.add_argument("--password", help="default: $WINSIM_PASSWORD, else the saved or a random one")
    serve.add_argument("--transport", choices=("basic", "ntlm"), default="basic",
                       help="ansible_winrm_transport written to the inventory (both are served)")

    ctl = sub.add_parser("ctl", help="set faults/latency or reboot hosts of a running estate")
    ctl.add_argument("--state", required=True, help="the state directory the estate was served with")
    ctl.add_argument("--host", action="append", help="host name (repeatable; default: every host)")
    ctl.add_argument("action", choices=("status", "set", "clear", "reboot"))
    ctl.add_argument("settings", nargs="*", help="key=value for set: latency_ms, drop_command, drop_request, drop_reply, "
                                                 "and host settings such as fail_step, stop_service")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    return _serve(args) if args.command == "serve" else _ctl(args)


if __name__ == "__main__":
    sys.exit(main())
