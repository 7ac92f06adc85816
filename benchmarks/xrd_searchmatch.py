"""Element-aware search-match on patterns of structures from chemical systems unseen in training
(issue #17 section 5, C and D).

Test structures are the prototype-derived structures on the test side of the classifier's
chemical-system split (``matforge.xrd.training_data.split_by_chemsys`` over the same structure
set ``matforge xrd train`` builds: seed 0, 19 substituted variants per prototype, 40 random
crystals per space group; the sets are read from ``.cache/xrd`` when there, else built).
Their elements are given, as a user would give them; the candidates are every bundled
prototype with chemically sensible substitutions for those elements (the test structure's own
prototype among them, its lattice unknown).

Patterns (Cu Kα1, 10–80° 2θ in 0.02° steps) are made measured-like:

* the lattice is not the candidate's estimate: every length scaled by a common factor
  log-uniform in ×0.92–1.08 (the error of a covalent-radius volume) and strained by up to ±3 %
  per free axis (ties of the crystal system kept; oblique angles by ε/3);
* C (single phase): the realistic augmentation of the classifier's test patterns without
  impurity phases or cropped ranges: vacancies (half the patterns, up to 15 % of the sites on
  whole orbits), displacements (up to 0.05 Å RMS), crystallite size 20–100 nm, instrumental
  FWHM 0.04–0.15°, η 0.1–0.9, texture (40 %, March–Dollase r 0.6–1.4), zero shift ±0.1°,
  Kα2 (half), background (80 %, up to 30 %), Poisson noise (1,000–100,000 counts);
* D (mixtures of 2 or 3 test structures whose elements together are at most three, each
  ≥ 20 wt %, distinct prototypes): :func:`matforge.xrd.mixture.simulate_mixture` (the
  kinematic intensity v/V² · Σ|F|²LP, absolute intensities checked against pymatgen in the
  tests), the same lattice, profile, Kα2, background and noise ranges, mild texture (30 %,
  r 0.85–1.15), no vacancies (they would change the phases' masses).

Scored: C — the best candidate's prototype is the true one (top-1), with and without the
classifier's prototype probabilities in the ranking; of those right, the fitted (and refined)
a, b, c all within 0.5 % of the true lattice; D — every true phase among those found (and
nothing else), weight-fraction error in points; seconds per pattern (2-core machine, one
process, single-threaded BLAS).

    OMP_NUM_THREADS=1 python benchmarks/xrd_searchmatch.py --single 100 --mix2 40 --mix3 30

writes ``results/xrd_searchmatch.json`` (every pattern's outcome and the summary).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

CACHE = Path(".cache/xrd")
GRID = np.round(np.arange(10.0, 80.0 + 1e-9, 0.02), 4)
LATTICE_TOL = 0.005
GAS_ELEMENTS = {"H", "N", "O", "F", "Cl"}


def structure_sets(cache: Path = CACHE):
    """The classifier's structure set and its chemical-system split (built in ``cache`` when
    not there)."""
    from matforge.xrd.training_data import (
        StructureSet,
        prototype_structures,
        random_structures,
        split_by_chemsys,
    )

    parts = []
    for name, make in (("prototypes_v19_s0", lambda: prototype_structures(19, 0)),
                       ("random2_r40_s0", lambda: random_structures(40, 0))):  # fmt: skip
        path = cache / f"{name}.parquet"
        if path.exists():
            parts.append(StructureSet.load(path))
        else:
            parts.append(make())
            parts[-1].save(path)
    sset = parts[0].concat(parts[1])
    return sset, split_by_chemsys(sset, seed=0)


def true_lattice(structure, strain, scale, crystal_system):
    """(a, b, c, α, β, γ) of ``structure`` strained as :func:`matforge.xrd.augment.perturb`
    strains it."""
    from matforge.xrd.augment import perturb

    s, _ = perturb(structure, strain=strain, scale=scale, crystal_system=crystal_system)
    return np.array([*s.lattice.abc, *s.lattice.angles]), s


def lattice_error(found, truth) -> float:
    """Largest relative error of a, b, c (and of the angles, relative to 90°)."""
    f, t = np.asarray(found, dtype=float), np.asarray(truth, dtype=float)
    return float(max(np.max(np.abs(f[:3] - t[:3]) / t[:3]), np.max(np.abs(f[3:] - t[3:]) / 90)))


def single_phase(sset, rows, rng, clf, refine):
    """Benchmark C on structures ``rows``."""
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, AugmentConfig, augment
    from matforge.xrd.io import CU_KA1, Pattern
    from matforge.xrd.searchmatch import search_match

    config = AugmentConfig(
        vacancy_fraction=(0.0, 0.15), displacement_rms=(0.0, 0.05), size_nm=(20.0, 100.0),
        zero_shift=0.1, impurity_prob=0.0, crop_prob=0.0, noise_counts=(1e3, 1e5),
        scale=(0.92, 1.08),
    )  # fmt: skip
    out = []
    for n, i in enumerate(rows):
        s = sset.structures[i]
        cs = CRYSTAL_SYSTEMS[sset.crystal_system[i]]
        x, p = augment([s], GRID, rng, config, crystal_systems=[cs], orbits=[sset.orbits[i]])
        truth, _ = true_lattice(s, p["strain"][0], p["scale"][0], cs)
        counts = p["counts"][0] or 1e5
        pattern = Pattern(GRID, np.rint(x[0] * counts), wavelength=CU_KA1, source=f"row {i}")
        elements = sset.chemsys[i].replace("-", ",")
        t0 = time.perf_counter()
        res = search_match(pattern, elements, classifier=clf, refine=refine, top=10)
        seconds = time.perf_counter() - t0
        best = res.phases[0]
        by_rwp = min(res.candidates, key=lambda m: m.rwp)
        found = [*best.lattice[0], *best.lattice[1]]
        row = {
            "row": int(i), "chemsys": sset.chemsys[i], "prototype": sset.prototype[i],
            "crystal_system": cs, "n_candidates": res.n_candidates, "seconds": seconds,
            "found": best.phase.prototype, "top1": best.phase.prototype == sset.prototype[i],
            "top1_rwp_only": by_rwp.phase.prototype == sset.prototype[i],
            "in_top5": sset.prototype[i] in [m.phase.prototype for m in res.candidates[:5]],
            "rwp": res.rwp, "lattice_error": lattice_error(found, truth),
            "truth": truth.tolist(), "fitted": found,
        }  # fmt: skip
        if res.refinement is not None:
            ph = res.refinement.phases[0]
            row["refined_lattice_error"] = lattice_error([*ph.abc, *ph.angles], truth)
            row["refined_rwp"] = res.refinement.rwp
        out.append(row)
        print(f"C {n + 1}/{len(rows)} {sset.chemsys[i]:12s} {cs:12s} top1={row['top1']!s:5s} "
              f"lattice {100 * row['lattice_error']:.2f}% {seconds:.1f}s", flush=True)  # fmt: skip
    return out


def mixture_sets(sset, rows, n_phases, count, rng):
    """``count`` mixtures of ``n_phases`` structures of ``rows``: distinct prototypes, at most
    three elements together, each sharing an element with another."""
    els = {i: frozenset(sset.chemsys[i].split("-")) for i in rows}
    out = []
    tries = 0
    while len(out) < count and tries < 100 * count:
        tries += 1
        chosen = [int(rng.choice(rows))]
        for _ in range(n_phases - 1):
            union = frozenset().union(*(els[c] for c in chosen))
            protos = {sset.prototype[c] for c in chosen}
            pool = [j for j in rows if len(union | els[j]) <= 3 and els[j] & union
                    and sset.prototype[j] not in protos]  # fmt: skip
            if not pool:
                break
            chosen.append(int(rng.choice(pool)))
        if len(chosen) == n_phases:
            out.append(chosen)
    return out


def mixtures(sset, sets, rng, clf, refine):
    """Benchmark D on mixtures ``sets`` (lists of rows)."""
    from matforge.xrd.augment import _DIRECTIONS, CRYSTAL_SYSTEMS
    from matforge.xrd.mixture import simulate_mixture
    from matforge.xrd.searchmatch import search_match

    out = []
    for n, chosen in enumerate(sets):
        k = len(chosen)
        w = 0.2 + (1 - 0.2 * k) * rng.dirichlet(np.ones(k))
        structures, truths = [], []
        for i in chosen:
            cs = CRYSTAL_SYSTEMS[sset.crystal_system[i]]
            strain = rng.uniform(-0.03, 0.03, 3)
            scale = math.exp(rng.uniform(math.log(0.92), math.log(1.08)))
            truth, s = true_lattice(sset.structures[i], strain, scale, cs)
            structures.append(s)
            truths.append(truth)
        size = float(np.exp(rng.uniform(np.log(20), np.log(100))))
        texture = [
            (_DIRECTIONS[rng.integers(len(_DIRECTIONS))], rng.uniform(0.85, 1.15))
            if rng.random() < 0.3 else None
            for _ in chosen
        ]  # fmt: skip
        counts = float(np.exp(rng.uniform(np.log(1e3), np.log(1e5))))
        pattern = simulate_mixture(
            structures, w, GRID, fwhm=rng.uniform(0.04, 0.15), eta=rng.uniform(0.1, 0.9),
            size_nm=size, zero_shift=rng.uniform(-0.1, 0.1), kalpha2=bool(rng.random() < 0.5),
            texture=texture, background=rng.uniform(0, 0.3) if rng.random() < 0.8 else 0.0,
            counts=counts, rng=rng,
        )  # fmt: skip
        elements = ",".join(sorted(set().union(*(sset.chemsys[i].split("-") for i in chosen))))
        t0 = time.perf_counter()
        res = search_match(pattern, elements, classifier=clf, max_phases=3, refine=refine)
        seconds = time.perf_counter() - t0
        true_protos = [sset.prototype[i] for i in chosen]
        found = {m.phase.prototype: m for m in res.phases}
        all_found = all(p in found for p in true_protos)
        errors = [abs(found[p].weight_fraction - wi) if p in found else None
                  for p, wi in zip(true_protos, w, strict=True)]  # fmt: skip
        row = {
            "rows": chosen, "elements": elements, "prototypes": true_protos,
            "weight_fractions": w.tolist(), "found": [m.phase.prototype for m in res.phases],
            "found_fractions": [m.weight_fraction for m in res.phases],
            "all_found": all_found, "exact": all_found and len(res.phases) == k,
            "max_fraction_error": max(e for e in errors) if all_found else None,
            "n_candidates": res.n_candidates, "seconds": seconds, "rwp": res.rwp,
            "steps": res.steps,
        }  # fmt: skip
        out.append(row)
        err = row["max_fraction_error"]
        print(f"D{k} {n + 1}/{len(sets)} {elements:10s} found {len(res.phases)} all={all_found!s:5s} "
              f"wt err {'-' if err is None else f'{100 * err:.1f}'} {seconds:.1f}s", flush=True)  # fmt: skip
    return out


def summary(single, mix2, mix3) -> dict:
    def frac(rows, key):
        return float(np.mean([bool(r[key]) for r in rows])) if rows else None

    out = {}
    if single:
        right = [r for r in single if r["top1"]]
        out["C"] = {
            "n_patterns": len(single),
            "prototype_top1": frac(single, "top1"),
            "prototype_top1_rwp_only": frac(single, "top1_rwp_only"),
            "prototype_top5": frac(single, "in_top5"),
            "lattice_within_0.5pct_of_right": float(np.mean([r["lattice_error"] <= LATTICE_TOL
                                                             for r in right])) if right else None,
            "median_lattice_error_pct": float(100 * np.median([r["lattice_error"] for r in right]))
            if right else None,
            "seconds_median": float(np.median([r["seconds"] for r in single])),
            "seconds_max": float(np.max([r["seconds"] for r in single])),
            "by_crystal_system": {
                cs: {"n": len(rs), "top1": frac(rs, "top1")}
                for cs in sorted({r["crystal_system"] for r in single})
                for rs in [[r for r in single if r["crystal_system"] == cs]]
            },
        }  # fmt: skip
        if right and "refined_lattice_error" in right[0]:
            out["C"]["refined_lattice_within_0.5pct_of_right"] = float(
                np.mean([r["refined_lattice_error"] <= LATTICE_TOL for r in right])
            )
    for key, rows in (("D2", mix2), ("D3", mix3)):
        if not rows:
            continue
        ok = [r for r in rows if r["all_found"]]
        errs = [r["max_fraction_error"] for r in ok]
        out[key] = {
            "n_patterns": len(rows),
            "all_phases_found": frac(rows, "all_found"),
            "exactly_the_phases": frac(rows, "exact"),
            "max_weight_fraction_error_points_median": float(100 * np.median(errs)) if errs else None,
            "weight_fractions_within_10_points": float(np.mean([e <= 0.10 for e in errs]))
            if errs else None,
            "seconds_median": float(np.median([r["seconds"] for r in rows])),
            "seconds_max": float(np.max([r["seconds"] for r in rows])),
        }  # fmt: skip
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--single", type=int, default=100, help="single-phase patterns (C)")
    ap.add_argument("--mix2", type=int, default=40, help="two-phase patterns (D)")
    ap.add_argument("--mix3", type=int, default=30, help="three-phase patterns (D)")
    ap.add_argument("--split", default="test", choices=("test", "val"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=CACHE,
                    help="folder of the structure sets (built there when missing)")  # fmt: skip
    ap.add_argument("--refine", action="store_true", help="also run the refinement (C)")
    ap.add_argument("--no-classifier", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("results/xrd_searchmatch.json"))
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    sset, split = structure_sets(args.cache)
    src = np.array(sset.source)
    rows = [int(i) for i in np.flatnonzero((split == args.split) & (src != "pyxtal"))]
    gases = [i for i in rows if set(sset.chemsys[i].split("-")) <= GAS_ELEMENTS]
    rows = [i for i in rows if i not in set(gases)]
    rng = np.random.default_rng(args.seed)
    clf = None
    if not args.no_classifier:
        import torch

        from matforge.xrd.cnn import XRDClassifier

        torch.set_num_threads(1)
        clf = XRDClassifier.load()
    t0 = time.time()
    pick = rng.choice(rows, min(args.single, len(rows)), replace=False)
    single = single_phase(sset, pick, rng, clf, args.refine) if args.single else []
    mix2 = mixtures(sset, mixture_sets(sset, rows, 2, args.mix2, rng), rng, clf, False)
    mix3 = mixtures(sset, mixture_sets(sset, rows, 3, args.mix3, rng), rng, clf, False)
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/xrd_searchmatch.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "split": args.split,
        "structures_on_side": len(rows),
        "left_out_gas_only_structures": len(gases),
        "classifier": clf is not None,
        "minutes": (time.time() - t0) / 60,
        "summary": summary(single, mix2, mix3),
        "single": single,
        "mix2": mix2,
        "mix3": mix3,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    main()
