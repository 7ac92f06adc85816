"""Generative design: new compositions from a recurrent language model, a GAN and a
reinforcement-learning agent, with the baselines and metrics that judge them.

Submodules load on first use (torch is imported only by the networks).
"""

from __future__ import annotations


def __getattr__(name: str):
    from matforge import _import_submodule

    return _import_submodule(__name__, name)  # matforge.generate.x: no import of its own


def __dir__() -> list[str]:
    from matforge import _submodule_names

    return sorted({*globals(), *_submodule_names(__path__)})
