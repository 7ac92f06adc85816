"""Deleting measurements and datasets through the store, with the audit trail (issue #18 §2)."""

from __future__ import annotations

import pandas as pd
import pytest

from matforge.errors import StoreError


def _two_datasets(store):
    store.add_measurements(
        pd.DataFrame({"formula": ["Fe2O3", "NaCl"], "value": [2.1, 8.5]}),
        project="p", property="band_gap", unit="eV", source="doi:10/a", created_by="ada",
    )  # fmt: skip
    store.add_measurements(
        pd.DataFrame({"formula": ["ZnO"], "value": [3.3], "uncertainty": [0.1]}),
        project="p", property="band_gap", unit="eV", created_by="bob",
    )  # fmt: skip


def test_deleting_a_measurement_keeps_it_whole_in_the_audit_log(store):
    _two_datasets(store)
    rows = store.measurements()
    zno = rows[rows["formula"] == "ZnO"].iloc[0]
    assert store.delete_measurements([int(zno["id"])], actor="carol") == 1
    assert sorted(store.measurements()["formula"]) == ["Fe2O3", "NaCl"]
    log = store.audit()
    assert len(log) == 1
    entry = log.iloc[0]
    assert (entry["project"], entry["actor"], entry["action"]) == ("p", "carol", "delete_measurement")
    assert entry["target_id"] == zno["id"]
    assert str(entry["at"].tz) == "UTC"
    detail = entry["detail"]
    assert detail["formula"] == "ZnO" and detail["property"] == "band_gap"
    assert (detail["value"], detail["unit"], detail["uncertainty"]) == (3.3, "eV", 0.1)
    assert detail["created_by"] == "bob" and detail["dataset_id"] == zno["dataset_id"]


def test_deleting_unknown_measurements_deletes_nothing(store):
    _two_datasets(store)
    first = int(store.measurements()["id"].min())
    with pytest.raises(StoreError, match="no measurement with id 987654; nothing was deleted"):
        store.delete_measurements([first, 987654])
    assert len(store.measurements()) == 3 and store.audit().empty


def test_deleting_a_dataset_deletes_its_measurements_and_records_its_provenance(store):
    _two_datasets(store)
    datasets = store.datasets()
    first = int(datasets["id"].iloc[0])
    assert store.delete_dataset(first, actor="carol") == 2
    assert store.measurements()["formula"].tolist() == ["ZnO"]
    assert store.datasets()["id"].tolist() == [int(datasets["id"].iloc[1])]
    (entry,) = store.audit(project="p").to_dict("records")
    assert entry["action"] == "delete_dataset" and entry["target_id"] == first
    detail = entry["detail"]
    assert detail["n_rows"] == 2 and detail["source"] == "doi:10/a"
    assert detail["created_by"] == "ada"
    assert detail["measurements_deleted"] == {"band_gap": 2}
    with pytest.raises(StoreError, match=f"no dataset with id {first}"):
        store.delete_dataset(first)
    assert len(store.audit()) == 1
