"""The web UI in a real browser: Playwright drives Debian's headless ``chromium`` against a live
``matforge serve`` on a loopback port, with a fresh SQLite store and a user and token made by
the CLI.

The flow a bench scientist follows: log in with the token, make a project, upload a CSV (a bad
one first: every bad cell is listed), filter the measurements with the periodic table, export
them, train a model and see its parity and calibration plots, predict, create a campaign, ask
for proposals, enter a result and see the best-so-far chart, screen compositions with the model
(progress, top table, scatter plot); and, when the XRD classifier's weights are installed, drop
a pattern file and see the top structures and the overlay.

Chromium is not optional here: without it the tests fail (``.ci/run`` installs it with
``scripts/ci_chromium.sh``; locally ``apt-get install -y chromium``, or point
``MATFORGE_CHROMIUM`` at a Chromium binary). Playwright's own browser download is never used.

Screenshots of the main pages are always written to the test's temporary folder; with
``MATFORGE_SCREENSHOTS=1`` they are also copied to ``docs/img/`` (the README shows them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright
from pymatgen.core import Composition

from matforge.server.testing import free_port, stop_process, wait_for_port

REPO = Path(__file__).resolve().parents[1]
#: the `matforge` console script of the running environment
MATFORGE = str(Path(sys.executable).with_name("matforge"))
SCREENSHOT_DIR = REPO / "docs" / "img"
#: seconds a background job (training on 40 rows, a campaign step) may take on a busy 2-core box
JOB_TIMEOUT_MS = 120_000
# A server-side step (the first upload imports pint and pandas in the server process) can take
# more than Playwright's default 5 s on a busy 2-core machine; correctness is still asserted.
expect.set_options(timeout=30_000)
XRD_WEIGHTS = REPO / "src" / "matforge" / "xrd" / "data" / "cnn_v1.pt"
CANDIDATES = ["GaP", "AlAs", "InAs", "ZnSe", "CdSe", "MgO", "CaO", "SrTiO3", "BaTiO3", "ZnTe"]


def chromium_path() -> str:
    """The Chromium binary to drive; the test fails (not skips) without one."""
    configured = os.environ.get("MATFORGE_CHROMIUM")
    candidates = [configured] if configured else []
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser")]
    for path in candidates:
        if path and Path(path).exists():
            return path
    pytest.fail(
        "no Chromium found for the browser tests: install Debian's `chromium` "
        "(`bash scripts/ci_chromium.sh` or `apt-get install -y chromium`) or set MATFORGE_CHROMIUM"
    )


def _cli(*args: str, db: str, env: dict) -> str:
    out = subprocess.run(
        [MATFORGE, *args, "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, f"matforge {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live ``matforge serve`` on a free loopback port; yields (base URL, alice's token)."""
    tmp = tmp_path_factory.mktemp("serve")
    db = str(tmp / "lab.db")
    env = {
        **os.environ,
        "MATFORGE_HOME": str(tmp / "home"),
        "MATFORGE_SERVER_JOB_POLL_S": "0.1",
        "MATFORGE_SERVER_MODEL_ROOT": str(tmp / "models"),
    }
    _cli("user", "add", "alice", db=db, env=env)
    token = re.search(r"mf_[A-Za-z0-9_\-]+", _cli("token", "new", "alice", db=db, env=env))
    assert token, "`matforge token new` printed no token"
    port = free_port()
    log = open(tmp / "server.log", "w")
    process = subprocess.Popen(
        [
            MATFORGE,
            "serve",
            "--db",
            db,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_for_port(port, timeout=60, process=process)
        yield f"http://127.0.0.1:{port}", token.group(0)
    finally:
        stop_process(process, timeout=15)
        log.close()
        print((tmp / "server.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Save a screenshot: into a temporary folder, and docs/img/ with MATFORGE_SCREENSHOTS=1."""
    folder = tmp_path_factory.mktemp("screenshots")
    publish = os.environ.get("MATFORGE_SCREENSHOTS") == "1"

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, f"screenshot {name} is (nearly) empty"
        if publish:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, SCREENSHOT_DIR / path.name)
        return path

    return take


@pytest.fixture(scope="module")
def gaps_csv(tmp_path_factory) -> Path:
    """40 non-metals of the bundled matbench_expt_gap data set (band gap, eV)."""
    from matforge.datasets import load_dataset

    df = load_dataset("matbench_expt_gap")
    df = df[(df["gap_expt"] > 0) & (df["flag"].fillna("") == "")]
    df = df[df["formula"].str.contains("O")].head(40)
    path = tmp_path_factory.mktemp("data") / "gaps.csv"
    df[["formula", "gap_expt"]].rename(columns={"gap_expt": "value"}).to_csv(path, index=False)
    return path


def _job_succeeds(page, box: str) -> None:
    """Wait until the background job followed in ``box`` (a UI job line) has succeeded."""
    expect(page.locator(box)).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)


def _plot_points(page, selector: str, trace: int = 0) -> int:
    """Points in trace ``trace`` of the plotly figure drawn in ``selector`` (0 if none)."""
    return page.evaluate(
        """([sel, i]) => { const d = document.querySelector(sel);
             return d && d.data && d.data[i] ? d.data[i].x.length : 0; }""",
        [selector, trace],
    )


def test_the_ui_refuses_a_bad_token(server, browser):
    base, _ = server
    page = browser.new_page()
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/ui/"))
    page.fill("#token", "mf_not-a-token")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("That token is not valid.")
    expect(page.locator("#tabs")).to_be_hidden()
    page.close()


def test_a_bench_scientist_session(server, browser, shots, gaps_csv, tmp_path):
    base, token = server
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    # log in
    page.goto(base + "/ui/")
    shots(page, "ui-login")
    page.fill("#token", token)
    page.click("#login-form button")
    expect(page.locator("#whoami")).to_have_text("alice")
    assert page.evaluate("sessionStorage.getItem('matforge.token')") == token

    # a project
    page.fill("#project-name", "oxide gaps")
    page.click("#project-form button")
    expect(page.locator("#project option:checked")).to_have_text("oxide gaps (owner)")

    # a bad upload: nothing written, each bad cell listed with its line and column
    bad = tmp_path / "bad.csv"
    bad.write_text("formula,value\nZnO,3.3\nFe2Ox3,abc\nMgO,7.8\n")
    page.set_input_files("#upload-file", str(bad))
    expect(page.locator("#upload-preview table tbody tr")).to_have_count(3)
    page.fill("#upload-property", "band_gap")
    page.fill("#upload-unit", "eV")
    page.click("#upload-form button[type=submit]")
    errors_table = page.locator("#upload-errors tbody tr")
    expect(errors_table).to_have_count(2)
    expect(errors_table.first).to_contain_text("3")
    expect(page.locator("#upload-result")).to_contain_text("nothing was written")

    # the good upload
    page.set_input_files("#upload-file", str(gaps_csv))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-ok")).to_have_text("40 of 40 rows written (band_gap, eV).")
    expect(page.locator("#m-table tbody tr")).to_have_count(40)

    # filter with the periodic table and a value range; sort by value
    data = pd.read_csv(gaps_csv)
    has_ba = [any(e.symbol == "Ba" for e in Composition(f).elements) for f in data["formula"]]
    expected = data[np.array(has_ba) & (data["value"] >= 2)]
    assert 0 < len(expected) < 40
    page.click("#ptable button[data-el='Ba']")
    expect(page.locator("#ptable button[data-el='Ba']")).to_have_class(re.compile(r"\bon\b"))
    expect(page.locator("#f-elements")).to_have_value("Ba")
    page.fill("#f-min", "2")
    page.click("#filter-form button[type=submit]")
    rows = page.locator("#m-table tbody tr")
    expect(rows).to_have_count(len(expected))
    formulas = rows.locator("td:nth-child(1)").all_inner_texts()
    values = [float(v) for v in rows.locator("td:nth-child(3)").all_inner_texts()]

    def reduced(fs):
        return sorted(Composition(f).reduced_formula for f in fs)

    assert reduced(formulas) == reduced(expected["formula"])
    page.click("#m-table th[data-key='value']")
    page.click("#m-table th[data-key='value']")  # descending
    sorted_values = [float(v) for v in rows.locator("td:nth-child(3)").all_inner_texts()]
    assert sorted_values == sorted(values, reverse=True)
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = Path(download.value.path()).read_text().splitlines()
    assert exported[0].startswith("id,project_id") and len(exported) == len(values) + 1
    shots(page, "ui-data")
    page.click("#f-clear")
    expect(rows).to_have_count(40)

    # train a model, wait for the job, see the parity and calibration plots
    page.click("#tabs button[data-tab='models']")
    page.select_option("#train-property", "band_gap")
    page.fill("#train-trees", "30")
    page.click("#train-form button")
    _job_succeeds(page, "#train-job")
    page.wait_for_function(
        "() => { const d = document.querySelector('#parity-plot');"
        " return d && d.data && d.data[0].x.length === 40; }",
        timeout=30_000,
    )
    assert page.locator("#parity-plot .main-svg").count() > 0  # plotly drew it
    assert _plot_points(page, "#calibration-plot") > 10
    expect(page.locator("#model-info")).to_contain_text("40 training rows")
    page.fill("#predict-formulas", "MgO\nXx2")
    page.click("#predict-form button")
    predictions = page.locator("#predict-table tbody tr")
    expect(predictions).to_have_count(2)
    expect(predictions.first.locator("td").nth(1)).to_have_text(
        re.compile(r"^[\d.e+-]+ ± [\d.e+-]+$")
    )
    expect(predictions.nth(1)).to_contain_text("Xx")
    domain = predictions.first.locator("td").nth(3)  # the model's applicability domain
    expect(domain).to_have_text(re.compile(r"^(in domain|out of domain: extrapolation)$"))
    expect(domain).to_have_attribute("title", re.compile(r"in domain up to [\d.]+"))
    shots(page, "ui-models")

    # a campaign: create it from the project's data, ask for proposals, enter a result
    page.click("#tabs button[data-tab='campaigns']")
    page.fill("#campaign-name", "wide gap")
    page.select_option("#campaign-property", "band_gap")
    page.fill("#campaign-candidates", "\n".join(CANDIDATES))
    page.click("#campaign-form button")
    info = page.locator("#campaign-info")
    expect(info).to_contain_text("over 10 candidates · 40 results, 0 pending")
    page.fill("#suggest-n", "2")
    page.click("#suggest-form button")
    _job_succeeds(page, "#suggest-job")
    pending = page.locator("#suggestion-table input.measured")
    expect(pending).to_have_count(2)
    proposed = page.locator("#suggestion-table tbody tr").first.locator("td").nth(1).inner_text()
    assert proposed in CANDIDATES
    pending.first.fill("9.5")  # better than every initial result: a new best so far
    page.click("#observe-form button[type=submit]")
    expect(info).to_contain_text("41 results, 1 pending")
    expect(info).to_contain_text(f"best so far {proposed}: 9.5")
    page.wait_for_function(
        "() => { const d = document.querySelector('#best-plot');"
        " return d && d.data && d.data[1].y.length === 41 && d.data[1].y[40] === 9.5; }",
        timeout=10_000,
    )
    shots(page, "ui-campaigns")

    # screening: launch a screen with the trained model, follow it, see the top table and plot
    page.click("#tabs button[data-tab='screening']")
    expect(page.locator("#screening .unavailable")).to_have_count(0)
    expect(page.locator("#screen-form button")).to_be_enabled()
    page.fill("#screen-elements", "Mg,Zn,O,S")
    page.fill("#screen-atoms", "5")
    page.fill("#screen-arities", "2,3")
    page.select_option("#screen-rank", "max")
    page.fill("#screen-top", "10")
    page.click("#screen-form button")
    _job_succeeds(page, "#screen-job")
    expect(page.locator("#screen-job")).to_contain_text("candidates screened")
    top = page.locator("#screen-table tbody tr")
    expect(top).to_have_count(10)
    means = [float(v) for v in top.locator("td:nth-child(3)").all_inner_texts()]
    assert means == sorted(means, reverse=True)
    for formula in top.locator("td:nth-child(2)").all_inner_texts():
        assert {e.symbol for e in Composition(formula).elements} <= {"Mg", "Zn", "O", "S"}
    page.wait_for_function(
        "() => { const d = document.querySelector('#screen-plot');"
        " return d && d.data && d.data.length === 2 && d.data[1].x.length === 10; }",
        timeout=10_000,
    )
    assert _plot_points(page, "#screen-plot", 0) >= 10  # the sample of everything screened
    shots(page, "ui-screening")

    # generate: sample the shipped language model, then design against the trained model
    page.click("#tabs button[data-tab='generate']")
    expect(page.locator("#generate .unavailable")).to_have_count(0)
    page.fill("#sample-n", "300")
    page.fill("#sample-in", "O")
    page.click("#sample-form button[type=submit]")
    _job_succeeds(page, "#sample-job")
    expect(page.locator("#sample-job")).to_contain_text("% charge-balanced")
    rows = page.locator("#sample-table tbody tr")
    assert 10 < rows.count() <= 100  # the rest is in the CSV
    for formula in rows.locator("td:nth-child(1)").all_inner_texts():
        assert "O" in {e.symbol for e in Composition(formula).elements}
    assert _plot_points(page, "#sample-plot", 0) > 0
    with page.expect_download() as download:
        page.click("#sample-csv")
    generated = pd.read_csv(download.value.path(), keep_default_na=False)
    assert list(generated.columns[:2]) == ["formula", "count"] and generated["count"].sum() == 300
    expect(page.locator("#design-model option")).to_have_count(1)  # the trained band-gap model
    page.fill("#design-goal", "band_gap >= 2")
    page.fill("#design-budget", "100")
    page.fill("#design-top", "10")
    page.click("#design-form button[type=submit]")
    _job_succeeds(page, "#design-job")
    expect(page.locator("#design-job")).to_contain_text("evaluations in")
    designs = page.locator("#design-table tbody tr")
    expect(designs).to_have_count(10)
    rewards = [float(v) for v in designs.locator("td:nth-child(3)").all_inner_texts()]
    assert rewards == sorted(rewards, reverse=True)
    assert _plot_points(page, "#design-plot", 0) > 0
    shots(page, "ui-generate")

    assert not errors, f"JavaScript errors in the page: {errors}"
    foreign = [u for u in requests if not u.startswith(base) and not u.startswith("blob:")]
    assert not foreign, f"the UI fetched from outside the server: {foreign[:5]}"
    context.close()


def _xrd_panel(server, browser):
    """(context, page, JavaScript errors) of a browser logged in as alice on the XRD tab."""
    base, token = server
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/ui/#xrd")
    page.fill("#token", token)
    page.click("#login-form button")
    expect(page.locator("#whoami")).to_have_text("alice")
    page.click("#tabs button[data-tab='xrd']")
    return context, page, errors


def _expect_overlay(page):
    """The XRD overlay shows the measured pattern and at least one simulated match."""
    page.wait_for_function(
        "() => { const d = document.querySelector('#xrd-plot');"
        " return d && d.data && d.data.length >= 2 && d.data[1].x.length > 100; }",
        timeout=10_000,
    )
    assert _plot_points(page, "#xrd-plot", 0) > 1000  # the measured pattern


@pytest.mark.skipif(not XRD_WEIGHTS.exists(), reason="the shipped XRD weights are not installed")
def test_xrd_identification(server, browser, shots):
    """Drop a pattern file on the XRD panel: the top structures and the overlay plot."""
    context, page, errors = _xrd_panel(server, browser)
    expect(page.locator("#xrd .unavailable")).to_have_count(0)
    page.fill("#xrd-k", "3")
    page.set_input_files("#xrd-file", str(XRD_WEIGHTS.with_name("example_pattern.xy")))
    expect(page.locator("#xrd-table tbody tr")).to_have_count(3, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#xrd-status")).to_contain_text("3 candidate structures")
    _expect_overlay(page)
    shots(page, "ui-xrd")
    assert not errors, f"JavaScript errors in the page: {errors}"
    context.close()


@pytest.mark.skipif(not XRD_WEIGHTS.exists(), reason="the shipped XRD weights are not installed")
def test_xrd_batch_identification(server, browser, shots):
    """Choose two pattern files on the XRD panel: a summary row each, in order; a click on one
    shows its top structures and the overlay."""
    context, page, errors = _xrd_panel(server, browser)
    page.fill("#xrd-k", "3")
    nacl = XRD_WEIGHTS.with_name("example_pattern.xy")
    sno2 = REPO / "docs" / "examples" / "xrd" / "sno2_textured.xy"
    page.set_input_files("#xrd-file", [str(nacl), str(sno2)])
    rows = page.locator("#xrd-batch-table tbody tr")
    expect(rows).to_have_count(2, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#xrd-status")).to_contain_text("2 files identified")
    expect(rows.locator("td:nth-child(1)")).to_have_text(["example_pattern.xy", "sno2_textured.xy"])
    expect(rows.locator("td:nth-child(2)")).to_have_text(["cubic", "tetragonal"])
    expect(rows.locator("td:nth-child(6)")).to_have_text(["", ""])  # no errors
    expect(page.locator("#xrd-table tbody tr")).to_have_count(0)  # no detail before a click
    prototype = rows.nth(1).locator("td:nth-child(4)").inner_text()
    rows.nth(1).locator("button").click()
    expect(rows.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#xrd-table tbody tr")).to_have_count(3, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#xrd-status")).to_contain_text("sno2_textured.xy: 3 candidate structures")
    # the detail's best structure is the summary's prototype
    expect(page.locator("#xrd-table tbody tr").first.locator("td:nth-child(2)")).to_contain_text(
        prototype
    )
    _expect_overlay(page)
    shots(page, "ui-xrd-batch")
    assert not errors, f"JavaScript errors in the page: {errors}"
    context.close()
