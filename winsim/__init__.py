"""winsim: a Windows host stand-in that speaks real WinRM. See winsim/README.md.

winsim imports nothing from the collection (tests/unit/winsim/test_independent_imports.py), so importing
it changes nothing on disk; `make setup` links build/collections for Ansible.
"""
