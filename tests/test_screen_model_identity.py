"""A registry model screened gives the numbers `matforge predict` gives for the same formulas:
the screen calls the model's own feature-level prediction (issue #19 section 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matforge.cli.main import app
from matforge.datasets import load_dataset


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A bulk-modulus model (GPa) with imputation and a log1p target transform, the parts of
    the prediction a screen used to re-implement, saved in a registry folder; and formulas it
    has not seen."""
    from matforge.models import RandomForestUQ
    from matforge.models.pipeline import CompositionModel
    from matforge.models.registry import save_model

    df = load_dataset("matbench_log_kvrh").sample(400, random_state=3)
    train, rest = df.iloc[:300], df.iloc[300:]
    model = CompositionModel(
        RandomForestUQ(n_estimators=20, random_state=0),
        featurizer=["magpie", "stoichiometry", "mat2vec:mean+range"],
        impute=True, target_transform="log1p", target="k_vrh", unit="GPa",
    ).fit(train["formula"].tolist(), 10 ** train["log10_k_vrh"].to_numpy())  # fmt: skip
    home = tmp_path_factory.mktemp("registry")
    save_model(model, "kvrh", home)
    probe = [*dict.fromkeys(rest["formula"])][:40] + ["He", "Xe"]  # distinct compositions
    return home, probe


def _screened(home, probe) -> pd.DataFrame:
    from matforge.models.registry import load_model
    from matforge.screen import FormulaSpace, PropertyModel, Screen

    model = load_model("kvrh", home)
    models = {"k_vrh": PropertyModel.from_composition_model(model)}
    res = Screen(FormulaSpace(probe), models, top_k=None, chunk_size=7).run()
    assert len(res.top) == len(probe)
    return res.top.set_index("formula").loc[probe]


def test_cli_predict_and_a_screen_give_identical_means_and_stds(registry, tmp_path):
    home, probe = registry
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app, ["predict", *probe, "--model", "kvrh", "-o", str(out), "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    cli = pd.read_csv(out, float_precision="round_trip")  # the CSV's 17 digits, exactly

    top = _screened(home, probe)

    assert cli["formula"].tolist() == probe
    np.testing.assert_array_equal(top["k_vrh"], cli["k_vrh_mean [GPa]"])
    np.testing.assert_array_equal(top["k_vrh_std"], cli["k_vrh_std [GPa]"])
    np.testing.assert_allclose(top["domain_distance"], cli["domain_distance"], rtol=1e-12)
    assert top["in_domain"].tolist() == cli["in_domain"].tolist()
    assert not top.loc["He", "in_domain"]


def test_the_library_call_behind_predict_matches_a_screen(registry):
    """What the CLI calls (load_model + predict_frame), without the CSV in between."""
    from matforge.models.registry import load_model

    home, probe = registry
    frame = load_model("kvrh", home).predict_frame(probe)
    mean, std = load_model("kvrh", home).predict(probe, return_std=True)
    top = _screened(home, probe)
    np.testing.assert_array_equal(top["k_vrh"], frame["mean"])
    np.testing.assert_array_equal(top["k_vrh_std"], frame["std"])
    np.testing.assert_array_equal(top["k_vrh"], mean)
    np.testing.assert_array_equal(top["k_vrh_std"], std)
