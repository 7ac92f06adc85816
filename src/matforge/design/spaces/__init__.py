"""Design spaces: the set from which a campaign may propose its next experiments.

Four kinds, one interface (:class:`DesignSpace`), one deserialiser
(:meth:`DesignSpace.from_dict`):

* :class:`DiscretePool` — a fixed table of candidates (a dataset, a screen's output, a CSV);
* :class:`CompositionPool` — a fixed table of candidate formulas, which a surrogate sees through
  composition descriptors (both pools share :class:`CandidateTable`);
* :class:`ParameterSpace` — process conditions: :class:`Continuous`, :class:`Integer`,
  :class:`Ordinal` (ordered levels: "low" < "medium" < "high") and :class:`Categorical`
  (unordered levels: a solvent, a catalyst type) parameters;
* :class:`FormulationSpace` — ingredient amounts that sum to a total, with per-ingredient and
  per-group bounds and at most ``k`` ingredients present, optionally with process parameters.

Every space can ``sample(n, rng)`` candidates as a DataFrame, check proposals exactly
(``contains``, with an absolute tolerance of ``TOL = 1e-9`` in the columns' own units) and explain
failures (``infeasible_reason``), encode rows numerically for a surrogate (``to_features``:
continuous and integer parameters scaled to [0, 1], log parameters on a log scale, ordinal
parameters by their rank scaled to [0, 1], categoricals one-hot, ingredient amounts as fractions
of the total), refuse a level of a categorical or ordinal column that the space does not declare
(``check_levels``) and round-trip through JSON (``as_dict`` / :meth:`DesignSpace.from_dict`).

Continuous spaces also put proposals on a grid a lab can weigh or set (``round``, see
:func:`default_step`): ingredient amounts to multiples of ``step`` (default 0.1 % of the total)
that still sum exactly to the total and meet every bound, group and ``max_components``;
continuous parameters to their ``step`` (default: 3 significant figures of their range).
``with_precision`` sets the steps; a step of 0 leaves a column unrounded.

One module per kind: :mod:`~matforge.design.spaces.base` (the interface, the deserialiser and
shared helpers), :mod:`~matforge.design.spaces.parameters`, :mod:`~matforge.design.spaces.pools`
and :mod:`~matforge.design.spaces.formulation`.
"""

from __future__ import annotations

from matforge.design.spaces.base import (
    _SPACES,
    TOL,
    DesignSpace,
    default_step,
    parse_precision,
    space_from_dict,
)
from matforge.design.spaces.formulation import (
    FormulationSpace,
    Group,
    Ingredient,
)
from matforge.design.spaces.parameters import (
    Categorical,
    Continuous,
    Integer,
    Ordinal,
    ParameterSpace,
)
from matforge.design.spaces.pools import (
    CandidateTable,
    CompositionPool,
    DiscretePool,
    composition_keys,
)

__all__ = [
    "TOL",
    "CandidateTable",
    "Categorical",
    "CompositionPool",
    "Continuous",
    "DesignSpace",
    "DiscretePool",
    "FormulationSpace",
    "Group",
    "Ingredient",
    "Integer",
    "Ordinal",
    "ParameterSpace",
    "composition_keys",
    "default_step",
    "parse_precision",
    "space_from_dict",
]

_SPACES.update({
    "DiscretePool": DiscretePool,
    "CompositionPool": CompositionPool,
    "ParameterSpace": ParameterSpace,
    "FormulationSpace": FormulationSpace,
})
