"""Design compositions against a reward at a fixed budget of model calls.

Four methods share one budget (distinct formulas whose properties a :class:`~matforge.generate.
reward.Reward` predicted; gated formulas -- unparsable, known, not charge-balanced -- cost
nothing) and one result (:class:`DesignResult`):

* ``rl``: a REINVENT-style agent (Olivecrona et al. 2017; Blaschke et al. 2020). The agent starts
  as a copy of a pretrained :class:`~matforge.generate.rnn.FormulaLM` (the prior) and is trained
  by policy gradient on the squared distance between its log-likelihood and the *augmented*
  likelihood ``log P_prior + sigma * reward``: it moves towards high reward while the prior term
  keeps it writing formulas that look like real ones. A diversity memory gives a repeated
  formula, and a formula of a chemical system that already holds ``bucket`` good designs, no
  reward for learning, so the agent keeps exploring; an experience replay of the best designs so
  far is added to every update.
* ``ga``: a genetic algorithm over compositions: tournament selection, crossover (elements of
  two parents) and mutation (same-group or random element substitution, a count up or down, an
  element added or removed), elitist replacement; seeded from same-group substitutions of the
  reference compositions.
* ``best-of-n``: sample the pretrained model until the budget is spent; keep the best. With
  ``condition=(lo, hi)`` and a property-conditioned model this is conditioned generation.
* ``random``: compositions at the reference set's element and stoichiometry frequencies.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matforge.errors import GenerateError
from matforge.generate.reward import Reward
from matforge.generate.tokens import PAD, canonical_formula, integer_counts

__all__ = ["METHODS", "DesignResult", "optimize"]

METHODS = ("rl", "ga", "best-of-n", "random")


@dataclass
class DesignResult:
    """Every distinct formula a design run proposed, in order, with its reward pieces.

    ``table`` columns: ``formula``, ``reward``, ``gate`` (why it scored 0 without a model
    call), the reward's model columns, ``calls`` (model calls spent when it was first seen),
    ``step``. ``history``: ``calls`` and ``best`` reward after each step.
    """

    method: str
    budget: int
    table: pd.DataFrame
    history: pd.DataFrame
    seconds: float
    settings: dict = field(default_factory=dict)

    def top(self, k: int = 100) -> pd.DataFrame:
        """The ``k`` best scored formulas (reward descending, first found first on ties)."""
        scored = self.table[self.table["gate"] == ""]
        return (
            scored.sort_values("reward", ascending=False, kind="stable")
            .head(k)
            .reset_index(drop=True)
        )

    @property
    def calls(self) -> int:
        return int(self.history["calls"].iloc[-1]) if len(self.history) else 0


class _Budget:
    """Scores batches through a Reward without exceeding ``budget`` new model calls."""

    def __init__(self, reward: Reward, budget: int, progress):
        self.reward = reward
        self.start = reward.calls
        self.budget = budget
        self.progress = progress
        self.seen: dict[str, dict] = {}
        self.history: list[tuple[int, float]] = []
        self.best = 0.0
        self.step = 0

    @property
    def used(self) -> int:
        return self.reward.calls - self.start

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget

    def score(self, formulas: Sequence[str]) -> tuple[pd.DataFrame, int]:
        """Rewards of (a prefix of) ``formulas``: the prefix ends where the budget would run
        out. Returns the table and the prefix length."""
        formulas = list(formulas)
        left = self.budget - self.used
        if self.reward.would_call(formulas) > left:
            lo, hi = 0, len(formulas)  # longest prefix that fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.reward.would_call(formulas[:mid]) <= left:
                    lo = mid
                else:
                    hi = mid - 1
            formulas = formulas[:lo]
        table = self.reward(formulas) if formulas else pd.DataFrame(columns=self.reward.columns)
        self.step += 1
        for row in table.to_dict("records"):
            if row["formula"] not in self.seen:
                self.seen[row["formula"]] = {**row, "calls": self.used, "step": self.step}
        if len(table):
            self.best = max(self.best, float(table["reward"].max()))
        self.history.append((self.used, self.best))
        if self.progress:
            self.progress(self.used, self.best)
        return table, len(formulas)

    def result(self, method: str, start: float, settings: dict) -> DesignResult:
        cols = [*self.reward.columns, "calls", "step"]
        table = pd.DataFrame(list(self.seen.values()), columns=cols)
        history = pd.DataFrame(self.history, columns=["calls", "best"])
        return DesignResult(
            method, self.budget, table, history, time.perf_counter() - start, settings
        )


def optimize(
    reward: Reward,
    method: str = "rl",
    *,
    budget: int = 2000,
    prior=None,
    reference: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    max_steps: int = 2000,
    **settings,
) -> DesignResult:
    """Spend ``budget`` model calls of ``reward`` with ``method`` (module docstring).

    ``prior``: the pretrained :class:`~matforge.generate.rnn.FormulaLM` (``rl``, ``best-of-n``;
    default: the shipped model). ``reference``: compositions the ``ga`` and ``random`` methods
    start from (default: the valid-only corpus). ``settings`` go to the method (e.g. ``sigma``,
    ``batch_size`` for ``rl``; ``population`` for ``ga``). ``progress(calls, best_reward)`` is
    called after every step.
    """
    if method not in METHODS:
        raise GenerateError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if budget < 1:
        raise GenerateError(f"the budget must be at least 1 model call, got {budget}")
    import torch

    start = time.perf_counter()
    b = _Budget(reward, budget, progress)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 64 sequences: threads only wait on each other
    try:
        used = _run(b, method, prior, reference, seed, max_steps, settings)
    finally:
        torch.set_num_threads(threads)
    return b.result(method, start, used)


def _run(b: _Budget, method, prior, reference, seed, max_steps, settings) -> dict:
    if method in ("rl", "best-of-n"):
        if prior is None:
            from matforge.generate.defaults import load_default

            prior = load_default("rnn")
        run = _reinvent if method == "rl" else _best_of_n
        used = run(b, prior, seed=seed, max_steps=max_steps, **settings)
    else:
        if reference is None:
            from matforge.generate.corpus import load_corpus

            reference = load_corpus(valid_only=True)
        run = _genetic if method == "ga" else _random
        used = run(b, list(reference), seed=seed, max_steps=max_steps, **settings)
    return used


# -- best of N / random ---------------------------------------------------------------------
def _best_of_n(
    b: _Budget, prior, *, seed, max_steps, batch_size=256, temperature=1.0, condition=None
):
    r = b.reward
    for step in range(max_steps):
        if b.exhausted:
            break
        samples = prior.sample(batch_size, temperature=temperature, seed=seed * 100_003 + step,
                               required=r.required or None, forbidden=r.forbidden or None,
                               condition=condition)  # fmt: skip
        b.score(samples)
    return {"batch_size": batch_size, "temperature": temperature, "condition": condition}


def _random(b: _Budget, reference, *, seed, max_steps, batch_size=256):
    from matforge.generate.baselines import frequency_random

    for step in range(max_steps):
        if b.exhausted:
            break
        b.score(frequency_random(reference, batch_size, seed=seed * 100_003 + step))
    return {"batch_size": batch_size}


# -- REINVENT -------------------------------------------------------------------------------
def _reinvent(
    b: _Budget,
    prior,
    *,
    seed,
    max_steps,
    batch_size: int = 64,
    sigma: float = 60.0,
    lr: float = 5e-4,
    replay: int = 16,
    bucket: int = 5,
    good: float = 0.5,
):
    import torch

    from matforge.generate.corpus import chemical_system

    prior._check_fitted()
    r = b.reward
    req, forb = r.required or None, r.forbidden or None
    agent = copy.deepcopy(prior.net)
    agent.eval()  # dropout off: the likelihoods of agent and prior are comparable
    for p in agent.parameters():
        p.requires_grad_(True)  # the prior is only read under no_grad; the agent learns
    opt = torch.optim.Adam(agent.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    width = 2 * prior.config.max_elements + 2
    memory: dict[str, tuple[float, torch.Tensor]] = {}  # best designs for replay
    good_per_system: Counter = Counter()
    for _ in range(max_steps):
        if b.exhausted:
            break
        tokens, logp = prior.sample_tokens(batch_size, net=agent, required=req, forbidden=forb,
                                           generator=g)  # fmt: skip
        formulas = prior.tokenizer.decode_batch(tokens.numpy())
        before = set(b.seen)
        table, n = b.score(formulas)
        if n == 0:
            break
        tokens, logp = tokens[:n], logp[:n]
        score = table["reward"].to_numpy(dtype=float).copy()
        learn = score.copy()
        batch_seen: set[str] = set()
        for i, f in enumerate(table["formula"]):
            system = chemical_system(f) if table["gate"].iat[i] != "unparsable" else f
            if f in before or f in batch_seen or good_per_system[system] >= bucket:
                learn[i] = 0.0  # the memory: repeats and crowded systems earn nothing
            elif score[i] >= good:
                good_per_system[system] += 1
            batch_seen.add(f)
            if score[i] > 0 and (f not in memory or memory[f][0] < score[i]):
                memory[f] = (float(score[i]), _pad(tokens[i], width))
        seqs, target = tokens, torch.as_tensor(learn, dtype=torch.float32)
        agent_logp = logp
        if replay and memory:
            best = sorted(memory.values(), key=lambda v: -v[0])[:replay]
            mem_tokens = torch.stack([t for _, t in best])
            mem_tokens = mem_tokens[:, : int((mem_tokens != PAD).sum(1).max())]
            agent_logp = torch.cat([logp, prior.log_likelihood(mem_tokens, net=agent, required=req,
                                                                forbidden=forb)])  # fmt: skip
            target = torch.cat([target, torch.tensor([s for s, _ in best], dtype=torch.float32)])
            seqs = [seqs, mem_tokens]
        with torch.no_grad():
            parts = seqs if isinstance(seqs, list) else [seqs]
            prior_logp = torch.cat(
                [prior.log_likelihood(s, required=req, forbidden=forb) for s in parts]
            )
        augmented = prior_logp + sigma * target
        loss = ((augmented - agent_logp) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"batch_size": batch_size, "sigma": sigma, "lr": lr, "replay": replay, "bucket": bucket}


def _pad(tokens, width: int):
    import torch

    out = torch.full((width,), PAD, dtype=torch.long)
    out[: len(tokens)] = tokens[:width]
    return out


# -- genetic algorithm ----------------------------------------------------------------------
def _tournament(rng, names: list[str], fitness: np.ndarray, size: int = 3) -> dict[str, int]:
    """The fittest of ``size`` random members."""
    idx = rng.integers(len(names), size=size)
    return integer_counts(names[idx[np.argmax(fitness[idx])]])


def _genetic(
    b: _Budget,
    reference,
    *,
    seed,
    max_steps,
    population: int = 100,
    children: int = 64,
    crossover: float = 0.5,
    max_elements: int = 8,
    max_count: int = 20,
):
    from matforge.generate.baselines import _groups, element_substitution

    rng = np.random.default_rng(seed)
    r = b.reward
    parsed = [integer_counts(f) for f in reference]
    freq = Counter(e for c in parsed for e in c)
    elements = [e for e in freq if e not in r.forbidden]
    weights = np.array([freq[e] for e in elements], float)
    weights /= weights.sum()
    groups = {s: [o for o in others if o in freq and o not in r.forbidden]
              for s, others in _groups().items()}  # fmt: skip

    def repair(counts: dict[str, int]) -> str | None:
        counts = {
            e: min(max(int(c), 1), max_count) for e, c in counts.items() if e not in r.forbidden
        }
        for e in r.required:
            counts.setdefault(e, 1)
        if not counts or len(counts) > max_elements:
            return None
        return canonical_formula(integer_counts(counts))

    def mutate(counts: dict[str, int]) -> dict[str, int]:
        counts = dict(counts)
        op = rng.integers(4)
        els = list(counts)
        if op == 0:  # substitute an element (same group half of the time)
            old = els[rng.integers(len(els))]
            pool = groups.get(old, []) if rng.random() < 0.5 else elements
            pool = [e for e in pool if e not in counts and e not in r.required]
            if pool and old not in r.required:
                counts[pool[rng.integers(len(pool))]] = counts.pop(old)
        elif op == 1:  # a count up or down
            e = els[rng.integers(len(els))]
            counts[e] = max(1, counts[e] + (1 if rng.random() < 0.5 else -1))
        elif op == 2 and len(counts) < max_elements:  # add an element
            e = elements[rng.choice(len(elements), p=weights)]
            counts.setdefault(e, int(rng.integers(1, 4)))
        elif len(counts) > 1:  # remove one
            removable = [e for e in els if e not in r.required]
            if removable:
                counts.pop(removable[rng.integers(len(removable))])
        return counts

    def cross(a: dict[str, int], c: dict[str, int]) -> dict[str, int]:
        child = {e: n for e, n in a.items() if rng.random() < 0.5}
        for e, n in c.items():
            if e not in a and rng.random() < 0.5:
                child[e] = n
        return child or dict(a)

    pop: dict[str, float] = {}
    seeds = element_substitution(reference, 3 * population, seed=seed)
    seeds = [f for f in (repair(integer_counts(s)) for s in seeds) if f]
    table, _ = b.score(seeds)
    for f, s in zip(table["formula"], table["reward"], strict=True):
        pop[f] = max(pop.get(f, 0.0), float(s))
    for _ in range(max_steps):
        if b.exhausted:
            break
        names = list(pop)
        fitness = np.array([pop[f] for f in names])
        kids = []
        for _ in range(children * 4):
            a, c = _tournament(rng, names, fitness), _tournament(rng, names, fitness)
            child = cross(a, c) if rng.random() < crossover else a
            f = repair(mutate(child))
            if f and f not in b.seen and f not in kids:
                kids.append(f)
            if len(kids) >= children:
                break
        if not kids:
            break
        table, _ = b.score(kids)
        for f, s in zip(table["formula"], table["reward"], strict=True):
            pop[f] = float(s)
        keep = sorted(pop, key=lambda f: -pop[f])[:population]
        pop = {f: pop[f] for f in keep}
    return {"population": population, "children": children, "crossover": crossover}
