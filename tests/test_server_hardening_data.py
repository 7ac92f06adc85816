"""Bad data at the server's boundary (issue #18 sections 1-2): uploads too wide to validate
cheaply, formulas with absurd amounts, booleans where numbers are expected, and training on a
project that holds rows stored before those checks existed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import BAND_GAPS, user_headers, wait_for_job  # noqa: E402

API = "/api/v1"
GAPS = BAND_GAPS
ABSURD = ["Zn1e308O", "Zn2O1e307", "Fe1e-320O", "Fe inf"]


@pytest.fixture
def server(store_url, tmp_path):
    settings = ServerSettings(model_root=tmp_path / "models", job_poll_s=0.05)
    app = create_app(store_url, settings)
    engine = app.state.matforge.engine
    with TestClient(app) as client:
        s = SimpleNamespace(client=client, app=app, engine=engine)
        s.alice = user_headers(engine, "alice")
        r = client.post(f"{API}/projects", json={"name": "oxides"}, headers=s.alice)
        assert r.status_code == 201, r.text
        s.pid = r.json()["id"]
        yield s


def upload(s, content: bytes, name="gaps.csv", **form):
    return s.client.post(
        f"{API}/projects/{s.pid}/uploads",
        files={"file": (name, content, "text/csv")},
        data={"property": "band_gap", "unit": "eV", **form},
        headers=s.alice,
    )


def add_rows(s, rows, **kw):
    body = {"property": "band_gap", "unit": "eV", "rows": rows, **kw}
    return s.client.post(f"{API}/projects/{s.pid}/measurements", json=body, headers=s.alice)


def n_measurements(s) -> int:
    r = s.client.get(f"{API}/measurements", params={"project_id": s.pid}, headers=s.alice)
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


# --- wide tables ---------------------------------------------------------------------------


def test_a_million_column_upload_is_refused_with_413_from_its_header(server):
    """The upload of the issue: 1,000,000 columns in under 10 MB kept a worker busy for an
    hour. It is refused from the header line, the body never parsed."""
    header = ",".join(["formula", "value", *(f"c{j}" for j in range(999_998))])
    content = (header + "\n" + "Fe2O3,2.1" + "," * 999_998 + "\n").encode()
    assert len(content) < 10_000_000
    r = upload(server, content, name="wide.csv")  # its time: benchmarks/wallclock_bounds.py
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert detail == (
        "wide.csv, line 1: the header has 1,000,000 columns; at most 1,000 are allowed "
        "(max_columns)"
    )
    assert "/tmp" not in detail and "matforge-upload" not in detail
    assert n_measurements(server) == 0


def test_the_column_limit_is_a_server_setting(store_url, tmp_path):
    settings = ServerSettings(model_root=tmp_path / "models", max_upload_columns=10)
    app = create_app(store_url, settings)
    with TestClient(app) as client:
        s = SimpleNamespace(client=client, alice=user_headers(app.state.matforge.engine, "alice"))
        s.pid = client.post(f"{API}/projects", json={"name": "p"}, headers=s.alice).json()["id"]
        names = ["formula", "value", *(f"c{j}" for j in range(9))]
        # the body is not even text: only the header line is read before the refusal
        r = upload(s, (",".join(names) + "\n").encode() + b"\xff\xfe\x00,\x81\n" * 100)
        assert r.status_code == 413 and "11 columns; at most 10" in r.json()["detail"], r.text
        row = "Fe2O3,2.1" + ",300" * 8
        r = upload(s, (",".join(names[:10]) + "\n" + row + "\n").encode())
        assert r.status_code == 201 and r.json()["n_written"] == 1, r.text
        # a JSON batch: its distinct condition names are its columns
        rows = [{"formula": "ZnO", "value": 3.3, "conditions": {f"k{i}_{j}": 1 for j in range(3)}}
                for i in range(2)]  # fmt: skip
        r = add_rows(s, rows)
        assert r.status_code == 413, r.text
        assert r.json()["detail"] == (
            "the request has 6 distinct condition names; the server takes at most 5 per request"
        )
        assert add_rows(s, rows[:1]).status_code == 201


def test_env_variable_sets_the_column_limit(monkeypatch):
    monkeypatch.setenv("MATFORGE_SERVER_MAX_UPLOAD_COLUMNS", "42")
    assert ServerSettings.from_env().max_upload_columns == 42
    assert ServerSettings().max_upload_columns == 1000


# --- absurd formulas -----------------------------------------------------------------------


@pytest.mark.parametrize("formula", ABSURD)
def test_absurd_formulas_are_bad_rows_in_json_batches_and_uploads(server, formula):
    rows = [{"formula": f, "value": v} for f, v in GAPS[:2]] + [{"formula": formula, "value": 1}]
    r = add_rows(server, rows)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert (error["line"], error["column"]) == (2, "formula") and formula in error["reason"]

    content = f"formula,value\nFe2O3,2.1\n{formula},1.0\nZnO,3.3\n".encode()
    r = upload(server, content)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert (error["line"], error["column"]) == (3, "formula") and formula in error["reason"]
    assert n_measurements(server) == 0
    r = upload(server, content, skip_invalid="true")
    assert r.status_code == 201, r.text
    assert (r.json()["n_written"], r.json()["n_rejected"]) == (2, 1)
    assert [e["line"] for e in r.json()["rejected"]] == [3]


def test_training_skips_and_reports_rows_stored_before_the_formula_bounds(server):
    """A project that holds a formula stored before the parser refused it (``Zn1e308O``)
    made every training fail; now the row is left out and counted in the job's result."""
    s = server
    r = add_rows(s, [{"formula": f, "value": v} for f, v in GAPS])
    assert r.status_code == 201, r.text
    from matforge.store import schema

    mat = schema.materials
    with s.engine.begin() as conn:  # as an older matforge would have stored it
        conn.execute(sa.update(mat).where(mat.c.formula == "ZnO").values(formula="Zn1e308O"))
    r = s.client.post(
        f"{API}/models",
        json={"project_id": s.pid, "property": "band_gap", "n_estimators": 10},
        headers=s.alice,
    )
    assert r.status_code == 202, r.text
    job = wait_for_job(s.client, s.alice, r.json()["job"]["id"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["n_skipped"] == 1 and result["n_train"] == len(GAPS) - 1
    (reason,) = result["skipped"]
    assert "Zn1e308O" in reason and "more than 1,000,000 atoms" in reason
    model = s.client.get(f"{API}/models/{r.json()['id']}", headers=s.alice).json()
    assert model["n_train"] == len(GAPS) - 1


def test_training_on_too_few_usable_rows_says_how_many_were_skipped(server):
    s = server
    assert add_rows(s, [{"formula": f, "value": v} for f, v in GAPS[:5]]).status_code == 201
    from matforge.store import schema

    mat = schema.materials
    with s.engine.begin() as conn:
        conn.execute(sa.update(mat).where(mat.c.formula == "ZnO").values(formula="Zn2O1e307"))
    r = s.client.post(
        f"{API}/models", json={"project_id": s.pid, "property": "band_gap"}, headers=s.alice
    )
    assert r.status_code == 202, r.text  # five rows: usable ones are counted by the job
    job = wait_for_job(s.client, s.alice, r.json()["job"]["id"])
    assert job["status"] == "failed"
    assert "the project has 4 usable (1 skipped; first: 'Zn2O1e307'" in job["error"]


# --- booleans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"formula": "ZnO", "value": True}, "value"),
        ({"formula": "ZnO", "value": False}, "value"),
        ({"formula": "ZnO", "value": 3.3, "uncertainty": True}, "uncertainty"),
    ],
)
def test_json_booleans_are_not_numbers(server, row, field):
    r = add_rows(server, [{"formula": "Fe2O3", "value": 2.1}, row])
    assert r.status_code == 422, r.text
    (problem,) = r.json()["fields"]
    assert problem["loc"] == ["body", "rows", 1, field]
    assert "is a boolean, not a number" in problem["msg"]
    assert n_measurements(server) == 0
    # numbers are still numbers, integers included; booleans stay allowed as conditions
    ok = {"formula": "ZnO", "value": 3, "uncertainty": 0, "conditions": {"annealed": True}}
    assert add_rows(server, [ok]).status_code == 201


def test_campaign_results_refuse_booleans_too():
    from pydantic import ValidationError

    from matforge.server.schemas import ResultIn

    assert ResultIn(suggestion_id="s1", value=2).value == 2.0
    with pytest.raises(ValidationError, match="true is a boolean, not a number"):
        ResultIn.model_validate({"suggestion_id": "s1", "value": True})
