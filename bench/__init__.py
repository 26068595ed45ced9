"""make bench: what a rollout costs per host, and how the engine and winsim scale (issue 7)."""
# winsim/__init__.py makes the repo importable as ansible_collections.winsec.ipsec, the name the
# bench modules import the engine by.
import winsim  # noqa: F401
