"""A CompositionModel predicts without changing itself, so one model serves several threads
(issue #19 section 3): unparseable formulas come back with each call, not on the model."""

from __future__ import annotations

import copy
import io
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from matforge.datasets import load_dataset


@pytest.fixture(scope="module")
def steels_model():
    """The "small" preset fitted on 200 rows of matbench_steels (a few seconds), and the
    formulas it has not seen."""
    from matforge.models.presets import make_model

    df = load_dataset("matbench_steels")
    formulas, y = df["formula"].tolist(), df["yield_strength"].to_numpy()
    model = make_model("small", "regression", y=y[:200], target="yield_strength", unit="MPa")
    return model.fit(formulas[:200], y[:200]), formulas[200:]


class _FittedStatePickler(pickle.Pickler):
    """Pickles scikit-learn's KD/ball trees as their fitted arrays only: a tree counts its own
    queries (``n_calls``, ``n_trims``, ... diagnostics scikit-learn also updates from parallel
    threads in ``kneighbors``), which is no state the model's answers depend on."""

    def reducer_override(self, obj):
        from sklearn.neighbors import BallTree, KDTree

        if isinstance(obj, KDTree | BallTree):
            return tuple, (tuple(np.asarray(a).tobytes() for a in obj.get_arrays()),)
        return NotImplemented


def _state(model) -> dict[str, bytes]:
    """Every attribute of ``model``, pickled (trees without their query counters)."""
    out = {}
    for key, value in vars(model).items():
        buf = io.BytesIO()
        _FittedStatePickler(buf, protocol=5).dump(value)
        out[key] = buf.getvalue()
    return out


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def test_predict_leaves_the_model_byte_for_byte_as_it_was(steels_model):
    model, unseen = steels_model
    batch = [*unseen[:20], "Xx2", "", *unseen[20:30], "Fe2O3)"]
    before = pickle.dumps(model)
    state = _state(model)

    mean, std, errors = model.predict(batch, return_std=True, return_errors=True)

    assert pickle.dumps(model) == before, _changed(state, _state(model))
    assert not hasattr(model, "errors_") and not hasattr(model.featurizer_, "errors_")
    assert [row for row, _ in errors] == [20, 21, 32]
    assert "Xx" in errors[0][1]
    assert np.isnan(mean[[20, 21, 32]]).all() and np.isnan(std[[20, 21, 32]]).all()
    assert np.isfinite(np.delete(mean, [20, 21, 32])).all()
    # the other return forms give the same numbers
    np.testing.assert_array_equal(model.predict(batch), mean)
    m2, e2 = model.predict(batch, return_errors=True)
    np.testing.assert_array_equal(m2, mean)
    assert e2 == errors
    assert pickle.dumps(model) == before, _changed(state, _state(model))


def test_predict_frame_and_the_domain_leave_the_model_as_it_was(steels_model):
    model, unseen = steels_model
    batch = [*unseen[:10], "(NH4)2SO4", "Qq", *unseen[10:15]]
    state = _state(model)

    frame, errors = model.predict_frame(batch, return_errors=True)
    model.applicability_domain()

    assert _changed(state, _state(model)) == []
    assert errors == [(11, frame["error"].iloc[11])] and "Qq" in errors[0][1]
    assert frame["error"].tolist().count("") == len(batch) - 1
    np.testing.assert_array_equal(frame["mean"], model.predict(batch))
    assert not frame["in_domain"].iloc[10]  # ammonium sulphate is no steel


def test_a_model_saved_without_a_domain_learns_it_beside_itself(steels_model):
    """Registry format 1.0 models have no ``domain_``: the one learned from their training
    formulas is not written onto the model, and is learned once, not on every call."""
    model, unseen = steels_model
    old = copy.deepcopy(model)
    old.domain_ = None
    state = _state(old)

    frame = old.predict_frame([*unseen[:5], "He"])

    assert _changed(state, _state(old)) == [] and old.domain_ is None
    assert old.applicability_domain() is old.applicability_domain()
    assert old.applicability_domain().threshold_ == pytest.approx(model.domain_.threshold_)
    np.testing.assert_allclose(
        frame["domain_distance"], model.predict_frame([*unseen[:5], "He"])["domain_distance"],
        rtol=1e-9,
    )  # fmt: skip


def test_eight_threads_predict_what_sequential_calls_predict(steels_model):
    model, unseen = steels_model
    slices = []
    for k in range(8):  # each thread its own rows and its own bad formula, at its own row
        rows = list(unseen[12 * k : 12 * k + 12])
        assert len(rows) == 12
        rows.insert(k + 1, f"Xx{k + 1}")
        slices.append(rows)
    expected = [model.predict(s, return_std=True, return_errors=True) for s in slices]
    expected_frames = [model.predict_frame(s) for s in slices]
    state = _state(model)

    start = threading.Barrier(8)

    def work(k: int):
        start.wait()  # all eight at once
        got = []
        for _ in range(3):
            got.append((model.predict(slices[k], return_std=True, return_errors=True),
                        model.predict_frame(slices[k])))  # fmt: skip
        return got

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))

    for k, rounds in enumerate(results):
        mean, std, errors = expected[k]
        assert errors == [(k + 1, errors[0][1])] and f"Xx{k + 1}" in errors[0][1]
        for (m, s, e), frame in rounds:
            np.testing.assert_array_equal(m, mean)
            np.testing.assert_array_equal(s, std)
            assert e == errors  # this thread's bad formula, not another thread's
            np.testing.assert_array_equal(frame["mean"], expected_frames[k]["mean"])
            np.testing.assert_array_equal(frame["std"], expected_frames[k]["std"])
            np.testing.assert_array_equal(
                frame["domain_distance"], expected_frames[k]["domain_distance"]
            )
            assert frame["error"].tolist() == expected_frames[k]["error"].tolist()
    assert _changed(state, _state(model)) == []
