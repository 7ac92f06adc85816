"""Pretraining the composition attention network, fine-tuning from it, and the leakage guard."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from matforge.datasets import load_dataset  # noqa: E402
from matforge.errors import MatforgeError  # noqa: E402
from matforge.models.pretrain import (  # noqa: E402
    EXCLUDE,
    LeakageError,
    check_no_leakage,
    composition_key_array,
    load_pretrained,
    pretrain,
    pretraining_table,
)
from matforge.models.transformer import CompositionTransformer  # noqa: E402

TINY = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}


@pytest.fixture(scope="module")
def table():
    return pretraining_table()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrained") / "tiny.pt"
    summary = pretrain(path, max_rows=400, epochs=1, batch_size=64, seed=3, **TINY)
    return path, summary


def test_pretraining_never_sees_a_matbench_composition(table):
    assert len(table) > 250_000
    assert set(table.columns) == {"formula", "key", "formation_enthalpy", "volume_per_atom",
                                  "band_gap"}  # fmt: skip
    assert table["key"].is_unique
    seen = table["key"].to_numpy(dtype=np.uint64)
    for name in EXCLUDE:
        keys = composition_key_array(load_dataset(name)["formula"].tolist())
        assert not np.isin(keys, seen).any(), name
    # the same compositions are in OQMD: the exclusion removed real rows, not nothing
    oqmd = composition_key_array(load_dataset("oqmd_formation_enthalpy")["formula"].tolist())
    steels_or_gaps = composition_key_array(load_dataset("matbench_mp_gap")["formula"].tolist())
    assert np.isin(steels_or_gaps, oqmd).sum() > 10_000


def test_extra_formulas_are_excluded_in_any_spelling():
    t = pretraining_table(exclude=(), exclude_formulas=["Co12Mn5Nd2"], max_rows=None)
    assert not (t["formula"] == "Co12Mn5Nd2").any()
    keep = pretraining_table(exclude=())
    assert (keep["formula"] == "Co12Mn5Nd2").any()


def test_leakage_guard(encoder):
    path, summary = encoder
    info = load_pretrained(path)
    assert info["rows"] == 400 and summary["rows"] == 400
    assert info["tasks"] == ["formation_enthalpy", "volume_per_atom", "band_gap"]
    seen = pretraining_table(max_rows=400, seed=3)
    assert np.array_equal(info["keys"], np.sort(seen["key"].to_numpy(dtype=np.uint64)))
    leaked = seen["formula"].iloc[7]
    # the same composition written differently is caught too
    doubled = "".join(f"{el}{2 * float(n):g}" for el, n in _parse(leaked).items())
    with pytest.raises(LeakageError, match="1 of 3 test composition"):
        check_no_leakage(path, ["Fe2O3", doubled, "NaCl"])
    check_no_leakage(path, load_dataset("matbench_steels")["formula"].tolist())
    model = CompositionTransformer(pretrained=str(path), **TINY)
    with pytest.raises(LeakageError):
        model.check_leakage([leaked])
    CompositionTransformer().check_leakage([leaked])  # nothing pretrained, nothing to check


def _parse(formula):
    from matforge.chem import parse_formula

    return dict(parse_formula(formula).get_el_amt_dict())


def test_fine_tuning_starts_from_the_encoder(encoder):
    path, _ = encoder
    steels = load_dataset("matbench_steels").iloc[:40]
    X, y = steels["formula"].tolist(), steels["yield_strength"].to_numpy()
    # learning rate 0: the weights stay where they started, so they must be the file's
    frozen = CompositionTransformer(pretrained=str(path), n_members=2, max_epochs=1,
                                    learning_rate=0.0, random_state=0, **TINY).fit(X, y)  # fmt: skip
    state = load_pretrained(path)["state"]
    for net in frozen.members_:
        mine = net.state_dict()
        for k, v in state.items():
            assert np.array_equal(mine[k].cpu().numpy(), v.numpy()), k
    model = CompositionTransformer(pretrained=str(path), n_members=2, max_epochs=3,
                                   random_state=0, **TINY).fit(X, y)  # fmt: skip
    mean, std = model.predict(X[:5], return_std=True)
    assert mean.shape == (5,) and np.all(np.isfinite(mean)) and np.all(std > 0)
    assert model.pretrained_tasks_ == ["formation_enthalpy", "volume_per_atom", "band_gap"]


def test_pretraining_is_reproducible_from_its_seed(tmp_path, encoder):
    path, _ = encoder
    again = tmp_path / "again.pt"
    pretrain(again, max_rows=400, epochs=1, batch_size=64, seed=3, **TINY)
    a, b = load_pretrained(path), load_pretrained(again)
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert np.array_equal(a["state"][k].numpy(), b["state"][k].numpy()), k


def test_pretrained_errors(tmp_path, encoder):
    path, _ = encoder
    X = load_dataset("matbench_steels")["formula"].tolist()[:20]
    y = np.arange(20.0)
    with pytest.raises(ValueError, match="set them to the file's"):
        CompositionTransformer(pretrained=str(path), n_members=2, max_epochs=1).fit(X, y)
    with pytest.raises(MatforgeError, match="does not exist"):
        CompositionTransformer(pretrained=str(tmp_path / "none.pt"), **TINY).fit(X, y)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(MatforgeError, match="not a pretrained encoder file"):
        load_pretrained(junk)
    with pytest.raises(ValueError, match="inputs='composition'"):
        CompositionTransformer(pretrained=str(path), inputs="features", **TINY).fit(
            np.random.default_rng(0).normal(size=(20, 3)), y)


def test_matbench_refuses_a_fold_the_encoder_was_pretrained_on(tmp_path, encoder, monkeypatch):
    import torch

    from matforge.datasets import matbench_folds
    from matforge.models import pretrain as pretrain_module
    from matforge.models.matbench import run_task

    path, _ = encoder
    raw = torch.load(path, weights_only=True)
    gaps = load_dataset("matbench_expt_gap")
    _, test = matbench_folds("matbench_expt_gap")[0]
    leaked = composition_key_array(gaps["formula"].iloc[test[:3]].tolist())
    keys = np.unique(np.concatenate([raw["keys"].numpy().view(np.uint64), leaked]))
    raw["keys"] = torch.from_numpy(keys.view(np.int64).copy())
    bad = tmp_path / "leaky.pt"
    torch.save(raw, bad)
    monkeypatch.setattr(pretrain_module, "BUNDLED", bad)
    with pytest.raises(LeakageError, match="3 of"):
        run_task("matbench_expt_gap", "transformer_pretrained", folds=[0])


def test_validation_is_exact_and_draws_no_random_numbers():
    # The heads carry dropout too: validated in training mode, the reported MAE was noisy and
    # the validation changed the random stream of the epochs after it.
    import torch
    from torch import nn

    from matforge.features.embedding import embedding_table
    from matforge.models.pretrain import _multitask_network, _validation_mae
    from matforge.models.transformer import ElementTokens, _network_class, _to_tensors

    torch.manual_seed(0)
    net = _network_class()(embedding_table("mat2vec")[0], dropout=0.5, **TINY)
    heads = nn.Sequential(nn.Linear(16, 32), nn.Dropout(0.5), nn.Linear(32, 4))
    model = _multitask_network(net, heads)
    model.train()

    formulas = ["Fe2O3", "NaCl", "SiO2", "GaAs", "Al2O3", "TiO2"]
    T = ElementTokens(16).featurize_many(formulas, ignore_errors=False)
    z, x = _to_tensors(T, "cpu")
    Ys = np.arange(12, dtype=float).reshape(6, 2)
    args = (model, z, x, Ys, np.ones(2))
    before = torch.get_rng_state()
    first = _validation_mae(*args)
    assert torch.equal(torch.get_rng_state(), before)
    assert _validation_mae(*args) == first
    assert not heads.training and not net.training
