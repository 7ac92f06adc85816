"""XRD identification through the REST API: ``POST /xrd/identify`` (multipart ``file``, ``k``)
and ``POST /xrd/identify/batch`` (multipart ``files``: one summary row per file).

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
RUTILE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "xrd" / "tio2" / "rutile.xy"
#: the answer's fields and the columns of ``identify_files`` they come from
BATCH_COLUMNS = {
    "crystal_system": "crystal_system",
    "crystal_system_probability": "crystal_system_probability",
    "space_group": "spacegroup",
    "space_group_probability": "spacegroup_probability",
    "prototype": "prototype",
    "prototype_probability": "prototype_probability",
    "indexed_system": "indexed_system",
    "indexed_cell": "indexed_cell",
    "m20": "m20",
}


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


def _post_batch(client, headers, files: list[tuple[str, bytes]], **form):
    return client.post(
        f"{API}/xrd/identify/batch",
        files=[("files", (name, content, "text/plain")) for name, content in files],
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


def test_batch_answers_a_row_per_file_as_the_python_api_does(tmp_path, tiny_xrd_model):
    """Two patterns and, between them, a file that cannot be read: three rows in upload order,
    the good ones exactly what ``identify_files`` answers, the bad one its error, naming the
    file as uploaded and no server path."""
    import pandas as pd

    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.identify import example_pattern, identify_files
    from matforge.xrd.io import write_xy

    nacl = write_xy(example_pattern(), tmp_path / "nacl.xy")
    bad = b"2theta intensity\n10 5\n11 oops\n12 7\n"
    client, A = _client(tmp_path, xrd_model=tiny_xrd_model)
    uploads = [
        ("nacl.xy", nacl.read_bytes()),
        ("bad scan.xy", bad),
        ("rutile.xy", RUTILE.read_bytes()),
    ]
    with client:
        r = _post_batch(client, A, uploads)
    assert r.status_code == 200, r.text
    rows = r.json()["files"]
    assert [row["source"] for row in rows] == ["nacl.xy", "bad_scan.xy", "rutile.xy"]
    failed = rows[1]
    assert failed["error"].startswith("bad_scan.xy, line 3:") and "oops" in failed["error"]
    assert "matforge-xrd-" not in failed["error"] and "/" not in failed["error"]
    assert failed["crystal_system"] is None and failed["prototype_probability"] is None

    model = XRDClassifier.load(tiny_xrd_model.with_suffix(""))
    want = identify_files([nacl, RUTILE], model)
    for got, expected in zip([rows[0], rows[2]], want.to_dict("records"), strict=True):
        assert got["error"] is None
        for field, column in BATCH_COLUMNS.items():
            value = expected.get(column)
            if field.endswith("_probability") or field == "m20":
                assert got[field] == (None if pd.isna(value) else pytest.approx(value, abs=1e-6))
            else:
                assert got[field] == (value or None), field
        assert got["warnings"] == [w for w in expected["warnings"].split(" | ") if w]
    assert rows[0]["crystal_system"] in ("cubic", "uncertain")
    assert 0 < rows[0]["crystal_system_probability"] <= 1


def test_batch_in_which_no_file_can_be_read_answers_400_with_every_error(
    tmp_path, tiny_xrd_model
):
    """A batch that identifies nothing failed as a whole (400), each file's error in the detail;
    one readable file among unreadable ones keeps the 200 with a row per file."""
    from matforge.xrd.identify import example_pattern
    from matforge.xrd.io import write_xy

    client, A = _client(tmp_path, xrd_model=tiny_xrd_model)
    with client:
        r = _post_batch(client, A, [("a.xy", b"10 1\n11 oops\n"), ("b.xy", b"0")])
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith("none of the 2 pattern files could be identified: a.xy, line 2")
        assert "b.xy" in detail and "matforge-xrd-" not in detail
        good = write_xy(example_pattern(), tmp_path / "nacl.xy").read_bytes()
        r = _post_batch(client, A, [("a.xy", b"0"), ("nacl.xy", good)])
        assert r.status_code == 200, r.text
        assert [row["error"] is None for row in r.json()["files"]] == [False, True]


def test_batch_refuses_too_many_and_too_large_files(tmp_path, tiny_xrd_model):
    client, A = _client(
        tmp_path, max_pattern_bytes=2_000, max_xrd_batch_files=2, xrd_model=tiny_xrd_model
    )
    with client:
        r = _post_batch(client, A, [("p.xy", b"10 1\n")] * 3)
        assert r.status_code == 413
        assert r.json()["detail"].startswith("3 pattern files in one request")
        assert "at most 2 at a time" in r.json()["detail"]
        r = _post_batch(client, A, [("small.xy", b"10 1\n"), ("big.xy", b"10 1\n" * 1_000)])
        assert r.status_code == 413 and "2,000 bytes" in r.json()["detail"]
        assert _post_batch(client, A, [("p.xy", b"10 1\n")], wavelength=0).status_code == 422
        assert client.post(f"{API}/xrd/identify/batch", headers=A).status_code == 422  # no file


def test_batch_without_weights_answers_503_and_without_a_token_401(tmp_path):
    client, A = _client(tmp_path, xrd_model=tmp_path / "no-such-model.pt")
    with client:
        r = _post_batch(client, A, [("p.xy", b"10 1\n20 2\n")] * 2)
        assert r.status_code == 503
        assert "no trained XRD classifier" in r.json()["detail"]
        r = _post_batch(client, {}, [("p.xy", b"10 1\n")])
        assert r.status_code == 401 and "API token" in r.json()["detail"]
