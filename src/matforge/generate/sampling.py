"""Sampling a generative model into an annotated candidate table (``matforge generate sample``).

Every row carries its validity (CN, CN+EB, ``smact_valid``), whether it is novel against the
Materials Project corpus, and its nearest known composition, so the file is ready for
``matforge screen run`` or a campaign pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from matforge.errors import GenerateError

__all__ = ["sample_annotated"]


def sample_annotated(
    model,
    n: int,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    required: Sequence[str] | None = None,
    forbidden: Sequence[str] | None = None,
    condition: tuple[str, tuple[float, float]] | tuple[float, float] | None = None,
    seed: int = 0,
    unique: bool = True,
    known: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``n`` samples of ``model`` (a FormulaLM or FormulaGAN) annotated against ``known``
    (default: the Materials Project corpus). ``condition``: ``(lo, hi)`` or ``(name, (lo,
    hi))``, a bin of a conditioned model. With ``unique`` repeats collapse into one row whose
    ``count`` says how often it was drawn."""
    from matforge.generate.corpus import load_corpus
    from matforge.generate.metrics import annotate
    from matforge.generate.rnn import FormulaLM

    if condition is not None and isinstance(condition[0], str):
        name, condition = condition
        own = model.condition
        if own is None:
            raise GenerateError("this model is not conditioned on a property")
        if name != own.name:
            raise GenerateError(f"this model is conditioned on {own.name}, not {name}")
    kwargs = dict(temperature=temperature, required=required, forbidden=forbidden,
                  condition=condition, seed=seed)  # fmt: skip
    if isinstance(model, FormulaLM):
        kwargs["top_p"] = top_p
    elif top_p != 1.0:
        raise GenerateError("top-p sampling applies to the rnn model only")
    samples = model.sample(n, **kwargs)
    counts = pd.Series(samples).value_counts(sort=False)
    formulas = counts.index.tolist() if unique else samples
    table = annotate(formulas, load_corpus() if known is None else known)
    if unique:
        table.insert(1, "count", counts.to_numpy())
    return table
