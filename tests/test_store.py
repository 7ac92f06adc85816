"""The store's behaviour, on SQLite and (with MATFORGE_TEST_PG_URL) on a real PostgreSQL server."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from matforge.errors import IngestError, InvalidFormula, StoreError, UnitError
from matforge.store import Store, ingest_csv
from matforge.store.units import delta_to_canonical, to_canonical


def _csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def _counts(store: Store) -> dict[str, int]:
    tables = ("projects", "properties", "datasets", "materials", "measurements")
    with store.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


# --- Python API ----------------------------------------------------------------------------


def test_add_measurements_converts_to_canonical_unit_and_keeps_provenance(store):
    df = pd.DataFrame(
        {
            "formula": ["Fe2O3", "NaCl", "Fe2O3"],
            "value": [210_000.0, 24_000.0, 205_000.0],
            "uncertainty": [5_000.0, None, 1_000.0],
            "temperature_K": [300, 300, 77],
        }
    )
    n = store.add_measurements(
        df,
        project="oxides",
        property="bulk_modulus",
        unit="MPa",
        source="doi:10/x",
        created_by="ada",
    )
    assert n == 3
    got = store.measurements(property="bulk_modulus")
    assert got["value"].tolist() == pytest.approx([210.0, 24.0, 205.0])
    assert got["unit"].unique().tolist() == ["GPa"]
    assert got["uncertainty"].iloc[0] == pytest.approx(5.0)
    assert math.isnan(got["uncertainty"].iloc[1])
    assert got["raw_value"].tolist() == [210_000.0, 24_000.0, 205_000.0]
    assert set(got["raw_unit"]) == {"MPa"}
    assert [json.loads(c) for c in got["conditions"]] == [
        {"temperature_K": 300},
        {"temperature_K": 300},
        {"temperature_K": 77},
    ]
    assert set(got["source"]) == {"doi:10/x"} and set(got["created_by"]) == {"ada"}
    assert set(got["method"]) == {"experiment"}
    assert str(got["created_at"].dt.tz) == "UTC"
    # One material per formula, however often it is measured.
    assert got["material_id"].iloc[0] == got["material_id"].iloc[2]
    materials = store.materials()
    assert sorted(materials["formula"]) == ["Fe2O3", "NaCl"]
    assert materials.set_index("formula").loc["NaCl", "elements"] == "Cl-Na"
    projects = store.projects()
    assert projects[["name", "n_datasets", "n_measurements"]].values.tolist() == [["oxides", 1, 3]]


def test_filter_by_elements_means_contains_all(store):
    formulas = ["Fe2O3", "FeO", "NiO", "FeNiO2", "Os", "OsO4", "Fe", "CoFe2O4"]
    df = pd.DataFrame({"formula": formulas, "value": np.arange(len(formulas), dtype=float)})
    store.add_measurements(df, project="p", property="band_gap", unit="eV")

    def formulas_with(elements):
        return sorted(store.measurements(elements=elements)["formula"])

    assert formulas_with(["Fe", "O"]) == ["Fe2CoO4", "Fe2O3", "FeNiO2", "FeO"]
    assert formulas_with("Fe-Ni-O") == ["FeNiO2"]
    # "O" must not match osmium, nor "Fe" anything but iron.
    assert formulas_with(["O"]) == ["Fe2CoO4", "Fe2O3", "FeNiO2", "FeO", "NiO", "OsO4"]
    assert formulas_with(["Os"]) == ["Os", "OsO4"]
    assert sorted(store.materials(elements="Fe,O")["formula"]) == formulas_with(["Fe", "O"])
    with pytest.raises(InvalidFormula, match="Xx"):
        store.measurements(elements=["Fe", "Xx"])


def test_query_filters_by_project_property_and_method(store):
    df = pd.DataFrame({"formula": ["Si", "GaAs"], "value": [1.1, 1.4]})
    store.add_measurements(df, project="a", property="band_gap", unit="eV")
    store.add_measurements(df, project="b", property="band_gap", unit="eV", method="computation")
    store.add_measurements(df, project="b", property="density", unit="kg/m^3")
    assert len(store.measurements(project="a")) == 2
    assert len(store.measurements(project="b", property="band_gap")) == 2
    assert len(store.measurements(method="computation")) == 2
    assert len(store.measurements(method=["experiment", "computation"], property="band_gap")) == 4
    dens = store.measurements(property="density")
    assert dens["value"].tolist() == pytest.approx([1.1e-3, 1.4e-3])  # g/cm^3
    with pytest.raises(IngestError, match="method"):
        store.add_measurements(df, project="a", property="band_gap", unit="eV", method="guess")
    assert len(store.measurements()) == 6


def test_temperatures_convert_with_offsets_and_uncertainties_without(store):
    df = pd.DataFrame(
        {
            "formula": ["Al", "Cu", "Sn", "Ga"],
            "value": [660.32, 1357.77, 449.47, 29.76],
            "uncertainty": [0.5, 0.1, 0.9, None],
            "unit": ["degC", "K", "degF", ""],  # empty: the default unit (degC)
        }
    )
    store.add_measurements(df, project="p", property="melting_point", unit="degC")
    got = store.measurements().set_index("formula")
    assert got.loc["Al", "value"] == pytest.approx(933.47)
    assert got.loc["Al", "uncertainty"] == pytest.approx(0.5)  # a difference: no offset
    assert got.loc["Cu", "value"] == pytest.approx(1357.77)
    assert got.loc["Sn", "value"] == pytest.approx((449.47 - 32) * 5 / 9 + 273.15)
    assert got.loc["Sn", "uncertainty"] == pytest.approx(0.5)
    assert got.loc["Ga", "value"] == pytest.approx(302.91)
    assert got.loc["Ga", "raw_unit"] == "degC"
    assert set(got["unit"]) == {"K"}


def test_energy_per_atom_units(store):
    df = pd.DataFrame(
        {"formula": ["NaCl", "MgO"], "value": [-2120.0, -3.1], "unit": ["meV/atom", "eV/atom"]}
    )
    store.add_measurements(df, project="p", property="formation_energy_per_atom", unit="eV/atom")
    assert store.measurements()["value"].tolist() == pytest.approx([-2.12, -3.1])
    # A total energy is not an energy per atom: refused, not silently taken as equal.
    with pytest.raises(UnitError, match="eV/atom"):
        store.add_measurements(
            df[["formula", "value"]], project="p", property="formation_energy_per_atom", unit="eV"
        )
    bad = df.assign(unit=["meV/atom", "kJ/mol"])  # (-2120 eV/atom would be impossible too)
    with pytest.raises(IngestError) as info:
        store.add_measurements(
            bad, project="p", property="formation_energy_per_atom", unit="eV/atom"
        )
    assert info.value.rows == [(1, "unit", info.value.rows[0][2])]
    assert "kJ/mol" in str(info.value) and "row 1, column 'unit'" in str(info.value)


def test_new_property_is_registered_with_its_unit(store):
    df = pd.DataFrame({"formula": ["C"], "value": [3.5]})
    store.add_measurements(df, project="p", property="thermal_expansion", unit="1/MK")
    assert store.property_unit("thermal_expansion") == "1/MK"
    store.add_measurements(df, project="p", property="thermal_expansion", unit="1/K")
    assert store.measurements()["value"].tolist() == pytest.approx([3.5, 3.5e6])
    with pytest.raises(UnitError, match="not compatible"):
        store.add_measurements(df, project="p", property="thermal_expansion", unit="GPa")
    with pytest.raises(StoreError, match="1/MK"):
        store.add_property("thermal_expansion", "1/K")
    assert set(store.properties()["name"]) >= {"bulk_modulus", "band_gap", "thermal_expansion"}


def test_structures_make_polymorphs_distinct_materials(store):
    from pymatgen.core import Lattice, Structure

    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    cscl = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    df = pd.DataFrame({"formula": ["NaCl", "NaCl", "NaCl"], "value": [8.5, 9.0, 1.0]})
    df["structure"] = [rocksalt, cscl, None]
    store.add_measurements(df, project="p", property="band_gap", unit="eV")
    mats = store.materials().sort_values("id")
    assert len(mats) == 3 and mats["has_structure"].tolist().count(True) == 2
    ids = store.measurements()["material_id"].tolist()
    assert store.structure(ids[0]) == rocksalt
    assert store.structure(ids[2]) is None


# --- CSV ingest ----------------------------------------------------------------------------

BAD_CSV = """
formula,value,unit,notes
Fe2O3,210,GPa,ok
Fe2Xx3,100,GPa,"unknown element, on a quoted
two-line field"
NaCl,abc,GPa,value not a number
MgO,inf,GPa,value not finite
Al2O3,300,eV,unit incompatible
SiO2,,Mpaa,empty value and unknown unit
ZnO,140,GPa,ok
"""


def test_ingest_is_all_or_nothing_and_names_every_bad_cell(store, tmp_path):
    good = _csv(tmp_path / "good.csv", "formula,value\nCu,140\n")
    ingest_csv(store, good, project="p", property="bulk_modulus", unit="GPa")
    before = _counts(store)
    path = _csv(tmp_path / "bad.csv", BAD_CSV)
    with pytest.raises(IngestError) as info:
        ingest_csv(store, path, project="new-project", property="new_property", unit="GPa")
    err = info.value
    assert [(line, col) for line, col, _ in err.rows] == [
        (3, "formula"),
        (5, "value"),
        (6, "value"),
        (7, "unit"),
        (8, "value"),
        (8, "unit"),
    ]
    text = str(err)
    assert text.startswith("5 of 7 rows of ")
    assert f"{path}, line 3, column 'formula': " in text and "'Xx'" in text
    assert f"{path}, line 5, column 'value': value 'abc' is not a number" in text
    assert f"{path}, line 6, column 'value': value 'inf' is not finite" in text
    assert f"{path}, line 7, column 'unit': unit 'eV'" in text
    assert f"{path}, line 8, column 'value': value is empty" in text
    assert f"{path}, line 8, column 'unit': unknown unit 'Mpaa'" in text
    # Nothing was written: not the valid rows, nor the project, nor the new property.
    assert _counts(store) == before
    assert store.property_unit("new_property") is None


def test_ingest_skip_invalid_writes_valid_rows_and_rejects(store, tmp_path):
    path = _csv(tmp_path / "bad.csv", BAD_CSV)
    report = ingest_csv(
        store, path, project="p", property="bulk_modulus", unit="GPa", skip_invalid=True
    )
    assert (report.n_rows, report.n_written, report.n_rejected) == (7, 2, 5)
    assert report.rejects_path == tmp_path / "bad.rejects.csv"
    got = store.measurements()
    assert got["formula"].tolist() == ["Fe2O3", "ZnO"]
    assert [json.loads(c) for c in got["conditions"]] == [{"notes": "ok"}, {"notes": "ok"}]
    rejects = pd.read_csv(report.rejects_path, keep_default_na=False)
    assert rejects.columns.tolist() == [
        "formula",
        "value",
        "unit",
        "notes",
        "line",
        "column",
        "reason",
    ]
    assert rejects["line"].tolist() == [3, 5, 6, 7, 8]
    assert rejects["formula"].tolist() == ["Fe2Xx3", "NaCl", "MgO", "Al2O3", "SiO2"]
    assert rejects["notes"].iloc[0] == "unknown element, on a quoted\ntwo-line field"
    assert rejects["column"].iloc[4] == "value;unit"
    assert "value is empty" in rejects["reason"].iloc[4] and "Mpaa" in rejects["reason"].iloc[4]
    custom = tmp_path / "out" / "rej.csv"
    custom.parent.mkdir()
    ingest_csv(
        store,
        path,
        project="p",
        property="bulk_modulus",
        unit="GPa",
        skip_invalid=True,
        rejects_path=custom,
        allow_duplicate=True,  # the same file again, on purpose
    )
    assert len(pd.read_csv(custom)) == 5


def test_ingest_mapping_units_and_conditions(store, tmp_path):
    path = _csv(
        tmp_path / "lab.csv",
        """
Composition,K (MPa),err,T,furnace,comment
Ti,110000,2000,300,A,
TiO2,210000,,500.5,B,annealed
""",
    )
    report = ingest_csv(
        store,
        path,
        project="p",
        property="bulk_modulus",
        unit="MPa",
        mapping={
            "Composition": "formula",
            "K (MPa)": "value",
            "err": "uncertainty",
            "T": "temperature_K",
            "comment": "-",
        },
    )
    assert report.n_written == 2 and report.unit == "GPa"
    assert "2 of 2 rows of lab.csv" in str(report)
    got = store.measurements()
    assert got["value"].tolist() == pytest.approx([110.0, 210.0])
    assert got["uncertainty"].iloc[0] == pytest.approx(2.0)
    assert math.isnan(got["uncertainty"].iloc[1])
    assert [json.loads(c) for c in got["conditions"]] == [
        {"temperature_K": 300.0, "furnace": "A"},
        {"temperature_K": 500.5, "furnace": "B"},
    ]
    ds = store.datasets()
    assert ds["name"].tolist() == ["lab.csv"] and len(ds["checksum"].iloc[0]) == 64
    assert ds["source"].iloc[0] == str(path.resolve())


def test_ingest_reports_bad_mappings_and_shapes(store, tmp_path):
    path = _csv(tmp_path / "x.csv", "Composition,Eg\nSi,1.1\n")
    with pytest.raises(IngestError, match=r"no 'formula' or 'value' column.*--map"):
        ingest_csv(store, path, project="p", property="band_gap", unit="eV")
    with pytest.raises(IngestError, match="'Nope'"):
        ingest_csv(
            store, path, project="p", property="band_gap", unit="eV", mapping={"Nope": "value"}
        )
    ragged = _csv(tmp_path / "ragged.csv", "formula,value,unit\nSi,1.1,eV\nGe\nC,5.5,eV,extra\n")
    with pytest.raises(IngestError) as info:
        ingest_csv(store, ragged, project="p", property="band_gap", unit="eV")
    assert [(line, col) for line, col, _ in info.value.rows] == [(3, "value"), (4, "#4")]
    empty = _csv(tmp_path / "empty.csv", "")
    with pytest.raises(IngestError, match="empty"):
        ingest_csv(store, empty, project="p", property="band_gap", unit="eV")
    assert _counts(store)["measurements"] == 0


# --- export --------------------------------------------------------------------------------


def test_export_csv_and_parquet_round_trip(store, tmp_path):
    df = pd.DataFrame({"formula": ["Si", "Ge", "C"], "value": [1.1, 0.67, 5.5], "T": [300, 300, 4]})
    store.add_measurements(df, project="semis", property="band_gap", unit="eV")
    store.add_measurements(df, project="other", property="band_gap", unit="eV")
    want = store.measurements(project="semis")
    assert store.export(tmp_path / "a.parquet", project="semis") == 3
    back = pd.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, want, check_dtype=False)
    assert store.export(tmp_path / "a.csv", project="semis", property="band_gap") == 3
    back = pd.read_csv(tmp_path / "a.csv")
    assert back["formula"].tolist() == ["Si", "Ge", "C"]
    assert [json.loads(c)["T"] for c in back["conditions"]] == [300, 300, 4]
    with pytest.raises(StoreError, match="xlsx"):
        store.export(tmp_path / "a.xlsx")


# --- schema versions -----------------------------------------------------------------------


def test_store_written_by_newer_matforge_is_refused(store_url):
    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="9999_from_the_future.*newer"):
        Store(store_url)


def test_older_store_is_upgraded_on_open(store_url):
    from alembic import command

    from matforge.store.database import _alembic_config, head_revision

    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "base")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
    engine.dispose()
    with Store(store_url) as store:
        assert store.property_unit("bulk_modulus") == "GPa"
        with store.engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                == head_revision()
            )


def test_migrations_create_exactly_the_declared_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from matforge.store.schema import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def _insert_0003_campaign(conn, name: str, now) -> int:
    """A campaign with a batch, a suggestion and two observations, as 0003 stored them."""
    from matforge.store import campaigns as t

    cid = conn.execute(
        sa.insert(t.campaigns).values(
            name=name, config={"space": {"kind": "x"}}, created_at=now, created_by="lab"
        )
    ).inserted_primary_key[0]
    bid = conn.execute(
        sa.insert(t.campaign_batches).values(
            campaign_id=cid, number=1, strategy="top", created_at=now
        )
    ).inserted_primary_key[0]
    sid = conn.execute(
        sa.insert(t.campaign_suggestions).values(
            campaign_id=cid,
            batch_id=bid,
            position=0,
            key="GaN",
            design={"formula": "GaN"},
            status="observed",
            created_at=now,
        )  # fmt: skip
    ).inserted_primary_key[0]
    for suggestion in (sid, None):
        conn.execute(
            sa.insert(t.campaign_observations).values(
                campaign_id=cid,
                suggestion_id=suggestion,
                key="GaN",
                design={"formula": "GaN"},
                values={"band_gap": 3.4},
                source="observe",
                created_at=now,
                created_by="lab",
            )  # fmt: skip
        )
    return cid


def test_upgrade_from_0003_gives_server_campaigns_their_project(store_url):
    """0004: ``p<id>:<name>`` campaigns of server projects get ``project_id`` and their name
    back, with every row that refers to them; names become unique per project."""
    from datetime import UTC, datetime

    from alembic import command

    from matforge.store import accounts
    from matforge.store import campaigns as t
    from matforge.store.database import _alembic_config, write_transaction
    from matforge.store.schema import projects

    now = datetime(2026, 11, 29, tzinfo=UTC)
    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0003")
    with engine.begin() as conn:
        assert "project_id" not in {c["name"] for c in sa.inspect(conn).get_columns("campaigns")}
        uid = conn.execute(
            sa.insert(accounts.users).values(name="alice", created_at=now)
        ).inserted_primary_key[0]
        pids = []
        for name in ("lab-a", "lab-b", "cli-project"):
            pids.append(
                conn.execute(
                    sa.insert(projects).values(name=name, created_at=now)
                ).inserted_primary_key[0]
            )
        for pid in pids[:2]:  # the server manages lab-a and lab-b, not cli-project
            conn.execute(
                sa.insert(accounts.project_access).values(
                    project_id=pid, owner_id=uid, visibility="private", updated_at=now
                )
            )
        a, b, cli = pids
        ids = {
            name: _insert_0003_campaign(conn, name, now)
            for name in (f"p{a}:gaps", f"p{b}:gaps-b", "cli run", f"p{cli}:not-a-server-one",
                         "p999999:no-such-project")
        }  # fmt: skip
    engine.dispose()

    with Store(store_url) as store:  # upgrades to head
        with store.engine.connect() as conn:
            rows = {
                r.id: (r.project_id, r.name)
                for r in conn.execute(
                    sa.select(t.campaigns.c.id, t.campaigns.c.project_id, t.campaigns.c.name)
                )  # fmt: skip
            }
            counts = {
                table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                for table in (t.campaign_batches, t.campaign_suggestions, t.campaign_observations)
            }
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert rows == {
            ids[f"p{a}:gaps"]: (a, "gaps"),
            ids[f"p{b}:gaps-b"]: (b, "gaps-b"),
            ids["cli run"]: (None, "cli run"),
            ids[f"p{cli}:not-a-server-one"]: (None, f"p{cli}:not-a-server-one"),
            ids["p999999:no-such-project"]: (None, "p999999:no-such-project"),
        }
        assert counts == {
            "campaign_batches": 5, "campaign_suggestions": 5, "campaign_observations": 10
        }  # fmt: skip

        def add(name, project_id):
            with write_transaction(store.engine) as conn:
                conn.execute(
                    sa.insert(t.campaigns).values(
                        name=name,
                        project_id=project_id,
                        config={},
                        created_at=now,
                        created_by="lab",
                    )  # fmt: skip
                )

        add("gaps", b)  # the same name in another project
        add("gaps", None)  # and among the campaigns without a project
        for name, project_id in (("gaps", a), ("cli run", None)):
            with pytest.raises(sa.exc.IntegrityError):
                add(name, project_id)

    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # and back: the names carry their project again
        conn.execute(sa.delete(t.campaigns).where(t.campaigns.c.id.not_in(list(ids.values()))))
        command.downgrade(_alembic_config(conn), "0003")
        names = set(conn.execute(sa.text("SELECT name FROM campaigns")).scalars())
    engine.dispose()
    assert names == set(ids)


def test_database_that_is_not_a_store_is_refused(store_url):
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE someone_elses (x INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not a matforge store"):
        Store(store_url)


# --- engines and locations -----------------------------------------------------------------


def test_sqlite_store_uses_wal_and_waits_for_locks(tmp_path):
    with Store(tmp_path / "x.db") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_default_location_is_matforge_db_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MATFORGE_DB", str(tmp_path / "env" / "lab.db"))
    with Store() as store:
        assert store.url == f"sqlite:///{tmp_path / 'env' / 'lab.db'}"
    assert (tmp_path / "env" / "lab.db").exists()
    monkeypatch.setenv("MATFORGE_DB", f"sqlite:///{tmp_path / 'url.db'}")
    Store().close()
    assert (tmp_path / "url.db").exists()
    monkeypatch.delenv("MATFORGE_DB")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    Store().close()
    assert (tmp_path / "home" / ".matforge" / "matforge.db").exists()


def test_element_filter_uses_the_indexes_on_sqlite(tmp_path):
    with Store(tmp_path / "plan.db") as store:
        df = pd.DataFrame({"formula": ["Fe2O3", "NiO"], "value": [2.0, 3.7]})
        store.add_measurements(df, project="p", property="band_gap", unit="eV")
        seen = []
        sa.event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
        assert store.measurements(elements=["Fe", "O"])["formula"].tolist() == ["Fe2O3"]
        sql, params = next((q, p) for q, p in seen if "LIKE" in q)
        with store.engine.connect() as conn:
            plan = " ".join(
                r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
    assert "ix_materials_elements" in plan and "ix_measurements_material_id" in plan, plan


def test_unreachable_server_and_unknown_backend_are_store_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot open"):
        Store("postgresql://nobody:secret@127.0.0.1:9/nothing")
    with pytest.raises(StoreError, match="SQLite file or a PostgreSQL"):
        Store("mysql://x@localhost/db")
    with Store(":memory:") as store:
        store.add_measurements(
            pd.DataFrame({"formula": ["Si"], "value": [1.1]}),
            project="p",
            property="band_gap",
            unit="eV",
        )
        assert len(store.measurements()) == 1


# --- unit conversion invariants ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    value=st.floats(-1e6, 1e6),
    delta=st.floats(0, 1e3),
    unit=st.sampled_from(["degC", "degF", "K", "degR"]),
)
def test_uncertainty_is_converted_as_a_difference(value, delta, unit):
    # For every affine unit: converting a difference equals the difference of conversions.
    hi = to_canonical(np.array([value + delta]), unit, "K")[0]
    lo = to_canonical(np.array([value]), unit, "K")[0]
    got = delta_to_canonical(np.array([delta]), unit, "K")[0]
    assert got == pytest.approx(hi - lo, rel=1e-9, abs=1e-6)
    assert got >= 0


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.booleans(), st.text(alphabet='ab ,"\n', max_size=6)), min_size=1, max_size=10
    )
)
def test_reported_line_is_where_the_row_starts_in_the_file(rows, tmp_path_factory):
    # Quoted fields may span lines; an error must still point at the line an editor shows.
    assume(any(bad for bad, _ in rows))
    folder = tmp_path_factory.getbasetemp()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["formula", "value", "note"])
    expected = []
    for bad, note in rows:
        if bad:
            expected.append(buffer.getvalue().count("\n") + 1)
        writer.writerow(["Si", "oops" if bad else "1.0", note])
    path = folder / "lines.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    with Store(folder / "lines.db") as store, pytest.raises(IngestError) as info:
        ingest_csv(store, path, project="p", property="band_gap", unit="eV")
    assert [line for line, _, _ in info.value.rows] == expected
    assert all(column == "value" for _, column, _ in info.value.rows)


def test_the_same_file_twice_is_refused_unless_asked(store, tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("formula,value\nFe2O3,2.1\nNiO,3.8\n")
    ingest_csv(store, path, project="p", property="band_gap", unit="eV")
    with pytest.raises(IngestError, match="already ingested into project 'p'.*allow_duplicate"):
        ingest_csv(store, path, project="p", property="band_gap", unit="eV")
    assert len(store.measurements(project="p")) == 2
    # another project is another collection; and a deliberate re-ingest is allowed
    ingest_csv(store, path, project="q", property="band_gap", unit="eV")
    ingest_csv(store, path, project="p", property="band_gap", unit="eV", allow_duplicate=True)
    assert len(store.measurements(project="p")) == 4


def test_a_property_spelled_like_a_known_one_is_refused_with_its_name(store, tmp_path):
    """``bandgap`` next to ``band_gap`` would silently become a second property; it is an error
    that names the known one, unless the caller says it is new."""
    df = pd.DataFrame({"formula": ["GaAs", "ZnO"], "value": [1.42, 3.3]})
    store.add_measurements(df, project="p", property="band_gap", unit="eV")
    for spelling in ("bandgap", "Band Gap", "band-gap", "BAND_GAP"):
        with pytest.raises(IngestError, match="did you mean 'band_gap'"):
            store.add_measurements(df, project="p", property=spelling, unit="eV")
    assert store.similar_property("bandgap") == "band_gap"
    assert store.similar_property("band_gap") is None and store.similar_property("gap") is None
    csv_file = tmp_path / "gaps.csv"
    df.to_csv(csv_file, index=False)
    with pytest.raises(IngestError, match="--new-property"):
        ingest_csv(store, csv_file, project="p", property="bandgap", unit="eV")
    report = ingest_csv(
        store, csv_file, project="p", property="bandgap", unit="eV", force_new_property=True
    )
    assert report.new_property and "bandgap" in set(store.properties()["name"])
    # the known spelling itself is not affected
    more = pd.DataFrame({"formula": ["InP"], "value": [1.34]})
    assert store.add_measurements(more, project="p", property="band_gap", unit="eV") == 1


def test_adding_the_same_table_twice_is_refused_like_a_repeated_file(store):
    df = pd.DataFrame({"formula": ["GaAs", "ZnO"], "value": [1.42, 3.3]})
    assert store.add_measurements(df, project="p", property="band_gap", unit="eV") == 2
    with pytest.raises(IngestError, match="already ingested into project 'p'.*allow_duplicate"):
        store.add_measurements(df.copy(), project="p", property="band_gap", unit="eV")
    n = len(store.measurements(project="p"))
    assert n == 2
    # another project, property, unit or table is another write
    assert store.add_measurements(df, project="q", property="band_gap", unit="eV") == 2
    assert store.add_measurements(df, project="p", property="band_gap", unit="meV") == 2
    assert store.add_measurements(df.iloc[:1], project="p", property="band_gap", unit="eV") == 1
    assert (
        store.add_measurements(
            df, project="p", property="band_gap", unit="eV", allow_duplicate=True
        )
        == 2
    )


def test_ingest_cli_says_did_you_mean(tmp_path):
    from typer.testing import CliRunner

    from matforge.cli.main import app

    runner = CliRunner()
    db = str(tmp_path / "lab.db")
    f = tmp_path / "gaps.csv"
    f.write_text("formula,value\nGaAs,1.42\nZnO,3.3\n")
    args = ["ingest", str(f), "-p", "lab", "--unit", "eV", "--db", db]
    assert runner.invoke(app, [*args, "--property", "band_gap"]).exit_code == 0
    g = tmp_path / "gaps2.csv"
    g.write_text("formula,value\nInP,1.34\n")
    args[1] = str(g)
    res = runner.invoke(app, [*args, "--property", "bandgap"])
    assert isinstance(res.exception, IngestError) and "did you mean 'band_gap'" in str(
        res.exception
    )
    assert runner.invoke(app, [*args, "--property", "bandgap", "--new-property"]).exit_code == 0


# --- physical ranges -----------------------------------------------------------------------


def test_physically_impossible_values_are_refused_unless_allowed(store):
    moduli = pd.DataFrame({"formula": ["Fe", "Ni", "C", "W"], "value": [-5.0, 0.0, 1e30, 310.0]})
    with pytest.raises(IngestError) as info:
        store.add_measurements(moduli, project="p", property="bulk_modulus", unit="GPa")
    text = str(info.value)
    assert "3 of 4 rows of the DataFrame are invalid; nothing was written" in text
    assert [r[:2] for r in info.value.rows] == [(0, "value"), (1, "value"), (2, "value")]
    assert "row 0, column 'value': value -5 GPa is physically impossible for bulk_modulus" in text
    assert "row 1, column 'value': value 0 GPa" in text and "> 0 GPa (non_positive_modulus)" in text
    assert "value 1e+30 GPa" in text and "<= 500 GPa (bulk_modulus_above_diamond)" in text
    assert "diamond, the least compressible known material" in text  # the rule, once
    assert "allow_unphysical=True" in text and "--allow-unphysical" in text
    assert _counts(store)["measurements"] == 0

    # a plausible modulus is stored; one given in another unit is checked in GPa
    assert store.add_measurements(moduli[3:], project="p", property="bulk_modulus", unit="GPa") == 1
    in_pa = pd.DataFrame({"formula": ["Os"], "value": [6e11], "unit": ["Pa"]})
    with pytest.raises(IngestError, match=r"value 6e\+11 Pa \(= 600 GPa\) is physically"):
        store.add_measurements(in_pa, project="p", property="bulk_modulus", unit="GPa")

    # the override stores them, each marked with the code of the range it breaks
    assert (
        store.add_measurements(
            moduli, project="p", property="bulk_modulus", unit="GPa", allow_unphysical=True
        )
        == 4
    )
    got = store.measurements(project="p").iloc[1:]
    assert got["flag"].tolist() == [
        "non_positive_modulus",
        "non_positive_modulus",
        "bulk_modulus_above_diamond",
        None,
    ]
    assert got["value"].tolist() == [-5.0, 0.0, 1e30, 310.0]


def test_a_negative_band_gap_is_refused_and_an_unknown_property_is_unchecked(store):
    df = pd.DataFrame({"formula": ["Si"], "value": [-1.0]})
    with pytest.raises(IngestError, match=r"band_gap, which must be >= 0 eV \(negative_band_gap\)"):
        store.add_measurements(df, project="p", property="band_gap", unit="eV")
    # a lab's own property has no range; nor has a known name registered in another dimension
    assert store.add_measurements(df, project="p", property="my_shift", unit="eV") == 1
    store.add_property("e_above_hull", "eV")  # per formula unit, not the table's eV/atom
    assert store.add_measurements(df, project="p", property="e_above_hull", unit="eV") == 1
    # a temperature in degC is converted, with its offset, to the table's K before the check
    theta = pd.DataFrame({"formula": ["C", "Pb"], "value": [1950.0, -300.0]})
    with pytest.raises(IngestError, match=r"row 1.*value -300 degC \(= -26\.85 K\)") as info:
        store.add_measurements(theta, project="p", property="debye_temperature", unit="degC")
    assert [r[0] for r in info.value.rows] == [1]  # 1950 degC = 2223 K is diamond's


def test_ingest_names_the_line_of_an_impossible_value_and_can_store_it_flagged(store, tmp_path):
    f = _csv(tmp_path / "gaps.csv", "formula,value\nGaAs,1.42\nSi,-1\nZnO,3.3\n")
    with pytest.raises(IngestError, match=r"gaps.csv, line 3, column 'value': value -1 eV"):
        ingest_csv(store, f, project="p", property="band_gap", unit="eV")
    report = ingest_csv(store, f, project="p", property="band_gap", unit="eV", skip_invalid=True)
    assert report.n_written == 2 and report.n_rejected == 1
    rejects = pd.read_csv(tmp_path / "gaps.rejects.csv")
    assert rejects["line"].tolist() == [3] and "negative_band_gap" in rejects["reason"][0]
    report = ingest_csv(
        store, f, project="q", property="band_gap", unit="eV", allow_unphysical=True
    )
    assert report.n_written == 3 and report.n_flagged == 1
    assert "1 outside the physical range of band_gap" in str(report)
    assert store.measurements(project="q")["flag"].tolist() == [None, "negative_band_gap", None]


# --- the formula as ingested ---------------------------------------------------------------


def test_each_measurement_keeps_its_formula_as_ingested_and_exports_it(store, tmp_path):
    df = pd.DataFrame({"formula": ["Fe2O3", "O3Fe2", "Fe₂O₃", " NaCl"], "value": [2.1, 2.2, 2, 8]})
    store.add_measurements(df, project="p", property="band_gap", unit="eV")
    got = store.measurements()
    assert got["formula"].tolist() == ["Fe2O3", "Fe2O3", "Fe2O3", "NaCl"]  # one material
    assert got["formula_as_ingested"].tolist() == ["Fe2O3", "O3Fe2", "Fe₂O₃", " NaCl"]
    f = _csv(tmp_path / "more.csv", "formula,value\nCl1Na1,8.5\n")
    ingest_csv(store, f, project="p", property="band_gap", unit="eV")
    for name in ("all.csv", "all.parquet"):
        assert store.export(tmp_path / name) == 5
        back = (pd.read_csv if name.endswith(".csv") else pd.read_parquet)(tmp_path / name)
        columns = list(back.columns)
        assert columns[columns.index("formula") + 1] == "formula_as_ingested"
        assert back["formula_as_ingested"].tolist()[-2:] == [" NaCl", "Cl1Na1"]


def test_rows_stored_before_revision_0005_export_an_empty_formula_as_ingested(store_url, tmp_path):
    from alembic import command

    from matforge.store.database import _alembic_config

    with Store(store_url) as store:
        store.add_measurements(
            pd.DataFrame({"formula": ["O3Fe2"], "value": [2.1]}),
            project="p",
            property="band_gap",
            unit="eV",
        )
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0004")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("measurements")}
    engine.dispose()
    assert "formula_as_ingested" not in columns and "flag" not in columns
    with Store(store_url) as store:  # upgrades to head
        store.add_measurements(
            pd.DataFrame({"formula": ["Fe2O3"], "value": [2.2]}),
            project="p",
            property="band_gap",
            unit="eV",
        )
        assert store.export(tmp_path / "out.csv") == 2
    back = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert back["formula"].tolist() == ["Fe2O3", "Fe2O3"]
    assert back["formula_as_ingested"].tolist() == ["", "Fe2O3"]
    assert back["flag"].tolist() == ["", ""]


def test_unit_registry_works_without_a_writable_cache_folder(monkeypatch):
    import pint

    from matforge.store import units

    real = pint.UnitRegistry

    def no_cache(*args, cache_folder=None, **kwargs):
        if cache_folder is not None:
            raise PermissionError("read-only home")
        return real(*args, **kwargs)

    monkeypatch.setattr(pint, "UnitRegistry", no_cache)
    units.registry.cache_clear()
    units._parse.cache_clear()
    try:
        assert units.to_canonical([1000.0], "meV/atom", "eV/atom")[0] == pytest.approx(1.0)
    finally:
        units.registry.cache_clear()
        units._parse.cache_clear()


# --- bad data at the boundary (issue #18) --------------------------------------------------


def _wide_csv(path: Path, n_columns: int, body: bytes = b"") -> Path:
    names = ["formula", "value", *(f"c{j}" for j in range(n_columns - 2))]
    path.write_bytes(",".join(names).encode() + b"\n" + body)
    return path


def test_a_table_wider_than_max_columns_is_refused_from_its_header(store, tmp_path):
    from matforge.store.validation import MAX_COLUMNS, TooManyColumns

    assert MAX_COLUMNS == 1000
    before = _counts(store)
    # the body is no CSV at all: only the header line is read before the refusal
    path = _wide_csv(tmp_path / "wide.csv", 5000, b"\xff\xfe\x00 not, a, table\n" * 1000)
    with pytest.raises(
        TooManyColumns, match=r"line 1: the header has 5,000 columns; at most 1,000"
    ):
        ingest_csv(store, path, project="p", property="band_gap", unit="eV")
    path = _wide_csv(tmp_path / "eleven.csv", 11, b"Fe2O3,2.1" + b",300" * 9 + b"\n")
    with pytest.raises(TooManyColumns, match="11 columns; at most 10 are allowed"):
        ingest_csv(store, path, project="p", property="band_gap", unit="eV", max_columns=10)
    assert _counts(store) == before
    report = ingest_csv(store, path, project="p", property="band_gap", unit="eV", max_columns=11)
    assert report.n_written == 1
    wide = pd.DataFrame({f"c{j}": [1] for j in range(1001)} | {"formula": ["Fe"], "value": [1.0]})
    with pytest.raises(TooManyColumns, match="the DataFrame has 1,003 columns; at most 1,000"):
        store.add_measurements(wide, project="p", property="band_gap", unit="eV")
    assert (
        store.add_measurements(wide, project="p", property="band_gap", unit="eV", max_columns=None)
        == 1
    )


@pytest.mark.parametrize(
    "header",
    [
        "formula,value,T",
        '"formula","value","T (K), nominal"',
        '"a ""quoted"" name",value,"two\nlines",x',
        '"formula";"value";"a;b"',
        "formula,value\r",
        "formula,value,",
        "only",
    ],
)
def test_header_width_counts_fields_as_the_csv_reader_does(tmp_path, header):
    from matforge.store.ingest import header_width

    sep = ";" if ";" in header else ","
    path = tmp_path / "h.csv"
    path.write_text(header + "\nFe,1,2,3,4,5,6\n", encoding="utf-8", newline="")
    expected = len(next(csv.reader(io.StringIO(header + "\n", newline=""), delimiter=sep)))
    assert header_width(path, sep) == expected


def _condition_values_by_column(col: pd.Series) -> list:
    """The reading of one condition column before issue #18 (one column at a time): the
    reference that :func:`condition_values` must agree with."""
    from matforge.store.validation import _INTEGER, _all_text, _blank, _json_value

    if col.dtype.kind in "iub":
        return col.tolist()
    if col.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in col.tolist()]
    blank = _blank(col)
    present = ~blank
    if _all_text(col):
        text = col.str.strip()
        nums = pd.to_numeric(text.where(present), errors="coerce")
        if present.any() and nums[present].notna().all():
            integral = bool(text[present].str.fullmatch(_INTEGER.pattern).all())
            cast = int if integral else float
            return [None if b else cast(v) for v, b in zip(nums.tolist(), blank, strict=True)]
        return [None if b else t for t, b in zip(text.tolist(), blank, strict=True)]
    return [None if b else _json_value(x) for x, b in zip(col.tolist(), blank, strict=True)]


_CELLS = st.one_of(
    st.sampled_from(["", " ", "300", " 77 ", "-4", "+5", "0.5", "1e3", "abc", "N/A", "1_000"]),
    st.none(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_CELLS, min_size=3, max_size=3), min_size=1, max_size=6), st.data())
def test_condition_values_read_all_columns_at_once_as_one_at_a_time(rows, data):
    from matforge.store.validation import condition_values

    table = pd.DataFrame(rows, columns=["a", "b", "c"], dtype=object)
    # some columns as a CSV gives them (all text), some as their own dtype
    for name in ("a", "b", "c"):
        kind = data.draw(st.sampled_from(["object", "text", "infer"]))
        if kind == "text":
            table[name] = ["" if x is None else str(x) for x in table[name]]
        elif kind == "infer":
            table[name] = table[name].infer_objects()
    got = condition_values(table)
    assert got.shape == table.shape
    for j, name in enumerate(table.columns):
        expected = _condition_values_by_column(table[name])
        assert [type(x) for x in got[:, j]] == [type(x) for x in expected], name
        assert [
            x if not isinstance(x, float) or not math.isnan(x) else "nan" for x in got[:, j]
        ] == [x if not isinstance(x, float) or not math.isnan(x) else "nan" for x in expected]


def test_validation_cost_does_not_grow_with_the_number_of_condition_columns():
    """Per-column pandas work (about 1 ms a column) made a 1,000,000-column upload take an
    hour (issue #18). A timing ratio, not an absolute time: 1,000 columns of 5 rows must
    validate within a few times 10 columns of 500 rows, the same number of cells (it took
    about 60 times as long)."""
    import time

    from matforge.store.validation import validate_rows

    def seconds(k: int, n: int) -> float:
        table = pd.DataFrame(
            {"formula": ["Fe2O3"] * n, "value": ["1.5"] * n}
            | {f"c{j}": [str(j)] * n for j in range(k)},
            dtype=object,
        )
        conditions = {f"c{j}": f"c{j}" for j in range(k)}
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            valid, errors = validate_rows(
                table,
                {"formula": "formula", "value": "value"},
                conditions=conditions,
                property="band_gap",
                canonical_unit="eV",
                default_unit="eV",
                lines=np.arange(2, n + 2),
            )
            best = min(best, time.perf_counter() - start)
        assert not errors and valid.conditions[-1][f"c{k - 1}"] == k - 1
        return best

    seconds(1, 1)  # warm up: pint, the formula parser
    assert seconds(1000, 5) < 4 * seconds(10, 500)


@pytest.mark.parametrize("formula", ["Zn1e308O", "Zn2O1e307", "Fe1e-320O", "Fe inf"])
def test_absurd_formulas_are_refused_by_line_at_ingest(store, tmp_path, formula):
    path = _csv(tmp_path / "d.csv", f"formula,value\nFe2O3,2.1\n{formula},1.0\nZnO,3.3\n")
    before = _counts(store)
    with pytest.raises(IngestError, match=r"d.csv, line 3, column 'formula'") as info:
        ingest_csv(store, path, project="p", property="band_gap", unit="eV")
    assert info.value.rows[0][:2] == (3, "formula") and formula in info.value.rows[0][2]
    assert _counts(store) == before
    report = ingest_csv(store, path, project="p", property="band_gap", unit="eV", skip_invalid=True)
    assert (report.n_written, report.n_rejected) == (2, 1)


def test_compositions_with_absurd_amounts_are_refused_as_formulas(store):
    from pymatgen.core import Composition

    df = pd.DataFrame({"formula": [Composition("Fe2O3"), Composition({"Zn": 1e308, "O": 1})]})
    df["value"] = [2.1, 3.3]
    with pytest.raises(IngestError, match=r"row 1, column 'formula': Composition: amount 1e\+308"):
        store.add_measurements(df, project="p", property="band_gap", unit="eV")


def test_booleans_are_not_numbers(store):
    for values in ([True, 2.0], [np.True_, 2.0], [True, False]):
        df = pd.DataFrame({"formula": ["Fe2O3", "ZnO"], "value": pd.Series(values, dtype=object)})
        with pytest.raises(IngestError, match=r"row 0, column 'value': value True is a boolean"):
            store.add_measurements(df, project="p", property="band_gap", unit="eV")
    df = pd.DataFrame({"formula": ["Fe2O3"], "value": [2.0], "uncertainty": [np.False_]})
    with pytest.raises(IngestError, match="uncertainty False is a boolean, not a number"):
        store.add_measurements(df.astype(object), project="p", property="band_gap", unit="eV")
