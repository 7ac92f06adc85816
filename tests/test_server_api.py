"""The REST API of `matforge serve`: accounts, projects and roles, uploads, queries, export,
limits, background jobs and models — on SQLite and (with MATFORGE_TEST_PG_URL) PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import BAND_GAPS, user_headers, wait_for_job  # noqa: E402

API = "/api/v1"
GAPS = BAND_GAPS


def settings(tmp_path, **kw) -> ServerSettings:
    base = dict(
        model_root=tmp_path / "models",
        max_upload_bytes=4_000,
        max_upload_rows=50,
        max_body_bytes=200_000,
        job_poll_s=0.05,
        default_page_size=100,
    )
    return ServerSettings(**{**base, **kw})


@pytest.fixture
def server(store_url, tmp_path):
    app = create_app(store_url, settings(tmp_path))
    engine = app.state.matforge.engine
    users = {name: user_headers(engine, name) for name in ("alice", "bob", "carol")}
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, app=app, engine=engine, **users)


def new_project(s, headers, name="oxides", visibility="private") -> str:
    r = s.client.post(
        f"{API}/projects", json={"name": name, "visibility": visibility}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def add_rows(s, headers, pid, rows, property="band_gap", unit="eV", **kw):
    body = {"property": property, "unit": unit, "rows": rows, **kw}
    return s.client.post(f"{API}/projects/{pid}/measurements", json=body, headers=headers)


def gap_rows(pairs=GAPS):
    return [{"formula": f, "value": v} for f, v in pairs]


# --- authentication ------------------------------------------------------------------------


def test_bad_or_missing_tokens_are_refused_with_401(server):
    from matforge.server.auth import revoke_tokens

    c = server.client
    for headers in (
        {},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer mf_not-a-real-token"},
        {"Authorization": "Bearer " + "x" * 5000},
    ):
        r = c.get(f"{API}/projects", headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert c.get(f"{API}/me", headers=server.alice).json() == {"name": "alice"}
    revoke_tokens(server.engine, "alice")
    assert c.get(f"{API}/me", headers=server.alice).status_code == 401
    # OPTIMADE is open to anonymous callers, but a token that is sent must be valid
    assert c.get("/optimade/v1/structures").status_code == 200
    assert c.get("/optimade/v1/structures", headers=server.alice).status_code == 401


def test_tokens_are_stored_only_as_hashes(server):
    from matforge.server.auth import new_token, token_hash
    from matforge.store import accounts

    token = new_token(server.engine, "bob")
    with server.engine.connect() as conn:
        hashes = conn.execute(sa.select(accounts.api_tokens.c.token_hash)).scalars().all()
        dump = " ".join(str(row) for row in conn.execute(sa.select(accounts.api_tokens)).all())
    assert token_hash(token) in hashes
    assert token not in dump and len(token) >= 43  # 32 random bytes, base64


# --- projects, members, roles --------------------------------------------------------------


def test_projects_have_owners_members_roles_and_visibility(server):
    c, A, B, C = server.client, server.alice, server.bob, server.carol
    pid = new_project(server, A, "oxides")
    assert c.post(f"{API}/projects", json={"name": "oxides"}, headers=A).status_code == 409
    assert (
        c.post(f"{API}/projects", json={"name": "oxides"}, headers=B).status_code == 201
    )  # own namespace
    assert c.post(f"{API}/projects", json={"name": "a/b"}, headers=A).status_code == 422
    assert add_rows(server, A, pid, gap_rows()).status_code == 201

    # private: bob sees nothing, and "not yours" looks exactly like "does not exist"
    missing = c.get(f"{API}/projects/prj_0000000000000000", headers=B)
    hidden = c.get(f"{API}/projects/{pid}", headers=B)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert [p["name"] for p in c.get(f"{API}/projects", headers=B).json()] == ["oxides"]  # his own

    # shared with bob as viewer: he reads, cannot write (403 now that he can see it)
    r = c.put(f"{API}/projects/{pid}/members/bob", json={"role": "viewer"}, headers=A)
    assert r.status_code == 200 and r.json() == {"user": "bob", "role": "viewer"}
    project = c.get(f"{API}/projects/{pid}", headers=B).json()
    assert project["visibility"] == "shared" and project["role"] == "viewer"
    assert project["n_measurements"] == len(GAPS) and project["owner"] == "alice"
    assert add_rows(server, B, pid, gap_rows()[:1]).status_code == 403
    assert (
        c.put(f"{API}/projects/{pid}/members/carol", json={"role": "viewer"}, headers=B).status_code
        == 403
    )
    assert c.get(f"{API}/projects/{pid}", headers=C).status_code == 404

    # editor: may add measurements, each recorded as his
    c.put(f"{API}/projects/{pid}/members/bob", json={"role": "editor"}, headers=A)
    assert add_rows(server, B, pid, [{"formula": "CoO", "value": 2.5}]).status_code == 201
    mine = c.get(f"{API}/measurements", params={"created_by": "bob"}, headers=A).json()["items"]
    assert [(m["formula"], m["created_by"]) for m in mine] == [("CoO", "bob")]
    members = c.get(f"{API}/projects/{pid}/members", headers=B).json()
    assert members == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "editor"}]

    # back to private: members keep their row but lose access
    r = c.patch(f"{API}/projects/{pid}", json={"visibility": "private"}, headers=A)
    assert r.json()["visibility"] == "private"
    assert c.get(f"{API}/projects/{pid}", headers=B).status_code == 404
    # public: everyone reads; bob's editor role applies again
    c.patch(
        f"{API}/projects/{pid}",
        json={"visibility": "public", "description": "band gaps"},
        headers=A,
    )
    assert c.get(f"{API}/projects/{pid}", headers=C).json()["role"] == "viewer"
    assert c.get(f"{API}/projects/{pid}", headers=B).json()["role"] == "editor"

    # owners: the last one cannot leave or be demoted; an unknown user is 404
    assert c.delete(f"{API}/projects/{pid}/members/alice", headers=A).status_code == 409
    assert (
        c.put(f"{API}/projects/{pid}/members/alice", json={"role": "viewer"}, headers=A).status_code
        == 409
    )
    assert (
        c.put(
            f"{API}/projects/{pid}/members/nobody", json={"role": "viewer"}, headers=A
        ).status_code
        == 404
    )
    assert c.delete(f"{API}/projects/{pid}/members/bob", headers=A).status_code == 204
    assert c.get(f"{API}/projects/{pid}", headers=B).json()["role"] == "viewer"  # public again


# --- uploads -------------------------------------------------------------------------------


def upload(s, headers, pid, text: str, name="gaps.csv", **form):
    data = {"property": "band_gap", "unit": "eV", **form}
    return s.client.post(
        f"{API}/projects/{pid}/uploads",
        files={"file": (name, text.encode(), "text/csv")},
        data=data,
        headers=headers,
    )


BAD_CSV = "formula,value,temperature_K\nFe2O3,2.0,300\nNaCl,abc,300\nQz2,1.0,\nZnO,3.3,295\n"


def test_csv_upload_is_all_or_nothing_with_line_and_column_of_each_error(server):
    pid = new_project(server, server.alice)
    r = upload(server, server.alice, pid, BAD_CSV)
    assert r.status_code == 400
    body = r.json()
    assert {(e["line"], e["column"]) for e in body["errors"]} == {(3, "value"), (4, "formula")}
    assert "gaps.csv, line 3, column 'value'" in body["detail"]
    assert "/tmp" not in body["detail"] and "matforge-upload" not in body["detail"]
    listed = server.client.get(
        f"{API}/measurements", params={"project_id": pid}, headers=server.alice
    )
    assert listed.json()["items"] == []  # nothing was written


def test_csv_upload_skip_invalid_writes_the_valid_rows_and_lists_the_rest(server):
    pid = new_project(server, server.alice)
    r = upload(server, server.alice, pid, BAD_CSV, skip_invalid="true", source="doi:10.1000/abc")
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["n_rows"], out["n_written"], out["n_rejected"]) == (4, 2, 2)
    assert [(e["line"], e["column"]) for e in out["rejected"]] == [(3, "value"), (4, "formula")]
    rows = server.client.get(
        f"{API}/measurements", params={"project_id": pid}, headers=server.alice
    ).json()["items"]
    assert [(m["formula"], m["value"], m["conditions"]) for m in rows] == [
        ("Fe2O3", 2.0, {"temperature_K": 300}),
        ("ZnO", 3.3, {"temperature_K": 295}),
    ]
    assert {m["source"] for m in rows} == {"doi:10.1000/abc"}
    datasets = server.client.get(f"{API}/projects/{pid}/datasets", headers=server.alice).json()
    assert [(d["name"], d["n_rows"], d["created_by"]) for d in datasets] == [
        ("gaps.csv", 2, "alice")
    ]
    assert datasets[0]["id"] == out["dataset_id"]


def test_csv_upload_with_mapping_and_units(server):
    pid = new_project(server, server.alice)
    text = "Composition,K (MPa),Unit\nFe,170000,MPa\nCu,140,GPa\n"
    r = upload(
        server,
        server.alice,
        pid,
        text,
        property="bulk_modulus",
        unit="MPa",
        mapping='{"Composition": "formula", "K (MPa)": "value", "Unit": "unit"}',
    )
    assert r.status_code == 201, r.text
    rows = server.client.get(
        f"{API}/measurements", params={"property": "bulk_modulus"}, headers=server.alice
    ).json()["items"]
    assert [(m["formula"], m["value"], m["unit"], m["raw_unit"]) for m in rows] == [
        ("Fe", 170.0, "GPa", "MPa"),
        ("Cu", 140.0, "GPa", "GPa"),
    ]
    assert upload(server, server.alice, pid, text, mapping="{not json").status_code == 400
    assert upload(server, server.alice, pid, text, mapping='{"Nope": "formula"}').status_code == 400


def test_a_repeated_json_batch_or_csv_file_is_a_409_unless_allowed(server):
    pid = new_project(server, server.alice)
    first = add_rows(server, server.alice, pid, gap_rows(), source="run 1")
    assert first.status_code == 201, first.text
    again = add_rows(server, server.alice, pid, gap_rows(), source="run 2")
    assert again.status_code == 409
    assert "already ingested into project" in again.json()["detail"]
    assert "allow_duplicate" in again.json()["detail"]
    # another project, property, unit or set of rows is another batch
    assert add_rows(server, server.alice, pid, gap_rows(GAPS[:3])).status_code == 201
    assert add_rows(server, server.alice, pid, gap_rows(), unit="meV").status_code == 201
    r = add_rows(server, server.alice, pid, gap_rows(), allow_duplicate=True)
    assert r.status_code == 201 and r.json()["n_written"] == len(GAPS)
    datasets = server.client.get(f"{API}/projects/{pid}/datasets", headers=server.alice).json()
    assert [d["n_rows"] for d in datasets] == [8, 3, 8, 8]

    text = "formula,value\nGaN,3.4\n"
    assert upload(server, server.alice, pid, text).status_code == 201
    r = upload(server, server.alice, pid, text)
    assert r.status_code == 409 and "gaps.csv: the same file" in r.json()["detail"]
    assert "/tmp" not in r.json()["detail"]
    assert upload(server, server.alice, pid, text, allow_duplicate="true").status_code == 201


def test_uploads_refuse_physically_impossible_values_unless_allowed(server):
    pid = new_project(server, server.alice)
    rows = [{"formula": "Fe", "value": 170}, {"formula": "Ni", "value": -5}]
    r = add_rows(server, server.alice, pid, rows, property="bulk_modulus", unit="GPa")
    assert r.status_code == 400
    assert [(e["line"], e["column"]) for e in r.json()["errors"]] == [(1, "value")]
    assert "non_positive_modulus" in r.json()["errors"][0]["reason"]
    assert "allow_unphysical" in r.json()["detail"]
    r = add_rows(
        server, server.alice, pid, rows, property="bulk_modulus", unit="GPa", allow_unphysical=True
    )
    assert r.status_code == 201 and (r.json()["n_written"], r.json()["n_flagged"]) == (2, 1)

    text = "formula,value\nSi,1.1\nGe,-0.5\n"
    r = upload(server, server.alice, pid, text)
    assert r.status_code == 400 and r.json()["errors"][0]["line"] == 3
    assert "negative_band_gap" in r.json()["errors"][0]["reason"]
    r = upload(server, server.alice, pid, text, allow_unphysical="true")
    assert r.status_code == 201 and (r.json()["n_written"], r.json()["n_flagged"]) == (2, 1)


def test_measurements_and_their_csv_export_keep_the_formula_as_ingested_and_the_flag(server):
    pid = new_project(server, server.alice)
    rows = [{"formula": "O3Fe2", "value": 2.1}, {"formula": "Fe₂O₃", "value": -0.1}]
    assert add_rows(server, server.alice, pid, rows, allow_unphysical=True).status_code == 201
    items = server.client.get(
        f"{API}/measurements", params={"project_id": pid}, headers=server.alice
    ).json()["items"]
    assert [(m["formula"], m["formula_as_ingested"], m["flag"]) for m in items] == [
        ("Fe2O3", "O3Fe2", None),
        ("Fe2O3", "Fe₂O₃", "negative_band_gap"),
    ]
    text = server.client.get(
        f"{API}/measurements.csv", params={"project_id": pid}, headers=server.alice
    ).text
    table = list(csv.DictReader(io.StringIO(text)))
    header = list(table[0])
    assert header[header.index("formula") + 1] == "formula_as_ingested"
    assert [(r["formula_as_ingested"], r["flag"]) for r in table] == [
        ("O3Fe2", ""),
        ("Fe₂O₃", "negative_band_gap"),
    ]


def test_json_batch_names_bad_rows_and_fields(server):
    from pymatgen.core import Lattice, Structure

    pid = new_project(server, server.alice)
    nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    rows = [
        {
            "formula": "NaCl",
            "value": 8500,
            "unit": "meV",
            "structure": nacl,
            "conditions": {"T_K": 300},
        },
        {"formula": "Zz3", "value": 1.0},
        {"formula": "KCl", "value": 1.0, "unit": "GPa"},
        {"formula": "MgO", "value": 7.8, "structure": nacl},
        {"formula": "CaO", "value": 7.0, "structure": {"not": "a structure"}},
        {"formula": "SrO", "value": 5.9, "conditions": {"value": 1}},
    ]
    r = add_rows(server, server.alice, pid, rows)
    assert r.status_code == 400
    bad = {(e["line"], e["column"]) for e in r.json()["errors"]}
    assert bad == {(3, "structure"), (4, "structure"), (5, "conditions.value")}
    r = add_rows(server, server.alice, pid, [rows[0], rows[1], rows[2]])
    assert r.status_code == 400
    assert {(e["line"], e["column"]) for e in r.json()["errors"]} == {(1, "formula"), (2, "unit")}
    nan = '{"property": "band_gap", "unit": "eV", "rows": [{"formula": "Fe", "value": NaN}]}'
    r = server.client.post(
        f"{API}/projects/{pid}/measurements",
        content=nan,
        headers={**server.alice, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["fields"][0]["loc"] == ["body", "rows", 0, "value"]
    r = add_rows(server, server.alice, pid, [rows[0]], method="computation", source="10.1000/x")
    assert r.status_code == 201, r.text
    (m,) = server.client.get(
        f"{API}/measurements", params={"project_id": pid}, headers=server.alice
    ).json()["items"]
    assert (m["value"], m["unit"], m["raw_value"], m["raw_unit"]) == (8.5, "eV", 8500.0, "meV")
    assert (m["method"], m["source"], m["conditions"]) == ("computation", "10.1000/x", {"T_K": 300})
    material = server.client.get(f"{API}/materials/{m['material_id']}", headers=server.alice).json()
    assert material["has_structure"] and material["structure"]["lattice"]["a"] == pytest.approx(
        5.64
    )


# --- queries and export --------------------------------------------------------------------


@pytest.fixture
def filled(server):
    """alice: public "oxides" (band gaps) and private "alloys"; bob: private "nitrides"."""
    A, B = server.alice, server.bob
    oxides = new_project(server, A, "oxides", "public")
    alloys = new_project(server, A, "alloys", "private")
    nitrides = new_project(server, B, "nitrides", "private")
    assert add_rows(server, A, oxides, gap_rows(), source="10.1000/gaps").status_code == 201
    assert (
        add_rows(
            server, A, oxides, gap_rows([("Fe3O4", 0.1), ("FeO", 2.4)]), method="computation"
        ).status_code
        == 201
    )
    alloy_rows = [
        {"formula": f, "value": v} for f, v in [("Fe0.7Ni0.3", 180), ("FeNi3", 190), ("Cu", 140)]
    ]
    assert (
        add_rows(server, A, alloys, alloy_rows, property="bulk_modulus", unit="GPa").status_code
        == 201
    )
    assert (
        add_rows(
            server, B, nitrides, gap_rows([("GaN", 3.4), ("AlN", 6.2), ("FeN", 0.5)])
        ).status_code
        == 201
    )
    server.ids = SimpleNamespace(oxides=oxides, alloys=alloys, nitrides=nitrides)
    return server


def formulas(s, headers, path="measurements", **params):
    r = s.client.get(f"{API}/{path}", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [x["formula"] for x in r.json()["items"]]


def test_measurement_filters(filled):
    s, A, B = filled, filled.alice, filled.bob
    assert formulas(s, A, elements="Fe") == ["Fe2O3", "Fe3O4", "FeO", "Fe0.7Ni0.3", "FeNi3"]
    assert formulas(s, B, elements="Fe") == ["Fe2O3", "Fe3O4", "FeO", "FeN"]  # public + his own
    assert formulas(s, A, elements="Fe-Ni", exact_elements="true") == ["Fe0.7Ni0.3", "FeNi3"]
    assert formulas(s, A, elements="O,Fe", exact_elements="true") == ["Fe2O3", "Fe3O4", "FeO"]
    assert formulas(s, A, property="band_gap", value_min=3.0, value_max=4.0) == [
        "NiO",
        "ZnO",
        "TiO2",
    ]
    assert formulas(s, A, method="computation") == ["Fe3O4", "FeO"]
    assert formulas(s, A, source="10.1000/gaps", elements="Cu") == ["Cu2O"]
    assert formulas(s, A, project_id=s.ids.alloys, formula="Cu") == ["Cu"]
    assert formulas(s, A, formula="Fe2O3") == ["Fe2O3"]
    assert formulas(s, B, created_by="alice", property="bulk_modulus") == []  # private to alice
    for bad in ({"elements": "Fe,Qq"}, {"value_min": 5, "value_max": 1}, {"after": "nonsense"}):
        assert s.client.get(f"{API}/measurements", params=bad, headers=A).status_code == 400
    assert (
        s.client.get(
            f"{API}/measurements", params={"project_id": s.ids.nitrides}, headers=A
        ).status_code
        == 404
    )
    assert (
        s.client.get(f"{API}/measurements", params={"method": "guess"}, headers=A).status_code
        == 422
    )
    typo = s.client.get(
        f"{API}/measurements", params={"element": "Fe"}, headers=A
    )  # not "elements"
    assert typo.status_code == 400 and "element" in typo.json()["detail"]


def test_pages_cover_every_row_once(filled):
    s, A = filled, filled.alice
    everything = formulas(s, A, limit=1000)
    for path in ("measurements", "materials"):
        seen, after = [], None
        while True:
            params = {"limit": 3, **({"after": after} if after else {})}
            page = s.client.get(f"{API}/{path}", params=params, headers=A).json()
            assert len(page["items"]) <= 3
            seen += [x["id"] for x in page["items"]]
            after = page["next"]
            if after is None:
                break
        assert len(seen) == len(set(seen))
        whole = s.client.get(f"{API}/{path}", params={"limit": 1000}, headers=A).json()["items"]
        assert seen == [x["id"] for x in whole]
    assert len(everything) == 13


def test_materials_and_properties_are_those_the_caller_can_read(filled):
    s, A, B = filled, filled.alice, filled.bob
    # (materials are numbered in the order the store inserts them: sorted within a batch)
    assert sorted(formulas(s, B, "materials", elements="N")) == ["AlN", "FeN", "GaN"]
    assert formulas(s, A, "materials", elements="N") == []
    assert sorted(formulas(s, A, "materials", elements="Ni", has_structure="false")) == [
        "Fe0.7Ni0.3",
        "FeNi3",
        "NiO",
    ]
    props_a = {
        p["name"]: p["canonical_unit"] for p in s.client.get(f"{API}/properties", headers=A).json()
    }
    assert props_a["band_gap"] == "eV" and props_a["bulk_modulus"] == "GPa"


def test_export_csv_holds_exactly_the_visible_filtered_rows(filled):
    s, B = filled, filled.bob
    r = s.client.get(f"{API}/measurements.csv", params={"elements": "Fe"}, headers=B)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    listed = s.client.get(f"{API}/measurements", params={"elements": "Fe"}, headers=B).json()[
        "items"
    ]
    assert [row["id"] for row in rows] == [m["id"] for m in listed]
    assert [row["formula"] for row in rows] == ["Fe2O3", "Fe3O4", "FeO", "FeN"]
    assert rows[0]["elements"] == "Fe-O" and float(rows[0]["value"]) == 2.1


# --- limits --------------------------------------------------------------------------------


def test_upload_and_body_limits_answer_413(server):
    pid = new_project(server, server.alice)
    many = "formula,value\n" + "".join(f"Fe{i + 1}O,1.0\n" for i in range(60))  # > 50 rows
    assert upload(server, server.alice, pid, many).status_code == 413
    big = "formula,value,note\n" + "".join(
        f"Fe{i + 1}O,1.0,{'x' * 200}\n" for i in range(30)
    )  # > 4000 bytes
    assert upload(server, server.alice, pid, big).status_code == 413
    rows = [{"formula": "Fe2O3", "value": 1.0}] * 51
    assert add_rows(server, server.alice, pid, rows).status_code == 413
    huge = {
        "property": "band_gap",
        "unit": "eV",
        "rows": [{"formula": "Fe" * 200, "value": 1}] * 500,
    }
    r = server.client.post(f"{API}/projects/{pid}/measurements", json=huge, headers=server.alice)
    assert r.status_code == 413
    assert (
        server.client.get(
            f"{API}/measurements", params={"project_id": pid}, headers=server.alice
        ).json()["items"]
        == []
    )


# --- models and jobs -----------------------------------------------------------------------


def test_model_trains_in_the_background_and_predicts_mean_and_std(filled):
    s, A, B, C = filled, filled.alice, filled.bob, filled.carol
    r = s.client.post(
        f"{API}/models",
        json={"project_id": s.ids.oxides, "property": "band_gap", "n_estimators": 20},
        headers=A,
    )
    assert r.status_code == 202, r.text
    model = r.json()
    assert (
        model["status"] in ("queued", "running") and model["estimator"] == "Magpie + RandomForestUQ"
    )
    job = wait_for_job(s.client, A, model["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["result"]["model_id"] == model["id"]
    model = s.client.get(f"{API}/models/{model['id']}", headers=A).json()
    assert model["status"] == "succeeded" and model["n_train"] == 10 and model["unit"] == "eV"
    assert model["metrics"]["mae"] >= 0

    # anyone who can read the (public) project can predict; a bad formula gets an error
    r = s.client.post(
        f"{API}/models/{model['id']}/predict", json={"formulas": ["Fe2O3", "CoO", "Qq2"]}, headers=C
    )
    assert r.status_code == 200, r.text
    p = r.json()["predictions"]
    assert [x["formula"] for x in p] == ["Fe2O3", "CoO", "Qq2"]
    assert all(x["mean"] is not None and x["std"] > 0 for x in p[:2])
    assert p[2]["mean"] is None and "Qq" in p[2]["error"]
    # each prediction says whether it is inside the model's applicability domain
    threshold = r.json()["domain_threshold"]
    assert threshold > 0
    assert p[0]["in_domain"] is True and 0 <= p[0]["domain_distance"] <= threshold  # trained on
    assert p[2]["in_domain"] is None and p[2]["domain_distance"] is None  # no prediction
    r = s.client.post(
        f"{API}/models/{model['id']}/predict", json={"formulas": ["C6H12O6", "ZnO"]}, headers=C
    )
    far, near = r.json()["predictions"]
    assert far["mean"] is not None and far["in_domain"] is False
    assert far["domain_distance"] > threshold and near["in_domain"] is True
    # the job is alice's alone; models follow their project's visibility
    assert s.client.get(f"{API}/jobs/{job['id']}", headers=B).status_code == 404
    assert [m["id"] for m in s.client.get(f"{API}/models", headers=B).json()] == [model["id"]]
    s.client.patch(f"{API}/projects/{s.ids.oxides}", json={"visibility": "private"}, headers=A)
    assert s.client.get(f"{API}/models", headers=B).json() == []
    assert (
        s.client.post(
            f"{API}/models/{model['id']}/predict", json={"formulas": ["Fe2O3"]}, headers=B
        ).status_code
        == 404
    )


def test_model_of_too_few_measurements_is_refused_with_a_reason(filled):
    s, A = filled, filled.alice
    r = s.client.post(
        f"{API}/models", json={"project_id": s.ids.alloys, "property": "band_gap"}, headers=A
    )
    assert r.status_code == 400 and "at least 5 measurements" in r.json()["detail"]
    r = s.client.post(
        f"{API}/models", json={"project_id": s.ids.nitrides, "property": "band_gap"}, headers=A
    )
    assert r.status_code == 404


def test_a_job_that_fails_records_why_and_progress_is_recorded(store_url, tmp_path):
    import time

    from matforge.errors import MatforgeError
    from matforge.server.auth import add_user
    from matforge.server.jobs import JobKind, JobRunner
    from matforge.store import Store, accounts
    from matforge.store.database import write_transaction

    def steps(ctx):
        ctx.progress(0.5, "half way")
        with Store(store_url) as st, st.engine.connect() as conn:
            seen.append(
                conn.execute(
                    sa.select(accounts.jobs.c.progress, accounts.jobs.c.message).where(
                        accounts.jobs.c.id == ctx.job_id
                    )
                ).one()
            )
        if ctx.params["fail"] == "ours":
            raise MatforgeError("the project has no measurements of 'x'")
        if ctx.params["fail"] == "bug":
            raise ZeroDivisionError("division by zero")
        return {"ok": True}

    seen = []
    with Store(store_url) as store:
        owner = add_user(store.engine, "alice").id
        runner = JobRunner(store.engine, {"steps": JobKind("steps", steps)}, settings(tmp_path))
        with write_transaction(store.engine) as conn:
            ids = [runner.submit(conn, "steps", owner, {"fail": f}, project_ids=()) for f in ("ours", "bug", "no")]
        runner.start()
        try:
            j = accounts.jobs
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with store.engine.connect() as conn:
                    rows = conn.execute(sa.select(j).where(j.c.id.in_(ids)).order_by(j.c.id)).all()
                if all(r.status in ("succeeded", "failed") for r in rows):
                    break
                time.sleep(0.05)
        finally:
            runner.stop()
    assert [(r.status, r.error) for r in rows] == [
        ("failed", "the project has no measurements of 'x'"),
        # an unexpected exception's text may hold paths or SQL: the owner reads its type, the
        # log has the rest (issue #18 section 4; was "ZeroDivisionError: division by zero")
        ("failed", "internal error (ZeroDivisionError); the server log has the details"),
        ("succeeded", None),
    ]
    assert rows[2].result == {"ok": True} and rows[2].progress == 1.0
    assert all(tuple(s) == (0.5, "half way") for s in seen)


def test_jobs_of_a_dead_server_are_requeued_or_failed_on_start(store_url, tmp_path):
    """A restart finds jobs left `running` by a process that is gone: restartable kinds run
    again, the others fail with "server restarted"; jobs of live processes are left alone."""
    import subprocess
    import sys

    from matforge.server import clock
    from matforge.server.auth import add_user
    from matforge.server.jobs import RESTART_ERROR, JobKind, JobRunner
    from matforge.store import Store, accounts

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = __import__("socket").gethostname()
    with Store(store_url) as store:
        owner = add_user(store.engine, "alice").id
        j = accounts.jobs
        with store.engine.begin() as conn:
            for kind, worker in (
                ("again", f"{host}:{dead.stdout.strip()}:old"),  # dead process: re-queued
                ("once", f"{host}:{dead.stdout.strip()}:old"),  # dead, not restartable: failed
                ("again", f"{host}:{os.getpid()}:alive"),  # live process, fresh heartbeat
            ):
                conn.execute(
                    sa.insert(j).values(
                        kind=kind,
                        owner_id=owner,
                        status="running",
                        params={"x": 2},
                        attempts=1,
                        worker=worker,
                        created_at=clock.now(),
                        started_at=clock.now(),
                        heartbeat_at=clock.now(),
                    )
                )
        kinds = {
            "again": JobKind("again", lambda ctx: {"double": ctx.params["x"] * 2}),
            "once": JobKind("once", lambda ctx: {}, restartable=False),
        }
        runner = JobRunner(store.engine, kinds, settings(tmp_path))
        assert runner.recover() == 2
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(j.c.id, j.c.status, j.c.error).order_by(j.c.id)).all()
        assert [(r.status, r.error) for r in rows] == [
            ("queued", None),
            ("failed", RESTART_ERROR),
            ("running", None),
        ]
        runner.start()
        try:
            deadline = __import__("time").monotonic() + 30
            while __import__("time").monotonic() < deadline:
                with store.engine.connect() as conn:
                    first = conn.execute(sa.select(j).where(j.c.id == rows[0].id)).one()
                if first.status == "succeeded":
                    break
                __import__("time").sleep(0.05)
        finally:
            runner.stop()
        assert (first.status, first.result, first.attempts) == ("succeeded", {"double": 4}, 2)


def test_a_training_job_interrupted_by_a_crash_is_run_again_after_restart(tmp_path):
    from matforge.store import accounts

    url = f"sqlite:///{tmp_path / 'store.db'}"
    app = create_app(url, settings(tmp_path))
    A = user_headers(app.state.matforge.engine, "alice")
    c = TestClient(app)  # no lifespan: no workers, the job stays queued
    pid = new_project(SimpleNamespace(client=c), A)
    assert add_rows(SimpleNamespace(client=c), A, pid, gap_rows()).status_code == 201
    model = c.post(
        f"{API}/models",
        json={"project_id": pid, "property": "band_gap", "n_estimators": 10},
        headers=A,
    ).json()
    with app.state.matforge.engine.begin() as conn:  # as if a server had claimed it, then died
        conn.execute(
            sa.update(accounts.jobs).values(
                status="running", worker="elsewhere:1:x", attempts=1, heartbeat_at=None
            )
        )
    app.state.matforge.store.close()
    with TestClient(create_app(url, settings(tmp_path))) as c2:
        job = wait_for_job(c2, A, model["job"]["id"])
        assert job["status"] == "succeeded" and job["attempts"] == 2
        r = c2.post(f"{API}/models/{model['id']}/predict", json={"formulas": ["ZnO"]}, headers=A)
        assert r.status_code == 200 and r.json()["predictions"][0]["mean"] > 0


# --- command line, ids, schema -------------------------------------------------------------


def test_cli_user_add_and_token_new(tmp_path):
    import typer
    from typer.testing import CliRunner

    from matforge.cli.server import register
    from matforge.server.auth import authenticate
    from matforge.store import Store

    app = typer.Typer()
    register(app)
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    assert runner.invoke(app, ["user", "add", "alice", "--db", db]).exit_code == 0
    again = runner.invoke(app, ["user", "add", "alice", "--db", db])
    assert again.exit_code != 0 and "already exists" in str(again.exception or again.output)
    result = runner.invoke(app, ["token", "new", "alice", "--db", db])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    with Store(db) as store:
        assert authenticate(store.engine, token).name == "alice"
    assert runner.invoke(app, ["token", "revoke", "alice", "--db", db]).exit_code == 0
    with Store(db) as store:
        assert authenticate(store.engine, token) is None
    assert runner.invoke(app, ["user", "add", "bad name", "--db", db]).exit_code != 0


def test_public_ids_are_a_keyed_permutation():
    from hypothesis import given
    from hypothesis import strategies as st

    from matforge.server.ids import IdCodec

    a, b = IdCodec(b"k" * 32), IdCodec(b"j" * 32)

    @given(st.integers(min_value=0, max_value=2**63 - 1))
    def roundtrip(n):
        text = a.encode("material", n)
        assert a.decode("material", text) == n
        if n >= 2**31:  # past a 32-bit key: no such project can exist
            assert a.decode("project", a.encode("project", n)) is None
        assert a.decode("project", text) is None  # another kind's id is no id
        assert b.decode("material", text) != n or b.encode("material", n) == text

    roundtrip()
    ids = [a.encode("project", n) for n in range(1, 200)]
    assert len(set(ids)) == 199 and ids != sorted(ids)
    for garbage in ("", "prj_", "prj_xyz", "prj_" + "0" * 17, None, 12):
        assert a.decode("project", garbage) is None


def test_server_migration_creates_exactly_the_declared_tables(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from matforge.store import Store, accounts
    from matforge.store.schema import metadata

    def table_of(diff):
        if isinstance(diff, list):  # modify_* ops: (op, schema, table, column, ...)
            return diff[0][2]
        op, *args = diff
        obj = args[-1] if op.endswith(("_column",)) else args[0]
        if op.endswith("_column"):
            return args[1]
        for attr in ("table", "parent"):
            if getattr(obj, attr, None) is not None:
                return getattr(obj, attr).name
        return obj.name

    ours = set(accounts.metadata.tables) & {
        t.name for t in vars(accounts).values() if isinstance(t, sa.Table)
    }
    with Store(store_url) as store, store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if table_of(d) in ours] == []
