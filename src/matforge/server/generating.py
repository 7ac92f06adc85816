"""The generative-design jobs: sample a shipped generator, design against a trained model.

``generate_sample`` draws compositions from a shipped model of :mod:`matforge.generate` (the
formula language model or the GAN) and annotates each with its validity, novelty against the
Materials Project corpus and nearest known composition (:func:`~matforge.generate.sampling.
sample_annotated`). ``generate_design`` spends a budget of model calls of one of the server's
trained models on a goal (:class:`~matforge.generate.reward.Reward`) with one of the methods of
:func:`~matforge.generate.optimize.optimize`; formulas of the Materials Project corpus and of the
model's training data earn nothing, so every design is new. Both run on the job's thread.
The shipped models and the corpus are loaded once per app, into its :class:`Generators`
(``ServerState.generators``).
"""

from __future__ import annotations

import math
import threading

from matforge.errors import MatforgeError
from matforge.jsonable import finite_or_none
from matforge.server.jobs import JobContext, JobKind
from matforge.server.training import ModelCache, trained_model
from matforge.store.repositories import Engine

#: most rows of a design's search history returned (for the best-reward plot)
HISTORY_POINTS = 200

class Generators:
    """The shipped generators (``rnn``, ``gan``) and the Materials Project corpus that novelty
    is judged against, each loaded on first use and kept: an app's, in
    ``ServerState.generators``. Sampling does not change a generator (the RL agent trains a
    copy)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._models: dict[str, object] = {}
        self._known: tuple[str, ...] | None = None

    def model(self, kind: str):
        """The shipped generator ``kind`` (``rnn`` or ``gan``)."""
        with self._lock:
            if kind not in self._models:
                from matforge.generate.defaults import load_default

                self._models[kind] = load_default(kind)
            return self._models[kind]

    def known(self) -> tuple[str, ...]:
        """The Materials Project corpus (formulas)."""
        with self._lock:
            if self._known is None:
                from matforge.generate.corpus import load_corpus

                self._known = tuple(load_corpus())
            return self._known


def check_sample(params: dict, generators: Generators) -> None:
    """Raise :class:`~matforge.generate.tokens.GenerateError` now (a 400) for settings the
    sampler would refuse later: an element the model never saw, an element both required and
    forbidden, top-p on the GAN. Draws one composition, which takes milliseconds."""
    _draw(params, 1, (), generators)  # no novelty: the corpus is not needed to validate


def _draw(params: dict, n: int, known, generators: Generators):
    from matforge.generate.sampling import sample_annotated

    return sample_annotated(
        generators.model(params["model"]),
        n,
        temperature=float(params["temperature"]),
        top_p=float(params["top_p"]),
        required=params["elements_in"] or None,
        forbidden=params["elements_out"] or None,
        seed=int(params["seed"]),
        known=known,
    )


def sample_kind(generators: Generators) -> JobKind:
    """The ``generate_sample`` job kind: params ``{"model", "n", "temperature", "top_p",
    "elements_in", "elements_out", "seed"}``."""

    def run(ctx: JobContext) -> dict:
        p = ctx.params
        ctx.progress(0.05, f"loading the {p['model']} model and the known compositions")
        generators.model(p["model"])
        known = generators.known()
        ctx.progress(0.3, f"sampling {int(p['n']):,} compositions")
        table = _draw(p, int(p["n"]), known, generators)
        table = table.sort_values(["count", "formula"], ascending=[False, True], kind="stable")
        drawn = int(table["count"].sum())
        return {
            "model": p["model"],
            "n_drawn": drawn,
            "n_unique": int(len(table)),
            "cn_eb_rate": finite_or_none(table["count"] @ table["cn_eb"] / max(drawn, 1)),
            "novel_rate": finite_or_none(table["novel"].mean()) if len(table) else None,
            "rows": [
                {
                    "formula": str(r.formula),
                    "count": int(r.count),
                    "cn": bool(r.cn),
                    "cn_eb": bool(r.cn_eb),
                    "novel": bool(r.novel),
                    "nearest_known": str(r.nearest_known),
                    "nearest_distance": finite_or_none(r.nearest_distance),
                }
                for r in table.itertuples(index=False)
            ],
        }

    return JobKind("generate_sample", run, restartable=True)


def goals_for(goal: str, prop: str) -> list:
    """The goals of ``goal`` (:func:`~matforge.generate.reward.parse_goals`), which must all be
    on ``prop``, the property of the model that scores them (else a MatforgeError)."""
    from matforge.generate.reward import parse_goals

    goals = parse_goals(goal)
    other = sorted({g.property for g in goals} - {prop})
    if other:
        raise MatforgeError(
            f"the goal names {', '.join(other)} but this model predicts {prop!r}; "
            f'write the goal on {prop}, e.g. "{prop} >= 1"'
        )
    return goals


def reward_for(model, prop: str, params: dict, generators: Generators):
    """The :class:`~matforge.generate.reward.Reward` of a design's parameters on a trained
    model of ``prop``: compositions of the Materials Project corpus and of the model's training
    data earn nothing."""
    from matforge.generate.reward import Reward

    trained = [str(f) for f in (getattr(model, "oof_", None) or {}).get("formula", [])]
    return Reward(
        goals_for(params["goal"], prop),
        {prop: model},
        known=[*generators.known(), *trained],
        required=params["elements_in"] or None,
        forbidden=params["elements_out"] or None,
    )


def design_kind(engine: Engine, cache: ModelCache, generators: Generators) -> JobKind:
    """The ``generate_design`` job kind: params ``{"model_id", "goal", "method", "budget",
    "top_k", "elements_in", "elements_out", "seed"}``."""

    def run(ctx: JobContext) -> dict:
        from matforge.generate.metrics import annotate
        from matforge.generate.optimize import optimize

        p = ctx.params
        ctx.progress(0.02, "loading the model and the known compositions")
        row, model = trained_model(engine, cache, p["model_id"])
        reward = reward_for(model, row.property, p, generators)
        ctx.progress(0.04, "learning the model's domain")
        reward.domain  # noqa: B018 -- fitted before the search's progress starts
        budget = int(p["budget"])
        prior = generators.model("rnn") if p["method"] in ("rl", "best-of-n") else None

        def progress(calls: int, best: float) -> None:
            ctx.progress(
                0.05 + 0.9 * calls / budget,
                f"{calls:,} of {budget:,} scored, best reward {best:.3f}",
            )

        result = optimize(reward, p["method"], budget=budget, prior=prior, seed=int(p["seed"]),
                          progress=progress)  # fmt: skip
        best = result.top(int(p["top_k"]))
        notes = annotate(best["formula"].tolist(), generators.known())
        prop, std = row.property, f"{row.property}_std"
        history = result.history
        if len(history) > HISTORY_POINTS:
            step = math.ceil(len(history) / HISTORY_POINTS)
            history = history.iloc[list(range(0, len(history), step)) + [len(history) - 1]]
        return {
            "model_id": row.id,
            "property": prop,
            "unit": row.unit,
            "goal": p["goal"],
            "method": p["method"],
            "budget": budget,
            "calls": result.calls,
            "seconds": round(result.seconds, 1),
            "top": [
                {
                    "formula": str(f),
                    "reward": finite_or_none(r),
                    "mean": finite_or_none(m),
                    "std": finite_or_none(s),
                    "cn_eb": bool(v),
                    "novel": bool(nv),
                    "nearest_known": str(k),
                }
                for f, r, m, s, v, nv, k in zip(
                    best["formula"],
                    best["reward"],
                    best[prop],
                    best[std],
                    notes["cn_eb"],
                    notes["novel"],
                    notes["nearest_known"],
                    strict=True,
                )  # fmt: skip
            ],
            "history": {
                "calls": [int(c) for c in history["calls"]],
                "best": [finite_or_none(b) for b in history["best"]],
            },
        }

    return JobKind("generate_design", run, restartable=True)
