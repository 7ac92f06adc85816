"""Deleting measurements and datasets through the API, with the audit trail (issue #18 §2):
owners and editors may delete, viewers get 403, anyone who cannot read the row gets the same 404
as for a made-up id, and every deletion can be read back from the project's audit log."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers  # noqa: E402

API = "/api/v1"


@pytest.fixture
def server(store_url, tmp_path):
    app = create_app(store_url, ServerSettings(model_root=tmp_path / "models"))
    engine = app.state.matforge.engine
    with TestClient(app) as client:
        s = SimpleNamespace(client=client)
        s.alice, s.bob, s.eve = (user_headers(engine, n) for n in ("alice", "bob", "eve"))
        s.pid = client.post(f"{API}/projects", json={"name": "oxides"}, headers=s.alice).json()[
            "id"
        ]
        for rows in (
            [{"formula": "Fe2O3", "value": 2.1}, {"formula": "NaCl", "value": 8.5}],
            [{"formula": "ZnO", "value": 3.3, "uncertainty": 0.1}],
        ):
            r = client.post(
                f"{API}/projects/{s.pid}/measurements",
                json={"property": "band_gap", "unit": "eV", "rows": rows, "source": "doi:10/x"},
                headers=s.alice,
            )
            assert r.status_code == 201, r.text
        yield s


def measurements(s, who=None):
    r = s.client.get(f"{API}/measurements", params={"limit": 100}, headers=who or s.alice)
    assert r.status_code == 200, r.text
    return {m["formula"]: m for m in r.json()["items"]}


def datasets(s):
    return s.client.get(f"{API}/projects/{s.pid}/datasets", headers=s.alice).json()


def audit(s, who=None, **params):
    return s.client.get(f"{API}/projects/{s.pid}/audit", params=params, headers=who or s.alice)


def member(s, name, role):
    r = s.client.put(
        f"{API}/projects/{s.pid}/members/{name}", json={"role": role}, headers=s.alice
    )
    assert r.status_code == 200, r.text


def test_an_editor_deletes_a_measurement_and_the_audit_log_keeps_it_whole(server):
    s = server
    member(s, "bob", "editor")
    zno = measurements(s)["ZnO"]
    r = s.client.delete(f"{API}/measurements/{zno['id']}", headers=s.bob)
    assert r.status_code == 204 and r.content == b""
    assert sorted(measurements(s)) == ["Fe2O3", "NaCl"]
    (entry,) = audit(s).json()["items"]
    assert entry["action"] == "delete_measurement" and entry["actor"] == "bob"
    assert entry["target_id"] == zno["id"] and entry["project_id"] == s.pid
    assert entry["at"].endswith("Z") or entry["at"].endswith("+00:00")
    d = entry["detail"]
    assert (d["formula"], d["property"], d["value"], d["unit"], d["uncertainty"]) == (
        "ZnO", "band_gap", 3.3, "eV", 0.1,
    )  # fmt: skip
    assert d["source"] == "doi:10/x" and d["created_by"] == "alice"
    # store row ids are shown as public ids, as everywhere else in the API
    assert d["dataset_id"] == zno["dataset_id"] and d["material_id"] == zno["material_id"]
    # deleted twice: gone, like any unknown id
    again = s.client.delete(f"{API}/measurements/{zno['id']}", headers=s.bob)
    assert again.status_code == 404 and again.json() == {"detail": "measurement not found"}


def test_deleting_a_dataset_removes_its_measurements_and_records_its_provenance(server):
    s = server
    first, second = datasets(s)
    r = s.client.delete(f"{API}/datasets/{first['id']}", headers=s.alice)
    assert r.status_code == 204
    assert list(measurements(s)) == ["ZnO"]
    assert [d["id"] for d in datasets(s)] == [second["id"]]
    (entry,) = audit(s).json()["items"]
    assert entry["action"] == "delete_dataset" and entry["target_id"] == first["id"]
    assert entry["detail"]["measurements_deleted"] == {"band_gap": 2}
    assert entry["detail"]["n_rows"] == 2 and entry["detail"]["name"] == first["name"]


def test_viewers_get_403_and_outsiders_the_404_of_a_made_up_id(server):
    s = server
    zno = measurements(s)["ZnO"]
    dataset = datasets(s)[0]["id"]
    made_up = {"measurement": "msr_0123456789abcdef", "dataset": "dst_0123456789abcdef"}
    # eve cannot read the private project: her answers equal those for made-up ids
    for kind, real in (("measurement", zno["id"]), ("dataset", dataset)):
        path = "measurements" if kind == "measurement" else "datasets"
        outsider = s.client.delete(f"{API}/{path}/{real}", headers=s.eve)
        fake = s.client.delete(f"{API}/{path}/{made_up[kind]}", headers=s.eve)
        assert outsider.status_code == fake.status_code == 404
        assert outsider.json() == fake.json() == {"detail": f"{kind} not found"}
    assert audit(s, who=s.eve).status_code == 404
    member(s, "bob", "viewer")
    r = s.client.delete(f"{API}/measurements/{zno['id']}", headers=s.bob)
    assert r.status_code == 403 and "editor" in r.json()["detail"]
    assert s.client.delete(f"{API}/datasets/{dataset}", headers=s.bob).status_code == 403
    assert audit(s, who=s.bob).status_code == 403  # viewers do not read who deleted what
    assert len(measurements(s)) == 3 and audit(s).json()["items"] == []


def test_the_audit_log_pages_with_server_made_cursors(server):
    s = server
    for m in measurements(s).values():
        assert s.client.delete(f"{API}/measurements/{m['id']}", headers=s.alice).status_code == 204
    page = audit(s, limit=2).json()
    assert len(page["items"]) == 2 and page["next"].startswith("cur_")
    rest = audit(s, limit=2, after=page["next"]).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    seen = [e["detail"]["formula"] for e in page["items"] + rest["items"]]
    assert sorted(seen) == ["Fe2O3", "NaCl", "ZnO"]


def test_an_id_of_a_row_is_not_a_page_cursor(server):
    """A known measurement id (someone else's, say) cannot be used as `after` to learn where it
    lies among one's own rows: cursors are made by the server only."""
    s = server
    some = next(iter(measurements(s).values()))["id"]
    r = s.client.get(f"{API}/measurements", params={"after": some}, headers=s.alice)
    assert r.status_code == 400 and "page cursor" in r.json()["detail"]
    first = s.client.get(f"{API}/measurements", params={"limit": 1}, headers=s.alice).json()
    nxt = s.client.get(
        f"{API}/measurements", params={"limit": 1, "after": first["next"]}, headers=s.alice
    ).json()
    assert nxt["items"][0]["id"] != first["items"][0]["id"]
