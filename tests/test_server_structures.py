"""Stored structures through the server (issue #22 §2-3): the REST routes, OPTIMADE entries
with full structure fields beside composition-only ones, provider fields, visibility, and the
clients materials scientists use, against a live ``matforge serve``: pymatgen's
``OptimadeRester`` and optimade-python-tools' ``optimade-get``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("optimade")

from fastapi.testclient import TestClient  # noqa: E402
from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from matforge.server import ServerSettings, create_app  # noqa: E402
from matforge.server.testing import free_port, stop_process, user_headers, wait_for_port  # noqa: E402
from matforge.store import structures as st  # noqa: E402

API = "/api/v1"
OPT = "/optimade/v1"
#: AFLOW prototype rows: HgS, GaAs, ZnS (zincblende), MgAl2O4 (spinel), ThMn12
ROWS = [0, 3, 18, 28, 40]
SOLID_SOLUTION = """data_ss
_cell_length_a 4.2
_cell_length_b 4.2
_cell_length_c 4.2
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Fe1 Fe 0 0 0 0.7
Ni1 Ni 0 0 0 0.3
O1 O 0.5 0.5 0.5 1
"""


def _same(a: Structure, b: Structure) -> bool:
    return StructureMatcher(scale=False).fit(a, b)


def _fill(url: str, tmp: Path) -> SimpleNamespace:
    """alice: a public project with five real CIFs, a disordered cell and band gaps (ZnO only
    as a composition), a private project with one structure. Returns what the tests need."""
    from matforge.datasets import load_dataset

    df = load_dataset("aflow_prototypes").iloc[ROWS]
    cifs = tmp / "cifs"
    cifs.mkdir()
    for row in df.itertuples():
        (cifs / f"{row.formula}.cif").write_text(row.cif)
    (cifs / "FeNiO.cif").write_text(SOLID_SOLUTION)
    (tmp / "private").mkdir()
    (tmp / "private" / "HgS.cif").write_text(df["cif"].iloc[0])
    app = create_app(url, ServerSettings(model_root=tmp / "models"))
    state = app.state.matforge
    users = {n: user_headers(state.engine, n) for n in ("alice", "bob")}
    A = users["alice"]
    with TestClient(app) as c:
        public = c.post(f"{API}/projects", json={"name": "lab", "visibility": "public"},
                        headers=A).json()["id"]  # fmt: skip
        c.post(f"{API}/projects", json={"name": "secret"}, headers=A)
        gaps = [{"formula": f, "value": v} for f, v in (("ZnS", 3.6), ("GaAs", 1.42), ("ZnO", 3.3))]
        r = c.post(f"{API}/projects/{public}/measurements", headers=A,
                   json={"property": "band_gap", "unit": "eV", "rows": gaps})  # fmt: skip
        assert r.status_code == 201, r.text
    st.ingest_structures(state.store, cifs, "alice/lab", method="refinement")
    st.ingest_structures(state.store, tmp / "private", "alice/secret", method="dft")
    originals = {
        Structure.from_dict(json.loads(s)).composition.reduced_formula: Structure.from_dict(
            json.loads(s)
        )
        for s in df["structure_json"]
    }
    state.store.close()
    return SimpleNamespace(users=users, originals=originals, cifs=cifs)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(request, tmp_path_factory, pg_schema_url):
    tmp = tmp_path_factory.mktemp("structures")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'store.db'}"
        contexts = None
    else:
        contexts = pg_schema_url()
        url = contexts.__enter__()
    filled = _fill(url, tmp)
    app = create_app(url, ServerSettings(model_root=tmp / "models"))
    with TestClient(app) as c:
        yield SimpleNamespace(client=c, url=url, tmp=tmp, **vars(filled))
    app.state.matforge.store.close()
    if contexts is not None:
        contexts.__exit__(None, None, None)


def _structures(world, who="alice", **params) -> list[dict]:
    r = world.client.get(f"{API}/structures", params=params, headers=world.users[who])
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_rest_lists_reads_and_downloads_structures(world):
    c, A = world.client, world.users["alice"]
    mine = _structures(world)
    assert len(mine) == 7  # 5 CIFs + the solid solution in lab, one in secret
    zns = _structures(world, elements="Zn,S", exact_elements=True)
    assert [s["spacegroup_symbol"] for s in zns] == ["F-43m"]
    assert [s["reduced_formula"] for s in _structures(world, spacegroup=227)] == ["MgAl2O4"]
    detail = c.get(f"{API}/structures/{zns[0]['id']}", headers=A).json()
    back = Structure.from_dict(detail["structure"])
    assert _same(back, world.originals["ZnS"]) and len(detail["sites"]) == 2
    for fmt in ("cif", "poscar", "extxyz"):
        r = c.get(f"{API}/structures/{zns[0]['id']}/file", params={"format": fmt}, headers=A)
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        path = world.tmp / Path(r.headers["content-disposition"].split('"')[1]).name
        path.write_text(r.text)
        assert _same(st.read_structure_file(path)[0].structure, world.originals["ZnS"]), fmt
    # the structure's material is the composition's: its measurements are one filter away
    r = c.get(f"{API}/measurements", params={"material_id": zns[0]["material_id"]}, headers=A)
    assert [m["value"] for m in r.json()["items"]] == [3.6]
    ss = _structures(world, elements="Fe,Ni,O")[0]
    assert ss["is_ordered"] is False
    r = c.get(f"{API}/structures/{ss['id']}/file", params={"format": "poscar"}, headers=A)
    assert r.status_code == 400 and "export it as CIF" in r.json()["detail"]


def test_structures_follow_the_projects_visibility(world):
    c = world.client
    private = _structures(world, elements="Hg,S")
    assert len(private) == 2  # alice sees both HgS: lab's and secret's
    secret = next(s for s in private if s["method"] == "dft")
    assert len(_structures(world, "bob")) == 6
    made_up = world.client.app.state.matforge.codec.encode("structure", 2**31 - 7)
    answers = {
        c.get(f"{API}/structures/{sid}", headers=world.users["bob"]).text
        for sid in (secret["id"], made_up, "nope")
    }
    assert answers == {json.dumps({"detail": "structure not found"}, separators=(",", ":"))}
    assert (
        c.get(f"{API}/structures/{secret['id']}/file", headers=world.users["bob"]).status_code
        == 404
    )
    assert c.get(f"{API}/structures").status_code == 401  # the REST API needs a token


def _all(client, headers=None, **params) -> list[dict]:
    out, url = [], f"{OPT}/structures"
    params = {"page_limit": 100, **params}
    while url:
        r = client.get(url, params=params, headers=headers or {})
        assert r.status_code == 200, r.text
        out += r.json()["data"]
        url, params = r.json()["links"]["next"], None
    return out


def test_optimade_serves_structures_and_honest_composition_only_entries(world):
    c = world.client
    entries = _all(c)
    structures = [e for e in entries if e["id"].startswith("str_")]
    compositions = [e for e in entries if e["id"].startswith("mat_")]
    assert len(structures) == 6 and len(compositions) == 3  # the private HgS is not served
    zns = next(e["attributes"] for e in structures
               if e["attributes"]["chemical_formula_reduced"] == "SZn")  # fmt: skip
    assert zns["nsites"] == 2 and sorted(zns["species_at_sites"]) == ["S", "Zn"]
    assert zns["dimension_types"] == [1, 1, 1] and len(zns["lattice_vectors"]) == 3
    assert zns["_matforge_space_group_it_number"] == 216
    assert (
        zns["_matforge_space_group_symbol"] == "F-43m" and zns["_matforge_method"] == "refinement"
    )
    assert zns["_matforge_band_gap"] == 3.6  # the material's measurement, in eV
    zno = next(e["attributes"] for e in compositions
               if e["attributes"]["chemical_formula_descriptive"] == "ZnO")  # fmt: skip
    assert zno["nsites"] is None and zno["lattice_vectors"] is None and zno["species"] is None
    assert zno["elements_ratios"] == [0.5, 0.5] and zno["_matforge_band_gap"] == 3.3
    ss = next(e["attributes"] for e in structures if "Ni" in e["attributes"]["elements"])
    assert ss["structure_features"] == ["disorder"]
    assert {"chemical_symbols": ["Fe", "Ni"], "concentration": [0.7, 0.3]}.items() <= next(
        s for s in ss["species"] if len(s["chemical_symbols"]) > 1
    ).items()
    # the private structure for its owner only
    assert len(_all(c, headers=world.users["alice"])) == len(entries) + 1


FILTERS = {
    "nsites IS KNOWN": lambda a: a["nsites"] is not None,
    "nsites IS UNKNOWN": lambda a: a["nsites"] is None,
    "_matforge_space_group_it_number = 216": lambda a: a["_matforge_space_group_it_number"] == 216,
    "_matforge_space_group_it_number > 150": lambda a: (
        (a["_matforge_space_group_it_number"] or 0) > 150
    ),
    '_matforge_space_group_symbol = "Fd-3m"': lambda a: (
        a["_matforge_space_group_symbol"] == "Fd-3m"
    ),
    '_matforge_method = "refinement"': lambda a: a["_matforge_method"] == "refinement",
    "_matforge_band_gap > 3": lambda a: (a["_matforge_band_gap"] or 0) > 3,
    "_matforge_band_gap > 3 AND nsites IS KNOWN": lambda a: (
        (a["_matforge_band_gap"] or 0) > 3 and a["nsites"] is not None
    ),
    "_matforge_band_gap IS UNKNOWN": lambda a: a["_matforge_band_gap"] is None,
    'elements HAS ALL "Zn","S" AND nelements = 2': lambda a: set(a["elements"]) == {"S", "Zn"},
    'structure_features HAS "disorder"': lambda a: "disorder" in a["structure_features"],
}


@pytest.mark.parametrize("text", list(FILTERS))
def test_optimade_filters_on_structure_and_provider_fields(world, text):
    every = _all(world.client)
    expected = sorted(e["id"] for e in every if FILTERS[text](e["attributes"]))
    assert expected, text  # each filter selects something
    assert sorted(e["id"] for e in _all(world.client, filter=text)) == expected


def test_provider_fields_are_documented_and_sortable(world):
    c = world.client
    props = c.get(f"{OPT}/info/structures").json()["data"]["properties"]
    assert props["_matforge_band_gap"]["unit"] == "eV"
    assert props["_matforge_space_group_it_number"]["type"] == "integer"
    assert "_matforge_density" not in props  # no visible measurement of it
    ordered = _all(c, sort="-_matforge_band_gap", filter="_matforge_band_gap IS KNOWN")
    gaps = [e["attributes"]["_matforge_band_gap"] for e in ordered]
    assert gaps == sorted(gaps, reverse=True) and len(gaps) == 5
    r = c.get(f"{OPT}/structures", params={"filter": "_matforge_nothing = 1"})
    assert r.status_code == 400


# --- real clients against a live server -------------------------------------------------------


@pytest.fixture(scope="module")
def live(world):
    if "sqlite" not in world.url:
        pytest.skip("the live clients run once, on the SQLite store")
    port = free_port()
    serve = (
        "import typer; from matforge.cli.server import register; "
        "app = typer.Typer(); register(app); app()"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", serve, "serve", "--db", world.url, "--port", str(port),
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=90, process=server)
        yield f"http://127.0.0.1:{port}/optimade/"
    finally:
        stop_process(server, timeout=20)


def test_pymatgen_optimade_rester_reads_the_stored_structures(world, live):
    from pymatgen.ext.optimade import OptimadeRester

    # the trailing slash matters: pymatgen joins "v1/structures" onto the URL
    rester = OptimadeRester(live, timeout=30)
    found = rester.get_structures(elements=["Zn", "S"], nelements=2)
    (by_id,) = found.values()
    assert len(by_id) == 1
    assert _same(next(iter(by_id.values())), world.originals["ZnS"])
    every = rester.get_structures_with_filter("nsites IS KNOWN")
    (structures,) = every.values()
    assert len(structures) == 6
    for formula, original in world.originals.items():
        matches = [s for s in structures.values() if s.composition.reduced_formula == formula]
        assert len(matches) == 1 and _same(matches[0], original), formula
    snls = rester.get_snls(elements=["Mg", "Al", "O"],
                           additional_response_fields=["_matforge_space_group_it_number"])  # fmt: skip
    (snl,) = next(iter(snls.values())).values()
    assert _same(snl.structure, world.originals["MgAl2O4"])
    assert snl.data["_optimade"]["_matforge_space_group_it_number"] == 227


def _optimade_get() -> str | None:
    """The optimade-get command, when optimade-python-tools' client extra is installed
    (``optimade[http-client]``; ``$MATFORGE_OPTIMADE_GET`` names one elsewhere)."""
    candidates = [os.environ.get("MATFORGE_OPTIMADE_GET"), shutil.which("optimade-get"),
                  os.path.join(os.path.dirname(sys.executable), "optimade-get")]  # fmt: skip
    for path in filter(None, candidates):
        if os.path.exists(path):
            ok = subprocess.run([path, "--version"], capture_output=True, timeout=60)
            if ok.returncode == 0:
                return path
    return None


def test_optimade_get_reads_the_stored_structures(world, live, tmp_path):
    command = _optimade_get()
    if command is None:
        pytest.skip("optimade-get needs optimade[http-client] (httpx2); not installed")
    out = tmp_path / "results.json"
    run = subprocess.run(
        [command, "--filter", 'elements HAS ALL "Zn","S" AND nsites IS KNOWN', "--output-file",
         str(out), "--silent", "--no-async", live.rstrip("/")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    (by_url,) = results["structures"][next(iter(results["structures"]))].values()
    (entry,) = by_url["data"]
    from optimade.adapters import Structure as OptimadeStructure

    assert _same(OptimadeStructure(entry).as_pymatgen, world.originals["ZnS"])


# --- the web UI ------------------------------------------------------------------------------


def test_the_web_ui_shows_a_structure_and_downloads_it(world, live, tmp_path):
    """In Chromium (Debian's, as tests/test_ui_browser.py drives it): alice's structures are
    listed, one is drawn in 3D with plotly (served locally, no CSP violation) and its CIF is
    downloaded and reads back as the stored structure."""
    playwright = pytest.importorskip("playwright.sync_api")
    executable = os.environ.get("MATFORGE_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("no Chromium for the browser test: bash scripts/ci_chromium.sh, or set "
                    "MATFORGE_CHROMIUM")  # fmt: skip
    token = world.users["alice"]["Authorization"].removeprefix("Bearer ")
    base = live.removesuffix("/optimade/")
    expect = playwright.expect
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        context = browser.new_context(viewport={"width": 1400, "height": 900},
                                      accept_downloads=True)  # fmt: skip
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
        csp = "Content Security Policy"
        page.on("console", lambda m: csp in m.text and problems.append(m.text))
        page.goto(base + "/ui/")
        page.fill("#token", token)
        page.click("#login-form button")
        expect(page.locator("#whoami")).to_have_text("alice", timeout=30_000)
        page.select_option("#project", label="lab (owner)")
        rows = page.locator("#s-table tbody tr")
        expect(rows).to_have_count(6, timeout=30_000)
        row = rows.filter(has_text="F-43m")
        row.locator("button").click()
        expect(page.locator("#s-title")).to_contain_text("ZnS · F-43m · 2 sites")
        page.wait_for_function(
            "() => { const d = document.querySelector('#s-plot'); return d && d.data && d.data.length >= 3; }",
            timeout=30_000,
        )
        atoms = page.evaluate(
            "() => document.querySelector('#s-plot').data.slice(1).reduce((n, t) => n + t.x.length, 0)"
        )
        assert atoms == 2
        with page.expect_download() as info:
            page.click("#s-view button[data-format=cif]")
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        browser.close()
    assert path.suffix == ".cif"
    assert _same(st.read_structure_file(path)[0].structure, world.originals["ZnS"])
    assert problems == []
