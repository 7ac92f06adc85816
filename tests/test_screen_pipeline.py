"""The streaming screen: results independent of chunking and executor, funnel, rejects,
rankings, checkpoint/resume after SIGKILL, memory flat in the size of the space."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from matforge.datasets import load_dataset
from matforge.features import ElementProperty
from matforge.screen import (
    DomainModel,
    EnumeratedSpace,
    FormulaSpace,
    Funnel,
    PropertyModel,
    Screen,
    ScreenError,
)

ELEMENTS = ["B", "C", "N", "O", "Si", "Ti", "V", "Zr", "Nb", "Mo", "Hf", "Ta", "W", "Re"]
FEATURES = ("Number", "Electronegativity", "CovalentRadius", "MeltingT")


def _featurizer():
    return ElementProperty(features=FEATURES, stats=("mean", "range", "minimum", "maximum"))


@pytest.fixture(scope="module")
def models():
    """Small real models: RandomForestUQ on log10 moduli of 1,500 Materials Project compounds."""
    from lightgbm import LGBMRegressor

    from matforge.models import RandomForestUQ

    fz = _featurizer()
    out = {}
    for prop, name, col in (("bulk_modulus", "matbench_log_kvrh", "log10_k_vrh"),
                            ("shear_modulus", "matbench_log_gvrh", "log10_g_vrh")):  # fmt: skip
        df = load_dataset(name).sample(1500, random_state=0)
        X, y = fz.featurize_many(df["formula"].tolist()), df[col].to_numpy()
        est = RandomForestUQ(n_estimators=30, min_samples_leaf=3, random_state=0).fit(X, y)
        cheap = LGBMRegressor(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1).fit(X, y)
        out[prop] = PropertyModel(est, log10=True, unit="GPa", cheap=cheap)
    return out


def _screen(models, space=None, **kw):
    space = space or EnumeratedSpace(ELEMENTS, max_atoms=5, arities=(2, 3))
    kw.setdefault("derive", ["hardness_vickers", "pugh_ratio"])
    kw.setdefault("where", "shear_modulus <= 1.5 * bulk_modulus")
    kw.setdefault("top_k", 25)
    return Screen(space, models, featurizer=_featurizer(), **kw)


def test_top_k_identical_for_any_chunk_size_and_executor(models):
    ref = _screen(models, chunk_size=1000).run().top
    assert len(ref) == 25 and ref["rank"].tolist() == list(range(1, 26))
    assert (np.diff(ref["hardness_vickers"]) <= 0).all()
    assert (ref["shear_modulus"] <= 1.5 * ref["bulk_modulus"]).all()
    runs = [(333, "serial"), (700, "processes:2")]
    try:
        import distributed  # noqa: F401  (the `dask` extra)

        runs.append((500, "dask:local:2"))
    except ImportError:  # pragma: no cover
        pass
    for chunk, executor in runs:
        got = _screen(models, chunk_size=chunk).run(executor=executor).top
        pd.testing.assert_frame_equal(ref, got, check_exact=True)


def test_funnel_evaluates_survivors_only_and_is_reported(models):
    full = _screen(models, chunk_size=2000).run()
    screen = _screen(models, chunk_size=2000, funnel=Funnel(keep=0.2))
    res = screen.run()
    n = res.summary["featurized"]
    assert 0.1 * n < res.summary["evaluated_full"] < 0.3 * n
    assert res.summary["funnel"]["column"] == "hardness_vickers"
    assert res.summary["funnel"]["cheap_models"] == {"bulk_modulus": "LGBMRegressor",
                                                     "shear_modulus": "LGBMRegressor"}  # fmt: skip
    assert res.top["hardness_vickers_std"].notna().all()  # ranked rows keep their uncertainty
    overlap = len(set(res.top["formula"].head(10)) & set(full.top["formula"].head(10)))
    assert overlap >= 5
    with pytest.raises(ScreenError, match="cheap"):
        _screen({k: PropertyModel(m.estimator, log10=True) for k, m in models.items()},
                funnel=Funnel())  # fmt: skip


def test_rejects_are_counted_and_written_with_reasons(models, tmp_path):
    space = FormulaSpace(["TiB2", "WC", "Qq3", "B4C", "Fe2O3(", "HfC"], name="mine")
    res = _screen(models, space, where=None).run(out=tmp_path, save_all=True)
    assert res.summary["rejected"] == 2 and res.summary["featurized"] == 4
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects["formula"].tolist() == ["Qq3", "Fe2O3("]
    assert rejects["index"].tolist() == [2, 4]
    assert all(isinstance(r, str) and r for r in rejects["reason"])
    everything = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(everything["formula"]) == ["B4C", "HfC", "TiB2", "WC"]
    assert set(everything["stage"]) == {"full"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rejects_file"].endswith("rejects.csv")


def test_rankings_ucb_probability_pareto_novelty(models):
    ucb = _screen(models, rank_by="ucb:hardness_vickers:2").run().top
    s = ucb["hardness_vickers"] + 2 * ucb["hardness_vickers_std"]
    assert np.allclose(ucb["score"], s) and (np.diff(s) <= 0).all()
    prob = _screen(models, where="hardness_vickers > 15", rank_by="probability").run().top
    assert ((prob["probability"] > 0) & (prob["probability"] <= 1)).all()
    assert (np.diff(prob["probability"]) <= 0).all()
    front = _screen(models, rank_by="pareto:hardness_vickers,-pugh_ratio").run().top
    v = np.column_stack([front["hardness_vickers"], -front["pugh_ratio"]])
    assert len(front) >= 1 and not any(
        ((v >= v[i]).all(axis=1) & (v > v[i]).any(axis=1)).any() for i in range(len(v))
    )
    fz = _featurizer()
    X = fz.featurize_many(load_dataset("matbench_log_kvrh")["formula"].head(800).tolist())
    domain = DomainModel(n_components=5).fit(X)
    nov = _screen(models, rank_by="novelty:hardness_vickers:0.5", domain=domain).run().top
    assert {"distance", "cluster", "map_x"} <= set(nov.columns)
    assert (nov["distance"] > 0).all()
    with pytest.raises(ScreenError, match="distance"):
        _screen(models, rank_by="novelty:hardness_vickers")
    with pytest.raises(ScreenError, match="unknown column"):
        _screen(models, where="hardness > 3")


def test_domain_of_a_small_lab_dataset():
    """Ten measured compositions (a lab's first data): too few to cluster, still a domain."""
    fz = _featurizer()
    formulas = load_dataset("matbench_log_kvrh")["formula"].head(40).tolist()
    domain = DomainModel().fit(fz.featurize_many(formulas[:10]))
    assert domain.n_clusters_ == 1 and (domain.train_cluster_ == 0).all()
    far = domain.distance(fz.featurize_many(formulas[10:]))
    assert far.shape == (30,) and np.isfinite(far).all() and (far >= 0).all()


def test_registry_model_screens_carry_its_applicability_domain(tmp_path):
    """A screen of a CompositionModel gets the columns predict gives: domain_distance and
    in_domain, the same values, and the summary counts the candidates out of domain."""
    from matforge.models import RandomForestUQ
    from matforge.models.pipeline import CompositionModel

    df = load_dataset("matbench_log_kvrh").sample(300, random_state=2)
    train = df["formula"].tolist()
    model = CompositionModel(
        RandomForestUQ(n_estimators=20, random_state=0), featurizer=["magpie", "stoichiometry"],
        impute=True, target="k_vrh", unit="GPa",
    ).fit(train, 10 ** df["log10_k_vrh"].to_numpy())  # fmt: skip
    probe = [*train[:6], "He", "Xe", "Qq2"]  # noble gases: far from any MP solid
    expected = model.predict_frame(probe).assign(formula=probe).set_index("formula")
    single = {"bulk_modulus": PropertyModel.from_composition_model(model)}
    res = Screen(FormulaSpace(probe), single, top_k=None, chunk_size=3).run(out=tmp_path)
    top = res.top.set_index("formula")
    assert {"domain_distance", "in_domain"} <= set(top.columns)
    assert "bulk_modulus_in_domain" not in top.columns  # one model: no per-model copies
    got = expected.loc[top.index]
    np.testing.assert_allclose(top["domain_distance"], got["domain_distance"], rtol=1e-9)
    assert top["in_domain"].tolist() == got["in_domain"].astype(bool).tolist()
    assert not top.loc["He", "in_domain"] and top.loc[train[0], "in_domain"]
    n_out = int((~top["in_domain"]).sum())
    assert res.summary["out_of_domain"] == n_out == res.summary["out_of_domain_top"] >= 1
    assert json.loads((tmp_path / "summary.json").read_text())["out_of_domain"] == n_out

    # two models: the columns of each, and in_domain = inside both
    two = {"a": single["bulk_modulus"], "b": PropertyModel.from_composition_model(model)}
    res = Screen(FormulaSpace(probe), two, top_k=None, where="domain_distance < 1e9").run()
    cols = set(res.top.columns)
    assert {"a_domain_distance", "a_in_domain", "b_domain_distance", "in_domain"} <= cols
    assert (res.top["in_domain"] == (res.top["a_in_domain"] & res.top["b_in_domain"])).all()


def test_a_funnel_leaves_in_domain_unknown_for_rows_it_stopped(models, tmp_path):
    """Rows only the cheap stage saw have no domain verdict (NA), not False."""
    import dataclasses

    train = load_dataset("matbench_log_kvrh")["formula"].sample(400, random_state=0).tolist()
    domain = DomainModel(embedding=None).fit(_featurizer().featurize_many(train))
    with_domain = {k: dataclasses.replace(m, domain=domain) for k, m in models.items()}
    space = EnumeratedSpace(ELEMENTS[:8], max_atoms=4, arities=(2, 3))
    res = _screen(with_domain, space, funnel=Funnel(keep=0.3)).run(out=tmp_path, save_all=True)
    full = pd.read_parquet(tmp_path / "results.parquet")
    cheap = full["stage"] == "cheap"
    assert cheap.any() and (~cheap).any()
    assert full.loc[cheap, "in_domain"].isna().all()
    assert full.loc[~cheap, "in_domain"].notna().all()
    assert res.summary["out_of_domain"] == int((full.loc[~cheap, "in_domain"] == False).sum())  # noqa: E712


_SCRIPT = textwrap.dedent('''
    import sys, time, resource
    import numpy as np
    from matforge.features import ElementProperty
    from matforge.screen import EnumeratedSpace, PropertyModel, Screen

    class Linear:  # log10 modulus from the mean atomic number and electronegativity
        def __init__(self, w, b, delay=0.0):
            self.w, self.b, self.delay = np.asarray(w), b, delay
        def predict(self, X, return_std=False):
            time.sleep(self.delay)
            mu = X @ self.w + self.b
            return (mu, np.full(len(X), 0.1)) if return_std else mu

    mode, n, out, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    elements = "H Li Be B C N O F Na Mg Al Si P S Cl K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge Y Zr Nb Mo Ru Rh Pd Ag Sn Hf Ta W Re Os Ir Pt".split()
    space = EnumeratedSpace(elements, max_atoms=8, arities=(2, 3, 4)).head(n)
    fz = ElementProperty(features=("Number", "Electronegativity"), stats=("mean",))
    models = {"bulk_modulus": PropertyModel(Linear([-0.01, 0.3], 1.8, delay), log10=True),
              "shear_modulus": PropertyModel(Linear([-0.012, 0.35], 1.5, delay), log10=True)}
    screen = Screen(space, models, featurizer=fz, derive=["hardness_vickers"], top_k=50,
                    n_samples=8, chunk_size=int(sys.argv[5]))
    res = screen.run(out=None if out == "-" else out, resume=mode == "resume")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, len(res.top))
''')


def _script(tmp_path):
    path = tmp_path / "screen_script.py"
    path.write_text(_SCRIPT)
    return path


def test_killed_screen_resumes_to_the_same_result(tmp_path):
    script = _script(tmp_path)
    run = [sys.executable, str(script)]
    args = ["6000", str(tmp_path / "killed"), "0.25", "500"]  # 12 chunks, >= 0.5 s each
    proc = subprocess.Popen([*run, "fresh", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path / "killed" / ".checkpoint" / "state.json"
    deadline = time.time() + 60
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["done"] >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["done"]
    assert 3 <= done < 12 and not (tmp_path / "killed" / "summary.json").exists()
    subprocess.run([*run, "resume", *args], check=True, capture_output=True)
    subprocess.run([*run, "fresh", "6000", str(tmp_path / "clean"), "0", "500"], check=True,
                   capture_output=True)  # fmt: skip
    resumed = pd.read_csv(tmp_path / "killed" / "top.csv")
    clean = pd.read_csv(tmp_path / "clean" / "top.csv")
    pd.testing.assert_frame_equal(resumed, clean)
    a = json.loads((tmp_path / "killed" / "summary.json").read_text())
    b = json.loads((tmp_path / "clean" / "summary.json").read_text())
    for key in ("candidates", "featurized", "evaluated_full", "passed", "kept"):
        assert a[key] == b[key]
    # a checkpoint refuses a different configuration
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([*run, "resume", "5000", str(tmp_path / "killed"), "0", "500"], check=True,
                       capture_output=True)  # fmt: skip


def test_peak_memory_does_not_grow_with_the_space(tmp_path):
    script = _script(tmp_path)
    rss = {}
    for n in (200_000, 2_000_000):
        out = subprocess.run([sys.executable, str(script), "fresh", str(n), "-", "0", "100000"],
                             check=True, capture_output=True, text=True)  # fmt: skip
        peak, kept = out.stdout.split()
        rss[n] = int(peak)
        assert int(kept) == 50
    assert rss[2_000_000] - rss[200_000] < 40, rss  # MB
