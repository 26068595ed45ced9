"""winsim's estate: what it writes for the people and scripts that use it."""
import os
import stat

import yaml

from winsim import estate as estate_mod


def test_the_inventory_appears_whole_and_private(tmp_path, monkeypatch):
    # A script (or `winsim serve`'s own test) waits for the inventory to exist and then reads it:
    # it must never see the file created but not yet written (CI caught exactly that: an empty file).
    inventory = tmp_path / "inventory" / "hosts.yml"
    estate = estate_mod.Estate(str(tmp_path / "state"), count=2, personalities=["modern", "xp"], password="P4ss")
    seen_while_writing = []
    real_dump = yaml.safe_dump

    def dump(data, handle, **kwargs):
        seen_while_writing.append(inventory.read_text() if inventory.exists() else None)
        return real_dump(data, handle, **kwargs)

    monkeypatch.setattr(estate_mod.yaml, "safe_dump", dump)
    inventory.parent.mkdir()
    inventory.write_text("# the last run's inventory\n")
    estate.write_inventory(str(inventory))

    assert seen_while_writing == ["# the last run's inventory\n"]
    assert yaml.safe_load(inventory.read_text()) == estate.inventory()  # whole, and it parses
    assert stat.S_IMODE(os.stat(inventory).st_mode) == 0o600  # it holds the password
    assert sorted(os.listdir(inventory.parent)) == ["hosts.yml"]
