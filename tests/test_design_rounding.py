"""Proposals rounded to a precision a lab can weigh: on the grid, every constraint still exact."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    default_step,
    parse_precision,
)
from matforge.errors import DesignSpaceError


def as_decimal(v) -> Decimal:
    """A float as the decimal it prints as (what the lab reads in the suggestion file)."""
    return Decimal(repr(float(v)))


def assert_on_grid(space: FormulationSpace, df: pd.DataFrame, step: float) -> None:
    """Every amount is a whole number of steps, and the amounts sum exactly to the total, both
    in integers of steps and in the decimals as printed; bounds, groups, max_components hold."""
    X = df[space.ingredient_names].to_numpy()
    k = np.round(X / step)
    assert np.array_equal(k * 1.0, np.round(k)) and np.abs(X / step - k).max() < 1e-6
    K = round(space.total / step)
    assert (k.astype(np.int64).sum(axis=1) == K).all()
    dstep, dtotal = as_decimal(step), as_decimal(space.total)
    for row in X:
        printed = [as_decimal(v) for v in row]
        assert all(v % dstep == 0 for v in printed), printed
        assert sum(printed) == dtotal, printed
    for j, ing in enumerate(space.ingredients):
        hi = space.total if ing.max is None else ing.max
        assert (X[:, j] >= ing.min - 1e-12).all() and (X[:, j] <= hi + 1e-12).all()
    assert space.contains(df).all()


# -- formulations: random spaces on grid-friendly bounds, many random blends ---------------------


@st.composite
def grid_formulations(draw):
    """Random formulation spaces with bounds on a 0.01 grid (some spaces impossible)."""
    n = draw(st.integers(2, 7))
    cents = st.integers(0, 100)
    ingredients = []
    for j in range(n):
        lo = draw(st.sampled_from([0, 0, 0, 1, 5, 20]))
        hi = draw(st.one_of(st.none(), cents))
        ingredients.append(Ingredient(f"i{j}", lo / 100, None if hi is None else max(hi, lo) / 100))
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        gmin = draw(st.sampled_from([0, 10, 30, 50]))
        gmax = draw(st.one_of(st.none(), st.sampled_from([30, 50, 70, 90])))
        if gmax is not None and gmax < gmin:
            gmax = gmin  # an equality group now and then: a flat face
        groups.append(
            Group(
                f"g{g}",
                [f"i{m}" for m in members],
                gmin / 100,
                None if gmax is None else gmax / 100,
            )
        )
    return dict(
        ingredients=ingredients,
        groups=groups,
        max_components=draw(st.one_of(st.none(), st.integers(1, n))),
        step=draw(st.sampled_from([None, 0.001, 0.005, 0.01, 0.025])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=grid_formulations(), seed=st.integers(0, 2**16))
def test_rounded_blends_sum_exactly_and_keep_every_constraint(spec, seed):
    try:
        space = FormulationSpace(**spec)
    except DesignSpaceError as err:
        assert len(str(err)) > 20
        return
    df = space.sample(300, rng=seed)
    rounded = space.round(df)
    assert len(rounded) == len(df)  # every blend has a feasible grid point near it
    assert_on_grid(space, rounded, spec["step"] or 0.001)
    # and moved by at most what rounding needs: each amount by less than a few steps
    step = spec["step"] or 0.001
    if space.rounding_ is None:
        assert np.abs(rounded.to_numpy() - df.to_numpy()).max() < 2 * step + 1e-12


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), total=st.sampled_from([1.0, 100.0, 50.0]))
def test_largest_remainder_rounding_of_many_random_points(seed, total):
    space = FormulationSpace([f"i{j}" for j in range(6)], total=total)
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.full(6, 0.5), 500) * total  # many tiny amounts: remainders matter
    df = pd.DataFrame(X, columns=space.ingredient_names)
    rounded = space.round(df)
    assert_on_grid(space, rounded, total / 1000)
    assert space.rounding_ is None  # plain rounding sufficed, nothing moved further
    assert np.abs(rounded.to_numpy() - X).max() < total / 1000


def test_a_broken_group_goes_to_the_nearest_feasible_grid_point():
    # a and b sum to exactly 0.3005 .. 0.3015 — plain rounding of a=0.15025, b=0.15025
    # gives 0.150 + 0.150 = 0.300, below the group's min: the program moves to 0.301
    space = FormulationSpace(["a", "b", "c"], groups=[Group("ab", ["a", "b"], 0.3005, 0.3015)])
    df = pd.DataFrame({"a": [0.15025], "b": [0.15025], "c": [0.6995]})
    assert space.contains(df).all()
    rounded = space.round(df)
    assert_on_grid(space, rounded, 0.001)
    assert rounded[["a", "b"]].sum(axis=1).round(9).tolist() == [0.301]
    assert space.rounding_ == "1 of 1 blends moved to the nearest feasible grid point"


def test_max_components_survives_rounding():
    space = FormulationSpace(["a", "b", "c", "d"], max_components=2)
    df = pd.DataFrame(
        {"a": [0.9996, 0.0], "b": [0.0004, 0.5004], "c": [0.0, 0.4996], "d": [0.0, 0.0]}
    )
    rounded = space.round(df)
    assert rounded.to_dict("list") == {
        "a": [1.0, 0.0],
        "b": [0.0, 0.5],
        "c": [0.0, 0.5],
        "d": [0.0, 0.0],
    }
    assert_on_grid(space, rounded, 0.001)


def test_percent_and_batch_mass_totals_get_their_own_default_step():
    pct = FormulationSpace(["a", "b", "c"], total=100)
    assert pct.resolution == 0.1 and pct.precision == {"amounts": "0.1"}
    assert_on_grid(pct, pct.round(pct.sample(200, rng=1)), 0.1)
    grams = FormulationSpace(["a", "b"], total=50, step=0.5)
    assert_on_grid(grams, grams.round(grams.sample(200, rng=1)), 0.5)


def test_parameters_of_a_formulation_are_rounded_too():
    space = FormulationSpace(
        ["a", "b"],
        parameters=[
            Continuous("cure_T", 80, 180, unit="°C"),
            Integer("passes", 1, 3),
            Categorical("mixer", ["A", "B"]),
        ],
    )
    rounded = space.round(space.sample(100, rng=0))
    assert (rounded["cure_T"] == rounded["cure_T"].round(0)).all()
    assert rounded["passes"].isin([1, 2, 3]).all() and rounded["mixer"].isin(["A", "B"]).all()
    assert space.precision == {"amounts": "0.001", "cure_T": "1 °C"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(ingredients=["a", "b"], step=0.003), "does not divide the total 1"),
        (
            dict(ingredients=[Ingredient("a", 0.0004, 0.0008), "b"], step=0.001),
            r"ingredient 'a' ∈ \[0.0004, 0.0008\] holds no multiple of the step 0.001",
        ),
        (
            dict(
                ingredients=["a", "b", "c"],
                groups=[Group("ab", ["a", "b"], 0.3004, 0.3006)],
                step=0.001,
            ),
            "no blend on the grid of step 0.001 meets",
        ),
        (dict(ingredients=["a", "b"], step=-0.1), "step must be ≥ 0"),
    ],
)
def test_a_step_whose_grid_holds_no_blend_is_refused(kwargs, message):
    with pytest.raises(DesignSpaceError, match=message):
        FormulationSpace(**kwargs)


def test_default_step_is_dropped_and_said_when_its_grid_holds_no_blend():
    space = FormulationSpace(["a", "b", "c"], groups=[Group("ab", ["a", "b"], 0.30004, 0.30006)])
    assert space.resolution is None and space.precision["amounts"].startswith("not rounded (")
    df = space.sample(20, rng=0)
    pd.testing.assert_frame_equal(space.round(df), df)
    unrounded = FormulationSpace(["a", "b"], step=0)
    df = unrounded.sample(5, rng=0)
    pd.testing.assert_frame_equal(unrounded.round(df), df)


# -- parameters --------------------------------------------------------------------------------


def test_default_steps_are_three_significant_figures_of_the_range():
    assert default_step(300, 900) == 1.0
    assert default_step(0, 1) == 0.01
    assert default_step(0.5, 2) == 0.01
    assert default_step(0, 1500) == 10.0
    assert default_step(2, 2) is None


@settings(max_examples=40, deadline=None)
@given(
    low=st.floats(-1e4, 1e4),
    width=st.floats(1e-3, 1e5),
    step=st.one_of(st.none(), st.sampled_from([0.001, 0.05, 0.25, 1.0, 5.0])),
)
def test_continuous_values_land_on_the_grid_inside_the_range(low, width, step):
    try:
        p = Continuous("x", low, low + width, step=step)
    except DesignSpaceError as err:
        assert "no multiple of the step" in str(err)
        return
    x = p.sample(200, np.random.default_rng(0))
    r = p.round(pd.Series(x))
    assert p.valid(pd.Series(r)).all()  # inside [low, high] (within the spaces' 1e-9)
    grid = as_decimal(p.resolution)
    assert all(as_decimal(v) % grid == 0 for v in r)
    # half a step, or a whole one next to a bound that is not on the grid
    assert np.abs(r - x).max() <= p.resolution * (1 + 1e-9)


def test_log_parameter_rounds_to_three_significant_figures():
    p = Continuous("c", 1e-4, 10.0, log=True)
    r = p.round(pd.Series([1.23456e-4, 0.0123456, 9.99999, 2.0049]))
    assert r.tolist() == [0.000123, 0.0123, 10.0, 2.0]
    assert p.precision == "3 significant figures"
    assert (
        Continuous("c", 1e-4, 10.0, log=True, step=0).round(pd.Series([0.0123456]))[0] == 0.0123456
    )


def test_parameter_space_round_with_precision_and_json():
    space = ParameterSpace(
        [
            Continuous("T", 300, 900, unit="K"),
            Continuous("t", 0.5, 2.0),
            Integer("n", 1, 4),
            Categorical("gas", ["air", "N2"]),
        ]
    )
    assert space.precision == {"T": "1 K", "t": "0.01"}
    coarse = space.with_precision({"T": 25, "*": 0.25})
    assert coarse.precision == {"T": "25 K", "t": "0.25"}
    df = coarse.round(coarse.sample(300, rng=2))
    assert set(df["T"] % 25) == {0.0} and set((df["t"] * 4) % 1) == {0.0}
    assert df["n"].dtype.kind == "i"
    again = DesignSpace.from_dict(json.loads(json.dumps(coarse.as_dict())))
    assert again == coarse and again["T"].step == 25
    old = space.as_dict()  # saved before steps existed: no "step" key, the default applies
    assert "step" not in json.dumps(old)
    assert DesignSpace.from_dict(old).precision == {"T": "1 K", "t": "0.01"}
    with pytest.raises(DesignSpaceError, match=r"precision for \['pressure'\].*\['T', 't'\]"):
        space.with_precision({"pressure": 1})
    with pytest.raises(DesignSpaceError, match="no multiple of the step 7"):
        Continuous("x", 1, 6, step=7)


def test_formulation_with_precision_and_json():
    space = FormulationSpace(["a", "b"], parameters=[Continuous("T", 20, 80)])
    both = space.with_precision(0.05)
    assert both.precision == {"amounts": "0.05", "T": "0.05"}
    named = space.with_precision({"amounts": 0.01, "T": 5})
    assert named.step == 0.01 and named.parameters["T"].step == 5
    again = DesignSpace.from_dict(json.loads(json.dumps(named.as_dict())))
    assert again == named and again.resolution == 0.01
    with pytest.raises(DesignSpaceError, match="share one step"):
        space.with_precision({"a": 0.01})


def test_pools_refuse_a_precision():
    pool = DiscretePool(pd.DataFrame({"x": [0.1, 0.2]}))
    assert pool.with_precision(None) is pool and pool.precision == {}
    with pytest.raises(DesignSpaceError, match="candidates are proposed as they are"):
        pool.with_precision(0.01)


def test_parse_precision():
    assert parse_precision(["0.001", "temperature=5", "amounts = 0.01"]) == {
        "*": 0.001,
        "temperature": 5.0,
        "amounts": 0.01,
    }
    with pytest.raises(DesignSpaceError, match="'abc' is not a number"):
        parse_precision(["T=abc"])
    with pytest.raises(DesignSpaceError, match="given twice"):
        parse_precision(["0.1", "0.2"])
