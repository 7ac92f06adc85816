"""High-throughput screening: candidate spaces, the streaming pipeline, executors.

>>> from matforge.screen import EnumeratedSpace, Screen, PropertyModel, Funnel
>>> space = EnumeratedSpace(["B", "C", "N", "Ti", "W", "Re"], max_atoms=8, arities=(2, 3))
>>> result = Screen(space, {"bulk_modulus": PropertyModel(bulk, log10=True),
...                         "shear_modulus": PropertyModel(shear, log10=True)},
...                 derive=["hardness_vickers"], where="hardness_vickers > 30",
...                 rank_by="ucb:hardness_vickers", top_k=50).run(executor="processes:2")

See ``docs/screening.md``. Names load lazily (numpy and scipy only until a pipeline runs).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CandidateChunk": "matforge.screen.candidate_spaces",
    "CandidateSpace": "matforge.screen.candidate_spaces",
    "ConcatSpace": "matforge.screen.candidate_spaces",
    "EnumeratedSpace": "matforge.screen.candidate_spaces",
    "FormulaSpace": "matforge.screen.candidate_spaces",
    "SubstitutionSpace": "matforge.screen.candidate_spaces",
    "space_from_spec": "matforge.screen.space_spec",
    "KnownCompositions": "matforge.screen.keys",
    "composition_keys": "matforge.chem.identity",
    "Expression": "matforge.screen.expression",
    "ByValue": "matforge.screen.ranking",
    "NoveltyWeighted": "matforge.screen.ranking",
    "ParetoFront": "matforge.screen.ranking",
    "ProbabilityOfFeasibility": "matforge.screen.ranking",
    "ConfidenceBound": "matforge.screen.ranking",
    "parse_ranking": "matforge.screen.ranking",
    "DomainModel": "matforge.screen.domain",
    "Funnel": "matforge.screen.streaming",
    "PropertyModel": "matforge.screen.property_model",
    "Screen": "matforge.screen.streaming",
    "ScreenResult": "matforge.screen.streaming",
    "ScreenError": "matforge.screen.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matforge.screen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
