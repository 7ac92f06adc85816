"""The built-in property vocabulary: one library constant, the same as migration 0001 wrote."""

import importlib

from matforge.store import Store
from matforge.store.properties import BUILTIN_PROPERTIES, builtin_property_names


def test_the_builtin_properties_are_those_the_first_migration_writes():
    initial = importlib.import_module("matforge.store.migrations.versions.0001_initial")
    assert list(BUILTIN_PROPERTIES) == list(initial.PROPERTIES)
    assert builtin_property_names()[0] == "band_gap"


def test_a_new_store_knows_every_builtin_property_in_its_unit(tmp_path):
    with Store(tmp_path / "lab.db") as store:
        for name, unit, _ in BUILTIN_PROPERTIES:
            assert store.property_unit(name) == unit
