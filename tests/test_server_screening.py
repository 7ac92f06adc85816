"""Screening through the REST API: ``POST /models/{id}/screens`` enumerates compositions, ranks
them with a trained model in a background job, and returns the top candidates and a sample —
on SQLite and (with MATFORGE_TEST_PG_URL) PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers, wait_for_job  # noqa: E402

API = "/api/v1"
#: seconds a job may take on a busy 2-core machine
JOB_S = 600
GAPS = [
    ("Fe2O3", 2.1), ("NiO", 3.7), ("ZnO", 3.3), ("TiO2", 3.0), ("MgO", 7.8),
    ("Al2O3", 8.8), ("Cu2O", 2.1), ("GaAs", 1.42), ("FeO", 2.4), ("ZnS", 3.6),
]  # fmt: skip
SCREEN = {
    "elements": ["Zn", "Fe", "O", "S"],
    "max_atoms": 5,
    "arities": [2, 3],
    "charge_balanced": True,
    "rank_by": "max",
    "top_k": 8,
}


def _insert_model(state, owner_id: int, project_id: int, status: str) -> str:
    """A model row whose training job ended with ``status`` (no artifact): its public id."""
    import sqlalchemy as sa

    from matforge.server import clock
    from matforge.store import accounts

    with state.engine.begin() as conn:
        job = conn.execute(
            sa.insert(accounts.jobs).values(
                kind="train_model",
                owner_id=owner_id,
                status=status,
                progress=0.2,
                message=status,
                params={},
                attempts=1,
                created_at=clock.now(),
                error="boom",
            )  # fmt: skip
        ).inserted_primary_key[0]
        model = conn.execute(
            sa.insert(accounts.models).values(
                owner_id=owner_id,
                project_id=project_id,
                job_id=job,
                name="broken",
                property="band_gap",
                unit="eV",
                params={},
                created_at=clock.now(),
            )  # fmt: skip
        ).inserted_primary_key[0]
    return state.codec.encode("model", model)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def lab(request, tmp_path_factory):
    """alice's public "oxides" with a trained band-gap model; bob's private "nitrides" with a
    model whose training failed. One per backend: training is the slow part."""
    import os
    import uuid

    import sqlalchemy as sa

    tmp = tmp_path_factory.mktemp("screening")
    schema = admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'store.db'}"
    else:
        base = os.environ.get("MATFORGE_TEST_PG_URL")
        if not base:
            pytest.skip("MATFORGE_TEST_PG_URL is not set")
        from matforge.store.database import resolve_url

        pg = sa.make_url(resolve_url(base))
        schema = f"test_{uuid.uuid4().hex[:16]}"
        admin = sa.create_engine(pg)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = pg.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    settings = ServerSettings(
        model_root=tmp / "models", job_poll_s=0.05, max_screen_candidates=5_000
    )
    app = create_app(url, settings)
    state = app.state.matforge
    users = {name: user_headers(state.engine, name) for name in ("alice", "bob", "carol")}
    A, B = users["alice"], users["bob"]
    try:
        with TestClient(app) as c:

            def project(headers, name, visibility):
                pid = c.post(
                    f"{API}/projects",
                    json={"name": name, "visibility": visibility},
                    headers=headers,
                ).json()["id"]
                rows = [{"formula": f, "value": v} for f, v in GAPS]
                body = {"property": "band_gap", "unit": "eV", "rows": rows}
                r = c.post(f"{API}/projects/{pid}/measurements", json=body, headers=headers)
                assert r.status_code == 201, r.text
                return state.codec.decode("project", pid)

            oxides = project(A, "oxides", "public")
            nitrides = project(B, "nitrides", "private")
            r = c.post(
                f"{API}/models",
                json={
                    "project_id": state.codec.encode("project", oxides),
                    "property": "band_gap",
                    "n_estimators": 20,
                },
                headers=A,
            )
            model = r.json()
            assert wait_for_job(c, A, model["job"]["id"], JOB_S)["status"] == "succeeded"
            with state.engine.connect() as conn:
                from matforge.store import accounts

                uid = dict(
                    conn.execute(sa.select(accounts.users.c.name, accounts.users.c.id)).all()
                )
            yield SimpleNamespace(
                app=app,
                client=c,
                model=model["id"],
                bobs=_insert_model(state, uid["bob"], nitrides, "failed"),
                failed=_insert_model(state, uid["alice"], oxides, "failed"),
                **users,
            )
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def screen(lab, headers, model, **changes):
    return lab.client.post(
        f"{API}/models/{model}/screens", json={**SCREEN, **changes}, headers=headers
    )


def test_screen_ranks_enumerated_compositions_with_the_model(lab):
    from matforge.chem import charge_balanced, parse_formula

    c, C = lab.client, lab.carol
    r = screen(lab, C, lab.model)  # carol only reads the public project: she may screen with it
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "screen" and job["status"] in ("queued", "running")
    done = wait_for_job(c, C, job["id"], JOB_S)
    assert done["status"] == "succeeded", done
    res = done["result"]
    assert res["model_id"] == lab.model and res["property"] == "band_gap" and res["unit"] == "eV"
    top = res["top"]
    assert 1 <= len(top) <= SCREEN["top_k"] <= res["n_screened"] <= res["n_positions"]
    means = [t["mean"] for t in top]
    assert means == sorted(means, reverse=True)
    for t in top:
        comp = parse_formula(t["formula"])
        assert {str(e) for e in comp.elements} <= set(SCREEN["elements"])
        assert 2 <= len(comp.elements) <= 3 and comp.num_atoms <= SCREEN["max_atoms"]
        assert charge_balanced(comp)
        assert t["std"] > 0
    assert len({t["formula"] for t in top}) == len(top)
    # the screen's numbers are the model's own predictions
    pred = c.post(
        f"{API}/models/{lab.model}/predict",
        json={"formulas": [t["formula"] for t in top]},
        headers=C,
    ).json()["predictions"]
    np.testing.assert_allclose([p["mean"] for p in pred], means, rtol=1e-6)
    np.testing.assert_allclose([p["std"] for p in pred], [t["std"] for t in top], rtol=1e-6)
    assert [p["in_domain"] for p in pred] == [t["in_domain"] for t in top]  # and its domain
    np.testing.assert_allclose(
        [p["domain_distance"] for p in pred], [t["domain_distance"] for t in top], rtol=1e-6
    )
    assert 0 <= res["out_of_domain"] <= res["n_screened"]
    # nothing in the sample beats the best candidate
    sample = res["sample"]
    assert 0 < len(sample["formula"]) == len(sample["mean"]) == len(sample["std"])
    assert len(sample["formula"]) == min(500, res["n_screened"])
    assert max(sample["mean"]) <= means[0] + 1e-9
    # the job is carol's alone
    assert c.get(f"{API}/jobs/{job['id']}", headers=lab.alice).status_code == 404


def test_screen_rankings_and_charge_balance(lab):
    c, A = lab.client, lab.alice

    def result(**changes):
        r = screen(lab, A, lab.model, **changes)
        assert r.status_code == 202, r.text
        done = wait_for_job(c, A, r.json()["id"], JOB_S)
        assert done["status"] == "succeeded", done
        return done["result"]

    low = result(rank_by="min")
    means = [t["mean"] for t in low["top"]]
    assert means == sorted(means) and min(low["sample"]["mean"]) >= means[0] - 1e-9
    ucb = result(rank_by="ucb")
    scores = [t["mean"] + t["std"] for t in ucb["top"]]
    assert scores == sorted(scores, reverse=True)
    every = result(charge_balanced=False)
    assert every["n_screened"] == every["n_positions"] > low["n_screened"]


def test_screen_input_is_validated_and_bounded(lab):
    A, B = lab.alice, lab.bob
    r = screen(lab, A, lab.model, elements=["Fe", "Xx"])
    assert r.status_code == 400 and "Xx" in r.json()["detail"]
    for bad in (
        {"elements": ["fe", "O"]},
        {"elements": ["Fe"]},
        {"max_atoms": 40},
        {"arities": [5]},
        {"top_k": 0},
        {"rank_by": "random"},
        {"where": "band_gap > 2"},
    ):
        assert screen(lab, A, lab.model, **bad).status_code == 422, bad
    r = screen(lab, A, lab.model, elements=["Fe", "O"], arities=[3])
    assert r.status_code == 400 and "2 distinct element" in r.json()["detail"]
    many = ["Li", "Na", "K", "Mg", "Ca", "Fe", "Ni", "Cu", "Zn", "O", "S", "N", "C", "F"]
    r = screen(lab, A, lab.model, elements=many, max_atoms=8, arities=[2, 3, 4])
    assert r.status_code == 400 and "at most 5,000" in r.json()["detail"]
    # bob's private model does not exist for alice; a model id that is not one neither
    assert screen(lab, A, lab.bobs).status_code == 404
    assert screen(lab, A, "mdl_nothing").status_code == 404
    assert screen(lab, B, lab.bobs).status_code == 409  # bob's own: it exists for him
    assert lab.client.post(f"{API}/models/{lab.model}/screens", json=SCREEN).status_code == 401


def test_screen_needs_a_trained_model(lab):
    r = screen(lab, lab.alice, lab.failed)
    assert r.status_code == 409 and "not trained (its job is failed)" in r.json()["detail"]
