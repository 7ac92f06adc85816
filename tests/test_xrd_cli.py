"""`matforge xrd ...` commands: simulate -> identify round trip, JSON and HTML output, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from matforge.cli.xrd import app  # noqa: E402
from matforge.xrd.benchmark import write_docs_section as _write_docs_section  # noqa: E402

runner = CliRunner()
EXAMPLE = (
    Path(__file__).resolve().parents[1] / "src" / "matforge" / "xrd" / "data" / "example_pattern.xy"
)


@pytest.fixture(scope="module")
def rock_salt_cif(tmp_path_factory):
    """KBr in the rock-salt structure (a chemistry the bundled prototype list does not hold).
    Not KCl: K⁺ and Cl⁻ scatter almost alike, so KCl's powder pattern looks primitive cubic
    with half the cell edge, and a classifier is right to call it Pm-3m."""
    from matforge.xrd.identify import prototype_structure
    from matforge.xrd.training_data import substitute, symmetry_labels

    conventional = symmetry_labels(prototype_structure("AB_cF8_225_a_b")[0])[0]
    path = tmp_path_factory.mktemp("cif") / "KBr.cif"
    substitute(conventional, {"Na": "K", "Cl": "Br"}).to(filename=str(path))
    return path


def test_help_lists_the_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("simulate", "identify", "train"):
        assert cmd in res.output


def test_simulate_then_identify_round_trip(rock_salt_cif, tmp_path):
    xy = tmp_path / "KBr.xy"
    res = runner.invoke(app, ["simulate", str(rock_salt_cif), "-o", str(xy)])
    assert res.exit_code == 0, res.output
    assert "200" in res.output and xy.exists()  # the strongest rock-salt reflection
    html = tmp_path / "KBr.html"
    res = runner.invoke(app, ["identify", str(xy), "--top", "3", "--html", str(html)])
    assert res.exit_code == 0, res.output
    assert "crystal system: cubic" in res.output
    assert "Fm-3m (225)" in res.output
    text = html.read_text()
    assert "plotly" in text.lower() and len(text) > 1_000_000  # plotly.js is inlined: offline
    assert "AB_cF8_225_a_b" in text  # the overlaid prototype


def test_identify_json_and_threshold(rock_salt_cif, tmp_path):
    xy = tmp_path / "p.xy"
    assert runner.invoke(app, ["simulate", str(rock_salt_cif), "-o", str(xy), "--wavelength", "MoKa",
                               "--min", "5", "--max", "45"]).exit_code == 0  # fmt: skip
    res = runner.invoke(app, ["identify", str(xy), "--json", "--threshold", "1.0", "--top", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["best_crystal_system"] == "uncertain" and out["threshold"] == 1.0
    assert len(out["candidates"]["spacegroup"]) == 2
    assert out["candidates"]["crystal_system"][0]["name"] == "cubic"


def test_identify_reports_a_bad_file(tmp_path):
    from matforge.errors import PatternFileError

    bad = tmp_path / "bad.xy"
    bad.write_text("10 1\n11 x\n")
    res = runner.invoke(app, ["identify", str(bad)])
    assert res.exit_code != 0 and isinstance(res.exception, PatternFileError)
    assert "bad.xy" in str(res.exception)


def test_docs_section_is_replaced_not_duplicated(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Featurizers\n\nkeep me\n")
    _write_docs_section(doc, "## XRD\n\nfirst\n")
    _write_docs_section(doc, "## XRD\n\nsecond\n")
    text = doc.read_text()
    assert text.count("## XRD") == 1 and "second" in text and "first" not in text
    assert "keep me" in text
    doc.write_text(text + "\n## Later\n\nafter\n")
    _write_docs_section(doc, "## XRD\n\nthird\n")
    text = doc.read_text()
    assert "third" in text and "after" in text and text.index("## XRD") < text.index("## Later")


@pytest.mark.slow  # 23 s
def test_benchmark_xrd_end_to_end_on_a_small_setting(tmp_path, tiny_xrd_model):
    """`matforge benchmark xrd` on every prototype with one variant and one random crystal per
    space group: the splits do not leak, every table row is filled, the docs sections (the
    classifier's and the targets table of issue #17) are written."""
    import typer

    from matforge.cli.xrd import benchmark_command
    from matforge.xrd.cnn import XRDClassifier

    clf = XRDClassifier.load(tiny_xrd_model)
    clf.meta["training"]["data"] = {
        "seed": 0, "n_variants": 1, "n_random": 1, "train_patterns": 1,
        "random_train_patterns": 1, "eval_patterns": 1, "split": "chemsys",
    }  # fmt: skip
    pt, _ = clf.save(tmp_path / "model", name="small")
    bench = typer.Typer()
    bench.command()(benchmark_command)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    out = tmp_path / "results"
    res = runner.invoke(bench, ["--model", str(pt), "--data-dir", str(tmp_path / "data"),
                                "--out", str(out), "--docs", str(doc), "--proto-epochs", "1",
                                "--sweep-structures", "20", "--threads", "1",
                                "--indexing-patterns", "12", "--single", "2", "--mix2", "1",
                                "--mix3", "1", "--real-single", "2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    result = json.loads((out / "benchmark.json").read_text())
    chem = result["chemsys_split"]
    for part in ("overall", "prototype_derived", "random_pyxtal"):
        for head in ("crystal_system", "spacegroup"):
            m = chem[part][head]
            assert m["n"] > 0 and 0 <= m["top1"] <= m["top5"] <= 1
    for part, q in chem["position_limits"].items():
        # a right space group is always in the right class
        assert 0 < q["ceiling_spacegroup_top1"] <= q["ceiling_spacegroup_top5"] <= 1, part
        assert 0 < q["ceiling_crystal_system_top1"] <= 1, part
        assert q["model_spacegroup_class_top1"] >= chem[part]["spacegroup"]["top1"], part
    levels = [e["level"] for e in result["defect_sweeps"]["vacancy_fraction"]]
    assert levels == sorted(levels) and levels[0] == 0 and 0.1 in levels
    assert result["defect_sweep_structures"] == 20
    assert result["prototype_split"]["n_prototypes"] > 0
    md = doc.read_text()
    assert md.count("## XRD\n") == 1 and "chemical-system-disjoint, all" in md
    assert "prototype-disjoint" in md and (out / "benchmark.md").exists()
    assert "What peak positions allow" in md
    indexing = json.loads((out / "indexing.json").read_text())
    assert indexing["n_patterns"] == 12
    for scores in (indexing["network_alone"], indexing["network_plus_indexing"]):
        assert 0 <= scores["spacegroup_class_top1"] <= scores["spacegroup_class_top5"] <= 1
    sm = json.loads((out / "searchmatch.json").read_text())
    assert sm["summary"]["C"]["n_patterns"] == 2 and len(sm["single"]) == 2
    assert all(r["seconds"] > 0 and r["found"] for r in sm["single"])
    assert sm["summary"]["E"]["n_patterns"] == 2 and all(r["found"] for r in sm["real"])
    targets = (out / "targets.md").read_text()
    assert md.count("## XRD against issue #17") == 1 and targets.strip() in md
    for row in ("| A | space-group class top-5, network + indexing (12 patterns)",
                "| C | prototype top-1, elements given (2 patterns)", "| speed |",
                "| E | search-match with elements on the 2 real structures"):  # fmt: skip
        assert row in targets, row


def _headerless(path, x, y):
    """A two-column file with no header: neither wavelength nor axis is stated."""
    path.write_text("".join(f"{a:.4f} {b:.3f}\n" for a, b in zip(x, y, strict=True)))
    return path


def test_identify_refuses_patterns_it_cannot_read(tmp_path):
    """Three points, no signal, and a range outside the classifier's grid are refused with the
    reason instead of answered with confident probabilities."""
    import numpy as np

    from matforge.errors import PatternFileError
    from matforge.xrd.io import read_pattern

    example = read_pattern(EXAMPLE)
    x, y = example.two_theta, example.intensity
    cases = {
        "three.xy": (x[:3], y[:3], "3 points"),
        "negative.xy": (x, -np.abs(y) - 1, "no signal"),
        "flat.xy": (x, np.full_like(y, 7.0), "no signal"),
        # Q (Å⁻¹) read as 2θ: 0.5-6.5 "degrees" share nothing with 10-80°
        "q.xy": (np.linspace(0.5, 6.5, 600), np.interp(np.linspace(10, 80, 600), x, y),
                 "is the wavelength or the axis right"),
    }  # fmt: skip
    for name, (xs, ys, message) in cases.items():
        res = runner.invoke(app, ["identify", str(_headerless(tmp_path / name, xs, ys))])
        assert isinstance(res.exception, PatternFileError), (name, res.output)
        assert message in str(res.exception) and name in str(res.exception), name
    # the Q file read as Q is a pattern
    res = runner.invoke(app, ["identify", str(tmp_path / "q.xy"), "--axis", "q", "--json"])
    assert res.exit_code == 0, res.output
    assert not any("axis" in w for w in json.loads(res.output)["warnings"])


def test_identify_says_what_it_assumed(rock_salt_cif, tmp_path):
    import numpy as np

    from matforge.xrd.io import read_pattern

    mo = tmp_path / "mo.xy"
    assert runner.invoke(app, ["simulate", str(rock_salt_cif), "-o", str(mo), "--wavelength", "MoKa",
                               "--min", "5", "--max", "40"]).exit_code == 0  # fmt: skip
    p = read_pattern(mo)
    bare = _headerless(tmp_path / "bare.xy", p.two_theta, p.intensity)  # the Mo file, no header

    def warnings(*args):
        res = runner.invoke(app, ["identify", *args, "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)["warnings"]

    assumed = warnings(str(bare))
    assert any("states no wavelength" in w and "MoKa" in w for w in assumed)
    assert any("first column has no name" in w for w in assumed)
    assert any("of the classifier's 10–80°" in w for w in assumed)  # 5-40° Cu: part of the grid
    told = warnings(str(bare), "--wavelength", "MoKa", "--axis", "2theta")
    assert not any("wavelength" in w or "no name" in w for w in told)
    assert not any("of the classifier's" in w for w in told)  # 5-40° Mo covers 10-80° Cu
    assert warnings(str(mo)) == []  # the simulated file states its wavelength and axis
    res = runner.invoke(app, ["identify", str(mo), "--wavelength", "Xx"])
    assert res.exit_code != 0 and "unknown radiation" in res.output
    res = runner.invoke(app, ["identify", str(mo), "--axis", "d"])
    assert res.exit_code != 0 and "--axis must be 2theta or q" in res.output
    # the plain output prints them
    res = runner.invoke(app, ["identify", str(bare)])
    assert res.exit_code == 0 and "warning:" in res.output
    assert np.isfinite(p.intensity).all()


def test_identify_many_patterns_into_one_table(rock_salt_cif, tmp_path):
    import pandas as pd

    folder = tmp_path / "run"
    folder.mkdir()
    for name, wl in (("a.xy", "CuKa1"), ("b.xy", "MoKa")):
        res = runner.invoke(app, ["simulate", str(rock_salt_cif), "-o", str(folder / name),
                                  "--wavelength", wl, "--min", "5", "--max", "80"])  # fmt: skip
        assert res.exit_code == 0, res.output
    (folder / "c.xy").write_text("10 1\n11 2\n12 1\n")  # three points: refused, reported
    (folder / "notes.md").write_text("not a pattern")
    out = tmp_path / "summary.csv"
    res = runner.invoke(app, ["identify", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, keep_default_na=False)
    assert [Path(f).name for f in table["file"]] == ["a.xy", "b.xy", "c.xy"]
    assert table["crystal_system"].tolist()[:2] == ["cubic", "cubic"]
    assert table["error"].tolist()[:2] == ["", ""] and "3 points" in table["error"].iloc[2]
    assert 0 < float(table["crystal_system_probability"].iloc[0]) <= 1
    # the same from a glob, as JSON; one file alone stays the single-pattern report
    res = runner.invoke(app, ["identify", str(folder / "[ab].xy"), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [Path(r["file"]).name for r in rows] == ["a.xy", "b.xy"]
    assert rows[0]["spacegroup"] == table["spacegroup"].iloc[0]
    res = runner.invoke(app, ["identify", str(folder / "a.xy"), str(folder / "b.xy"),
                              "--out", str(tmp_path / "s.json")])  # fmt: skip
    assert res.exit_code == 0 and len(json.loads((tmp_path / "s.json").read_text())) == 2
    res = runner.invoke(app, ["identify", str(folder), "--html", str(tmp_path / "x.html")])
    assert res.exit_code != 0 and "--html draws one pattern" in res.output
    res = runner.invoke(app, ["identify", str(tmp_path / "nothing*.xy")])
    assert res.exit_code != 0 and "no file matches" in res.output


# --- search-match: identify --elements / --refs (issue #17 sections 2-3) --------------------


@pytest.fixture(scope="module")
def cassiterite_scans(tmp_path_factory):
    """Two measured-like scans of cassiterite SnO2 (published cell, Bolzan et al. 1997:
    a = 4.7374, c = 3.1864 Å, O at x = 0.3056), one with preferred orientation along [110]."""
    from pymatgen.core import Lattice, Structure

    from matforge.xrd.io import write_xy
    from matforge.xrd.mixture import simulate_mixture

    s = Structure.from_spacegroup(136, Lattice.tetragonal(4.7374, 3.1864), ["Sn", "O"],
                                  [[0, 0, 0], [0.3056, 0.3056, 0]])  # fmt: skip
    grid = np.round(np.arange(10.0, 80.0 + 1e-9, 0.02), 4)
    folder = tmp_path_factory.mktemp("scans")
    for name, texture, seed in (("plain.xy", None, 4), ("textured.xy", [((1, 1, 0), 0.75)], 2)):
        p = simulate_mixture([s], [1.0], grid, fwhm=0.09, eta=0.4, zero_shift=0.04,
                             kalpha2=True, texture=texture, background=0.15, counts=30_000,
                             rng=seed)  # fmt: skip
        write_xy(p, folder / name)
    return folder


def test_identify_with_elements_refines_draws_and_stores(cassiterite_scans, tmp_path):
    from matforge.store import Store
    from matforge.store.structures import get_structure, structures_frame

    scan = cassiterite_scans / "textured.xy"
    html, db = tmp_path / "fit.html", tmp_path / "lab.db"
    res = runner.invoke(app, ["identify", str(scan), "--elements", "Sn,O", "--refine", "--json",
                              "--html", str(html), "--save-to", "lab", "--db", str(db)])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [p["prototype"] for p in out["phases"]] == ["A2B_tP6_136_f_a"]
    assert out["elements"] == ["O", "Sn"] and out["n_candidates"] > 20
    ref = out["refinement"]
    assert ref["rwp"] < 0.5 * ref["rwp_start"]  # texture: free intensities fit it
    a = ref["phases"][0]["a"]
    assert abs(a - 4.7374) / 4.7374 < 0.001
    assert "difference" in html.read_text() and "Rwp" in html.read_text()
    # the refined structure is in the store, with where it came from
    with Store(str(db)) as store:
        row = structures_frame(store).iloc[0]
        assert row["method"] == "xrd_match" and row["source"] == str(scan)
        assert row["properties"]["aflow_label"] == "A2B_tP6_136_f_a"
        assert row["properties"]["xrd_score"] == pytest.approx(1 - ref["rwp"])
        stored = get_structure(store, out["stored_structure_ids"][0])
    assert stored.lattice.a == pytest.approx(a) and stored.composition.reduced_formula == "SnO2"
    assert row["spacegroup_number"] == 136


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.slow)])  # 2: ~25 s
def test_identify_with_elements_on_a_folder(cassiterite_scans, tmp_path, jobs):
    import pandas as pd

    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("plain.xy", "textured.xy"):
        (folder / name).write_text((cassiterite_scans / name).read_text())
    (folder / "short.xy").write_text("10 1\n11 2\n12 1\n")  # refused, reported
    out = tmp_path / "summary.csv"
    res = runner.invoke(app, ["identify", str(folder), "--elements", "Sn,O", "--jobs", jobs,
                              "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, keep_default_na=False)
    assert [Path(f).name for f in table["file"]] == ["plain.xy", "short.xy", "textured.xy"]
    good = table[table["error"] == ""]
    assert len(good) == 2 and (good["n_phases"].astype(int) == 1).all()
    assert good["phases"].str.contains("A2B_tP6_136_f_a").all()
    assert ((good["a"].astype(float) - 4.7374).abs() / 4.7374 < 0.005).all()
    assert "3 points" in table.loc[table["file"].str.endswith("short.xy"), "error"].iloc[0]
    assert "SnO2 Rutile-type" in res.output and "patterns (search-match)" in res.output


def test_identify_search_match_errors_name_the_problem(cassiterite_scans, tmp_path):
    from matforge.errors import InvalidFormula, StructureFileError

    scan = str(cassiterite_scans / "plain.xy")
    res = runner.invoke(app, ["identify", scan, "--refine"])
    assert res.exit_code != 0 and "--refine is for search-match" in res.output
    res = runner.invoke(app, ["identify", scan, "--max-phases", "4", "--elements", "Sn,O"])
    assert res.exit_code != 0 and "--max-phases" in res.output
    res = runner.invoke(app, ["identify", scan, "--elements", "Sn,Xx"])
    assert isinstance(res.exception, InvalidFormula) and "'Xx'" in str(res.exception)
    bad = tmp_path / "mine.cif"
    bad.write_text("data_x\n_cell_length_a 4.0\n")
    res = runner.invoke(app, ["identify", scan, "--refs", str(bad)])
    assert isinstance(res.exception, StructureFileError) and "mine.cif" in str(res.exception)


def test_identify_without_elements_stores_the_overlaid_prototype(rock_salt_cif, tmp_path):
    from matforge.store import Store
    from matforge.store.structures import get_structure, structures_frame

    xy, db = tmp_path / "KBr.xy", tmp_path / "lab.db"
    assert runner.invoke(app, ["simulate", str(rock_salt_cif), "-o", str(xy)]).exit_code == 0
    res = runner.invoke(app, ["identify", str(xy), "--save-to", "salts", "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "stored AB_cF8_225_a_b" in res.output and "in project salts" in res.output
    with Store(str(db)) as store:
        row = structures_frame(store).iloc[0]
        stored = get_structure(store, int(row["id"]))
    assert row["method"] == "xrd_match" and row["properties"]["aflow_label"] == "AB_cF8_225_a_b"
    # the prototype's example compound (NaCl, primitive cell) at the scale of KBr's peaks
    from pymatgen.core import Structure

    kbr = Structure.from_file(str(rock_salt_cif))  # conventional: 4 formula units
    assert stored.composition.reduced_formula == "NaCl"
    assert stored.volume / len(stored) == pytest.approx(kbr.volume / len(kbr), rel=0.03)
    res = runner.invoke(app, ["identify", str(tmp_path), "--save-to", "salts"])  # a folder
    assert res.exit_code != 0 and "--save-to with several patterns" in res.output


def test_every_kind_of_mixture_step_is_printed():
    """A further phase (kept or turned down), a replacement on the revisit and a dropped phase
    each have their own line; the revisit's steps carry no weight fraction."""
    from matforge.cli.xrd import step_line

    add = {"action": "add", "phase": "TiO2 (rutile)", "rwp_before": 0.2, "rwp_after": 0.05,
           "gain": 0.75, "weight_fraction": 0.4, "accepted": True}  # fmt: skip
    assert step_line(add) == (
        "further phase TiO2 (rutile): Rwp 0.2000 → 0.0500 (75 % lower), 40.0 wt % — kept"
    )
    assert step_line({**add, "accepted": False}).endswith("turned down")
    replace = {"action": "replace", "phase": "TiO2 (rutile)", "replaces": "TiO2 (brookite)",
               "rwp_before": 0.2, "rwp_after": 0.05, "gain": 0.75, "accepted": True}  # fmt: skip
    assert step_line(replace) == (
        "revisit: TiO2 (brookite) replaced by TiO2 (rutile): Rwp 0.2000 → 0.0500 (75 % lower)"
    )
    drop = {"action": "drop", "phase": "TiO2 (brookite)", "rwp_before": 0.050,
            "rwp_after": 0.051, "gain": 0.0196, "accepted": True}  # fmt: skip
    assert step_line(drop).startswith("revisit: TiO2 (brookite) dropped")
    assert "2.0 % higher" in step_line(drop)
    species = {"action": "species", "phase": "Te (A_hP1_191_a)", "replaces": "Li (A_hP1_191_a)",
               "rwp_before": 0.0326, "rwp_after": 0.0314, "gain": 0.0368, "accepted": True}  # fmt: skip
    assert step_line(species) == (
        "species: Li (A_hP1_191_a) fits as Te (A_hP1_191_a) (the same structure type): "
        "Rwp 0.0326 → 0.0314 (3.7 % lower)"
    )
