"""XRD identification through the REST API: ``POST /xrd/identify`` (multipart ``file``, ``k``).

The route does not touch the store, so SQLite alone is used. The test of a real identification
needs the shipped classifier weights and is skipped, saying so, without them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import user_headers  # noqa: E402

API = "/api/v1"
DATA = Path(__file__).resolve().parents[1] / "src" / "matforge" / "xrd" / "data"
EXAMPLE = DATA / "example_pattern.xy"
SHIPPED = DATA / "cnn_v1.pt"


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


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped XRD weights are not installed")
def test_identify_refuses_bad_files_and_bodies(tmp_path):
    client, A = _client(tmp_path, max_pattern_bytes=2_000)
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


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped XRD weights are not installed")
def test_identify_answers_what_the_python_api_answers(tmp_path):
    from matforge.xrd.identify import identify
    from matforge.xrd.io import read_pattern

    client, A = _client(tmp_path)
    with client:
        r = _post(client, A, "nacl.xy", EXAMPLE.read_bytes(), k=4, overlay=1)
    assert r.status_code == 200, r.text
    out = r.json()
    want = identify(read_pattern(EXAMPLE), top=4)
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
    pattern = read_pattern(EXAMPLE)
    assert len(pattern) == 4001 and len(out["two_theta"]) == len(out["intensity"]) == 4000
    assert out["wavelength"] == pytest.approx(1.5406)
    assert out["two_theta"] == sorted(out["two_theta"])
    assert pattern.two_theta[0] <= out["two_theta"][0] < out["two_theta"][-1] <= 90.0
    assert max(out["intensity"]) == pytest.approx(pattern.intensity.max())
