"""Campaigns through the REST API belong to a project (``campaigns.project_id``): names are
per project, the command line's campaigns (no project) are neither served nor disturbed — on
SQLite and (with MATFORGE_TEST_PG_URL) PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers, wait_for_job  # noqa: E402
from matforge.store import Store  # noqa: E402

API = "/api/v1"
GAPS = [("Fe2O3", 2.1), ("NiO", 3.7), ("ZnO", 3.3), ("TiO2", 3.0), ("MgO", 7.8), ("Cu2O", 2.1)]
CANDIDATES = ["GaN", "AlN", "InN", "ZnS", "CdS", "SiC"]


def test_campaigns_are_per_project_and_apart_from_the_cli_ones(store_url, tmp_path):
    import pandas as pd

    from matforge.design.campaign import Campaign, CampaignError, CompositionPool
    from matforge.store.campaigns import campaigns

    app = create_app(store_url, ServerSettings(model_root=tmp_path / "models", job_poll_s=0.05))
    state = app.state.matforge
    A, B = (user_headers(state.engine, n) for n in ("alice", "bob"))
    # a command-line campaign of the same store, named like the API ones below
    cli = Campaign.create(
        state.store, "gaps", CompositionPool(pd.DataFrame({"formula": CANDIDATES})), "band_gap max"
    )
    with TestClient(app) as c:

        def project(headers, name):
            pid = c.post(f"{API}/projects", json={"name": name}, headers=headers).json()["id"]
            rows = [{"formula": f, "value": v} for f, v in GAPS]
            body = {"property": "band_gap", "unit": "eV", "rows": rows}
            r = c.post(f"{API}/projects/{pid}/measurements", json=body, headers=headers)
            assert r.status_code == 201, r.text
            return pid

        def create(headers, pid, name="gaps"):
            body = {"name": name, "property": "band_gap", "candidates": CANDIDATES}
            return c.post(f"{API}/projects/{pid}/campaigns", json=body, headers=headers)

        pa, pb = project(A, "lab-a"), project(B, "lab-b")
        ra, rb = create(A, pa), create(B, pb)  # the same name in two projects (and the CLI)
        assert ra.status_code == rb.status_code == 201, (ra.text, rb.text)
        ca, cb = ra.json(), rb.json()
        assert (ca["name"], ca["project_id"], cb["name"], cb["project_id"]) == (
            "gaps", pa, "gaps", pb,
        )  # fmt: skip
        assert ca["observations"] == len(GAPS) and ca["n_candidates"] == len(CANDIDATES)
        r = create(A, pa)
        assert r.status_code == 409 and "already has a campaign named 'gaps'" in r.json()["detail"]
        assert create(A, pa, "second").status_code == 201
        assert [x["name"] for x in c.get(f"{API}/projects/{pa}/campaigns", headers=A).json()] == [
            "gaps", "second",
        ]  # fmt: skip
        assert [x["id"] for x in c.get(f"{API}/projects/{pb}/campaigns", headers=B).json()] == [
            cb["id"]
        ]
        # bob cannot reach alice's campaign; nobody reaches the command line's one
        assert c.get(f"{API}/campaigns/{ca['id']}", headers=B).status_code == 404
        cli_id = state.codec.encode("campaign", cli.id)
        assert c.get(f"{API}/campaigns/{cli_id}", headers=A).status_code == 404
        r = c.post(f"{API}/campaigns/{cli_id}/suggest", json={"n": 1}, headers=A)
        assert r.status_code == 404

        # a step of alice's campaign: propose, then record the measured value
        job = c.post(f"{API}/campaigns/{ca['id']}/suggest", json={"n": 1}, headers=A).json()
        assert wait_for_job(c, A, job["id"], 600)["status"] == "succeeded"
        got = c.get(f"{API}/campaigns/{ca['id']}", headers=A).json()
        (s,) = [x for x in got["suggestions"] if x["status"] == "pending"]
        assert s["formula"] in CANDIDATES
        r = c.post(
            f"{API}/campaigns/{ca['id']}/observe",
            json={"results": [{"suggestion_id": s["id"], "value": 9.5}]},
            headers=A,
        )
        assert r.json() == {"matched": 1, "unplanned": 0, "duplicates": 0}
        got = c.get(f"{API}/campaigns/{ca['id']}", headers=A).json()
        assert got["best"]["formula"] == s["formula"] and got["best"]["value"] == 9.5
        assert c.get(f"{API}/campaigns/{cb['id']}", headers=B).json()["batches"] == 0

    # the command line sees its own campaign only, untouched
    pid = {p: state.codec.decode("project", p) for p in (pa, pb)}
    with Store(store_url) as store:
        assert Campaign.names(store) == ["gaps"]
        assert Campaign.load(store, "gaps").id == cli.id
        assert Campaign.load(store, "gaps").history().empty
        with pytest.raises(CampaignError, match="no campaign named 'second'"):
            Campaign.load(store, "second")
        with pytest.raises(CampaignError, match="already exists"):
            Campaign.create(
                store,
                "gaps",
                CompositionPool(pd.DataFrame({"formula": CANDIDATES})),
                "band_gap max",
            )
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(campaigns.c.name, campaigns.c.project_id).order_by(campaigns.c.id)
            ).all()
        assert [tuple(r) for r in rows] == [
            ("gaps", None), ("gaps", pid[pa]), ("gaps", pid[pb]), ("second", pid[pa]),
        ]  # fmt: skip
