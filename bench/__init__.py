"""make bench: what a rollout costs per host, and how the engine and winsim scale (issue 7)."""
# The bench modules import the engine as ansible_collections.winsec.ipsec: `make bench` (and `make
# test`) put build/collections, which links this checkout under that name, on PYTHONPATH.
