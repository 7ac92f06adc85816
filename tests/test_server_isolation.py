"""Isolation: a user never reads, lists, counts, exports or infers another user's private data.

Proved as non-interference. Two stores are built identically, with a frozen clock and the same
id key: users alice, bob, carol; alice's public project, bob's private one. Only the second
store then also holds alice's *private* project (secret formulas and structures, a measurement
of a public material, a source, a member, a model and a job). Every route of the app — taken
from the app's own route table, so a new route without a probe fails this file — is called by
bob (and, for OPTIMADE, anonymously) in both stores, with the private resources' ids where the
route takes an id (ids that do not exist in the first store). The answers must be identical:
then nothing bob can observe depends on alice's private data, not its contents, its size, nor
its existence.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi")

from fastapi import routing  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers, wait_for_job  # noqa: E402

API = "/api/v1"
FROZEN = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
#: the secret is written a day later, so a timestamp that depended on it would show
LATER = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
_CLOCK = [FROZEN]
ID_KEY = "ab" * 32


# --- the two stores ------------------------------------------------------------------------


def _urls(tmp_path_factory):
    yield "sqlite", lambda tag: f"sqlite:///{tmp_path_factory.mktemp(tag) / 'store.db'}"
    base = os.environ.get("MATFORGE_TEST_PG_URL")
    if base:
        yield "postgres", lambda tag: _pg_schema_url(base)


_PG_SCHEMAS: list[tuple[sa.Engine, str]] = []


def _pg_schema_url(base: str) -> str:
    from matforge.store.database import resolve_url

    url = sa.make_url(resolve_url(base))
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    _PG_SCHEMAS.append((admin, schema))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return _CLOCK[0] if tz is not None else _CLOCK[0].replace(tzinfo=None)


def _structure(formula_sites, a):
    from pymatgen.core import Lattice, Structure

    species = [s for s, _ in formula_sites]
    coords = [c for _, c in formula_sites]
    return Structure(Lattice.cubic(a), species, coords).as_dict()


def _insert_model(engine, owner: str, project_id: int, status: str) -> SimpleNamespace:
    from matforge.server import clock
    from matforge.store import accounts

    with engine.begin() as conn:
        uid = conn.execute(
            sa.select(accounts.users.c.id).where(accounts.users.c.name == owner)
        ).scalar_one()
        job = conn.execute(
            sa.insert(accounts.jobs).values(
                kind="train_model",
                owner_id=uid,
                status=status,
                progress=1.0,
                message="done",
                params={},
                attempts=1,
                created_at=clock.now(),
                finished_at=clock.now(),
                error=None if status == "succeeded" else "failed",
            )
        ).inserted_primary_key[0]
        model = conn.execute(
            sa.insert(accounts.models).values(
                owner_id=uid,
                project_id=project_id,
                job_id=job,
                name="gap model",
                property="band_gap",
                unit="eV",
                params={},
                artifact=None,
                info={"n_train": 3, "metrics": {"mae": 0.5}},
                created_at=clock.now(),
            )
        ).inserted_primary_key[0]
        conn.execute(
            sa.update(accounts.jobs)
            .where(accounts.jobs.c.id == job)
            .values(params={"model_id": model})
        )
    return SimpleNamespace(job=job, model=model)


def _stored(state, structure: dict, project: str) -> str:
    """Store ``structure`` in ``project`` as a stored structure (``str_...``); its id."""
    from pymatgen.core import Structure

    from matforge.store import structures as stored

    report = stored.add_structures(
        state.store, [Structure.from_dict(structure)], project, method="refinement"
    )
    return state.codec.encode("structure", report.ids[0])


def _build(url: str, tmp, secret: bool, xrd_model=None):
    """A store and its running app; with ``secret``, alice's private project too."""
    from matforge.server.ids import KEY_SETTING
    from matforge.store import Store, accounts

    with Store(url) as store, store.engine.begin() as conn:
        conn.execute(sa.insert(accounts.server_settings).values(name=KEY_SETTING, value=ID_KEY))
    app = create_app(
        url, ServerSettings(model_root=tmp / "models", job_poll_s=0.05, xrd_model=xrd_model)
    )
    state = app.state.matforge
    users = {n: user_headers(state.engine, n) for n in ("alice", "bob", "carol")}
    client = TestClient(app)
    client.__enter__()
    A, B = users["alice"], users["bob"]

    def project(headers, name, visibility):
        r = client.post(
            f"{API}/projects", json={"name": name, "visibility": visibility}, headers=headers
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def rows(headers, pid, items, source, property="band_gap", unit="eV"):
        r = client.post(
            f"{API}/projects/{pid}/measurements",
            headers=headers,
            json={"property": property, "unit": unit, "source": source, "rows": items},
        )
        assert r.status_code == 201, r.text

    nacl = _structure([("Na", [0, 0, 0]), ("Cl", [0.5, 0.5, 0.5])], 5.64)
    cscl = _structure([("Cs", [0, 0, 0]), ("Cl", [0.5, 0.5, 0.5])], 4.12)
    P = project(A, "open-lab", "public")
    rows(
        A,
        P,
        [
            {"formula": f, "value": v}
            for f, v in [("Fe2O3", 2.1), ("NiO", 3.7), ("ZnO", 3.3), ("TiO2", 3.0), ("MgO", 7.8)]
        ]
        + [{"formula": "NaCl", "value": 8.5, "structure": nacl}],
        "10.1000/open",
    )
    Q = project(B, "bobs-lab", "private")
    rows(
        B, Q, [{"formula": "GaN", "value": 3.4}, {"formula": "AlN", "value": 6.2}], "bob's notebook"
    )
    codec = state.codec
    P_model = _insert_model(state.engine, "alice", codec.decode("project", P), "failed")
    ids = {"P_project": P, "Q_project": Q, "P_model": codec.encode("model", P_model.model)}
    _insert_model(state.engine, "bob", codec.decode("project", Q), "failed")  # bob's own job
    public_fe2o3 = client.get(f"{API}/materials", params={"formula": "Fe2O3"}, headers=B).json()[
        "items"
    ][0]["id"]
    ids["S_shared_material"] = public_fe2o3
    ids["P_stored"] = _stored(state, nacl, "alice/open-lab")

    if secret:
        _CLOCK[0] = LATER
        S = project(A, "secret-alpha", "private")
        rows(
            A,
            S,
            [
                {"formula": "Fe2O3", "value": 1.9},  # a hidden measurement of a public material
                {"formula": "Pu2O3", "value": 4.2},
                {"formula": "CsCl", "value": 8.0, "structure": cscl},
            ],
            "10.9999/secret-alpha",
        )
        rows(
            A, S, [{"formula": "PuO2", "value": 9.0}], "10.9999/secret-alpha", "pu_hardness", "GPa"
        )
        assert (
            client.put(
                f"{API}/projects/{S}/members/carol", json={"role": "viewer"}, headers=A
            ).status_code
            == 200
        )
        S_model = _insert_model(state.engine, "alice", codec.decode("project", S), "succeeded")
        measurements = client.get(
            f"{API}/measurements", params={"project_id": S}, headers=A
        ).json()["items"]
        secret_material = next(m for m in measurements if m["formula"] == "Pu2O3")
        ids.update(
            S_project=S,
            S_material=secret_material["material_id"],
            S_structure=next(m for m in measurements if m["formula"] == "CsCl")["material_id"],
            S_measurement=secret_material["id"],
            S_dataset=secret_material["dataset_id"],
            S_model=codec.encode("model", S_model.model),
            S_job=codec.encode("job", S_model.job),
            S_stored=_stored(state, cscl, "alice/secret-alpha"),
        )
        campaign = client.post(
            f"{API}/projects/{S}/campaigns",
            json={"name": "secret-campaign", "property": "band_gap", "candidates": ["PuN", "PuC"]},
            headers=A,
        )
        assert campaign.status_code == 201, campaign.text
        job = client.post(
            f"{API}/campaigns/{campaign.json()['id']}/suggest", json={"n": 1}, headers=A
        ).json()
        assert wait_for_job(client, A, job["id"])["status"] == "succeeded"
        suggestion = client.get(f"{API}/campaigns/{campaign.json()['id']}", headers=A).json()
        ids.update(
            S_campaign=campaign.json()["id"], S_suggestion=suggestion["suggestions"][0]["id"]
        )
        optimade_refs = client.get("/optimade/v1/references", headers=A).json()["data"]
        ids["S_reference"] = next(
            r["id"] for r in optimade_refs if r["attributes"]["doi"] == "10.9999/secret-alpha"
        )
        _CLOCK[0] = FROZEN
    else:  # ids of the same kinds that exist nowhere
        far = 2**31 - 7  # in range of every id column
        ids.update(
            S_project=codec.encode("project", far),
            S_material=codec.encode("material", far),
            S_structure=codec.encode("material", far + 1),
            S_measurement=codec.encode("measurement", far),
            S_dataset=codec.encode("dataset", far),
            S_model=codec.encode("model", far),
            S_job=codec.encode("job", far),
            S_reference=codec.encode("reference", far),
            S_campaign=codec.encode("campaign", far),
            S_suggestion=codec.encode("suggestion", far),
            S_stored=codec.encode("structure", far),
        )
    return SimpleNamespace(app=app, client=client, users=users, ids=ids)


# --- probes: what bob tries on each route --------------------------------------------------

G = "GET"
CSV = "formula,value\nFe2O3,2.2\nPu2O3,4.0\n"


def _probes():
    """(method, route path) → requests ``(method, url, kwargs, who)``; ``{X}`` are ids."""
    o1, o0 = "/optimade/v1", "/optimade"
    optimade_lists = {
        "structures": [
            {},
            {"filter": 'elements HAS "Pu"'},
            {"filter": 'chemical_formula_reduced="Fe2O3"'},
            {"filter": "nsites>=2"},
            {"filter": 'elements HAS ANY "Cs","Fe"', "page_limit": 2},
            {"response_fields": "last_modified,nelements", "sort": "-last_modified"},
        ],
        "references": [
            {},
            {"filter": 'doi CONTAINS "9999"'},
            {"filter": 'last_modified>="2000-01-01T00:00:00Z"'},
        ],
    }
    p = {
        (G, "/openapi.json"): [(G, "/openapi.json", {}, "bob")],
        (G, "/docs"): [(G, "/docs", {}, "bob")],
        (G, "/docs/oauth2-redirect"): [(G, "/docs/oauth2-redirect", {}, "bob")],
        (G, "/redoc"): [(G, "/redoc", {}, "bob")],
        ("POST", f"{API}/projects"): [
            ("POST", f"{API}/projects", {"json": {"name": "secret-alpha"}}, "bob")
        ],
        (G, f"{API}/projects"): [(G, f"{API}/projects", {}, "bob")],
        (G, f"{API}/projects/{{project_id}}"): [
            (G, f"{API}/projects/{{{k}}}", {}, "bob") for k in ("S_project", "P_project")
        ],
        ("PATCH", f"{API}/projects/{{project_id}}"): [
            ("PATCH", f"{API}/projects/{{S_project}}", {"json": {"visibility": "public"}}, "bob")
        ],
        (G, f"{API}/projects/{{project_id}}/members"): [
            (G, f"{API}/projects/{{{k}}}/members", {}, "bob") for k in ("S_project", "P_project")
        ],
        ("PUT", f"{API}/projects/{{project_id}}/members/{{user_name}}"): [
            ("PUT", f"{API}/projects/{{S_project}}/members/bob", {"json": {"role": "owner"}}, "bob")
        ],
        ("DELETE", f"{API}/projects/{{project_id}}/members/{{user_name}}"): [
            ("DELETE", f"{API}/projects/{{S_project}}/members/carol", {}, "bob")
        ],
        (G, f"{API}/projects/{{project_id}}/datasets"): [
            (G, f"{API}/projects/{{{k}}}/datasets", {}, "bob") for k in ("S_project", "P_project")
        ],
        (G, f"{API}/projects/{{project_id}}/audit"): [
            (G, f"{API}/projects/{{{k}}}/audit", {}, "bob")
            for k in ("S_project", "P_project", "Q_project")
        ],
        ("DELETE", f"{API}/measurements/{{measurement_id}}"): [
            ("DELETE", f"{API}/measurements/{{S_measurement}}", {}, "bob")
        ],
        ("DELETE", f"{API}/datasets/{{dataset_id}}"): [
            ("DELETE", f"{API}/datasets/{{S_dataset}}", {}, "bob")
        ],
        (G, f"{API}/properties"): [(G, f"{API}/properties", {}, "bob")],
        (G, f"{API}/structures"): [
            (G, f"{API}/structures", {"params": params}, "bob")
            for params in (
                {},
                {"elements": "Cs"},
                {"elements": "Cl", "nelements": 2},
                {"spacegroup": 221},
                {"method": "refinement"},
                {"project_id": "{S_project}"},
                {"material_id": "{S_structure}"},
                {"limit": 1},
                {"after": "{S_stored}"},
            )
        ],
        (G, f"{API}/structures/{{structure_id}}"): [
            (G, f"{API}/structures/{{{k}}}", {}, "bob") for k in ("S_stored", "P_stored")
        ],
        (G, f"{API}/structures/{{structure_id}}/file"): [
            (G, f"{API}/structures/{{{k}}}/file", {"params": {"format": fmt}}, "bob")
            for k in ("S_stored", "P_stored")
            for fmt in ("cif", "poscar")
        ],
        (G, f"{API}/materials"): [
            (G, f"{API}/materials", {"params": params}, "bob")
            for params in (
                {},
                {"elements": "Pu"},
                {"elements": "Fe,O", "exact_elements": "true"},
                {"formula": "Pu2O3"},
                {"project_id": "{S_project}"},
                {"has_structure": "true"},
                {"limit": 2},
            )
        ],
        (G, f"{API}/materials/{{material_id}}"): [
            (G, f"{API}/materials/{{{k}}}", {}, "bob")
            for k in ("S_material", "S_structure", "S_shared_material")
        ],
        (G, f"{API}/measurements"): [
            (G, f"{API}/measurements", {"params": params}, "bob")
            for params in (
                {},
                {"elements": "Fe"},
                {"property": "band_gap", "value_min": 1.0},
                {"source": "10.9999/secret-alpha"},
                {"created_by": "alice"},
                {"project_id": "{S_project}"},
                {"material_id": "{S_shared_material}"},
                {"material_id": "{S_material}"},
                {"dataset_id": "{S_dataset}"},
                {"limit": 3},
                {"after": "{S_measurement}"},
            )
        ],
        (G, f"{API}/measurements.csv"): [
            (G, f"{API}/measurements.csv", {"params": params}, "bob")
            for params in ({}, {"elements": "Fe"}, {"project_id": "{S_project}"})
        ],
        ("POST", f"{API}/projects/{{project_id}}/measurements"): [
            (
                "POST",
                f"{API}/projects/{{{k}}}/measurements",
                {
                    "json": {
                        "property": "band_gap",
                        "unit": "eV",
                        "rows": [
                            {"formula": "Pu2O3", "value": 4.0},
                            {"formula": "Fe2O3", "value": 2.0},
                        ],
                    }
                },
                "bob",
            )
            for k in ("S_project", "Q_project")
        ],
        ("POST", f"{API}/projects/{{project_id}}/uploads"): [
            (
                "POST",
                f"{API}/projects/{{{k}}}/uploads",
                {
                    "files": {"file": ("gaps.csv", CSV.encode(), "text/csv")},
                    "data": {"property": "band_gap", "unit": "eV"},
                },
                "bob",
            )
            for k in ("S_project", "Q_project")
        ],
        (G, f"{API}/me"): [(G, f"{API}/me", {}, "bob")],
        (G, f"{API}/jobs"): [(G, f"{API}/jobs", {}, "bob")],
        (G, f"{API}/jobs/{{job_id}}"): [(G, f"{API}/jobs/{{S_job}}", {}, "bob")],
        ("POST", f"{API}/models"): [
            (
                "POST",
                f"{API}/models",
                {"json": {"project_id": f"{{{k}}}", "property": "band_gap"}},
                "bob",
            )
            for k in ("S_project", "Q_project")
        ],
        (G, f"{API}/models"): [(G, f"{API}/models", {}, "bob")],
        (G, f"{API}/models/{{model_id}}"): [
            (G, f"{API}/models/{{{k}}}", {}, "bob") for k in ("S_model", "P_model")
        ],
        ("POST", f"{API}/models/{{model_id}}/predict"): [
            ("POST", f"{API}/models/{{{k}}}/predict", {"json": {"formulas": ["Pu2O3"]}}, "bob")
            for k in ("S_model", "P_model")
        ],
        ("POST", f"{API}/models/{{model_id}}/screens"): [
            (
                "POST",
                f"{API}/models/{{{k}}}/screens",
                {"json": {"elements": ["Pu", "O", "Fe"], "max_atoms": 4, "top_k": 5}},
                "bob",
            )
            for k in ("S_model", "P_model")
        ],
        ("POST", f"{API}/models/{{model_id}}/designs"): [
            (
                "POST",
                f"{API}/models/{{{k}}}/designs",
                {"json": {"goal": "band_gap >= 2", "budget": 10, "elements_in": ["Pu"]}},
                "bob",
            )
            for k in ("S_model", "P_model")
        ],
        # takes no ids and starts a job whose id would differ with any other job: probed with
        # requests refused before a job exists (an element the model never saw, a bad body)
        ("POST", f"{API}/generate/samples"): [
            ("POST", f"{API}/generate/samples", {"json": body}, "bob")
            for body in ({"n": 10, "elements_in": ["Og"]}, {"n": 0})
        ],
        ("POST", f"{API}/xrd/identify"): [
            (
                "POST",
                f"{API}/xrd/identify",
                {"files": {"file": ("pattern.xy", b"10 1\n11 oops\n", "text/plain")}},
                who,
            )
            for who in ("bob", None)
        ],
        ("POST", f"{API}/xrd/identify/batch"): [
            (
                "POST",
                f"{API}/xrd/identify/batch",
                {
                    "files": [
                        ("files", ("a.xy", b"10 1\n11 oops\n", "text/plain")),
                        ("files", ("b.xy", b"10 1\n", "text/plain")),
                    ]
                },
                who,
            )
            for who in ("bob", None)
        ],
        (G, f"{API}/models/{{model_id}}/cv"): [
            (G, f"{API}/models/{{{k}}}/cv", {}, "bob") for k in ("S_model", "P_model")
        ],
        (G, f"{API}/projects/{{project_id}}/campaigns"): [
            (G, f"{API}/projects/{{{k}}}/campaigns", {}, "bob") for k in ("S_project", "P_project")
        ],
        ("POST", f"{API}/projects/{{project_id}}/campaigns"): [
            (
                "POST",
                f"{API}/projects/{{{k}}}/campaigns",
                {
                    "json": {
                        "name": "secret-campaign",
                        "property": "band_gap",
                        "candidates": ["PuN", "GaP"],
                    }
                },
                "bob",
            )
            for k in ("S_project", "Q_project")
        ],
        (G, f"{API}/campaigns/{{campaign_id}}"): [
            (G, f"{API}/campaigns/{{S_campaign}}", {}, "bob")
        ],
        ("POST", f"{API}/campaigns/{{campaign_id}}/suggest"): [
            ("POST", f"{API}/campaigns/{{S_campaign}}/suggest", {"json": {"n": 1}}, "bob")
        ],
        ("POST", f"{API}/campaigns/{{campaign_id}}/observe"): [
            (
                "POST",
                f"{API}/campaigns/{{S_campaign}}/observe",
                {"json": {"results": [{"suggestion_id": "{S_suggestion}", "value": 1.0}]}},
                "bob",
            )
        ],
        (G, "/"): [(G, "/", {"follow_redirects": False}, "bob")],
        (G, "/ui/vendor/plotly.min.js"): [(G, "/ui/vendor/plotly.min.js", {}, None)],
        **{
            (G, f"/docs/vendor/{f}"): [(G, f"/docs/vendor/{f}", {}, None)]
            for f in (
                "swagger-ui-bundle.js",
                "swagger-ui.css",
                "redoc.standalone.js",
                "favicon.png",
            )
        },
        (G, f"{o0}/versions"): [(G, f"{o0}/versions", {}, None)],
        (G, f"{o0}/v{{version}}/{{rest:path}}"): [
            (G, f"{o0}/v2/structures/{{S_material}}", {}, None),
            (G, f"{o0}/v1/nowhere", {}, None),
        ],
    }
    for prefix in (o1, o0):
        for who in (None, "bob"):
            for entry, params_list in optimade_lists.items():
                p.setdefault((G, f"{prefix}/{entry}"), []).extend(
                    (G, f"{prefix}/{entry}", {"params": params}, who) for params in params_list
                )
            p.setdefault((G, f"{prefix}/structures/{{entry_id}}"), []).extend(
                (G, f"{prefix}/structures/{{{k}}}", {}, who)
                for k in ("S_material", "S_structure", "S_shared_material")
            )
            p.setdefault((G, f"{prefix}/references/{{entry_id}}"), []).append(
                (G, f"{prefix}/references/{{S_reference}}", {}, who)
            )
            for path in ("/info", "/links"):
                p.setdefault((G, f"{prefix}{path}"), []).append((G, f"{prefix}{path}", {}, who))
            p.setdefault((G, f"{prefix}/info/{{entry_type}}"), []).extend(
                (G, f"{prefix}/info/{e}", {}, who) for e in ("structures", "references", "nothing")
            )
    return p


PROBES = _probes()
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def route_table(app) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, included routers flattened."""
    table = set()
    for route in routing.iter_route_contexts(app.routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            table.add((method, route.path))
    return table


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


_ID_KEYS = re.compile(r"(^|_)id$")


def _normalise(world, response, mutating: bool) -> str:
    text = response.text
    for key, value in world.ids.items():  # ids bob was given differ between the stores by design
        if key.startswith("S_"):
            text = text.replace(value, f"<{key}>")
    try:
        body = json.loads(text)
    except ValueError:
        return f"{response.status_code} {response.headers.get('content-type')} {text}"

    def scrub(x):
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if k == "time_stamp" or (mutating and _ID_KEYS.search(k) and isinstance(v, str)):
                    out[k] = "<masked>"
                else:
                    out[k] = scrub(v)
            return out
        if isinstance(x, list):
            return [scrub(v) for v in x]
        return x

    return f"{response.status_code} {json.dumps(scrub(body), sort_keys=True)}"


def _run(world, route) -> list[str]:
    out = []
    for method, url, kwargs, who in PROBES[route]:
        headers = world.users[who] if who else {}
        response = world.client.request(
            method, _fill(url, world.ids), headers=headers, **_fill(kwargs, world.ids)
        )
        assert response.status_code < 500 or response.status_code == 553, (
            route,
            url,
            response.text,
        )
        out.append(_normalise(world, response, method in _MUTATING))
    return out


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def answers(request, tmp_path_factory, tiny_xrd_model):
    """{route: (answers without alice's private data, answers with it)}, for one backend."""
    urls = dict(_urls(tmp_path_factory))
    if request.param not in urls:
        pytest.skip("MATFORGE_TEST_PG_URL is not set")
    make_url = urls[request.param]
    mp = pytest.MonkeyPatch()
    mp.setattr("matforge.server.clock.now", lambda: _CLOCK[0])
    mp.setattr("matforge.store.store.datetime", _FrozenDatetime)
    mp.setattr("matforge.store.structures.datetime", _FrozenDatetime)
    mp.setattr("matforge.design.campaign._now", lambda: _CLOCK[0])
    worlds = []
    try:
        for secret in (False, True):
            worlds.append(
                _build(
                    make_url(f"w{int(secret)}"),
                    tmp_path_factory.mktemp("models"),
                    secret,
                    xrd_model=tiny_xrd_model,
                )  # fmt: skip
            )
        ordered = sorted(PROBES, key=lambda r: (r[0] in _MUTATING, r))  # reads first, then writes
        result = {route: tuple(_run(w, route) for w in worlds) for route in ordered}
        result["_worlds"] = worlds
        yield result
    finally:
        for w in worlds:
            w.client.__exit__(None, None, None)
        mp.undo()
        while _PG_SCHEMAS:
            admin, schema = _PG_SCHEMAS.pop()
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def test_every_route_has_an_isolation_probe(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'routes.db'}")
    assert route_table(app) == set(PROBES), (
        "routes without a probe in PROBES (add one) / probes of routes that are gone: "
        f"{route_table(app) ^ set(PROBES)}"
    )
    app.state.matforge.store.close()


@pytest.mark.parametrize("route", sorted(PROBES), ids=lambda r: f"{r[0]} {r[1]}")
def test_nothing_bob_sees_depends_on_alices_private_data(answers, route):
    without, with_secret = answers[route]
    for i, (a, b) in enumerate(zip(without, with_secret, strict=True)):
        assert a == b, (
            f"request {i} of {route} answers differently when alice has private data:\n{a}\n---\n{b}"
        )


def test_the_private_resources_exist_for_their_owner(answers):
    """Guard against a vacuous pass: the ids bob probes are real, and alice reads them."""
    world = answers["_worlds"][1]
    A, ids, c = world.users["alice"], world.ids, world.client
    for url in (
        f"{API}/projects/{ids['S_project']}",
        f"{API}/materials/{ids['S_material']}",
        f"{API}/models/{ids['S_model']}",
        f"{API}/jobs/{ids['S_job']}",
        f"{API}/campaigns/{ids['S_campaign']}",
        f"/optimade/v1/structures/{ids['S_structure']}",
        f"/optimade/v1/references/{ids['S_reference']}",
        f"{API}/structures/{ids['S_stored']}",
        f"{API}/structures/{ids['S_stored']}/file",
        f"/optimade/v1/structures/{ids['S_stored']}",
    ):
        assert c.get(url, headers=A).status_code == 200, url
    carol = world.users["carol"]
    assert c.get(f"{API}/projects/{ids['S_project']}", headers=carol).json()["role"] == "viewer"
    anonymous = c.get("/optimade/v1/structures", params={"filter": 'elements HAS "Pu"'}).json()
    # 6 public materials and alice's public stored structure (str_...)
    assert anonymous["data"] == [] and anonymous["meta"]["data_available"] == 7
    mine = c.get(
        "/optimade/v1/structures", params={"filter": 'elements HAS "Pu"'}, headers=A
    ).json()
    assert sorted(e["attributes"]["chemical_formula_reduced"] for e in mine["data"]) == [
        "O2Pu",
        "O3Pu2",
    ]


def test_forbidden_project_is_404_not_403(answers):
    world = answers["_worlds"][1]
    r = world.client.get(f"{API}/projects/{world.ids['S_project']}", headers=world.users["bob"])
    assert r.status_code == 404 and r.json() == {"detail": "project not found"}
