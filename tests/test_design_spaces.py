"""Design spaces: exact constraints, uniform sampling, repair, serialisation, error messages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from matforge.design.spaces import (
    Categorical,
    Continuous,
    DesignSpace,
    DiscretePool,
    FormulationSpace,
    Group,
    Ingredient,
    Integer,
    ParameterSpace,
)
from matforge.errors import DesignSpaceError, MatforgeError

EXACT = 1e-9


def violations(space: FormulationSpace, X: np.ndarray) -> list[str]:
    """Independent re-implementation of every formulation constraint (not space.contains)."""
    out = []
    T = space.total
    for r, x in enumerate(X):
        if abs(x.sum() - T) > EXACT:
            out.append(f"row {r}: sum {x.sum()!r}")
        for j, ing in enumerate(space.ingredients):
            hi = T if ing.max is None else min(ing.max, T)
            if x[j] < ing.min - EXACT or x[j] > hi + EXACT:
                out.append(f"row {r}: {ing.name}={x[j]!r} outside [{ing.min}, {hi}]")
        if space.max_components is not None and (x > EXACT).sum() > space.max_components:
            out.append(f"row {r}: {(x > EXACT).sum()} components")
        for g in space.groups:
            idx = [space.ingredient_names.index(m) for m in g.members]
            s = x[idx].sum()
            gmax = T if g.max is None else g.max
            if s < g.min - EXACT or s > gmax + EXACT:
                out.append(f"row {r}: group {g.name}={s!r}")
    return out


# -- parameter spaces ---------------------------------------------------------------------------


@pytest.fixture
def process():
    return ParameterSpace([
        Continuous("temperature", 300, 900, unit="K"),
        Continuous("pressure", 1e-3, 10.0, log=True, unit="bar"),
        Integer("passes", 1, 4),
        Categorical("atmosphere", ["air", "N2", "Ar"]),
    ])


def test_parameter_space_samples_inside_and_encodes(process):
    df = process.sample(2000, rng=1)
    assert list(df.columns) == ["temperature", "pressure", "passes", "atmosphere"]
    assert process.contains(df).all()
    assert set(df["passes"]) == {1, 2, 3, 4}  # both ends of an integer range are reachable
    assert set(df["atmosphere"]) == {"air", "N2", "Ar"}
    # log-uniform: log10(pressure) is uniform on [-3, 1]
    assert stats.kstest(np.log10(df["pressure"]), stats.uniform(-3, 4).cdf).pvalue > 1e-3
    F = process.to_features(df)
    assert F.shape == (2000, 3 + 3)
    assert process.feature_names == ["temperature", "pressure", "passes", "atmosphere=air",
                                     "atmosphere=N2", "atmosphere=Ar"]
    assert F.min() >= 0 and F.max() <= 1
    assert np.allclose(F[:, 3:].sum(axis=1), 1)
    back = process.from_features(F)
    assert np.allclose(back["temperature"], df["temperature"])
    assert np.allclose(back["pressure"], df["pressure"], rtol=1e-12)
    assert (back["passes"] == df["passes"]).all()
    assert (back["atmosphere"] == df["atmosphere"]).all()


def test_parameter_space_contains_reasons_and_repair(process):
    df = pd.DataFrame({"temperature": [250.0, 500.0], "pressure": [1.0, 20.0],
                       "passes": [2.5, 3], "atmosphere": ["air", "vacuum"]})
    assert list(process.contains(df)) == [False, False]
    reason = process.infeasible_reason(df.iloc[0])
    assert "temperature = 250.0 is outside [300, 900]" in reason
    assert "passes = 2.5 is not an integer in [1, 4]" in reason
    assert "'vacuum' is not one of ['air', 'N2', 'Ar']" in process.infeasible_reason(df.iloc[1])
    fixed = process.project(df.iloc[[0]])
    assert process.contains(fixed).all()
    assert fixed["temperature"].iloc[0] == 300 and fixed["passes"].iloc[0] in (2, 3)
    with pytest.raises(DesignSpaceError, match="vacuum"):
        process.project(df.iloc[[1]])
    with pytest.raises(DesignSpaceError, match="missing column"):
        process.contains(df.drop(columns="pressure"))


def test_parameter_space_round_trips_through_json(process):
    d = json.loads(json.dumps(process.as_dict()))
    again = DesignSpace.from_dict(d)
    assert again == process
    assert repr(process).startswith("ParameterSpace(temperature ∈ [300, 900] K, pressure")
    with pytest.raises(DesignSpaceError, match="FormulationSpace.from_dict got a serialised"):
        FormulationSpace.from_dict(d)


@pytest.mark.parametrize("make, message", [
    (lambda: Continuous("t", 5, 1), "low 5 > high 1"),
    (lambda: Continuous("p", 0, 1, log=True), "log-scale range needs low > 0"),
    (lambda: Integer("n", 1.5, 3), "low must be an integer"),
    (lambda: Categorical("gas", ["air", "air"]), "duplicate choices"),
    (lambda: ParameterSpace([Continuous("t", 0, 1), Integer("t", 0, 3)]), "duplicate parameter"),
    (lambda: Continuous("", 0, 1), "non-empty string"),
])
def test_invalid_parameters_are_rejected(make, message):
    with pytest.raises(DesignSpaceError, match=message) as err:
        make()
    assert isinstance(err.value, MatforgeError) and isinstance(err.value, ValueError)


# -- discrete pools -----------------------------------------------------------------------------


@pytest.fixture
def pool():
    return DiscretePool(
        pd.DataFrame({
            "formula": ["Fe2O3", "TiO2", "ZnO", "GaN", "SiC"],
            "x": [0.1, 0.2, 0.3, 0.2, 0.5],
            "y": [1.0, 2.0, 3.0, 2.0, 5.0],
            "family": ["oxide", "oxide", "oxide", "nitride", "carbide"],
            "note": ["a", "b", "c", "d", "e"],
        }),
        id_column="formula",
        feature_columns=["x", "y", "family"],
    )


def test_pool_features_candidates_and_exclusion(pool):
    assert len(pool) == 5
    assert pool.feature_names == ["x", "y", "family=carbide", "family=nitride", "family=oxide"]
    F = pool.to_features()
    assert F.shape == (5, 5) and F[0].tolist() == [0.1, 1.0, 0.0, 0.0, 1.0]
    assert list(pool.candidates(exclude=["TiO2", "GaN"])["formula"]) == ["Fe2O3", "ZnO", "SiC"]
    # observed rows without ids are matched on features
    observed = pd.DataFrame({"x": [0.3], "y": [3.0 + 1e-12], "family": ["oxide"]})
    assert list(pool.candidates(exclude=observed)["formula"]) == ["Fe2O3", "TiO2", "GaN", "SiC"]
    assert list(pool.contains(pd.DataFrame({"formula": ["ZnO", "NaCl"]}))) == [True, False]
    assert pool.infeasible_reason({"formula": "NaCl"}) == "no candidate with formula = 'NaCl'"
    picked = pool.sample(3, rng=0, exclude=["Fe2O3"])
    assert len(set(picked["formula"])) == 3 and "Fe2O3" not in set(picked["formula"])
    with pytest.raises(DesignSpaceError, match="asked for 5 candidates, 4 available"):
        pool.sample(5, exclude=["SiC"])
    with pytest.raises(DesignSpaceError, match=r"unknown candidate id\(s\) \['NaCl'\]"):
        pool.candidates(exclude=["NaCl"])


def test_pool_round_trips_through_json(pool):
    again = DesignSpace.from_dict(json.loads(json.dumps(pool.as_dict())))
    pd.testing.assert_frame_equal(again.df, pool.df)
    assert again.feature_names == pool.feature_names
    assert np.array_equal(again.to_features(), pool.to_features())
    assert "DiscretePool(5 candidates, id='formula'" in repr(pool)


def test_pool_rejects_bad_tables():
    with pytest.raises(DesignSpaceError, match=r"duplicate candidate ids in column 'id': \['a'\]"):
        DiscretePool(pd.DataFrame({"id": ["a", "a"], "x": [1.0, 2.0]}), id_column="id")
    with pytest.raises(DesignSpaceError, match=r"feature 'x' is missing or not finite for .*\['b'\]"):
        DiscretePool(pd.DataFrame({"id": ["a", "b"], "x": [1.0, np.nan]}), id_column="id")
    with pytest.raises(DesignSpaceError, match="no numeric column"):
        DiscretePool(pd.DataFrame({"name": ["a", "b"]}))


# -- formulation spaces -------------------------------------------------------------------------


@pytest.fixture
def coating():
    return FormulationSpace(
        [Ingredient("resin", 0.2, 0.8), Ingredient("hardener", 0, 0.3), "talc", "silica", "clay"],
        max_components=3,
        groups=[Group("fillers", ["talc", "silica", "clay"], 0.1, 0.4)],
        parameters=[Continuous("cure_T", 80, 180, unit="°C"), Categorical("mixer", ["A", "B"])],
    )


def test_formulation_samples_satisfy_every_constraint(coating):
    df = coating.sample(1000, rng=0)
    assert list(df.columns) == ["resin", "hardener", "talc", "silica", "clay", "cure_T", "mixer"]
    assert coating.contains(df).all()
    assert violations(coating, df[coating.ingredient_names].to_numpy()) == []
    assert (df["resin"] > 0).all()  # min > 0: always present
    F = coating.to_features(df)
    assert F.shape == (1000, 5 + 1 + 2)
    assert np.allclose(F[:, :5].sum(axis=1), 1)
    back = coating.from_features(F)
    assert np.allclose(back[coating.ingredient_names], df[coating.ingredient_names])
    assert np.allclose(back["cure_T"], df["cure_T"]) and (back["mixer"] == df["mixer"]).all()


def test_formulation_in_percent():
    space = FormulationSpace([Ingredient("water", 20, 60), "ethanol", "glycerol"], total=100,
                             max_components=2)
    df = space.sample(500, rng=3)
    X = df.to_numpy()
    assert violations(space, X) == []
    assert ((X > 0).sum(axis=1) == 2).all()  # maximal faces: water + one other
    assert np.allclose(space.to_features(df).sum(axis=1), 1)


def test_infeasible_reason_names_each_violation(coating):
    row = {"resin": 0.1, "hardener": 0.3, "talc": 0.3, "silica": 0.2, "clay": 0.0,
           "cure_T": 200.0, "mixer": "A"}
    reason = coating.infeasible_reason(row)
    assert "resin = 0.1 is below its min 0.2" in reason
    assert "the amounts sum to 0.9, not the total 1" in reason
    assert "4 ingredients are present (resin, hardener, talc, silica), more than max_components=3" \
        in reason
    assert "group 'fillers' (talc, silica, clay) sums to 0.5, above its max 0.4" in reason
    assert "cure_T = 200.0 is outside [80, 180]" in reason
    ok = coating.sample(1, rng=0).iloc[0]
    assert coating.infeasible_reason(ok) is None
    with pytest.raises(DesignSpaceError, match=r"(?s)1 of 1 proposals are outside.*row 0: resin = 0.1"):
        coating.validate(pd.DataFrame([row]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(ingredients=[Ingredient("a", 0.6), Ingredient("b", 0.5), "c"]),
     r"minimums sum to 1.1, more than the total 1 \(a ≥ 0.6, b ≥ 0.5\)"),
    (dict(ingredients=[Ingredient("a", 0.1), Ingredient("b", 0.1), Ingredient("c", 0.1), "d"],
          max_components=2),
     "max_components=2 is smaller than the 3 ingredients that are always present"),
    (dict(ingredients=[Ingredient(c, max=0.4) for c in "abc"], max_components=2),
     "maximums cannot reach the total 1 with at most 2 components: the largest reachable sum "
     "is 0.8"),
    (dict(ingredients=[Ingredient("a", max=0.3), Ingredient("b", max=0.3)]),
     "maximums cannot reach the total 1: the largest reachable sum is 0.6"),
    (dict(ingredients=["a", Ingredient("b", max=0.1), Ingredient("c", max=0.1)],
          groups=[Group("fill", ["b", "c"], min=0.3)]),
     "group 'fill': its members' maximums sum to 0.2, below the group min 0.3"),
    (dict(ingredients=[Ingredient("a", 0.3), "b", "c"], groups=[Group("g", ["a", "b"], max=0.2)]),
     "group 'g': its members' minimums sum to 0.3, above the group max 0.2"),
    (dict(ingredients=["a", "b", "c", "d"],
          groups=[Group("g1", ["a", "b"], min=0.6), Group("g2", ["c", "d"], min=0.6)]),
     "no blend meets the group bounds together with the ingredient bounds"),
    (dict(ingredients=["a", "b", "c", "d"], max_components=1,
          groups=[Group("g1", ["a", "b"], min=0.5), Group("g2", ["c", "d"], min=0.4)]),
     "max_components=1 is too small"),
    (dict(ingredients=["a", "b"], groups=[Group("g", ["a", "x"])]),
     r"group 'g': unknown ingredient\(s\) \['x'\]"),
    (dict(ingredients=["a", "a"]), r"duplicate ingredient names \['a'\]"),
    (dict(ingredients=["a", "b"], max_components=0), "max_components must be a positive integer"),
    (dict(ingredients=[{"name": "a", "min": 0.5, "max": 0.2}]), "ingredient 'a': min 0.5 > max 0.2"),
])
def test_impossible_formulations_are_rejected_with_the_reason(kwargs, message):
    with pytest.raises(DesignSpaceError, match=message):
        FormulationSpace(**kwargs)


def test_formulation_round_trips_through_json(coating):
    d = json.loads(json.dumps(coating.as_dict()))
    again = DesignSpace.from_dict(d)
    assert again == coating
    text = repr(coating)
    assert "max_components=3" in text and "resin ∈ [0.2, 0.8]" in text
    assert "fillers {talc, silica, clay} ∈ [0.1, 0.4]" in text and "cure_T ∈ [80, 180] °C" in text


def test_uniform_on_the_unconstrained_simplex():
    # On the 2-simplex each coordinate of a uniform point follows Beta(1, 2).
    space = FormulationSpace(["a", "b", "c"])
    df = space.sample(5000, rng=42)
    assert space.sampler_.startswith("rejection")
    for c in "abc":
        assert stats.kstest(df[c], stats.beta(1, 2).cdf).pvalue > 1e-3


def test_uniform_over_faces_with_max_components():
    # k = 2 of 3: the three edges have equal length, so a is absent a third of the time and
    # uniform on [0, 1] otherwise.
    space = FormulationSpace(["a", "b", "c"], max_components=2)
    a = space.sample(6000, rng=7)["a"].to_numpy()
    assert abs((a == 0).mean() - 1 / 3) < 0.03
    assert stats.kstest(a[a > 0], stats.uniform(0, 1).cdf).pvalue > 1e-3


def test_hit_and_run_fallback_is_uniform_when_rejection_fails():
    # x_i ≤ 0.34 leaves the small simplex {y = 0.34 − x ≥ 0, Σy = 0.02}: Dirichlet draws almost
    # never land there, so the hit-and-run sampler runs; (0.34 − a)/0.02 follows Beta(1, 2).
    space = FormulationSpace([Ingredient(c, max=0.34) for c in "abc"])
    df = space.sample(3000, rng=5)
    assert space.sampler_.startswith("hit-and-run")
    assert violations(space, df.to_numpy()) == []
    assert stats.kstest((0.34 - df["a"]) / 0.02, stats.beta(1, 2).cdf).pvalue > 1e-3


def test_equality_group_is_sampled_on_its_flat_face():
    space = FormulationSpace(["a", "b", "c", "d"], max_components=3,
                             groups=[Group("ab", ["a", "b"], 0.3, 0.3)])
    df = space.sample(300, rng=1)
    assert violations(space, df.to_numpy()) == []
    assert np.abs(df["a"] + df["b"] - 0.3).max() <= EXACT
    assert df[["c", "d"]].to_numpy().std() > 0.05  # the rest still varies


def test_repair_returns_the_nearest_feasible_blend(coating):
    rng = np.random.default_rng(11)
    names = coating.ingredient_names
    feasible = coating.sample(40, rng=rng)
    noisy = feasible.copy()
    noisy[names] += rng.normal(0, 0.03, (40, 5))
    assert not coating.contains(noisy).all()
    fixed = coating.project(noisy)
    assert coating.contains(fixed).all()
    assert violations(coating, fixed[names].to_numpy()) == []
    # nearest: no sampled feasible blend is closer to the proposal than its repair
    reference = coating.sample(3000, rng=rng)[names].to_numpy()
    for p, x in zip(noisy[names].to_numpy(), fixed[names].to_numpy(), strict=True):
        assert np.sum((x - p) ** 2) <= np.min(np.sum((reference - p) ** 2, axis=1)) + 1e-12
    # feasible rows are left exactly as they are
    pd.testing.assert_frame_equal(coating.repair(feasible), feasible)
    assert coating.repair is not None and FormulationSpace.repair is FormulationSpace.project


def test_repair_without_groups_matches_brute_force():
    space = FormulationSpace([Ingredient("a", 0.1, 0.7), Ingredient("b", max=0.5), "c", "d"],
                             max_components=2)
    p = np.array([0.05, 0.6, 0.3, 0.25])
    x = space.project(pd.DataFrame([p], columns=list("abcd"))).to_numpy()[0]
    # brute force over the faces {a, j} (a is always present) on a fine grid
    best = np.inf
    a = np.linspace(0.1, 0.7, 600_001)
    for j, hi in ((1, 0.5), (2, 1.0), (3, 1.0)):
        cand = np.zeros((len(a), 4))
        cand[:, 0], cand[:, j] = a, 1 - a
        cand = cand[cand[:, j] <= hi + 1e-12]
        best = min(best, np.min(np.sum((cand - p) ** 2, axis=1)))
    assert np.sum((x - p) ** 2) <= best + 1e-9
    assert violations(space, x[None]) == []


@st.composite
def feasible_formulations(draw):
    """Random spaces built around a witness blend that satisfies every constraint."""
    n = draw(st.integers(2, 6))
    total = draw(st.sampled_from([1.0, 100.0]))
    k = draw(st.one_of(st.none(), st.integers(1, n)))
    order = draw(st.permutations(list(range(n))))
    size = draw(st.integers(1, n if k is None else k))
    support = order[:size]
    weights = draw(st.lists(st.floats(0.05, 1.0), min_size=size, max_size=size))
    x = np.zeros(n)
    x[support] = np.array(weights) / sum(weights) * total
    unit = st.floats(0.0, 1.0)
    ingredients = []
    for j in range(n):
        lo = x[j] * draw(unit) if (x[j] > 0 and draw(st.booleans())) else 0.0
        hi = min(total, x[j] + draw(unit) * 0.6 * total) if draw(st.booleans()) else None
        ingredients.append(Ingredient(f"i{j}", lo, hi))
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        s = x[members].sum()
        if draw(st.integers(0, 4)) == 0:  # an equality group: a flat face
            gmin = gmax = s
        else:
            gmin = s * draw(unit)
            gmax = min(total, s + draw(unit) * 0.5 * total) if draw(st.booleans()) else None
        groups.append(Group(f"g{g}", [f"i{m}" for m in members], gmin, gmax))
    return FormulationSpace(ingredients, total=total, max_components=k, groups=groups)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=feasible_formulations(), seed=st.integers(0, 2**16))
def test_random_spaces_sample_and_repair_exactly(space, seed):
    df = space.sample(150, rng=seed)
    X = df.to_numpy()
    assert violations(space, X) == []
    assert space.contains(df).all()
    rng = np.random.default_rng(seed)
    proposals = np.vstack([
        X[:20] + rng.normal(0, 0.05 * space.total, (20, X.shape[1])),
        rng.uniform(-0.2, 1.2, (10, X.shape[1])) * space.total,
    ])
    fixed = space.project(pd.DataFrame(proposals, columns=space.ingredient_names))
    assert violations(space, fixed.to_numpy()) == []
    # repairing a feasible blend changes nothing
    pd.testing.assert_frame_equal(space.project(df.iloc[:10]), df.iloc[:10])


@st.composite
def arbitrary_formulations(draw):
    """Random specifications, many of them impossible."""
    n = draw(st.integers(1, 7))
    ingredients = []
    for j in range(n):
        lo = draw(st.sampled_from([0, 0, 0, 0.05, 0.2, 0.3]))
        hi = draw(st.sampled_from([None, None, 0.1, 0.2, 0.35, 0.5, 0.8]))
        ingredients.append(Ingredient(f"i{j}", lo, hi if hi is None or hi >= lo else lo))
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        gmin = draw(st.sampled_from([0, 0.1, 0.4, 0.6]))
        gmax = draw(st.sampled_from([None, 0.2, 0.4, 0.6, 0.9]))
        groups.append(Group(f"g{g}", [f"i{m}" for m in members], gmin,
                            gmax if gmax is None or gmax >= gmin else gmin))
    return dict(ingredients=ingredients, groups=groups,
                max_components=draw(st.one_of(st.none(), st.integers(1, n))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=arbitrary_formulations())
def test_any_specification_is_either_rejected_with_a_reason_or_sampled_exactly(spec):
    try:
        space = FormulationSpace(**spec)
    except DesignSpaceError as err:
        assert len(str(err)) > 20
        return
    df = space.sample(40, rng=0)
    assert violations(space, df.to_numpy()) == []
    proposals = np.random.default_rng(0).uniform(-0.2, 1.0, (5, df.shape[1]))
    fixed = space.project(pd.DataFrame(proposals, columns=space.ingredient_names))
    assert violations(space, fixed.to_numpy()) == []
