"""The shipped generative models: where they live, how they were trained, how to retrain them.

``matforge generate train`` and :func:`train_default` reproduce the shipped weights from a
seed: the recurrent language model and the GAN, both trained on the valid-only corpus (the
charge-neutral, electronegativity-balanced Materials Project compositions,
:func:`~matforge.generate.corpus.load_corpus`). Sampling works out of the box with
:func:`load_default`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matforge.errors import GenerateError

__all__ = ["DEFAULT_MODELS", "TRAINING", "default_path", "load_default", "train_default"]

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Shipped file per model family.
DEFAULT_MODELS = {"rnn": "formula_lm.pt", "gan": "formula_gan.pt"}

#: The settings the shipped models were trained with (seed 0, valid-only corpus).
TRAINING: dict[str, dict] = {
    "rnn": {"model": {"hidden": 256, "layers": 2, "embed": 64}, "fit": {"epochs": 10}},
    "gan": {"model": {}, "fit": {}},
}


def _check_kind(kind: str) -> None:
    if kind not in DEFAULT_MODELS:
        raise GenerateError(f"model must be one of {', '.join(DEFAULT_MODELS)}, got {kind!r}")


def default_path(kind: str = "rnn") -> Path:
    """The shipped weights of ``kind`` (``"rnn"`` or ``"gan"``)."""
    _check_kind(kind)
    return DATA_DIR / DEFAULT_MODELS[kind]


def model_class(kind: str):
    """:class:`~matforge.generate.rnn.FormulaLM` or :class:`~matforge.generate.gan.FormulaGAN`."""
    _check_kind(kind)
    if kind == "rnn":
        from matforge.generate.rnn import FormulaLM

        return FormulaLM
    from matforge.generate.gan import FormulaGAN

    return FormulaGAN


def load_default(kind: str = "rnn"):
    """The shipped model of ``kind``, ready to sample."""
    path = default_path(kind)
    if not path.is_file():
        raise GenerateError(
            f"the shipped {kind} model is missing ({path}); retrain it with "
            f"`matforge generate train --model {kind}`"
        )
    return model_class(kind).load(path)


def train_default(
    kind: str = "rnn",
    formulas: Sequence[str] | None = None,
    *,
    seed: int = 0,
    time_limit: float | None = None,
    progress: Callable[[int, float], None] | None = None,
    condition=None,
    **overrides,
):
    """Train ``kind`` with the shipped settings (``overrides`` replace fit settings, e.g.
    ``epochs``) on ``formulas`` (default: the valid-only corpus). With a
    :class:`~matforge.generate.rnn.Condition`, pass the property per formula as ``values``
    (NaN where unknown). Returns the fitted model."""
    from matforge.generate.corpus import load_corpus

    _check_kind(kind)
    settings = TRAINING[kind]
    if formulas is None:
        formulas = load_corpus(valid_only=True)
    model = model_class(kind)(**settings["model"], condition=condition)
    fit = {**settings["fit"], **overrides}
    return model.fit(list(formulas), seed=seed, time_limit=time_limit, progress=progress, **fit)
