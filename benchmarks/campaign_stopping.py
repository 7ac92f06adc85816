"""Is the campaign's stopping estimate calibrated? Checked where the answer is known.

    python benchmarks/campaign_stopping.py            # 4 pools x 3 sizes x 8 seeds

On the bundled pools of Liang et al. (2021) (perovskite films, AutoAM prints, P3HT/CNT films,
and 300 of the crossed-barrel designs; replicates averaged), a campaign is given ``k`` random
experiments (k = 10, 25, 50) and asked :meth:`~matforge.design.campaign.Campaign.stopping` with
a margin of 2 % of the pool's range. The truth is known: does an unmeasured candidate beat the
best measured one by more than the margin? Reported: the Brier score of the estimate against
that truth (0 is perfect; 0.25 is a constant 50 %), the Brier score of the best constant (the
base rate, known only in hindsight), and the estimates binned by value against the observed
frequency. AutoAM's failed prints (score 0) are recorded as failures. Writes
``results/campaigns/stopping.json``.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "campaigns" / "stopping.json"

POOLS = {
    "liang2021_perovskite": (["cs_pbi3", "fa_pbi3", "ma_pbi3"], "instability_index", "min"),
    "liang2021_autoam": (
        ["prime_delay", "print_speed", "x_offset_correction", "y_offset_correction"],
        "score",
        "max",
    ),
    "liang2021_p3ht": (["p3ht", "d1", "d2", "d6", "d8"], "conductivity", "max"),
    "liang2021_crossed_barrel": (["n", "theta", "r", "t"], "toughness", "max"),
}


def main() -> None:
    from matforge.datasets import load_dataset
    from matforge.design.campaign import Campaign
    from matforge.design.spaces import DiscretePool

    warnings.simplefilter("ignore")
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cols, target, sense) in POOLS.items():
            g = load_dataset(name).groupby(cols, as_index=False)[target].mean()
            if len(g) > 300:
                g = g.sample(300, random_state=0).reset_index(drop=True)
            failed = (g[target] == 0).to_numpy() if name == "liang2021_autoam" else None
            space = DiscretePool(g.drop(columns=target), feature_columns=cols)
            margin = 0.02 * float(np.ptp(g[target]))
            y = g[target].to_numpy() * (1 if sense == "max" else -1)
            for k in (10, 25, 50):
                for seed in range(8):
                    idx = np.random.default_rng(seed).choice(len(g), k, replace=False)
                    init = g.iloc[idx].copy()
                    if failed is not None:
                        init["failed"] = np.where(failed[idx], "yes", "")
                        init.loc[failed[idx], target] = np.nan
                    ok = np.ones(len(g), bool) if failed is None else ~failed
                    seen = np.zeros(len(g), bool)
                    seen[idx] = True
                    best = y[seen & ok].max()
                    truth = bool((y[~seen & ok] > best + margin).any())
                    c = Campaign.create(
                        Path(tmp) / "s.db",
                        f"{name}-{k}-{seed}",
                        space,
                        f"{target} {sense}",
                        initial=init,
                        seed=seed,
                    )
                    est = c.stopping(margin)
                    rows.append(
                        {
                            "pool": name,
                            "k": k,
                            "seed": seed,
                            "truth": truth,
                            "p": est.probability,
                            "lower": est.lower,
                            "upper": est.upper,
                        }
                    )
                print(f"{name} k={k}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    p = np.array([r["p"] for r in rows], dtype=float)
    t = np.array([r["truth"] for r in rows], dtype=float)
    bins = [0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0001]
    table = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        m = (p >= lo) & (p < hi)
        if m.any():
            table.append(
                {
                    "estimate": f"[{lo:.2f}, {min(hi, 1):.2f}]",
                    "n": int(m.sum()),
                    "mean_estimate": round(float(p[m].mean()), 3),
                    "better_remained": round(float(t[m].mean()), 3),
                }
            )
    summary = {
        "n": len(rows),
        "brier": round(float(np.mean((p - t) ** 2)), 4),
        "brier_base_rate": round(float(np.mean((t.mean() - t) ** 2)), 4),
        "base_rate": round(float(t.mean()), 3),
        "bound_holds_lower": float(np.mean([r["lower"] <= r["p"] <= r["upper"] for r in rows])),
        "calibration": table,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": summary, "runs": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    print("| estimate | cases | mean estimate | a better candidate remained |")
    print("| --- | --- | --- | --- |")
    for r in table:
        print(
            f"| {r['estimate']} | {r['n']} | {r['mean_estimate']:.2f} | "
            f"{r['better_remained']:.2f} |"
        )


if __name__ == "__main__":
    main()
