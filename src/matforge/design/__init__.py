"""Sequential design: design spaces, objectives, acquisition functions and batch proposals.

* :mod:`~matforge.design.spaces` — :class:`DiscretePool`, :class:`CompositionPool`,
  :class:`ParameterSpace`
  (:class:`Continuous`, :class:`Integer`, :class:`Ordinal`, :class:`Categorical`) and
  :class:`FormulationSpace` (:class:`Ingredient`, :class:`Group`), each rounding proposals to a precision a lab can weigh
  (``round``, ``with_precision``, :func:`default_step`, :func:`parse_precision`);
* :mod:`~matforge.design.objectives` — :class:`Maximize`, :class:`Minimize`, :class:`Target`,
  :class:`Range`, :func:`parse_objective`, :class:`Constraint`, :func:`pareto_front`,
  :func:`hypervolume`;
* :mod:`~matforge.design.acquisition` — EI, PI, UCB, MLI, maximum uncertainty, Thompson
  sampling, random, EHVI, ParEGO;
* :mod:`~matforge.design.batch_selection` — :func:`select_batch`;
* :mod:`~matforge.design.feasibility` — :class:`FeasibilityModel` (probability that an
  experiment succeeds, learned from failed ones);
* :mod:`~matforge.design.costs` — :class:`CostModel` (acquisition per unit cost);
* :mod:`~matforge.design.campaign` — :class:`Campaign` (ask/tell, in memory or kept in a store);
* :mod:`~matforge.design.stopping` — :func:`probability_better_remains` (is it time to stop?).

Submodules load lazily, so ``import matforge.design`` costs nothing until a name is used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    **dict.fromkeys(
        ["DesignSpace", "DiscretePool", "CompositionPool", "composition_keys", "ParameterSpace",
         "Continuous", "Integer", "Ordinal", "Categorical", "FormulationSpace", "Ingredient", "Group", "space_from_dict",
         "default_step", "parse_precision"],
        "matforge.design.spaces",
    ),
    **dict.fromkeys(
        ["Objective", "Maximize", "Minimize", "Target", "Range", "parse_objective",
         "objective_from_dict", "Constraint", "parse_constraint", "pareto_front", "hypervolume",
         "hypervolume_improvement", "GaussianUtility", "IntervalUtility", "UtilityDistribution"],
        "matforge.design.objectives",
    ),
    **dict.fromkeys(
        ["Acquisition", "ExpectedImprovement", "ProbabilityOfImprovement",
         "UpperConfidenceBound", "MaximumLikelihoodOfImprovement", "MaximumUncertainty",
         "ThompsonSampling", "RandomAcquisition", "ExpectedHypervolumeImprovement", "ParEGO",
         "make_acquisition", "weight_by_feasibility", "per_unit_cost", "ACQUISITIONS"],
        "matforge.design.acquisition",
    ),
    **dict.fromkeys(["select_batch", "BatchSelection"], "matforge.design.batch_selection"),
    **dict.fromkeys(["Campaign", "CampaignError", "ObserveReport"], "matforge.design.campaign"),
    **dict.fromkeys(["CostModel"], "matforge.design.costs"),
    **dict.fromkeys(["FeasibilityModel", "fit_feasibility"], "matforge.design.feasibility"),
    **dict.fromkeys(["StoppingEstimate", "probability_better_remains"],
                    "matforge.design.stopping"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matforge.design' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
