"""The closed loop: propose surfaces, compute them with an oracle, learn, repeat.

:func:`run_loop` is the loop itself, with matforge's campaign core
(:func:`~matforge.design.strategy.propose`, the pure function behind
:class:`~matforge.design.campaign.Campaign`) choosing the next surface and an *oracle*
computing it: any callable ``oracle(list_of_surface_notations) -> energies (eV)`` — an atomistic
calculator, a queue of the user's DFT jobs, or, for benchmarks, :class:`TableOracle`, which
reveals hidden labels of a table.

:func:`closed_loop_benchmark` replays the loop on the bundled Ma et al. (2015) surfaces with
their energies hidden, goal: CO binding energy in the CO2-reduction window −0.7 to −0.5 eV (33
of the 295 rows, 31 of the 285 distinct surfaces), the setting of Kavalsky et al. (Digital
Discovery 2023): 10 random initial calculations, then one surface per iteration. Reported per
strategy: surfaces in the window found after each calculation, calculations needed to find
the first, 5th, 10th and half of them (a run that misses within the budget is counted as the
budget plus the expected further random draws), and the acceleration over random search, whose expectation
is exact: ``k (N + 1) / (K + 1)`` calculations to find ``k`` of ``K`` targets among ``N``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from matforge.catalysis.volcano import CO2R_WINDOW
from matforge.errors import CatalysisError

__all__ = ["LoopResult", "TableOracle", "closed_loop_benchmark", "run_loop"]


class TableOracle:
    """An oracle that looks energies up in a table (``surface`` -> energy, eV); counts calls."""

    def __init__(self, surfaces: Sequence[str], energies: Sequence[float]):
        self.values = dict(zip(surfaces, np.asarray(energies, dtype=float), strict=True))
        self.calls = 0

    def __call__(self, surfaces: Sequence[str]) -> np.ndarray:
        self.calls += len(surfaces)
        try:
            return np.array([self.values[s] for s in surfaces])
        except KeyError as exc:
            raise CatalysisError(f"the table has no energy for {exc.args[0]!r}") from None


@dataclass
class LoopResult:
    """Surfaces in the order they were computed, their energies, and which were in the window."""

    strategy: str
    seed: int
    order: list[str]
    energies: np.ndarray
    in_window: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)

    def found_curve(self) -> np.ndarray:
        """Number of in-window surfaces found after 1, 2, ... calculations."""
        return np.cumsum(self.in_window)

    def calculations_to_find(self, k: int) -> float:
        """Calculations until the ``k``-th in-window surface (NaN if never within the budget)."""
        hits = np.flatnonzero(self.in_window)
        return float(hits[k - 1] + 1) if len(hits) >= k else float("nan")


def _strategy(name: str):
    from matforge.design.strategy import Strategy, default_strategy

    if name == "default":
        return default_strategy()
    if name == "mli":  # Kavalsky et al.'s choice: a random forest and MLI
        return Strategy(model="rf", acquisition={"name": "mli"}, batch_strategy="top",
                        representation="raw", name="mli")
    raise CatalysisError(f"unknown strategy {name!r}; use 'default', 'mli' or 'random'")


def run_loop(
    surfaces: Sequence[str],
    features: np.ndarray,
    oracle: Callable[[Sequence[str]], np.ndarray],
    *,
    window: tuple[float, float] = CO2R_WINDOW,
    strategy: str = "default",
    n_initial: int = 10,
    budget: int = 110,
    seed: int = 0,
    stop_when_all_found: int | None = None,
) -> LoopResult:
    """Run the closed loop over candidate ``surfaces`` (with their ``features``).

    ``n_initial`` random surfaces are computed first (the same for every strategy, per seed),
    then one surface per iteration chosen by ``strategy`` (``"default"``: matforge's default
    campaign strategy for a range objective; ``"mli"``: random forest + maximum likelihood of
    improvement, as Kavalsky et al.; ``"random"``), until ``budget`` calculations in all, or
    until ``stop_when_all_found`` surfaces in the window have been found.
    """
    from matforge.design.objectives import parse_objective
    from matforge.design.strategy import propose

    surfaces = list(surfaces)
    n = len(surfaces)
    X = np.asarray(features, dtype=float)
    if X.shape[0] != n:
        raise CatalysisError(f"{X.shape[0]} feature rows for {n} surfaces")
    low, high = window
    objective = parse_objective(f"energy in [{low}, {high}]")
    budget = min(budget, n)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    start = rng.choice(n, size=min(n_initial, n), replace=False)
    done = list(map(int, start))
    y = list(oracle([surfaces[i] for i in done]))

    def finished() -> bool:
        if stop_when_all_found is None:
            return False
        e = np.asarray(y)
        return int(((e >= low) & (e <= high)).sum()) >= stop_when_all_found

    if strategy == "random":
        rest = np.random.default_rng([seed, 1]).permutation(np.setdiff1d(np.arange(n), start))
        for i in rest:
            if len(done) >= budget or finished():
                break
            done.append(int(i))
            y.extend(oracle([surfaces[int(i)]]))
    else:
        strat = _strategy(strategy)
        run = np.zeros(n, dtype=bool)
        run[done] = True
        while len(done) < budget and not finished():
            idx = np.asarray(done)
            proposal = propose(strat, X, X[idx], np.asarray(y)[:, None], [objective], 1,
                               exclude=run, seed=seed)
            i = int(proposal.indices[0])
            done.append(i)
            run[i] = True
            y.extend(oracle([surfaces[i]]))
    e = np.asarray(y, dtype=float)
    return LoopResult(strategy, seed, [surfaces[i] for i in done], e,
                      (e >= low) & (e <= high), time.perf_counter() - t0)


def closed_loop_benchmark(
    *,
    strategies: Sequence[str] = ("default", "mli", "random"),
    seeds: Sequence[int] = tuple(range(10)),
    descriptors: str = "dft_free",
    window: tuple[float, float] = CO2R_WINDOW,
    n_initial: int = 10,
    budget: int = 110,
    clean: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Replay the closed loop on the bundled surfaces with hidden energies (module docstring).

    ``clean`` keeps one row per physical surface (the pure metals appear three times in the
    source). Returns a JSON-serialisable dict: the problem, per strategy the mean found-curve,
    calculations to find the first / half / all targets, and acceleration factors.
    """
    from matforge.catalysis.data import load_ma2015
    from matforge.catalysis.model import TARGET, surface_features

    df = load_ma2015(clean=clean)
    X, names, _ = surface_features(df, descriptors)
    y = df[TARGET].to_numpy(dtype=float)
    surfaces = df["surface"].tolist()
    low, high = window
    k_total = int(((y >= low) & (y <= high)).sum())
    n = len(y)
    if k_total == 0:
        raise CatalysisError(f"no surface has an energy in [{low}, {high}] eV")
    ks = sorted({1, min(5, k_total), min(10, k_total), max(1, k_total // 2)})
    out = {
        "problem": {
            "dataset": "catalysis_ma2015_co" + (" (one row per surface)" if clean else ""),
            "n_candidates": n, "window_eV": list(window), "n_in_window": k_total,
            "descriptors": descriptors, "n_features": len(names), "n_initial": n_initial,
            "budget": budget,
            "random_expected_calculations": {str(k): k * (n + 1) / (k_total + 1) for k in ks},
        },
        "strategies": {},
    }
    for strat in strategies:
        runs = []
        for seed in seeds:
            oracle = TableOracle(surfaces, y)
            res = run_loop(surfaces, X, oracle, window=window, strategy=strat,
                           n_initial=n_initial, budget=budget, seed=seed)
            runs.append(res)
            if progress:
                progress(f"{strat} seed {seed}: {int(res.in_window.sum())} of {k_total} found "
                         f"in {len(res.order)} calculations ({res.seconds:.1f} s)")
        curves = np.array([r.found_curve() for r in runs], dtype=float)
        summary = {"seeds": list(seeds), "mean_found_curve": curves.mean(axis=0).round(3).tolist(),
                   "found_at_budget_mean": float(curves[:, -1].mean()),
                   "found_at_budget_std": float(curves[:, -1].std(ddof=1)) if len(runs) > 1 else 0.0,
                   "calculations_to_find": {}, "acceleration": {},
                   "seconds": float(sum(r.seconds for r in runs))}
        for k in ks:
            c = np.array([r.calculations_to_find(k) for r in runs])
            ok = np.isfinite(c)
            # a run that missed within the budget: count the expected further random draws
            rest_n = n - budget
            # (k - f more of the K - f targets left among the N - B rows: k'(N-B+1)/(K-f+1))
            f = curves[:, -1]
            filled = np.where(ok, c, budget + np.maximum(k - f, 0) * (rest_n + 1)
                              / (k_total - f + 1))
            summary["calculations_to_find"][str(k)] = {
                "mean": float(filled.mean()), "median": float(np.median(filled)),
                "found_within_budget": int(ok.sum()), "runs": len(c)}
            expected = k * (n + 1) / (k_total + 1)
            summary["acceleration"][str(k)] = float(expected / filled.mean())
        out["strategies"][strat] = summary
    return out
