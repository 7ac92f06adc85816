"""Errors reveal nothing: an id filter answers the same for a malformed id, an unknown one and
another user's private one, and error messages speak in public ids, never in row numbers."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers  # noqa: E402

API = "/api/v1"


@pytest.fixture
def world(store_url, tmp_path):
    app = create_app(store_url, ServerSettings(model_root=tmp_path / "models"))
    state = app.state.matforge
    A, B = user_headers(state.engine, "alice"), user_headers(state.engine, "bob")
    with TestClient(app) as c:
        pid = c.post(f"{API}/projects", json={"name": "secret", "visibility": "private"},
                     headers=A).json()["id"]  # fmt: skip
        rows = [{"formula": "Pu2O3", "value": 4.2}, {"formula": "PuO2", "value": 3.0}]
        r = c.post(f"{API}/projects/{pid}/measurements", headers=A,
                   json={"property": "band_gap", "unit": "eV", "rows": rows})  # fmt: skip
        assert r.status_code == 201, r.text
        item = c.get(f"{API}/measurements", params={"project_id": pid}, headers=A).json()["items"][0]
        yield SimpleNamespace(client=c, state=state, alice=A, bob=B, pid=pid, item=item)


def made_up_ids(codec, kind: str) -> dict[str, str]:
    prefix = codec.encode(kind, 1).split("_")[0]
    return {
        "malformed": "not-an-id",
        "wrong kind": codec.encode("project", 1),
        "well-formed, unknown, in range": codec.encode(kind, 2**31 - 7),
        "well-formed, unknown, out of range": f"{prefix}_ffffffffffffffff",
    }


@pytest.mark.parametrize(("param", "kind"), [("dataset_id", "dataset"),
                                             ("material_id", "material")])  # fmt: skip
def test_an_id_filter_answers_alike_for_made_up_and_private_ids(world, param, kind):
    c, codec = world.client, world.state.codec
    # the owner's filter works: the check is not vacuous
    mine = c.get(f"{API}/measurements", params={param: world.item[param]}, headers=world.alice)
    assert mine.status_code == 200 and mine.json()["items"], mine.text
    private = c.get(f"{API}/measurements", params={param: world.item[param]}, headers=world.bob)
    assert private.status_code == 404
    assert private.json() == {"detail": f"{kind} not found"}
    for what, made_up in made_up_ids(codec, kind).items():
        r = c.get(f"{API}/measurements", params={param: made_up}, headers=world.bob)
        assert (r.status_code, r.content) == (private.status_code, private.content), what


def test_an_id_filter_on_a_readable_row_still_filters(world):
    c = world.client
    c.patch(f"{API}/projects/{world.pid}", json={"visibility": "public"}, headers=world.alice)
    for param in ("dataset_id", "material_id"):
        r = c.get(f"{API}/measurements", params={param: world.item[param]}, headers=world.bob)
        assert r.status_code == 200, r.text
        assert {m[param] for m in r.json()["items"]} == {world.item[param]}


def test_a_duplicate_upload_names_the_dataset_by_its_public_id(world):
    c, A = world.client, world.alice
    body = {"property": "band_gap", "unit": "eV", "rows": [{"formula": "ZnO", "value": 3.3}]}
    assert c.post(f"{API}/projects/{world.pid}/measurements", json=body,
                  headers=A).status_code == 201  # fmt: skip
    again = c.post(f"{API}/projects/{world.pid}/measurements", json=body, headers=A)
    assert again.status_code == 409
    detail = again.json()["detail"]
    datasets = c.get(f"{API}/projects/{world.pid}/datasets", headers=A).json()
    assert datasets[-1]["id"] in detail, detail
    # no bare row number ("dataset 2") anywhere
    assert not re.search(r"dataset \d", detail), detail
