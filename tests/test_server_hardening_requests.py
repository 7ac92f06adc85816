"""Requests that must not break other requests, and the server's last line of defence
(issue #18 section 1): a prediction batch isolates each request's failure, formulas with
absurd amounts are a 422, an unhandled exception is a JSON 500 with an error id that keeps the
connection open, and a body sent without a valid token is refused before it is read."""

from __future__ import annotations

import http.client
import logging
import re
import socket
import threading
import time
from types import SimpleNamespace

import pandas as pd
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.api import current_user, get_state  # noqa: E402
from matforge.server.testing import (  # noqa: E402
    BAND_GAPS,
    free_port,
    user_headers,
    wait_for_job,
    wait_for_port,
)
from matforge.server.training import _Batcher  # noqa: E402

API = "/api/v1"
GAPS = BAND_GAPS
ERROR_ID = re.compile(r"^[0-9a-f]{8}$")


def _settings(tmp_path, **kw) -> ServerSettings:
    base = dict(model_root=tmp_path / "models", job_poll_s=0.05, max_upload_bytes=50_000_000)
    return ServerSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A server with alice's public project of band gaps and a model trained on them."""
    tmp = tmp_path_factory.mktemp("hardening")
    app = create_app(str(tmp / "store.db"), _settings(tmp))
    engine = app.state.matforge.engine
    alice, bob = user_headers(engine, "alice"), user_headers(engine, "bob")
    with TestClient(app) as client:
        r = client.post(
            f"{API}/projects", json={"name": "oxides", "visibility": "public"}, headers=alice
        )
        pid = r.json()["id"]
        rows = [{"formula": f, "value": v} for f, v in GAPS]
        r = client.post(
            f"{API}/projects/{pid}/measurements",
            json={"property": "band_gap", "unit": "eV", "rows": rows},
            headers=alice,
        )
        assert r.status_code == 201, r.text
        r = client.post(
            f"{API}/models",
            json={"project_id": pid, "property": "band_gap", "n_estimators": 20},
            headers=alice,
        )
        model = r.json()
        assert wait_for_job(client, alice, model["job"]["id"])["status"] == "succeeded"
        yield SimpleNamespace(
            app=app, client=client, alice=alice, bob=bob, pid=pid, model_id=model["id"]
        )


def _predict(client, headers, model_id, formulas):
    return client.post(
        f"{API}/models/{model_id}/predict", json={"formulas": formulas}, headers=headers
    )


def _same(got: list[dict], expected: list[dict]) -> bool:
    """The same predictions, up to the rounding of summing in another batch."""
    return got == [
        {k: pytest.approx(v, rel=1e-6) if isinstance(v, float) else v for k, v in p.items()}
        for p in expected
    ]


def _concurrently(calls):
    """Run the callables on threads started together; their results in order."""
    results = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i, call):
        start.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001 — reported as the result
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


# --- one bad request does not fail the others -------------------------------------------


class _FakeModel:
    """predict_frame: mean = number of characters; raises for a batch holding "bad". The first
    call waits until ``hold`` is released, so that the requests behind it queue up."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.hold = threading.Event()

    def predict_frame(self, formulas):
        self.calls.append(list(formulas))
        if len(self.calls) == 1:
            assert self.hold.wait(30)
        if "bad" in formulas:
            raise ValueError("Input X contains infinity")
        n = len(formulas)
        return pd.DataFrame(
            {"mean": [float(len(f)) for f in formulas], "std": [1.0] * n, "error": [""] * n}
        )


def test_a_failing_request_of_a_prediction_batch_fails_alone():
    model = _FakeModel()
    batcher = _Batcher("artifact", model)
    first = threading.Thread(target=batcher.predict, args=(["first"],))
    first.start()
    while not model.calls:  # the first request is inside the model: the others queue
        time.sleep(0.01)
    requests = [["ab"], ["bad"], ["abcd", "abc"]]
    out = [None] * len(requests)

    def one(i):
        try:
            out[i] = batcher.predict(requests[i])
        except Exception as exc:  # noqa: BLE001
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(batcher._pending) < len(requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    model.hold.set()
    for t in [first, *threads]:
        t.join(30)
    assert ["ab", "bad", "abcd", "abc"] in model.calls  # they were batched in one call
    assert list(out[0]["mean"]) == [2.0]
    assert isinstance(out[1], ValueError) and "infinity" in str(out[1])
    assert list(out[2]["mean"]) == [4.0, 3.0]


def test_absurd_amounts_are_422_and_other_users_predictions_still_succeed(lab):
    good = [["ZnO", "Fe2O3"], ["NiO"], ["MgO", "TiO2", "GaAs"], ["Cu2O"]]
    alone = {
        tuple(f): _predict(lab.client, lab.bob, lab.model_id, f).json()["predictions"] for f in good
    }
    bad = ["Zn1e308O", "ZnO"]
    calls = [lambda f=f: _predict(lab.client, lab.bob, lab.model_id, f) for f in good * 3]
    calls.insert(5, lambda: _predict(lab.client, lab.alice, lab.model_id, bad))
    results = _concurrently(calls)
    refused = results.pop(5)
    assert not isinstance(refused, BaseException), refused
    assert refused.status_code == 422, refused.text
    assert "Zn1e308O" in refused.json()["detail"] and "1e308" in refused.json()["detail"]
    for formulas, r in zip(good * 3, results, strict=True):
        assert not isinstance(r, BaseException), r
        assert r.status_code == 200, r.text
        assert _same(r.json()["predictions"], alone[tuple(formulas)])


@pytest.mark.parametrize(
    "formula",
    ["Zn1e308O", "Zn2O1e307", "Zn1e400O", "Fe2000000O3", "Zn₁₀₀₀₀₀₀₀O"],
)
def test_formulas_with_non_finite_or_absurd_amounts_are_422(lab, formula):
    r = _predict(lab.client, lab.bob, lab.model_id, ["ZnO", formula])
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"formulas[1] {formula!r}: ")


def test_large_but_real_amounts_and_bad_syntax_still_answer_per_row(lab):
    r = _predict(lab.client, lab.bob, lab.model_id, ["C60", "Zn1000O1000", "Qq2", "ZnO"])
    assert r.status_code == 200, r.text
    p = r.json()["predictions"]
    assert p[0]["mean"] is not None and p[1]["mean"] is not None and p[3]["mean"] is not None
    assert p[2]["mean"] is None and "Qq" in p[2]["error"]


def test_a_request_that_breaks_the_model_fails_alone_over_http(lab):
    """A request that gets past the boundary and still breaks the model: its own 500, the
    others of its batch their predictions."""
    good = [["ZnO"], ["NiO", "MgO"], ["Fe2O3"]]
    alone = {
        tuple(f): _predict(lab.client, lab.bob, lab.model_id, f).json()["predictions"] for f in good
    }
    cache = lab.app.state.matforge.models
    batcher = next(iter(cache._models.values()))
    real = batcher.model
    calls, hold = [], threading.Event()

    class Breaking:
        def __getattr__(self, name):
            return getattr(real, name)

        def predict_frame(self, formulas):
            calls.append(list(formulas))
            if len(calls) == 1:  # the others queue behind this call, to be batched together
                assert hold.wait(30)
            if "NaCl" in formulas:
                raise RuntimeError("the model broke")
            return real.predict_frame(formulas)

    batcher.model = Breaking()
    try:
        first = threading.Thread(
            target=_predict, args=(lab.client, lab.bob, lab.model_id, ["GaAs"])
        )
        first.start()
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        results = [None] * (1 + len(good))
        requests = [(lab.alice, ["NaCl"])] + [(lab.bob, f) for f in good]

        def one(i):
            results[i] = _predict(lab.client, requests[i][0], lab.model_id, requests[i][1])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        while len(batcher._pending) < len(requests) and time.monotonic() < deadline:
            time.sleep(0.01)
        hold.set()
        for t in [first, *threads]:
            t.join(60)
    finally:
        hold.set()
        batcher.model = real
    assert any("NaCl" in c and len(c) > 1 for c in calls), calls  # batched with the others
    broken, *others = results
    assert broken.status_code == 500 and ERROR_ID.match(broken.json()["error_id"])
    for formulas, r in zip(good, others, strict=True):
        assert r.status_code == 200, r.text
        assert _same(r.json()["predictions"], alone[tuple(formulas)])


# --- the last line of defence -----------------------------------------------------------


def _raise():
    raise RuntimeError("secret internals\nsecond line")


def test_an_unhandled_exception_is_a_json_500_with_an_error_id_that_is_logged(lab, caplog):
    lab.app.dependency_overrides[current_user] = _raise
    try:
        with caplog.at_level(logging.ERROR, logger="matforge.server"):
            r = lab.client.get(f"{API}/me", headers=lab.alice)
    finally:
        lab.app.dependency_overrides.clear()
    assert r.status_code == 500
    body = r.json()
    assert ERROR_ID.match(body["error_id"]) and body["error_id"] in body["detail"]
    assert "secret" not in r.text and "Traceback" not in r.text
    lines = [rec.getMessage() for rec in caplog.records if body["error_id"] in rec.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "RuntimeError: secret internals\\nsecond line" in lines[0] and "/api/v1/me" in lines[0]
    assert not any(rec.exc_info for rec in caplog.records if rec.levelno >= logging.ERROR)


def _store_fails():
    from matforge.errors import StoreError

    raise StoreError(
        "could not write to postgresql+psycopg://lab:***@db.internal:5432/matforge: "
        'relation "measurements" is locked'
    )


def test_a_store_error_during_a_request_shows_neither_the_store_url_nor_the_driver(lab, caplog):
    """A StoreError is a MatforgeError, whose message is otherwise shown as written; the store's
    messages name its URL and repeat the driver's text, so they go to the log only."""
    lab.app.dependency_overrides[current_user] = _store_fails
    try:
        with caplog.at_level(logging.ERROR, logger="matforge.server"):
            r = lab.client.get(f"{API}/me", headers=lab.alice)
    finally:
        lab.app.dependency_overrides.clear()
    assert r.status_code == 500
    body = r.json()
    assert body["detail"] == f"internal server error (error id {body['error_id']})"
    assert "db.internal" not in r.text and "relation" not in r.text
    (line,) = [rec.getMessage() for rec in caplog.records if body["error_id"] in rec.getMessage()]
    assert "StoreError: could not write to postgresql+psycopg://lab:***@db.internal" in line


def test_an_unhandled_exception_in_optimade_is_an_optimade_error_document(lab):
    lab.app.dependency_overrides[get_state] = _raise
    try:
        r = lab.client.get("/optimade/v1/structures")
    finally:
        lab.app.dependency_overrides.clear()
    assert r.status_code == 500
    (error,) = r.json()["errors"]
    assert error["status"] == "500" and re.search(r"error id [0-9a-f]{8}", error["detail"])


@pytest.fixture
def live(tmp_path):
    """A uvicorn server on loopback (in this process, so that a route can be made to raise)."""
    uvicorn = pytest.importorskip("uvicorn")
    app = create_app(str(tmp_path / "store.db"), _settings(tmp_path))
    alice = user_headers(app.state.matforge.engine, "alice")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield SimpleNamespace(app=app, port=port, alice=alice)
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_500_keeps_the_keep_alive_connection_open(live):
    live.app.dependency_overrides[current_user] = _raise
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        conn.request("GET", f"{API}/me", headers=live.alice)
        r = conn.getresponse()
        assert r.status == 500 and b"error_id" in r.read()
        sock = conn.sock
        assert sock is not None
        live.app.dependency_overrides.clear()
        conn.request("GET", f"{API}/me", headers=live.alice)  # the same connection
        r = conn.getresponse()
        assert r.status == 200 and b"alice" in r.read()
        assert conn.sock is sock  # http.client did not have to reconnect
    finally:
        conn.close()
        live.app.dependency_overrides.clear()


# --- no body is read before the token is checked ----------------------------------------


class _Body:
    """A streamed request body that counts how many of its chunks were read."""

    def __init__(self, chunks=100, size=64 * 1024):
        self.chunks_read = 0
        self.chunks, self.size = chunks, size

    def __iter__(self):
        for _ in range(self.chunks):
            self.chunks_read += 1
            yield b"x" * self.size


@pytest.mark.parametrize(
    "auth",
    [None, {"Authorization": "Bearer mf_not-a-token"}, {"Authorization": "Basic YTpi"}],
)
@pytest.mark.parametrize("path", ["uploads", "measurements"])
def test_a_body_without_a_valid_token_is_refused_before_it_is_read(lab, auth, path):
    body = _Body()
    content_type = "multipart/form-data; boundary=x" if path == "uploads" else "application/json"
    r = lab.client.post(
        f"{API}/projects/{lab.pid}/{path}",
        content=body,
        headers={"Content-Type": content_type, **(auth or {})},
    )
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"
    # the same answer as the route's own check gives where there is no body
    assert r.json() == lab.client.get(f"{API}/me", headers=auth).json()
    assert body.chunks_read == 0


def test_with_a_valid_token_the_body_is_read_and_routing_answers_as_before(lab):
    body = _Body(chunks=1, size=10)
    r = lab.client.post(
        f"{API}/projects/{lab.pid}/measurements",
        content=body,
        headers={"Content-Type": "application/json", **lab.alice},
    )
    assert r.status_code == 422 and body.chunks_read == 1, r.text  # read, and found not to be JSON
    # an unknown path or a method the route does not take: still 404 / 405, token or not
    assert lab.client.post(f"{API}/nowhere", content=b"{}").status_code == 404
    r = lab.client.post(f"{API}/me", content=b"{}")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_a_large_upload_without_a_token_is_refused_before_it_is_sent(live):
    """The 401 arrives while the client has sent 1 MB of a declared 45 MB (over a socket: the
    server answers without waiting for the rest)."""
    declared = 45 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        s.sendall(
            (
                f"POST {API}/projects/abc/uploads HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            + b"x" * (1024 * 1024)
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
