"""XRD identification through the REST API: ``POST /xrd/identify`` (multipart ``file``, ``k``).

The route does not touch the store, so SQLite alone is used. The test of a real identification
needs the shipped classifier weights and is skipped, saying so, without them.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers  # noqa: E402

API = "/api/v1"


def _client(tmp_path, **settings):
    app = create_app(
        f"sqlite:///{tmp_path / 'store.db'}",
        ServerSettings(model_root=tmp_path / "models", **settings),
    )
    return TestClient(app), user_headers(app.state.matforge.engine, "alice")


def _post(client, headers, name: str, content: bytes, **form):
    return client.post(
        f"{API}/xrd/identify",
        files={"file": (name, content, "text/plain")},
        data={k: str(v) for k, v in form.items()},
        headers=headers,
    )


def test_identify_without_weights_answers_503_with_the_reason(tmp_path):
    client, A = _client(tmp_path, xrd_model=tmp_path / "no-such-model.pt")
    with client:
        r = _post(client, A, "p.xy", b"10 1\n20 2\n")
        assert r.status_code == 503
        assert "no trained XRD classifier" in r.json()["detail"]
        assert _post(client, {}, "p.xy", b"10 1\n").status_code == 401


def test_identify_refuses_bad_files_and_bodies(tmp_path, tiny_xrd_model):
    client, A = _client(tmp_path, max_pattern_bytes=2_000, xrd_model=tiny_xrd_model)
    with client:
        r = _post(client, A, "scan.xy", b"2theta intensity\n10 5\n11 oops\n12 7\n")
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert "scan.xy" in detail and "matforge-xrd-" not in detail  # no server paths
        r = _post(client, A, "scan.raw", b"\x00\x01binary")
        assert r.status_code == 400 and ".raw" in r.json()["detail"]
        r = _post(client, A, "big.xy", b"10 1\n" * 1_000)
        assert r.status_code == 413
        for form in ({"k": 0}, {"k": 21}, {"k": "five"}, {"overlay": 9}):
            assert _post(client, A, "p.xy", b"10 1\n", **form).status_code == 422, form
        assert client.post(f"{API}/xrd/identify", headers=A).status_code == 422  # no file


def test_identify_answers_what_the_python_api_answers(tmp_path, tiny_xrd_model):
    """The server's classifier (a tiny real one here, so that the test runs whether or not the
    shipped weights are installed) answers exactly what the Python API answers."""
    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.identify import example_pattern, identify
    from matforge.xrd.io import read_pattern, write_xy

    example = write_xy(example_pattern(), tmp_path / "nacl.xy")
    client, A = _client(tmp_path, xrd_model=tiny_xrd_model)
    with client:
        r = _post(client, A, "nacl.xy", example.read_bytes(), k=4, overlay=1)
    assert r.status_code == 200, r.text
    out = r.json()
    model = XRDClassifier.load(tiny_xrd_model.with_suffix(""))
    want = identify(read_pattern(example), model=model, top=4)
    assert [m["prototype"] for m in out["matches"]] == [
        c.name for c in want.candidates["prototype"]
    ]
    assert [m["probability"] for m in out["matches"]] == pytest.approx(
        [c.probability for c in want.candidates["prototype"]], abs=1e-6
    )
    assert [c["name"] for c in out["space_groups"]] == [
        c.name for c in want.candidates["spacegroup"]
    ]
    first, rest = out["matches"][0], out["matches"][1:]
    info = want.prototype_info[first["prototype"]]
    assert info["formula"] in first["name"]
    assert first["space_group"].endswith(f"({info['spacegroup']})")
    # the best match is simulated for the overlay, the others are not (overlay=1)
    assert len(first["two_theta"]) == len(first["intensity"]) > 100
    assert 0 < first["score"] <= 1 and max(first["intensity"]) == pytest.approx(1, abs=1e-6)
    assert all(m["two_theta"] is None for m in rest)
    # the measured pattern comes back for the plot: its 2θ range, binned to at most 4000 points
    # by the maximum of each bin, so the peaks keep their height
    pattern = read_pattern(example)
    assert len(pattern) == 4001 and len(out["two_theta"]) == len(out["intensity"]) == 4000
    assert out["wavelength"] == pytest.approx(1.5406)
    assert out["two_theta"] == sorted(out["two_theta"])
    assert pattern.two_theta[0] <= out["two_theta"][0] < out["two_theta"][-1] <= 90.0
    assert max(out["intensity"]) == pytest.approx(pattern.intensity.max())
