"""A permanent probe, generated from the OpenAPI schema: every id a route takes (in its path, its
query or its JSON body), given by an unrelated user with another user's real private id, is
answered 404 with the very body a made-up or malformed id gets. The answer reveals nothing
about which ids exist.

Nothing here lists routes by hand: the id slots are read from ``/openapi.json``, so a new route
with an id is probed as soon as it exists, and one whose id is of a kind or body this file does
not know fails :func:`test_every_id_in_the_schema_is_probed` until it is taught (``KINDS``,
``BODIES``). tests/test_server_isolation.py proves the stronger non-interference property on a
hand-written set of requests; this file is the net that catches what it does not list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers, wait_for_job  # noqa: E402

API = "/api/v1"
_REF = "#/components/schemas/"

#: parameter or field name → kind of public id (``entry_id`` depends on the OPTIMADE endpoint)
KINDS = {
    "project_id": "project",
    "material_id": "material",
    "dataset_id": "dataset",
    "measurement_id": "measurement",
    "model_id": "model",
    "job_id": "job",
    "campaign_id": "campaign",
    "suggestion_id": "suggestion",
    "structure_id": "structure",
}
OPTIMADE_ENTRIES = {"structures": "material", "references": "reference"}
#: id-like parameters that are not looked up: ``after`` is a page cursor (``cur_...``, made by
#: the server from a row the caller could read; it filters, it names nothing to read)
NOT_LOOKED_UP = {"after"}
#: a valid body of each request schema that holds or sits beside an id; ids are filled in
BODIES = {
    "ProjectUpdate": {"description": "mine now"},
    "MemberSet": {"role": "owner"},
    "MeasurementBatch": {
        "property": "band_gap",
        "unit": "eV",
        "rows": [{"formula": "Pu2O3", "value": 4.0}],
    },
    "ModelCreate": {"project_id": None, "property": "band_gap"},
    "PredictIn": {"formulas": ["Pu2O3"]},
    "ScreenCreate": {"elements": ["Pu", "O"], "max_atoms": 4, "top_k": 5},
    "DesignCreate": {"goal": "band_gap >= 2", "budget": 10},
    "CampaignCreate": {"name": "probe", "property": "band_gap", "candidates": ["PuN", "GaP"]},
    "CampaignSuggest": {"n": 1},
    "CampaignObserve": {"results": [{"suggestion_id": None, "value": 1.0}]},
    "Body_upload_csv_api_v1_projects__project_id__uploads_post": {
        "files": {"file": ("gaps.csv", b"formula,value\nPu2O3,4.0\n", "text/csv")},
        "data": {"property": "band_gap", "unit": "eV"},
    },
}
#: path parameters that are not ids, and a value for them
OTHER_PATH_VALUES = {"user_name": "carol", "entry_type": "structures"}


@dataclass(frozen=True)
class Slot:
    """One place a route takes an id: ``where`` is "path", "query" or a body field path."""

    method: str
    path: str
    where: str
    name: str
    kind: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where}:{self.name}"


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].removeprefix(_REF)]
    return schema


def _body_id_fields(schema: dict, spec: dict, prefix: str = "") -> list[str]:
    """Dotted paths (``results[].suggestion_id``) of the ``*_id`` fields of a body schema."""
    schema = _resolve(schema, spec)
    found = []
    for name, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, spec)
        for option in [sub, *sub.get("anyOf", [])]:
            option = _resolve(option, spec)
            if option.get("type") == "array" and "items" in option:
                found += _body_id_fields(option["items"], spec, f"{prefix}{name}[].")
                break
        else:
            if name.endswith("_id") or name == "id":
                found.append(prefix + name)
    return found


def _body_schema(op: dict) -> tuple[str | None, str | None]:
    """(content type, component name) of an operation's request body."""
    for content_type, content in op.get("requestBody", {}).get("content", {}).items():
        return content_type, content["schema"].get("$ref", "").removeprefix(_REF) or None
    return None, None


def _kind(name: str, path: str) -> str | None:
    if name == "entry_id":
        entry = path.rstrip("/").split("/")[-2]
        return OPTIMADE_ENTRIES.get(entry)
    return KINDS.get(name)


def id_slots(spec: dict) -> tuple[list[Slot], list[str]]:
    """Every id slot of the schema's operations, and the problems that keep one unprobed."""
    slots, problems = [], []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            names = []
            for param in op.get("parameters", []):
                name = param["name"]
                if name in NOT_LOOKED_UP or name in OTHER_PATH_VALUES:
                    continue
                if name.endswith("_id") or name == "id" or param["in"] == "path":
                    names.append((param["in"], name))
            content_type, component = _body_schema(op)
            if component is not None:
                body_schema = spec["components"]["schemas"][component]
                names += [("body", f) for f in _body_id_fields(body_schema, spec)]
            for where, name in names:
                kind = _kind(name.split(".")[-1], path)
                if kind is None:
                    problems.append(f"{method.upper()} {path}: no id kind for {where} {name!r}")
                    continue
                slots.append(Slot(method.upper(), path, where, name, kind))
            if names and component is not None and component not in BODIES:
                problems.append(f"{method.upper()} {path}: no sample body for {component}")
    return slots, problems


# --- the world: alice's private resources, bob's own campaign ---------------------------------


def _insert_model(engine, owner: str, project_id: int) -> tuple[int, int]:
    """A trained-looking model of ``owner`` and its job (no training: the probe needs ids)."""
    from matforge.server import clock
    from matforge.store import accounts

    with engine.begin() as conn:
        uid = conn.execute(
            sa.select(accounts.users.c.id).where(accounts.users.c.name == owner)
        ).scalar_one()
        job = conn.execute(
            sa.insert(accounts.jobs).values(
                kind="train_model", owner_id=uid, status="failed", progress=1.0, message="done",
                params={}, attempts=1, created_at=clock.now(), finished_at=clock.now(),
                error="failed",
            )  # fmt: skip
        ).inserted_primary_key[0]
        model = conn.execute(
            sa.insert(accounts.models).values(
                owner_id=uid, project_id=project_id, job_id=job, name="m", property="band_gap",
                unit="eV", params={}, artifact=None, info={}, created_at=clock.now(),
            )  # fmt: skip
        ).inserted_primary_key[0]
    return model, job


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store_url(request, tmp_path_factory, pg_schema_url):
    """A fresh store for the module: a SQLite file, or a schema on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('probe') / 'store.db'}"
        return
    with pg_schema_url() as url:
        yield url


@pytest.fixture(scope="module")
def world(store_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    app = create_app(store_url, ServerSettings(model_root=tmp / "models", job_poll_s=0.05))
    state = app.state.matforge
    users = {n: user_headers(state.engine, n) for n in ("alice", "bob", "carol")}
    A, B = users["alice"], users["bob"]
    with TestClient(app) as c:

        def project(headers, name):
            r = c.post(f"{API}/projects", json={"name": name, "visibility": "private"},
                       headers=headers)  # fmt: skip
            assert r.status_code == 201, r.text
            return r.json()["id"]

        S = project(A, "secret")
        rows = [{"formula": "Pu2O3", "value": 4.2}, {"formula": "PuO2", "value": 3.0}]
        r = c.post(f"{API}/projects/{S}/measurements", headers=A, json={
            "property": "band_gap", "unit": "eV", "source": "10.9999/secret", "rows": rows})  # fmt: skip
        assert r.status_code == 201, r.text
        item = c.get(f"{API}/measurements", params={"project_id": S}, headers=A).json()["items"][0]
        model, job = _insert_model(state.engine, "alice", state.codec.decode("project", S))
        campaign = c.post(f"{API}/projects/{S}/campaigns", headers=A, json=BODIES["CampaignCreate"])
        assert campaign.status_code == 201, campaign.text
        cid = campaign.json()["id"]
        suggest = c.post(f"{API}/campaigns/{cid}/suggest", json={"n": 1}, headers=A).json()
        assert wait_for_job(c, A, suggest["id"])["status"] == "succeeded"
        suggestion = c.get(f"{API}/campaigns/{cid}", headers=A).json()["suggestions"][0]["id"]
        reference = next(
            e["id"] for e in c.get("/optimade/v1/references", headers=A).json()["data"]
            if e["attributes"].get("doi") == "10.9999/secret"
        )  # fmt: skip
        from pymatgen.core import Lattice, Structure

        from matforge.store.structures import add_structures

        pu_o = Structure(Lattice.cubic(5.4), ["Pu", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])
        structure = add_structures(state.store, [pu_o], "alice/secret", method="dft").ids[0]
        secret = {
            "structure": state.codec.encode("structure", structure),
            "project": S,
            "dataset": item["dataset_id"],
            "material": item["material_id"],
            "measurement": item["id"],
            "model": state.codec.encode("model", model),
            "job": state.codec.encode("job", job),
            "campaign": cid,
            "suggestion": suggestion,
            "reference": reference,
        }
        # bob's own resources, for the other ids of a request whose body id is probed
        Q = project(B, "bobs")
        c.post(f"{API}/projects/{Q}/measurements", headers=B, json={
            "property": "band_gap", "unit": "eV", "rows": [{"formula": "GaN", "value": 3.4}]})  # fmt: skip
        mine = c.post(f"{API}/projects/{Q}/campaigns", headers=B, json=BODIES["CampaignCreate"])
        assert mine.status_code == 201, mine.text
        own = {"project": Q, "campaign": mine.json()["id"]}
        yield SimpleNamespace(client=c, state=state, users=users, secret=secret, own=own)
    state.store.close()


def _made_up(codec, kind: str) -> dict[str, str]:
    prefix = codec.encode(kind, 1).split("_")[0]
    return {
        "made-up": codec.encode(kind, 2**31 - 7),
        "made-up, past any row": f"{prefix}_ffffffffffffffff",
        "malformed": "nope",
    }


def _set(body, dotted: str, value) -> None:
    head, _, rest = dotted.partition(".")
    if head.endswith("[]"):
        for item in body[head[:-2]]:
            _set(item, rest, value)
    elif rest:
        _set(body[head], rest, value)
    else:
        body[head] = value


def _request(world, spec: dict, slot: Slot, value: str, who: str | None):
    """``slot`` set to ``value``; every other id is one of bob's own (or alice's, for the path,
    when bob has none of that kind: the probed slot is then not what decides)."""
    op = spec["paths"][slot.path][slot.method.lower()]
    url, params = slot.path, {}
    for param in op.get("parameters", []):
        name = param["name"]
        if param["in"] != "path":
            continue
        if slot.where == "path" and name == slot.name:
            fill = value
        elif name in OTHER_PATH_VALUES:
            fill = OTHER_PATH_VALUES[name]
        else:
            kind = _kind(name, slot.path)
            fill = world.own.get(kind) or world.secret[kind]
        url = url.replace("{" + name + "}", fill).replace("{" + name + ":path}", fill)
    if slot.where == "query":
        params[slot.name] = value
    kwargs = {"params": params}
    content_type, component = _body_schema(op)
    if component is not None:
        body = json.loads(json.dumps(BODIES[component], default=lambda b: b.decode()))
        if content_type == "multipart/form-data":
            kwargs.update(files=BODIES[component]["files"], data=body["data"])
        else:
            for field in _body_id_fields(spec["components"]["schemas"][component], spec):
                kind = _kind(field.split(".")[-1], slot.path)
                fill = value if (slot.where == "body" and field == slot.name) else (
                    world.own.get(kind) or world.secret[kind])  # fmt: skip
                _set(body, field, fill)
            kwargs["json"] = body
    headers = world.users[who] if who else {}
    return world.client.request(slot.method, url, headers=headers, **kwargs)


def _answer(response, value: str) -> tuple[int, str]:
    """Status and body, with the caller's own id (echoed back in OPTIMADE's meta) and the
    time stamp masked: neither depends on anyone else's data."""
    text = response.text.replace(value, "<id>")
    try:
        body = json.loads(text)
    except ValueError:
        return response.status_code, text
    if isinstance(body, dict) and isinstance(body.get("meta"), dict):
        body["meta"].pop("time_stamp", None)
    return response.status_code, json.dumps(body, sort_keys=True)


@pytest.fixture(scope="module")
def spec(world):
    return world.client.get("/openapi.json").json()


def test_every_id_in_the_schema_is_probed(spec):
    slots, problems = id_slots(spec)
    assert problems == [], "teach this file the new ids (KINDS, BODIES):\n" + "\n".join(problems)
    probed = {(s.method, s.path, s.where, s.name) for s in slots}
    # a floor, so that a generator that finds nothing cannot pass: the ids known today
    known = {
        ("GET", f"{API}/projects/{{project_id}}", "path", "project_id"),
        ("GET", f"{API}/materials/{{material_id}}", "path", "material_id"),
        ("GET", f"{API}/measurements", "query", "dataset_id"),
        ("GET", f"{API}/measurements", "query", "material_id"),
        ("GET", f"{API}/measurements", "query", "project_id"),
        ("GET", f"{API}/materials", "query", "project_id"),
        ("GET", f"{API}/jobs/{{job_id}}", "path", "job_id"),
        ("POST", f"{API}/models", "body", "project_id"),
        ("POST", f"{API}/models/{{model_id}}/predict", "path", "model_id"),
        ("POST", f"{API}/campaigns/{{campaign_id}}/observe", "body", "results[].suggestion_id"),
        ("GET", "/optimade/v1/structures/{entry_id}", "path", "entry_id"),
        ("GET", "/optimade/v1/references/{entry_id}", "path", "entry_id"),
        ("GET", f"{API}/structures/{{structure_id}}", "path", "structure_id"),
        ("GET", f"{API}/structures", "query", "material_id"),
    }
    assert known <= probed, known - probed


def _slots_for_params():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(f"sqlite:///{tmp}/schema.db")
        try:
            slots, _ = id_slots(app.openapi())
        finally:
            app.state.matforge.store.close()
    # reads first: a write that succeeded by mistake must not change what later reads see
    return sorted(slots, key=lambda s: (s.method != "GET", str(s)))


@pytest.mark.parametrize("slot", _slots_for_params(), ids=str)
def test_another_users_id_is_answered_like_a_made_up_one(world, spec, slot):
    callers = ["bob", None] if slot.path.startswith("/optimade") else ["bob"]
    for who in callers:
        real = world.secret[slot.kind]
        expected = _answer(_request(world, spec, slot, real, who), real)
        assert expected[0] == 404, (who, expected)
        for what, value in _made_up(world.state.codec, slot.kind).items():
            got = _answer(_request(world, spec, slot, value, who), value)
            assert got == expected, f"{what} id, as {who or 'anonymous'}:\n{got}\n---\n{expected}"


def test_the_private_ids_are_real(world):
    """Guard against a vacuous pass: alice reads what bob was refused."""
    c, A, s = world.client, world.users["alice"], world.secret
    for url in (
        f"{API}/projects/{s['project']}",
        f"{API}/materials/{s['material']}",
        f"{API}/models/{s['model']}",
        f"{API}/jobs/{s['job']}",
        f"{API}/campaigns/{s['campaign']}",
        f"/optimade/v1/structures/{s['material']}",
        f"/optimade/v1/references/{s['reference']}",
        f"{API}/structures/{s['structure']}",
        f"{API}/structures/{s['structure']}/file",
    ):
        assert c.get(url, headers=A).status_code == 200, url
    for param in ("dataset_id", "material_id", "project_id"):
        kind = param.removesuffix("_id")
        r = c.get(f"{API}/measurements", params={param: s[kind]}, headers=A)
        assert r.status_code == 200 and r.json()["items"], (param, r.text)


def test_the_slot_reader_finds_ids_in_nested_bodies():
    spec = {
        "paths": {
            "/x/{thing_id}": {
                "post": {
                    "parameters": [{"in": "path", "name": "thing_id"}],
                    "requestBody": {"content": {"application/json": {
                        "schema": {"$ref": _REF + "Outer"}}}},  # fmt: skip
                }
            }
        },
        "components": {
            "schemas": {
                "Outer": {"properties": {"items": {"type": "array",
                                                   "items": {"$ref": _REF + "Inner"}}}},
                "Inner": {"properties": {"model_id": {"type": "string"}}},
            }
        },
    }
    slots, problems = id_slots(spec)
    assert [(s.where, s.name, s.kind) for s in slots] == [("body", "items[].model_id", "model")]
    assert problems == ["POST /x/{thing_id}: no id kind for path 'thing_id'",
                        "POST /x/{thing_id}: no sample body for Outer"]  # fmt: skip
    assert re.fullmatch(r"[a-z]+", slots[0].kind)
