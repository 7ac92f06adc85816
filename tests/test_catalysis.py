"""Catalysis: the Ma et al. (2015) dataset, surface notation, descriptors, models, volcanoes,
screening, the closed loop and the atomistic oracle's slabs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.catalysis import (
    SURFACE_TYPES,
    AdsorptionModel,
    enumerate_surfaces,
    load_ma2015,
    parse_surface,
    read_adsorption_csv,
)
from matforge.catalysis.descriptors import MA_DESCRIPTORS, dft_free_descriptors, tight_binding_dband
from matforge.catalysis.model import LinearResidualForest, cross_validate
from matforge.catalysis.volcano import (
    co2r_window_probability,
    her_delta_g,
    her_exchange_current,
    orr_limiting_potential,
    window_probability,
)
from matforge.datasets import dataset_info
from matforge.errors import CatalysisError, IngestError

TARGET = "binding_energy_of_adsorbed"
METALS = ["Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Ir", "Rh", "Zn", "Sn", "Ti", "Sc"]


@pytest.fixture(scope="module")
def ma():
    return load_ma2015()


# ---------------------------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------------------------


def test_dataset_bundled_with_provenance(ma):
    info = dataset_info("catalysis_ma2015_co")
    assert info.rows == 295 and info.unit == "eV" and info.target == TARGET
    assert info.input == "surface"
    assert "Ma2015CO2" in info.citation and "10.1021/acs.jpclett.5b01660" in info.citation
    assert "10.1039/D2DD00133K" in info.citation  # Kavalsky et al. 2023
    assert info.licence.startswith("MIT")
    files = {f["path"]: f["sha256"] for f in info.source_files}
    assert set(files) == {"bimetallics_data.csv", "ma_2015_bimetallics_raw.json.gz", "LICENSE"}
    assert set(MA_DESCRIPTORS) <= set(ma.columns)
    assert ma[TARGET].between(-2.5, 0.5).all()


def test_surface_columns_parsed_from_the_source_notation(ma):
    assert ma["surface_type"].value_counts().to_dict() == {
        "intermetallic": 149, "subsurface": 109, "overlayer": 37}
    # the parse agrees with the source's own top-layer and bulk fields on every row
    assert (ma["top_layer"] == ma["top_monolayer_formula"]).all()
    assert (ma["host"] == ma["bulk_formula"]).all()
    row = ma.set_index("name").loc["Ni@Cu"]  # a Cu monolayer on Ni
    assert (row["top_layer"], row["host"], row["surface_type"]) == ("Cu", "Ni", "overlayer")
    row = ma.set_index("name").loc["Cu$_{3}$Sc@Cu"]
    assert (row["surface"], row["host"], row["guest"]) == ("Cu3Sc@Cu", "Cu3Sc", "Sc")
    # overlayers bind like their top layer: Ni@Cu (Cu on Ni) is Cu-like, Cu@Ni is Ni-like
    e = ma.set_index("surface")[TARGET]
    assert abs(e["Ni@Cu"] - e["Cu@Cu"]) < 0.1 and abs(e["Cu@Ni"] - e["Ni@Ni"]) < 0.1


def test_pure_metals_flagged_as_duplicate_surfaces(ma):
    dup = ma["flag"].str.contains("duplicate_surface")
    assert dup.sum() == 16
    assert (ma.loc[dup, "top_layer"] == ma.loc[dup, "guest"]).all()
    # same physical surface, same energy
    assert (ma[dup].groupby("top_layer")[TARGET].nunique() == 1).all()
    clean = load_ma2015(clean=True)
    assert len(clean) == 285 and clean["surface"].nunique() == 285 - 0  # one row per notation
    assert clean[clean["top_layer"] == clean["guest"]]["top_layer"].is_unique


# ---------------------------------------------------------------------------------------------
# notation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "top", "guest", "kind"),
    [("Ni@Cu", "Cu", "Ni", "overlayer"), ("Pt-Ni@Pt", "Pt", "Ni", "subsurface"),
     ("Pt3Ti@Pt", "Pt", "Ti", "intermetallic"), ("Pt$_{3}$Ti@Pt", "Pt", "Ti", "intermetallic"),
     ("Pd1Cu", "Cu", "Pd", "single_atom")],
)
def test_parse_surface(text, top, guest, kind):
    s = parse_surface(text)
    assert (s.top, s.guest, s.surface_type) == (top, guest, kind)
    assert parse_surface(s.notation) == s


@pytest.mark.parametrize(
    ("text", "message"),
    [("Xx@Cu", "unknown element 'Xx'"), ("Cu-Ni@Pt", "same metal T on both sides"),
     ("Cu@O", "'O' cannot be the top layer"), ("Cu@@Pt", "cannot read surface"),
     ("", "empty surface"), ("Cu1Cu", "two different metals"), ("Pt@Cu(111)", "cannot read")],
)
def test_bad_notation_is_a_clear_error(text, message):
    with pytest.raises(CatalysisError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_surface(text)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(METALS), st.sampled_from(METALS),
       st.sampled_from(["overlayer", "subsurface", "intermetallic"]))
def test_notation_round_trips(top, guest, kind):
    from matforge.catalysis import Surface

    if top in ("Sn",):
        with pytest.raises(CatalysisError):
            Surface(top, guest, kind)
        return
    s = Surface(top, guest, kind)
    assert parse_surface(s.notation) == s


def test_enumerate_surfaces_over_metals_not_in_the_data():
    surfaces = enumerate_surfaces(["Ir", "Rh", "Sn"], SURFACE_TYPES)
    notations = {s.notation for s in surfaces}
    assert {"Rh@Ir", "Ir-Sn@Ir", "Rh3Sn@Rh", "Rh1Ir", "Ir@Ir"} <= notations
    assert not any(s.top == "Sn" for s in surfaces)  # not a d-block top layer
    assert "Sn1Ir" not in notations  # the isolated atom is the adsorption site: d-block only
    assert len(notations) == len(surfaces)
    with pytest.raises(CatalysisError, match="unknown element 'Qq'"):
        enumerate_surfaces(["Cu", "Qq"])


# ---------------------------------------------------------------------------------------------
# descriptors
# ---------------------------------------------------------------------------------------------


def test_dft_free_descriptors_for_a_new_alloy():
    d = dft_free_descriptors(["Rh1Ir", "Cu@Cu"])
    assert len(d) == 2 and np.isfinite(d.to_numpy()).all()
    assert d.loc[0, "site_pauling_en"] == pytest.approx(2.28)  # Rh is the adsorption site
    assert d.loc[0, "type_single_atom"] == 1 and d.loc[1, "type_overlayer"] == 1
    assert d.loc[1, "strain"] == 0


def test_tight_binding_dband_physics():
    tb = tight_binding_dband(["Cu@Cu", "Pt@Cu", "Cu@Pt", "Pt@Pt"]).set_index(
        pd.Index(["Cu", "Cu_on_Pt", "Pt_on_Cu", "Pt"]))
    # a surface atom has 8 of its 12 bulk neighbours: width sqrt(8/12) of the bulk's
    assert tb.loc["Cu", "tb_width_ratio"] == pytest.approx(np.sqrt(8 / 12))
    assert tb.loc["Pt", "tb_width_ratio"] == pytest.approx(np.sqrt(8 / 12))
    # tensile strain (Cu on the larger Pt lattice) is positive, compressive negative
    assert tb.loc["Cu_on_Pt", "strain"] > 0.05 and tb.loc["Pt_on_Cu", "strain"] < -0.05
    # Pt under a Pt overlayer compressed onto Cu: shorter bonds, wider band (Ruban et al. 1997)
    assert tb.loc["Pt_on_Cu", "tb_width_ratio"] > tb.loc["Pt", "tb_width_ratio"]
    # rectangular band at fixed filling: a wider band moves the centre down
    assert tb.loc["Pt_on_Cu", "tb_center"] < tb.loc["Pt", "tb_center"]


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def test_model_cv_on_a_sample(ma):
    sample = ma.sample(90, random_state=0).reset_index(drop=True)
    res = cross_validate(sample, descriptors="ma2015", n_repeats=1)
    assert res["rmse"] < 0.2  # 0.10 eV on all 295 (benchmarks/catalysis_cv.py)
    assert 0.8 <= res["coverage_95"] <= 1.0
    # the model beats predicting the mean by a wide margin
    assert res["rmse"] < 0.5 * sample[TARGET].std()


def test_extrapolation_is_flagged_and_widens_the_interval(ma):
    train = ma[ma["top_layer"] != "Pt"]
    model = AdsorptionModel("ma2015").fit(train)
    test = ma[ma["top_layer"] == "Pt"]
    pred = model.predict_frame(test)
    assert not pred["known_site_metal"].any() and not pred["in_domain"].any()
    inner = model.predict_frame(ma[ma["top_layer"] == "Cu"])
    assert inner["in_domain"].mean() > 0.9
    assert pred["std"].median() > 2 * inner["std"].median()
    tau = model.model_.extrapolation_std_
    assert tau > 0.1  # fitted on the inner leave-one-metal-out, eV
    # calibrated: most held-out Pt energies fall inside the widened 95 % interval
    inside = np.abs(pred["mean"].to_numpy() - test[TARGET].to_numpy()) <= 1.96 * pred["std"]
    assert inside.mean() >= 0.8


def test_linear_residual_forest_is_a_sklearn_regressor():
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = 2 * X[:, 0] + 0.1 * rng.normal(size=60)
    groups = np.repeat(["a", "b", "c"], 20)
    m = clone(LinearResidualForest(n_estimators=50, random_state=0)).fit(X, y, groups=groups)
    mu, sd = m.predict(X[:5], return_std=True)
    assert np.all(sd > 0) and np.allclose(mu, y[:5], atol=0.5)
    # a linear trend extrapolates, which a forest alone cannot
    far = np.array([[4.0, 0.0, 0.0]])
    assert m.predict(far, groups=["z"])[0] > 6.5
    # groups that shift the target in ways the features miss: extrapolating to a new group
    # must carry that spread (tau from the inner leave-one-group-out)
    y_shift = y + np.repeat([0.0, 1.0, -1.0], 20)
    m = LinearResidualForest(n_estimators=50, random_state=0).fit(X, y_shift, groups=groups)
    assert m.extrapolation_std_ > 0.5
    _, sd_new = m.predict(X[:5], return_std=True, groups=["z"] * 5)
    _, sd_old = m.predict(X[:5], return_std=True, groups=["a"] * 5)
    assert np.all(sd_new > sd_old) and np.all(sd_new >= m.extrapolation_std_)


def test_gaussian_process_is_an_equal_member_of_the_in_group_mean(ma):
    """The GP member (ARD Matérn + white noise) predicts held-out energies on its own, with a
    positive std, and enters the in-group mean with the same weight as the other members."""
    from sklearn.base import clone

    from matforge.catalysis.model import surface_features

    X, _, _ = surface_features(ma, "ma2015")
    y = ma[TARGET].to_numpy()
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:150], idx[150:]
    m = LinearResidualForest(n_estimators=50, boosting=False, random_state=0).fit(X[tr], y[tr])
    g, sd_g = m.gp_.predict(X[te], return_std=True)
    assert np.all(sd_g > 0)
    assert np.sqrt(np.mean((g - y[te]) ** 2)) < 0.5 * y[te].std()
    off = clone(m).set_params(gaussian_process=False).fit(X[tr], y[tr])
    assert off.gp_ is None
    # members: ridge + residual forest, direct forest, GP; without the GP only the first two
    assert np.allclose(m.predict(X[te]), (2 * off.predict(X[te]) + g) / 3)
    # the average errs less than its members: the inner CV shrinks the root mean variance
    assert 0.5 < m.in_group_std_scale_ < 1.0


def test_model_errors(ma):
    with pytest.raises(CatalysisError, match="not fitted"):
        AdsorptionModel().predict(["Cu@Cu"])
    with pytest.raises(CatalysisError, match="unknown descriptor set"):
        AdsorptionModel("magic")
    with pytest.raises(CatalysisError, match="come from DFT"):
        AdsorptionModel("ma2015").fit(ma).predict(["Pd1Cu"])


# ---------------------------------------------------------------------------------------------
# volcanoes, screening, loop
# ---------------------------------------------------------------------------------------------


def test_volcano_relations():
    p = co2r_window_probability([-0.6, -0.6, -1.5], [0.05, 1e-9 + 0.0, 0.1])
    assert p[0] == pytest.approx(0.9545, abs=1e-3) and p[1] == pytest.approx(1.0)
    assert p[2] < 1e-6
    assert window_probability([-0.6], [0.0], -0.7, -0.5)[0] == 1.0
    with pytest.raises(CatalysisError, match="low < high"):
        window_probability([0.0], [0.1], 1.0, 0.0)
    assert her_delta_g(-0.24)[()] == pytest.approx(0.0)
    i = her_exchange_current([-0.3, 0.0, 0.3])
    assert i[1] == pytest.approx(0.5) and i[0] == pytest.approx(i[2]) and i[0] < 1e-4
    # ORR: with the scaling relation, the best catalyst binds OH ~0.86 eV weaker than Pt-like
    # optimum gives U_L = 1.23 - (3.2 - 2.46)/2 = 0.86 V
    g_oh = np.linspace(0, 2, 2001)
    u = orr_limiting_potential(g_oh - 0.35, 2 * g_oh - 0.05)
    assert u.max() == pytest.approx(0.86, abs=0.01)


def test_screen_ranks_by_window_probability_and_flags_extrapolation():
    from matforge.catalysis import screen_surfaces

    r = screen_surfaces(["Cu", "Ag", "Ir"], types=("overlayer", "subsurface", "single_atom"))
    assert list(r["rank"]) == list(range(1, len(r) + 1))
    assert r["probability"].is_monotonic_decreasing
    assert r.iloc[0]["site_metal"] == "Cu"  # Cu binds CO at -0.63 eV: in the window
    ir = r[r["site_metal"] == "Ir"]
    assert len(ir) and not ir["in_domain"].any()  # no Ir top layer in the data
    assert r.set_index("surface").loc["Cu@Cu", "dft_energy"] == pytest.approx(-0.63)


def test_closed_loop_finds_window_surfaces_faster_than_random():
    from matforge.catalysis.loop import closed_loop_benchmark

    res = closed_loop_benchmark(strategies=("mli", "random"), seeds=(0,), budget=40)
    mli, rnd = res["strategies"]["mli"], res["strategies"]["random"]
    assert res["problem"]["n_in_window"] == 31
    assert mli["found_at_budget_mean"] > rnd["found_at_budget_mean"] + 3


def test_read_adsorption_csv(tmp_path):
    good = tmp_path / "mine.csv"
    good.write_text("surface,adsorbate,energy,note\nCu@Pt,CO,-1.11,a\nPd1Cu,H,-0.2,b\n")
    df = read_adsorption_csv(good)
    assert df["surface"].tolist() == ["Cu@Pt", "Pd1Cu"]
    assert df[TARGET].tolist() == [-1.11, -0.2] and df["note"].tolist() == ["a", "b"]
    bad = tmp_path / "bad.csv"
    bad.write_text("surface,adsorbate,energy\nCu@Pt,CO,-1\nCu@Xx,CO,-1\nCu@Pt,N2,-1\nCu@Pt,CO,abc\n")
    with pytest.raises(IngestError, match="3 bad row") as err:
        read_adsorption_csv(bad)
    assert [r[0] for r in err.value.rows] == [3, 4, 5]


def test_surface_formula_is_the_datasets_slab_composition(ma):
    from pymatgen.core import Composition

    for notation, formula in zip(ma["surface"], ma["formula"], strict=True):
        assert Composition(parse_surface(notation).formula).almost_equals(Composition(formula))
    assert parse_surface("Pt1Cu").formula == "Pt0.0625Cu0.9375"
    assert parse_surface("Cu-Cu@Cu").formula == "Cu"


def test_adsorption_csv_goes_into_the_store_and_back(tmp_path):
    from matforge.catalysis import load_adsorption, store_adsorption
    from matforge.errors import DuplicateIngest
    from matforge.store import Store

    good = tmp_path / "mine.csv"
    good.write_text("surface,adsorbate,energy,d_center\nCu@Pt,CO,-1.11,-2.3\n"
                    "Pd1Cu,H,-0.2,-1.9\nNi-Cu@Ni,CO,-1.4,\n")
    with Store(tmp_path / "s.db") as store:
        assert store_adsorption(store, good, project="mine") == 3
        m = store.measurements(project="mine")
        assert m["property"].unique().tolist() == ["adsorption_energy"]
        assert m["unit"].unique().tolist() == ["eV"] and m["method"].iloc[0] == "computation"
        assert m["formula_as_ingested"].tolist() == ["Cu0.75Pt0.25", "Pd0.0625Cu0.9375",
                                                     "Cu0.25Ni0.75"]
        back = load_adsorption(store, project="mine")
        assert back["surface"].tolist() == ["Cu@Pt", "Pd1Cu", "Ni-Cu@Ni"]
        assert back[TARGET].tolist() == [-1.11, -0.2, -1.4]
        assert back["d_center"].iloc[0] == -2.3
        co = load_adsorption(store, project="mine", adsorbate="CO")
        assert co["surface"].tolist() == ["Cu@Pt", "Ni-Cu@Ni"]
        # what comes back trains a model like the bundled table
        sample = load_ma2015(clean=True).sample(60, random_state=0)
        pred = AdsorptionModel("dft_free").fit(sample).predict(co)
        assert pred.shape == (2,) and np.all(pred < 0)
        with pytest.raises(DuplicateIngest):
            store_adsorption(store, good, project="mine")
        bad = tmp_path / "bad.csv"
        bad.write_text("surface,adsorbate,energy\nCu@Pt,CO,-1\nCu@Qq,CO,-1\n")
        with pytest.raises(IngestError, match="line 3"):
            store_adsorption(store, bad, project="mine")
        assert len(store.measurements(project="mine")) == 3  # nothing half-written
        with pytest.raises(CatalysisError, match="unknown adsorbate"):
            load_adsorption(store, adsorbate="N2")


def test_cli_catalysis_ingest(tmp_path):
    from typer.testing import CliRunner

    from matforge.cli.main import app
    from matforge.store import Store

    db = str(tmp_path / "s.db")
    good = tmp_path / "mine.csv"
    good.write_text("surface,adsorbate,E_ads\nCu@Pt,CO,-1.11\nPd1Cu,CO,-0.7\n")
    res = CliRunner().invoke(app, ["catalysis", "ingest", str(good), "--project", "lab",
                                   "--energy", "E_ads", "--db", db])
    assert res.exit_code == 0, res.output
    assert "stored 2 adsorption_energy measurements" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("surface,adsorbate,energy\nCu@Pt,CO,-1\nCu@Pt,CO,abc\n")
    out = subprocess.run([sys.executable, "-m", "matforge", "catalysis", "ingest", str(bad),
                          "--project", "lab", "--db", db], capture_output=True, text=True)
    assert out.returncode != 0 and "line 3" in out.stderr and "abc" in out.stderr
    with Store(db) as store:
        assert len(store.measurements(project="lab")) == 2


def test_level_term_carries_a_new_site_metal(ma):
    """The DFT-free model's first-stage level (site metal's cohesion proxy) is what lets it
    extrapolate to a top-layer metal it never saw; without it Au is off by ~0.5 eV."""
    from matforge.catalysis.model import LEVEL_DESCRIPTORS, surface_features

    X, names, _ = surface_features(ma, "dft_free")
    y = ma[TARGET].to_numpy()
    out = (ma["top_layer"] == "Au").to_numpy()
    level = [names.index(c) for c in LEVEL_DESCRIPTORS["dft_free"]]
    bias = {}
    for key, cols in (("level", level), ("none", None)):
        m = LinearResidualForest(n_estimators=100, level_columns=cols, boosting=False,
                                 gaussian_process=False, recalibrate=False,
                                 extrapolation_std="none",
                                 random_state=0).fit(X[~out], y[~out])
        bias[key] = float(np.mean(m.predict(X[out], groups=["Au"] * out.sum()) - y[out]))
    assert abs(bias["level"]) < 0.2 < abs(bias["none"])
    with pytest.raises(CatalysisError, match="level_columns"):
        LinearResidualForest(level_columns=[99]).fit(X, y)


# ---------------------------------------------------------------------------------------------
# oracle
# ---------------------------------------------------------------------------------------------


def test_slabs_match_ase_builders():
    from ase.build import add_adsorbate, fcc100, fcc111

    from matforge.catalysis.oracle import build_slab, host_lattice_constant, place_adsorbate

    s = parse_surface("Cu@Cu")
    a = host_lattice_constant(s)
    for facet, builder in (("100", fcc100), ("111", fcc111)):
        mine = build_slab(s, facet=facet)
        ref = builder("Cu", size=(2, 2, 4), a=a, vacuum=10.0, orthogonal=True)
        assert np.allclose(mine.positions, ref.positions) and np.allclose(mine.cell, ref.cell)
        for site in ref.info["adsorbate_info"]["sites"]:
            ref_ads = ref.copy()
            add_adsorbate(ref_ads, "C", 1.85, position=site)
            ours = place_adsorbate(mine, "CO", site)
            assert np.allclose(ours.positions[len(mine)], ref_ads.positions[-1])
            assert ours.get_chemical_symbols()[-2:] == ["C", "O"]
    over = build_slab("Ni@Cu")  # Cu on Ni at Ni's lattice constant
    tags, sym = over.get_tags(), np.array(over.get_chemical_symbols())
    assert set(sym[tags == 1]) == {"Cu"} and set(sym[tags > 1]) == {"Ni"}
    assert np.allclose(over.positions, fcc100("Ni", size=(2, 2, 4), a=host_lattice_constant(
        parse_surface("Ni@Cu")), vacuum=10.0, orthogonal=True).positions)
    sub = build_slab("Cu-Ti@Cu")
    assert set(np.array(sub.get_chemical_symbols())[sub.get_tags() == 2]) == {"Ti"}
    saa = np.array(build_slab("Pd1Cu").get_chemical_symbols())
    assert (saa == "Pd").sum() == 1
    im = build_slab("Cu3Sc@Cu", layers=4)
    sym, tags = np.array(im.get_chemical_symbols()), im.get_tags()
    assert (sym == "Sc").sum() == 4 and set(sym[tags == 1]) == {"Cu"}
    assert (sym[tags == 2] == "Sc").sum() == 2  # L1_2 mixed layer: half B
    # B above B in the two mixed layers
    xy2 = im.positions[(tags == 2) & (sym == "Sc"), :2]
    xy4 = im.positions[(tags == 4) & (sym == "Sc"), :2]
    assert np.allclose(np.sort(xy2, axis=0), np.sort(xy4, axis=0))


def test_oracle_refuses_emt_and_names_missing_packages():
    import importlib.util

    from matforge.catalysis.oracle import get_calculator

    with pytest.raises(CatalysisError, match="EMT is not an adsorption oracle"):
        get_calculator("emt")
    with pytest.raises(CatalysisError, match="unknown oracle"):
        get_calculator("vasp")
    for name in ("chgnet", "sevenn"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(CatalysisError, match=f"needs the {name} package"):
                get_calculator(name)


@pytest.mark.slow
def test_one_adsorption_energy_with_the_oracle():
    pytest.importorskip("chgnet")
    from matforge.catalysis.oracle import adsorption_energy

    # ~10 s on one core. The 4-layer, 200-step benchmark run gave -1.127 eV on top
    # (results/catalysis/oracle_chgnet.jsonl); DFT (Ma et al.) says -0.63: CHGNet overbinds.
    res = adsorption_energy("Cu@Cu", "CO", calculator="chgnet", sites=["ontop"], steps=50,
                            layers=3)
    assert res["site"] == "ontop"
    assert res["energy"] == pytest.approx(-1.127, abs=0.1)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # 22 s; the screen itself is test_screen_ranks_by_window_probability_and_flags_extrapolation
def test_cli_screen_writes_report(tmp_path):
    from typer.testing import CliRunner

    from matforge.cli.main import app

    out = tmp_path / "screen"
    res = CliRunner().invoke(app, ["catalysis", "screen", "--metals", "Cu,Ag,Zn", "--types",
                                   "overlayer,single_atom", "--top", "5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    assert "volcano" in html.lower() and "Parity" in html
    assert '<script src="http' not in html  # plotly.js inlined: opens offline
    df = pd.read_csv(out / "candidates.csv")
    assert df["probability"].is_monotonic_decreasing and len(df) > 5


def test_cli_bad_metal_is_a_one_line_error():
    out = subprocess.run([sys.executable, "-m", "matforge", "catalysis", "screen", "--metals",
                          "Cu,Unobtainium"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown element 'Unobtainium'" in out.stderr


def test_oracle_calibration_refuses_to_extrapolate_silently(ma):
    from matforge.catalysis.calibration import OracleCalibration, evaluate_calibration

    table = ma[ma["top_layer"].isin(["Cu", "Pt", "Ag"])].groupby("top_layer").head(6)
    dft = table[TARGET].to_numpy()
    shift = table["top_layer"].map({"Cu": -0.5, "Pt": -0.3, "Ag": -0.9}).to_numpy()
    oracle = dft + shift + np.random.default_rng(0).normal(0, 0.02, len(dft))
    cal = OracleCalibration().fit(table["surface"], oracle, dft)
    assert cal.offsets_["Ag"] == pytest.approx(0.9, abs=0.03)
    out = cal.predict(["Cu@Cu", "Ir@Ir"], [-1.13, -2.0])
    assert out["calibrated"].iloc[0] == pytest.approx(-0.63, abs=0.05)
    assert out["extrapolated"].tolist() == [False, True]
    assert out["std"].iloc[1] > out["std"].iloc[0]
    rep = evaluate_calibration(table.reset_index(drop=True), oracle)
    assert rep["raw"]["mae"] > 0.5 and rep["per_metal_offset_loo"]["mae"] < 0.05
    # one linear correction cannot undo metal-specific shifts when a metal is left out
    assert rep["linear_delta_leave_one_metal_out"]["mae"] > 2 * rep["per_metal_offset_loo"]["mae"]
