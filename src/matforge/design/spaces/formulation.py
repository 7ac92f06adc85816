"""Formulations: ingredient amounts on a constrained simplex (:class:`Ingredient`,
:class:`Group`, :class:`FormulationSpace`), optionally with process parameters.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matforge.design.polytope import Polytope, project_box_simplex
from matforge.design.spaces.base import (
    AMOUNT_STEP,
    MAX_ENUMERATED_SUPPORTS,
    MAX_GRID_PROGRAMS,
    MAX_REJECTION_DRAWS,
    TOL,
    DesignSpace,
    _check_name,
    _check_step,
    _finite,
    _fmt,
    _on_grid,
    _require_columns,
    _rng,
    _row_frame,
    _show,
    _steps,
)
from matforge.design.spaces.parameters import (
    Parameter,
    ParameterSpace,
)
from matforge.errors import DesignSpaceError

# -----------------------------------------------------------------------------------------------
# Formulations: amounts on a constrained simplex
# -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingredient:
    """An ingredient with bounds on its amount, in the units of the formulation's ``total``.

    ``max=None`` means "up to the total". An ingredient with ``min > 0`` is always present.
    """

    name: str
    min: float = 0.0
    max: float | None = None

    def __post_init__(self):
        _check_name(self.name, "ingredient")
        lo = _finite(self.min, f"ingredient {self.name!r}: min")
        object.__setattr__(self, "min", lo)
        if self.max is not None:
            object.__setattr__(self, "max", _finite(self.max, f"ingredient {self.name!r}: max"))
        if lo < 0:
            raise DesignSpaceError(f"ingredient {self.name!r}: min {_fmt(lo)} is negative")
        if self.max is not None and self.max < lo:
            raise DesignSpaceError(
                f"ingredient {self.name!r}: min {_fmt(lo)} > max {_fmt(self.max)}"
            )

    def as_dict(self) -> dict:
        return {"name": self.name, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class Group:
    """Bounds on the summed amount of several ingredients ("fillers between 10 and 40 %")."""

    name: str
    members: tuple[str, ...]
    min: float = 0.0
    max: float | None = None

    def __post_init__(self):
        _check_name(self.name, "group")
        if isinstance(self.members, str) or not isinstance(self.members, Iterable):
            raise DesignSpaceError(f"group {self.name!r}: members must be a list of names")
        members = tuple(self.members)
        if not members:
            raise DesignSpaceError(f"group {self.name!r} has no members")
        if len(set(members)) != len(members):
            raise DesignSpaceError(f"group {self.name!r}: duplicate members {list(members)}")
        object.__setattr__(self, "members", members)
        lo = _finite(self.min, f"group {self.name!r}: min")
        object.__setattr__(self, "min", lo)
        if self.max is not None:
            object.__setattr__(self, "max", _finite(self.max, f"group {self.name!r}: max"))
        if lo < 0:
            raise DesignSpaceError(f"group {self.name!r}: min {_fmt(lo)} is negative")
        if self.max is not None and self.max < lo:
            raise DesignSpaceError(f"group {self.name!r}: min {_fmt(lo)} > max {_fmt(self.max)}")

    def as_dict(self) -> dict:
        return {"name": self.name, "members": list(self.members), "min": self.min, "max": self.max}


class FormulationSpace(DesignSpace):
    """Blends: ingredient amounts that sum exactly to ``total``, with constraints.

    Parameters
    ----------
    ingredients : list of Ingredient (or names, for an ingredient bounded by [0, total])
    total : float, default=1.0
        What the amounts sum to (1 for fractions, 100 for percent, a batch mass in g, ...).
    max_components : int, optional
        At most this many ingredients present (an amount ≤ TOL counts as absent). Ingredients
        with ``min > 0`` are always present and count against it.
    groups : list of Group
        Bounds on sums of ingredients; groups may overlap.
    parameters : ParameterSpace or list of parameters, optional
        Process conditions sampled independently of the blend (e.g. a curing temperature).
    step : float, optional
        Proposals' amounts are rounded to multiples of it (:meth:`round`), in the units of
        ``total``; it must divide the total. Default 0.1 % of the total (0.001 for fractions,
        0.1 for percent); 0: not rounded.

    The space is checked on construction: impossible bounds raise :class:`DesignSpaceError`
    naming the problem (sum of minimums above the total, maximums that cannot reach it, a
    ``max_components`` below the number of always-present ingredients, impossible groups), and a
    mixed-integer feasibility program catches the remaining conflicts.

    Sampling
    --------
    A blend with at most ``k`` components lies on a face of the simplex spanned by ``k``
    ingredients (the always-present ones plus ``k − |always|`` optional ones); faces of fewer
    ingredients have zero volume inside them. ``sample`` is uniform on the union of these
    faces (each face's share proportional to its feasible volume) when rejection sampling is
    affordable: a face is drawn uniformly, a point is drawn uniformly on it (shifted
    Dirichlet(1) above the minimums) and the pair is kept only if it satisfies the maximums and
    groups. When fewer draws would be accepted than affordable (tight bounds, groups with
    ``min == max``), a hit-and-run sampler runs on each face instead, faces being drawn in
    proportion to the exact volume of the face's box constraints (inclusion–exclusion), which
    ignores the groups: an approximation, recorded in ``sampler_`` after a call. With more
    than 20,000 faces they are drawn uniformly instead of by volume. Faces that are the same
    polytope up to relabelling (same bounds and group memberships) share one sampler.

    Rounding
    --------
    :meth:`round` puts blends on the grid of ``step``: amounts floored to the grid, then the
    missing steps given to the ingredients present with the largest remainders (within their
    bounds), so the amounts sum to the total exactly (as integers of steps). A blend whose
    rounding breaks a group bound or ``max_components`` goes to the nearest grid point that
    meets every constraint (least total change, an integer program). Construction refuses a
    step on whose grid no blend is feasible.
    """

    def __init__(self, ingredients: Sequence[Ingredient | str], total: float = 1.0,
                 max_components: int | None = None, groups: Sequence[Group] = (),
                 parameters: ParameterSpace | Sequence[Parameter] | None = None,
                 step: float | None = None):
        total = _finite(total, "FormulationSpace: total")
        if total <= 0:
            raise DesignSpaceError(f"FormulationSpace: total must be positive, got {_fmt(total)}")
        ings = []
        for i in ingredients:
            if isinstance(i, str):
                i = Ingredient(i)
            elif isinstance(i, Mapping):
                i = Ingredient(**i)
            if not isinstance(i, Ingredient):
                raise DesignSpaceError(f"not an ingredient: {i!r}")
            ings.append(i)
        if not ings:
            raise DesignSpaceError("FormulationSpace needs at least one ingredient")
        names = [i.name for i in ings]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DesignSpaceError(f"FormulationSpace: duplicate ingredient names {dupes}")
        grps = [Group(**g) if isinstance(g, Mapping) else g for g in groups]
        gnames = [g.name for g in grps]
        dupes = sorted({n for n in gnames if gnames.count(n) > 1})
        if dupes:
            raise DesignSpaceError(f"FormulationSpace: duplicate group names {dupes}")
        if parameters is not None and not isinstance(parameters, ParameterSpace):
            parameters = ParameterSpace(parameters)
        if parameters is not None:
            clash = sorted(set(names) & set(parameters.columns))
            if clash:
                raise DesignSpaceError(f"FormulationSpace: {clash} are both ingredients and parameters")
        if max_components is not None:
            if isinstance(max_components, bool) or int(max_components) != max_components \
                    or max_components < 1:
                raise DesignSpaceError(
                    f"FormulationSpace: max_components must be a positive integer, "
                    f"got {max_components!r}"
                )
            max_components = int(max_components)

        self.ingredients = tuple(ings)
        self.total = total
        self.max_components = max_components
        self.groups = tuple(grps)
        self.parameters = parameters
        self.step = _check_step(step, "FormulationSpace")
        self.sampler_: str | None = None
        self.rounding_: str | None = None

        n = len(ings)
        self._names = names
        self._lo = np.array([i.min for i in ings])
        self._hi = np.array([total if i.max is None else min(i.max, total) for i in ings])
        self._k = n if max_components is None else min(max_components, n)
        index = {nm: j for j, nm in enumerate(names)}
        self._G = np.zeros((len(grps), n))
        for gi, g in enumerate(grps):
            unknown = [m for m in g.members if m not in index]
            if unknown:
                raise DesignSpaceError(
                    f"group {g.name!r}: unknown ingredient(s) {unknown}; ingredients are {names}"
                )
            self._G[gi, [index[m] for m in g.members]] = 1.0
        self._gmin = np.array([g.min for g in grps])
        self._gmax = np.array([total if g.max is None else min(g.max, total) for g in grps])
        self._always = np.flatnonzero(self._lo > 0)
        self._optional = np.flatnonzero((self._lo == 0) & (self._hi > 0))
        self._m_opt = min(self._k - len(self._always), len(self._optional))
        self._polytopes: dict[tuple, Polytope] = {}
        self._supports_cache: np.ndarray | None | bool = False
        self._check_feasible()
        self._set_grid()

    # -- construction checks -------------------------------------------------------------------

    def _names_of(self, idx) -> str:
        return ", ".join(self._names[j] for j in idx)

    def _check_feasible(self) -> None:
        lo, hi, T, k = self._lo, self._hi, self.total, self._k
        for j, ing in enumerate(self.ingredients):
            if lo[j] > T + TOL:
                raise DesignSpaceError(
                    f"ingredient {ing.name!r}: min {_fmt(lo[j])} exceeds the total {_fmt(T)}"
                )
        if lo.sum() > T + TOL:
            raise DesignSpaceError(
                f"the ingredient minimums sum to {_fmt(lo.sum())}, more than the total "
                f"{_fmt(T)} ({', '.join(f'{self._names[j]} ≥ {_fmt(lo[j])}' for j in self._always)})"
            )
        if len(self._always) > k:
            raise DesignSpaceError(
                f"max_components={self.max_components} is smaller than the "
                f"{len(self._always)} ingredients that are always present (min > 0): "
                f"{self._names_of(self._always)}"
            )
        reach = hi[self._always].sum() + np.sort(hi[self._optional])[::-1][:self._m_opt].sum()
        if reach < T - TOL:
            limit = f" with at most {k} components" if k < len(lo) else ""
            raise DesignSpaceError(
                f"the ingredient maximums cannot reach the total {_fmt(T)}{limit}: "
                f"the largest reachable sum is {_fmt(reach)}"
            )
        for gi, g in enumerate(self.groups):
            members = np.flatnonzero(self._G[gi])
            gmin, gmax = self._gmin[gi], self._gmax[gi]
            others = np.setdiff1d(np.arange(len(lo)), members)
            if gmin > T + TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: min {_fmt(gmin)} exceeds the total {_fmt(T)}"
                )
            if lo[members].sum() > gmax + TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its members' minimums sum to {_fmt(lo[members].sum())}, "
                    f"above the group max {_fmt(gmax)}"
                )
            if hi[members].sum() < gmin - TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its members' maximums sum to {_fmt(hi[members].sum())}, "
                    f"below the group min {_fmt(gmin)}"
                )
            if gmin + lo[others].sum() > T + TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its min {_fmt(gmin)} plus the other ingredients' "
                    f"minimums ({_fmt(lo[others].sum())}) exceed the total {_fmt(T)}"
                )
            if gmax + hi[others].sum() < T - TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its max {_fmt(gmax)} plus the other ingredients' "
                    f"maximums ({_fmt(hi[others].sum())}) cannot reach the total {_fmt(T)}"
                )
        if self._feasible_program(groups=True, cardinality=True):
            return
        limit = f"max_components={self.max_components}"
        if self.groups and not self._feasible_program(groups=False, cardinality=True):
            raise DesignSpaceError(f"no blend meets the ingredient bounds with {limit}")
        if not self._feasible_program(groups=True, cardinality=False):
            conflicting = [g.name for gi, g in enumerate(self.groups)
                           if not self._feasible_program(groups=[gi], cardinality=False)]
            which = f" (group(s) {conflicting} on their own)" if conflicting else ""
            raise DesignSpaceError(
                f"no blend meets the group bounds together with the ingredient bounds{which}"
            )
        raise DesignSpaceError(
            f"{limit} is too small: every blend that meets the group and ingredient bounds "
            f"needs more ingredients"
        )

    @property
    def resolution(self) -> float | None:
        """The step amounts are rounded to (None: not rounded)."""
        if self._grid_off is not None:
            return None
        step = self.total * AMOUNT_STEP if self.step is None else self.step
        return step or None

    def _set_grid(self) -> None:
        """Integer bounds of the grid of ``resolution`` (amounts = k · step). A given step that
        does not divide the total, or on whose grid no blend is feasible, is refused; the
        default step is then dropped (blends not rounded), and ``precision`` says why."""
        self._grid_off: str | None = None
        step = self.resolution
        if step is None:
            return
        problem = self._grid_problem(step)
        if problem is None:
            return
        if self.step is not None:
            raise DesignSpaceError(f"FormulationSpace: {problem}")
        self._grid_off = problem

    def _grid_problem(self, step: float) -> str | None:
        K = self.total / step
        if abs(K - round(K)) > 1e-9 * max(K, 1.0) or round(K) < 1:
            return (f"the step {_fmt(step)} does not divide the total {_fmt(self.total)}, so "
                    f"amounts on its grid cannot sum to it; use a step that does")
        if K > 1e12:
            return f"the step {_fmt(step)} is too fine; use 0 for 'not rounded'"
        self._K = int(round(K))
        # (+ 0.0: ceil(-1e-9) is -0.0, which would print as "-0.0" in a suggestion)
        self._lo_k = np.ceil(self._lo / step - 1e-9) + 0.0
        self._hi_k = np.floor(self._hi / step + 1e-9) + 0.0
        self._gmin_k = np.ceil(self._gmin / step - 1e-9) + 0.0
        self._gmax_k = np.floor(self._gmax / step + 1e-9) + 0.0
        empty = np.flatnonzero(self._lo_k > self._hi_k)
        if len(empty):
            j = int(empty[0])
            return (f"ingredient {self._names[j]!r} ∈ [{_fmt(self._lo[j])}, "
                    f"{_fmt(self._hi[j])}] holds no multiple of the step {_fmt(step)}; use a "
                    f"finer precision")
        if self._grid_program(None) is None:
            return (f"no blend on the grid of step {_fmt(step)} meets the bounds, groups and "
                    f"max_components; use a finer precision")
        return None

    def _grid_program(self, u: np.ndarray | None) -> np.ndarray | None:
        """Integer amounts k (in steps) meeting every constraint, nearest to ``u`` in total
        change (Σ|k − u|), or any such k when ``u`` is None; None if there is none (HiGHS)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        n = len(self._lo)
        use_z = self._k < n
        # variables: k (n, integer), d ≥ |k − u| (n), z (n, binary: present) if cardinality
        nv = n * (3 if use_z else 2)
        rows, lb, ub = [], [], []

        def add(row, low, high):
            rows.append(row)
            lb.append(low)
            ub.append(high)

        eye, zeros = np.eye(n), np.zeros((n, nv - 2 * n))
        add(np.r_[np.ones(n), np.zeros(nv - n)], self._K, self._K)
        for gi in range(len(self.groups)):
            add(np.r_[self._G[gi], np.zeros(nv - n)], self._gmin_k[gi], self._gmax_k[gi])
        target = np.zeros(n) if u is None else np.asarray(u, dtype=float)
        for j in range(n):  # d_j ≥ k_j − u_j and d_j ≥ u_j − k_j
            add(np.r_[eye[j], -eye[j], zeros[j]], -np.inf, target[j])
            add(np.r_[-eye[j], -eye[j], zeros[j]], -np.inf, -target[j])
        lower = np.r_[self._lo_k, np.zeros(n)]
        upper = np.r_[self._hi_k, np.full(n, np.inf)]
        integrality = np.r_[np.ones(n), np.zeros(n)]
        if use_z:
            for j in range(n):  # k_j ≤ hi_j z_j
                row = np.zeros(nv)
                row[j], row[2 * n + j] = 1.0, -self._hi_k[j]
                add(row, -np.inf, 0.0)
            add(np.r_[np.zeros(2 * n), np.ones(n)], 0, self._k)
            lower = np.r_[lower, np.zeros(n)]
            upper = np.r_[upper, np.ones(n)]
            integrality = np.r_[integrality, np.ones(n)]
        cost = np.r_[np.zeros(n), np.ones(n) if u is not None else np.zeros(n),
                     np.zeros(nv - 2 * n)]
        res = milp(cost, constraints=LinearConstraint(np.array(rows), lb, ub),
                   integrality=integrality, bounds=Bounds(lower, upper))
        if res.status != 0 or res.x is None:
            return None
        return np.round(res.x[:n])

    def _round_amounts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Blends (inside the space) as integer amounts k on the grid with Σk = K; the mask of
        rows that plain largest-remainder rounding could not put inside the space."""
        U = X / self.resolution
        present = X > TOL
        k = np.clip(np.floor(U + 1e-9), self._lo_k, self._hi_k)
        frac = U - k
        r = self._K - k.sum(axis=1)
        stuck = np.zeros(len(X), dtype=bool)
        rows = np.arange(len(X))
        while True:  # each pass moves one step in every row still off the total
            up, down = (r > 0) & ~stuck, (r < 0) & ~stuck
            if not (up.any() or down.any()):
                break
            # Short: the present ingredient with the largest remainder gets a step; over: the
            # one with the smallest gives one back (absent ones stay absent: max_components).
            score = np.where(up[:, None], np.where(present & (k < self._hi_k), frac, -np.inf),
                             np.where(k > self._lo_k, -frac, -np.inf))
            j = np.argmax(score, axis=1)
            moving = (up | down) & np.isfinite(score[rows, j])
            stuck |= (up | down) & ~moving
            sign = np.where(up, 1.0, -1.0)[moving]
            k[rows[moving], j[moving]] += sign
            frac[rows[moving], j[moving]] -= sign
            r[moving] -= sign
        return k, stuck

    def _feasible_program(self, groups, cardinality: bool) -> bool:
        """Mixed-integer feasibility of the linear constraints (HiGHS)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        n = len(self._lo)
        rows = range(len(self.groups)) if groups is True else (groups or [])
        rows = list(rows)
        use_z = cardinality and self._k < n
        nv = 2 * n if use_z else n
        A, lb, ub = [np.r_[np.ones(n), np.zeros(nv - n)]], [self.total], [self.total]
        for gi in rows:
            A.append(np.r_[self._G[gi], np.zeros(nv - n)])
            lb.append(self._gmin[gi])
            ub.append(self._gmax[gi])
        lower, upper = np.r_[self._lo], np.r_[self._hi]
        integrality = np.zeros(nv)
        if use_z:
            for j in range(n):  # x_j ≤ hi_j z_j
                row = np.zeros(nv)
                row[j], row[n + j] = 1.0, -self._hi[j]
                A.append(row)
                lb.append(-np.inf)
                ub.append(0.0)
            A.append(np.r_[np.zeros(n), np.ones(n)])
            lb.append(0)
            ub.append(self._k)
            lower = np.r_[lower, (self._lo > 0).astype(float)]
            upper = np.r_[upper, np.ones(n)]
            integrality[n:] = 1
        res = milp(np.zeros(nv), constraints=LinearConstraint(np.array(A), lb, ub),
                   integrality=integrality, bounds=Bounds(lower, upper))
        return res.status == 0

    # -- basic protocol ------------------------------------------------------------------------

    def __eq__(self, other) -> bool:
        return isinstance(other, FormulationSpace) and self.as_dict() == other.as_dict()

    __hash__ = None

    def __repr__(self) -> str:
        ings = []
        for j, nm in enumerate(self._names):
            lo, hi = self._lo[j], self._hi[j]
            ings.append(nm if lo == 0 and hi >= self.total else f"{nm} ∈ [{_fmt(lo)}, {_fmt(hi)}]")
        lines = [f"FormulationSpace(total={_fmt(self.total)}"
                 + (f", max_components={self.max_components}" if self.max_components else "")
                 + (f", step={_fmt(self.step)}" if self.step is not None else "")
                 + ",", f"  ingredients=[{', '.join(ings)}],"]
        if self.groups:
            gs = [f"{g.name} {{{', '.join(g.members)}}} ∈ [{_fmt(self._gmin[i])}, "
                  f"{_fmt(self._gmax[i])}]" for i, g in enumerate(self.groups)]
            lines.append(f"  groups=[{'; '.join(gs)}],")
        if self.parameters is not None:
            lines.append(f"  parameters=[{', '.join(str(p) for p in self.parameters)}],")
        lines[-1] = lines[-1].rstrip(",") + ")"
        return "\n".join(lines)

    @property
    def ingredient_names(self) -> list[str]:
        return list(self._names)

    @property
    def columns(self) -> list[str]:
        return self._names + (self.parameters.columns if self.parameters is not None else [])

    @property
    def feature_names(self) -> list[str]:
        extra = self.parameters.feature_names if self.parameters is not None else []
        return self._names + extra

    def as_dict(self) -> dict:
        d = {
            "@class": "FormulationSpace",
            "ingredients": [i.as_dict() for i in self.ingredients],
            "total": self.total,
            "max_components": self.max_components,
            "groups": [g.as_dict() for g in self.groups],
            "parameters": self.parameters.as_dict() if self.parameters is not None else None,
        }
        if self.step is not None:  # absent (spaces saved before steps existed): the default
            d["step"] = self.step
        return d

    @classmethod
    def _from_dict(cls, d: dict) -> FormulationSpace:
        params = d.get("parameters")
        return cls(
            [Ingredient(**i) for i in d["ingredients"]],
            total=d["total"],
            max_components=d.get("max_components"),
            groups=[Group(**g) for g in d.get("groups", [])],
            parameters=ParameterSpace._from_dict(params) if params else None,
            step=d.get("step"),
        )

    @property
    def precision(self) -> dict[str, str]:
        step = self.resolution
        if self._grid_off is not None:
            out = {"amounts": f"not rounded ({self._grid_off.split(';')[0]})"}
        else:
            out = {"amounts": _fmt(step) if step else "not rounded"}
        if self.parameters is not None:
            out.update(self.parameters.precision)
        return out

    def with_precision(self, precision) -> FormulationSpace:
        """A copy rounding to other steps: ``precision`` is one step for the amounts and every
        continuous parameter, or a mapping ``{"amounts": step, parameter: step, "*": step}``
        (``"*"``: every column not named); 0 leaves a column unrounded. The amounts share one
        step (it keeps their sum exact), so ingredients cannot be named."""
        if isinstance(precision, Mapping):
            named = [k for k in precision if k in self._names]
            if named:
                raise DesignSpaceError(
                    f"FormulationSpace: the ingredient amounts share one step; give it as "
                    f"'amounts' (or a bare step), not per ingredient ({named})"
                )
        names = ["amounts"] + [p.name for p in (self.parameters or ()) if p.kind == "continuous"]
        steps = _steps(precision, names, "FormulationSpace")
        params = self.parameters
        if params is not None:
            params = params.with_precision({k: v for k, v in steps.items() if k != "amounts"})
        return FormulationSpace(self.ingredients, total=self.total,
                                max_components=self.max_components, groups=self.groups,
                                parameters=params, step=steps.get("amounts", self.step))

    # -- checks --------------------------------------------------------------------------------

    def _amounts(self, df: pd.DataFrame) -> np.ndarray:
        _require_columns(df, self.columns, "FormulationSpace")
        return df[self._names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)

    def _mask(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(X).all(axis=1)
            ok &= ((X >= self._lo - TOL) & (X <= self._hi + TOL)).all(axis=1)
            ok &= np.abs(X.sum(axis=1) - self.total) <= TOL
            ok &= (X > TOL).sum(axis=1) <= self._k
            if len(self.groups):
                S = X @ self._G.T
                ok &= ((S >= self._gmin - TOL) & (S <= self._gmax + TOL)).all(axis=1)
        return ok

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        ok = self._mask(self._amounts(df))
        if self.parameters is not None:
            ok &= self.parameters.contains(df)
        return ok

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            return f"missing column(s) {missing}"
        x = self._amounts(frame)[0]
        reasons = []
        for j, nm in enumerate(self._names):
            if not np.isfinite(x[j]):
                reasons.append(f"{nm} is not a number ({_show(frame[nm].iloc[0])})")
            elif x[j] < self._lo[j] - TOL:
                reasons.append(f"{nm} = {_fmt(x[j])} is below its min {_fmt(self._lo[j])}")
            elif x[j] > self._hi[j] + TOL:
                reasons.append(f"{nm} = {_fmt(x[j])} is above its max {_fmt(self._hi[j])}")
        if np.isfinite(x).all():
            s = x.sum()
            if abs(s - self.total) > TOL:
                reasons.append(f"the amounts sum to {s:.12g}, not the total {_fmt(self.total)}")
            present = np.flatnonzero(x > TOL)
            if len(present) > self._k:
                reasons.append(
                    f"{len(present)} ingredients are present ({self._names_of(present)}), "
                    f"more than max_components={self.max_components}"
                )
            for gi, g in enumerate(self.groups):
                gs = float(self._G[gi] @ x)
                if gs < self._gmin[gi] - TOL:
                    reasons.append(f"group {g.name!r} ({', '.join(g.members)}) sums to "
                                   f"{_fmt(gs)}, below its min {_fmt(self._gmin[gi])}")
                elif gs > self._gmax[gi] + TOL:
                    reasons.append(f"group {g.name!r} ({', '.join(g.members)}) sums to "
                                   f"{_fmt(gs)}, above its max {_fmt(self._gmax[gi])}")
        if self.parameters is not None:
            if r := self.parameters.infeasible_reason(frame):
                reasons.append(r)
        return "; ".join(reasons) or None

    # -- features ------------------------------------------------------------------------------

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        if self.parameters is not None:
            self.parameters.check_levels(df, source)

    def to_features(self, df: pd.DataFrame) -> np.ndarray:
        """Ingredient amounts as fractions of the total, then the parameters' features."""
        X = self._amounts(df)
        if not np.isfinite(X).all():
            row = df.index[int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])]
            raise DesignSpaceError(f"FormulationSpace: missing or non-numeric amount in row {row!r}")
        F = X / self.total
        if self.parameters is not None:
            F = np.hstack([F, self.parameters.to_features(df)])
        return F

    def from_features(self, F: np.ndarray) -> pd.DataFrame:
        """Decode features into a DataFrame (not repaired: pass it through :meth:`project`)."""
        F = np.asarray(F, dtype=float).reshape(-1, len(self.feature_names))
        n = len(self._names)
        df = pd.DataFrame(F[:, :n] * self.total, columns=self._names)
        if self.parameters is not None:
            df = pd.concat([df, self.parameters.from_features(F[:, n:])], axis=1)
        return df

    # -- faces (sets of active ingredients) ----------------------------------------------------

    def _supports(self) -> np.ndarray | None:
        """Every maximal active set (always-present + m_opt optional), or None if too many."""
        if self._supports_cache is False:
            n_opt, m_opt = len(self._optional), self._m_opt
            if math.comb(n_opt, m_opt) > MAX_ENUMERATED_SUPPORTS:
                self._supports_cache = None
            else:
                combos = np.array(list(itertools.combinations(self._optional, m_opt)),
                                  dtype=int).reshape(math.comb(n_opt, m_opt), m_opt)
                always = np.tile(self._always, (len(combos), 1))
                self._supports_cache = np.hstack([always, combos])
        return self._supports_cache

    def _random_supports(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` maximal active sets drawn uniformly (random keys, exact)."""
        n_opt, m_opt = len(self._optional), self._m_opt
        if m_opt == n_opt:
            chosen = np.tile(np.arange(n_opt), (size, 1))
        elif m_opt == 0:
            chosen = np.zeros((size, 0), dtype=int)
        else:
            keys = rng.random((size, n_opt))
            chosen = np.argpartition(keys, m_opt - 1, axis=1)[:, :m_opt]
        return np.hstack([np.tile(self._always, (size, 1)), self._optional[chosen]])

    def _canonical(self, support) -> tuple[tuple, np.ndarray]:
        """Faces whose members have equal bounds and group memberships are one polytope up to a
        relabelling (typical: many ingredients with default bounds). The key names that
        polytope; the returned order maps its coordinates to ingredients."""
        S = np.asarray(support, dtype=int)
        sig = [(self._lo[j], self._hi[j], tuple(self._G[:, j])) for j in S]
        order = sorted(range(len(S)), key=sig.__getitem__)
        return tuple(sig[i] for i in order), S[order]

    def _polytope(self, support) -> tuple[Polytope, np.ndarray]:
        key, S = self._canonical(support)
        poly = self._polytopes.get(key)
        if poly is None:
            m = len(S)
            A_eq, b_eq = [np.ones((1, m))], [[self.total]]
            A_ub = [-np.eye(m), np.eye(m)]
            b_ub = [-self._lo[S], self._hi[S]]
            if len(self.groups):
                GS = self._G[:, S]
                # Groups with min == max are equalities: saves the search for flat directions.
                eq = self._gmax - self._gmin <= TOL
                A_eq.append(GS[eq])
                b_eq.append(self._gmin[eq])
                A_ub += [GS[~eq], -GS[~eq]]
                b_ub += [self._gmax[~eq], -self._gmin[~eq]]
            poly = Polytope(np.vstack(A_eq), np.concatenate(b_eq), np.vstack(A_ub),
                            np.concatenate(b_ub), scale=self.total)
            self._polytopes[key] = poly
        return poly, S

    def _face_volumes(self, supports: np.ndarray) -> np.ndarray:
        """Relative (m−1)-volumes of each face's box-constrained slice {lo ≤ x ≤ hi, Σx = T}.

        Inclusion–exclusion over the ingredients whose range is narrower than the free amount
        ``R = T − Σ min``: V ∝ Σ_J (−1)^|J| (R − Σ_{j∈J} w_j)_+^(m−1) with ``w = max − min``
        (the density of a sum of uniforms). Returns None if that takes too many terms.
        """
        m = supports.shape[1]
        R = self.total - self._lo[self._always].sum()
        if R <= 0:
            return np.ones(len(supports))
        w = (self._hi - self._lo) / R
        if m == 1:
            return (w[supports[:, 0]] >= 1 - 1e-12).astype(float)
        memo: dict[tuple, float] = {}
        budget = [200_000]

        def volume(tight: tuple) -> float:
            terms: list[float] = []

            def walk(start: int, acc: float, sign: int) -> None:
                terms.append(sign * (1.0 - acc) ** (m - 1))
                budget[0] -= 1
                if budget[0] < 0:
                    raise OverflowError
                for i in range(start, len(tight)):
                    if acc + tight[i] >= 1.0:
                        break  # sorted: every later term vanishes too
                    walk(i + 1, acc + tight[i], -sign)

            walk(0, 0.0, 1)
            return max(math.fsum(terms), 0.0)

        out = np.empty(len(supports))
        try:
            for s, support in enumerate(supports):
                ws = w[support]
                tight = tuple(sorted(ws[ws < 1.0]))
                if tight not in memo:
                    memo[tight] = volume(tight)
                out[s] = memo[tight]
        except OverflowError:
            return None
        return out

    # -- sampling ------------------------------------------------------------------------------

    def _rejection_draws(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform face, uniform point above the minimums on it; keep exact-feasible pairs."""
        S = self._random_supports(size, rng)
        lo = self._lo[S]
        R = self.total - lo.sum(axis=1, keepdims=True)
        E = rng.exponential(size=S.shape)
        XS = lo + R * (E / E.sum(axis=1, keepdims=True))
        ok = (XS <= self._hi[S]).all(axis=1)
        X = np.zeros((size, len(self._names)))
        np.put_along_axis(X, S, XS, axis=1)
        if len(self.groups):
            G = X @ self._G.T
            ok &= ((G >= self._gmin) & (G <= self._gmax)).all(axis=1)
        return X[ok]

    def _hit_and_run(self, n: int, rng: np.random.Generator) -> np.ndarray:
        supports = self._supports()
        if supports is not None:
            weights = self._face_volumes(supports)
            if weights is None or weights.sum() <= 0:
                weights = np.ones(len(supports))
        X = np.zeros((n, len(self._names)))
        todo = np.arange(n)
        for _ in range(100):
            if not len(todo) or (supports is not None and weights.sum() <= 0):
                break
            if supports is not None:
                picks = rng.choice(len(supports), size=len(todo), p=weights / weights.sum())
                chosen = supports[picks]
            else:
                chosen = self._random_supports(len(todo), rng)
            # One hit-and-run batch per distinct polytope, mapped back face by face.
            batches: dict[tuple, list[int]] = {}
            orders = np.empty_like(chosen)
            for i, support in enumerate(chosen):
                key, orders[i] = self._canonical(support)
                batches.setdefault(key, []).append(i)
            keep = np.ones(len(todo), dtype=bool)
            for rows in batches.values():
                poly, _ = self._polytope(orders[rows[0]])
                if not poly.feasible:
                    keep[rows] = False
                    if supports is not None:
                        weights[picks[rows]] = 0.0
                    continue
                block = np.zeros((len(rows), len(self._names)))
                np.put_along_axis(block, orders[rows], poly.sample(len(rows), rng), axis=1)
                X[todo[rows]] = block
            todo = todo[~keep]
        if len(todo):
            raise DesignSpaceError("FormulationSpace: could not find feasible faces to sample")
        return X[rng.permutation(n)]

    def _sample_amounts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n == 0:
            return np.zeros((0, len(self._names)))
        cap = max(10_000, 2_000_000 // len(self._names))  # draws per batch: ~16 MB arrays
        pilot_size = min(max(2048, 2 * n), cap)
        pilot = self._rejection_draws(pilot_size, rng)
        rate = len(pilot) / pilot_size
        if rate > 0 and n / rate <= MAX_REJECTION_DRAWS:
            self.sampler_ = "rejection (exactly uniform)"
            parts, have = [pilot[:n]], min(len(pilot), n)
            while have < n:
                size = min(int((n - have) / rate * 1.2) + 64, cap)
                more = self._rejection_draws(size, rng)[: n - have]
                parts.append(more)
                have += len(more)
            return np.vstack(parts)
        self.sampler_ = ("hit-and-run (faces drawn by box-constrained volume; "
                         "approximately uniform)")
        X = self._hit_and_run(n, rng)
        bad = ~self._mask(X)
        if bad.any():  # rounding on a nearly flat face: repair (moves points by ~1e-12)
            X[bad] = self._project_amounts(X[bad])
            if not self._mask(X).all():
                raise DesignSpaceError(
                    "FormulationSpace: the sampler produced blends outside the space (a nearly "
                    "degenerate face?); please report this space: " + repr(self)
                )
        return X

    def sample(self, n: int, rng=None) -> pd.DataFrame:
        """``n`` blends (and parameter settings) drawn uniformly; see the class docstring."""
        rng = _rng(rng)
        n = int(n)
        df = pd.DataFrame(self._sample_amounts(n, rng), columns=self._names)
        if self.parameters is not None:
            df = pd.concat([df, self.parameters.sample(n, rng)], axis=1)
        return df

    # -- repair --------------------------------------------------------------------------------

    def _relaxed_projection(self, support: np.ndarray, p: np.ndarray) -> np.ndarray | None:
        """Nearest point to ``p`` on the face ``support`` ignoring the groups (exact, cheap)."""
        S = np.asarray(support)
        lo, hi = self._lo[S], self._hi[S]
        if lo.sum() > self.total + TOL or hi.sum() < self.total - TOL:
            return None
        x = np.zeros(len(p))
        x[S] = project_box_simplex(p[S], lo, hi, self.total)
        return x

    def _groups_ok(self, x: np.ndarray) -> bool:
        g = self._G @ x
        return bool(((g >= self._gmin - TOL) & (g <= self._gmax + TOL)).all())

    def _project_on(self, support: np.ndarray, p: np.ndarray) -> np.ndarray | None:
        """Nearest point to ``p`` among blends whose active ingredients lie in ``support``."""
        poly, S = self._polytope(support)
        if not poly.feasible:
            return None
        x = np.zeros(len(p))
        x[S] = poly.project(p[S])
        return x

    def _project_row(self, p: np.ndarray, max_faces: int = 64) -> np.ndarray:
        supports = self._supports()
        sq = p**2
        if supports is not None:
            # ‖x − p‖² ≥ Σ_{j ∉ S} p_j²: try faces in order of that bound, stop when it exceeds
            # the best distance found (exact nearest point, up to max_faces faces).
            bound = sq.sum() - sq[supports].sum(axis=1)
            order = np.argsort(bound, kind="stable")
            candidates = [(bound[s], supports[s]) for s in order]
        else:
            ranked = self._optional[np.argsort(-p[self._optional], kind="stable")]
            chosen, rest = ranked[:self._m_opt], ranked[self._m_opt:]
            candidates = [(0.0, np.r_[self._always, chosen])]
            for out_j in range(len(chosen)):
                for in_j in rest[:5]:
                    swapped = chosen.copy()
                    swapped[out_j] = in_j
                    candidates.append((0.0, np.r_[self._always, swapped]))
        # Dropping the groups relaxes the problem, so the face's group-free projection (exact
        # and cheap) bounds its distance from below, and is the answer when it meets the groups.
        best, best_d, tried = None, np.inf, 0
        for lb, support in candidates:
            if lb >= best_d:
                break
            x = self._relaxed_projection(support, p)
            if x is None or np.sum((x - p) ** 2) >= best_d:
                continue
            if len(self.groups) and not self._groups_ok(x):
                if tried >= max_faces:
                    continue
                tried += 1
                x = self._project_on(support, p)
                if x is None:
                    continue
            d = float(np.sum((x - p) ** 2))
            if d < best_d:
                best, best_d = x, d
        if best is None:
            for support in self._random_supports(200, np.random.default_rng(0)):
                if self._relaxed_projection(support, p) is None:
                    continue
                best = self._project_on(support, p)
                if best is not None:
                    break
        if best is None:
            raise DesignSpaceError("FormulationSpace: no feasible face found to repair a blend")
        return best

    def _project_amounts(self, X: np.ndarray) -> np.ndarray:
        return np.array([self._project_row(p) for p in X]).reshape(X.shape)

    def project(self, df: pd.DataFrame) -> pd.DataFrame:
        """Map proposals to the nearest feasible blends (Euclidean distance on the amounts).

        Rows already inside the space are returned unchanged. For the others, faces (sets of at
        most ``max_components`` active ingredients) are tried in order of a lower bound on the
        distance (the amounts left out, then the distance with the groups dropped), so the
        result is the exact nearest point when the faces can be enumerated (≤ 20,000) and at
        most 64 of them need a constrained projection; with more faces, the face of the largest
        proposed amounts and its single swaps are tried. Parameters are clipped
        to their bounds and integers rounded.
        """
        X = self._amounts(df)
        bad_rows = ~np.isfinite(X).all(axis=1)
        if bad_rows.any():
            raise DesignSpaceError(
                f"cannot repair row {df.index[int(np.flatnonzero(bad_rows)[0])]!r}: "
                f"an ingredient amount is missing or not a number"
            )
        out = df.copy()
        todo = ~self._mask(X)
        if todo.any():
            X = X.copy()
            X[todo] = self._project_amounts(X[todo])
            if not self._mask(X).all():
                row = df.index[int(np.flatnonzero(~self._mask(X))[0])]
                raise DesignSpaceError(
                    f"FormulationSpace: could not repair row {row!r} (a nearly degenerate "
                    f"face?); please report this space: {self!r}"
                )
            out[self._names] = X
        if self.parameters is not None:
            out = self.parameters.project(out)
        return out

    repair = project

    def round(self, df: pd.DataFrame) -> pd.DataFrame:
        """Blends (inside the space) on the grid of ``step``, still inside the space: the
        amounts sum exactly to the total (as integers of steps) and meet every bound, group and
        ``max_components`` (see the class docstring); parameters on their own grids.

        Rows that plain rounding would push outside go to the nearest feasible grid point, at
        most :data:`MAX_GRID_PROGRAMS` of them per call: the others are dropped, and
        ``rounding_`` says how many (a sample of candidates loses nothing it needs)."""
        out = df.copy()
        self.rounding_ = None
        step = self.resolution
        if step is not None and len(df):
            X = self._amounts(df)
            if not self._mask(X).all():
                raise DesignSpaceError("FormulationSpace.round takes blends inside the space; "
                                       "project() the others first")
            k, stuck = self._round_amounts(X)
            A = _on_grid(k, step)
            bad = stuck | ~self._mask(A)
            drop = np.zeros(len(df), dtype=bool)
            for n_done, i in enumerate(np.flatnonzero(bad)):
                kk = self._grid_program(X[i] / step) if n_done < MAX_GRID_PROGRAMS else None
                if kk is None:
                    drop[i] = True
                else:
                    A[i] = _on_grid(kk, step)
            if bad.any():
                self.rounding_ = (f"{int(bad.sum())} of {len(df)} blends moved to the nearest "
                                  f"feasible grid point"
                                  + (f", {int(drop.sum())} dropped" if drop.any() else ""))
            out[self._names] = A
            out = out[~drop]
        if self.parameters is not None:
            out = self.parameters.round(out)
        return out
