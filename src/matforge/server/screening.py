"""The ``screen`` job: rank the compositions of a few elements with a trained model.

The candidate space is :class:`matforge.screen.EnumeratedSpace` (every composition of the chosen
elements with the chosen numbers of distinct elements and at most ``max_atoms`` atoms per
formula unit, charge-balanced if asked); the model is one of the server's trained models
(:mod:`matforge.server.training`), run through :class:`matforge.screen.Screen` on the job's
thread. The result keeps the ``top_k`` best candidates and an even random sample of everything
screened (for the scatter plot of mean against uncertainty).
"""

from __future__ import annotations

import numpy as np

from matforge.errors import MatforgeError
from matforge.jsonable import finite_or_none
from matforge.server.jobs import JobContext, JobKind
from matforge.server.training import ModelCache, trained_model
from matforge.store.repositories import Engine

#: candidates per chunk of the pipeline: a progress report each
CHUNK_SIZE = 5_000
#: most screened candidates returned as the scatter plot's sample
SAMPLE_SIZE = 500


def space_for(params: dict):
    """The :class:`~matforge.screen.EnumeratedSpace` of a screen's parameters, spelled as the
    command line's ``enumerate`` space (:func:`matforge.screen.space_from_spec`; raises
    :class:`~matforge.errors.ScreenError` for an unknown element or a bad arity)."""
    from matforge.screen import space_from_spec

    return space_from_spec(
        "enumerate",
        elements=params["elements"],
        max_atoms=int(params["max_atoms"]),
        arities=sorted(set(params["arities"])),
        balance="charge" if params["charge_balanced"] else None,
    )


def ranking_for(rank_by: str, prop: str):
    """``max`` (highest mean first), ``min`` (lowest first) or ``ucb`` (mean + std) of ``prop``:
    the library's :class:`~matforge.screen.ByValue` and
    :class:`~matforge.screen.ConfidenceBound` (kappa 1)."""
    from matforge.screen import ByValue, ConfidenceBound

    if rank_by == "max":
        return ByValue(prop, descending=True)
    if rank_by == "min":
        return ByValue(prop, descending=False)
    if rank_by == "ucb":
        return ConfidenceBound(prop, kappa=1.0, descending=True)
    raise MatforgeError(f"unknown rank_by {rank_by!r}: use max, min or ucb")


def screen_kind(engine: Engine, cache: ModelCache) -> JobKind:
    """The ``screen`` job kind: params ``{"model_id": <models row id>, "elements": [...],
    "max_atoms", "arities", "charge_balanced", "rank_by", "top_k"}``."""

    def run(ctx: JobContext) -> dict:
        from matforge.screen import PropertyModel, Screen

        p = ctx.params
        ctx.progress(0.02, "loading the model")
        row, model = trained_model(engine, cache, p["model_id"])
        space = space_for(p)
        prop = row.property
        ranking = ranking_for(p["rank_by"], prop)
        total = len(space)

        def progress(info: dict) -> None:
            done = int(info.get("done", 0))
            ctx.progress(0.05 + 0.9 * done / max(total, 1), f"{done:,} of {total:,} screened")

        ctx.progress(0.05, f"screening {total:,} compositions")
        screen = Screen(
            space,
            {prop: PropertyModel.from_composition_model(model, unit=row.unit)},
            rank_by=ranking,
            top_k=None,  # all that pass: the sample is drawn from them (the space is bounded)
            chunk_size=CHUNK_SIZE,
        )
        result = screen.run(executor="serial", progress=progress)
        table = result.top
        top_k = int(p["top_k"])
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(table), size=min(SAMPLE_SIZE, len(table)), replace=False))
        sample = table.iloc[pick]
        std = f"{prop}_std"
        return {
            "model_id": row.id,
            "property": prop,
            "unit": row.unit,
            "ranking": p["rank_by"],
            "n_positions": total,
            "n_screened": int(len(table)),
            "out_of_domain": result.summary["out_of_domain"],
            "top": [
                {
                    "formula": str(f),
                    "mean": finite_or_none(m),
                    "std": finite_or_none(s),
                    "domain_distance": finite_or_none(d),
                    "in_domain": bool(ok),
                }
                for f, m, s, d, ok in zip(
                    table["formula"][:top_k],
                    table[prop][:top_k],
                    table[std][:top_k],
                    table["domain_distance"][:top_k],
                    table["in_domain"][:top_k],
                    strict=True,
                )
            ],
            "sample": {
                "formula": [str(f) for f in sample["formula"]],
                "mean": [finite_or_none(v) for v in sample[prop]],
                "std": [finite_or_none(v) for v in sample[std]],
            },
        }

    return JobKind("screen", run, restartable=True)
