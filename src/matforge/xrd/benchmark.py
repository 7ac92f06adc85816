"""The XRD classifier benchmark (`matforge benchmark xrd`): accuracy on structures never seen
in training, on a chemical-system-disjoint and a prototype-disjoint test set, against defect
level, and what peak positions alone allow; on real published structures
(:mod:`matforge.xrd.real_set`, set E); and its Markdown section of docs/benchmarks.md.

Only the standard library loads with this module (the CLI reads its defaults at start-up);
numpy, torch and the training data load inside :func:`run_benchmark`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

__all__ = [
    "DEFAULT_DATA_DIR",
    "EPOCHS",
    "TRAIN_EPOCHS",
    "TRAIN_ROUNDS",
    "LABEL_SMOOTHING",
    "TARGETS",
    "benchmark_markdown",
    "position_limits",
    "prototype_split_model",
    "run_benchmark",
    "sweep_shards",
    "write_docs_section",
]

#: cache of the generated structures and patterns
DEFAULT_DATA_DIR = Path(".cache/xrd")
#: label smoothing of the shipped model's cross-entropy
LABEL_SMOOTHING = 0.05
#: epochs of the prototype-split model of the benchmark (one round of patterns)
EPOCHS = 10
#: epochs of the shipped model, and its rounds: independently augmented draws of the training
#: patterns, one per epoch in turn (`matforge xrd train` defaults)
TRAIN_EPOCHS = 24
TRAIN_ROUNDS = 4

VACANCY_LEVELS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25)
DISPLACEMENT_LEVELS = (0.0, 0.05, 0.10, 0.15, 0.20)  # Å RMS
NOISE_LEVELS = (0.0, 1e4, 1e3, 300.0, 100.0)  # counts in the strongest peak; 0 = noise-free
TARGETS = {"crystal_system_top1": 0.95, "spacegroup_top1": 0.85, "spacegroup_top5": 0.95,
           "vacancy10_drop_points": 5.0}  # fmt: skip


def run_benchmark(
    model: Path | str | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    *,
    proto_epochs: int = EPOCHS,
    sweep_structures: int = 1000,
    threads: int = 2,
    device: str | None = None,
    log: Callable[[str], object] | None = print,
) -> dict:
    """XRD classifier benchmark: chemical-system-disjoint and prototype-disjoint test sets,
    top-1/top-5 per head, crystal-system confusion, accuracy vs defect level.

    ``model``: weights (.pt/.json stem; None: the shipped ones); ``data_dir``: the cache of
    structures and patterns; ``proto_epochs``: epochs of the prototype-split model (0 skips
    it); ``sweep_structures``: test structures (a seeded sample) in the defect sweeps. Returns
    the result document (:func:`benchmark_markdown` writes it as docs/benchmarks.md's section).
    """
    import numpy as np
    import torch

    from matforge.xrd.augment import CRYSTAL_SYSTEMS
    from matforge.xrd.cnn import HEADS, XRDClassifier, evaluate
    from matforge.xrd.training_data import labels_for, load_shards, prepare_data

    log = log or (lambda _msg: None)
    torch.set_num_threads(threads)
    t_start = time.time()
    clf = XRDClassifier.load(model, device=device)
    d = clf.meta["training"]["data"]
    seed = d["seed"]
    data = prepare_data(data_dir, seed=seed, n_variants=d["n_variants"], n_random=d["n_random"],
                        train_patterns=d["train_patterns"],
                        random_train_patterns=d["random_train_patterns"],
                        eval_patterns=d["eval_patterns"], log=log)  # fmt: skip
    sset = data.structures
    source = np.array(sset.source)

    def summarise(metrics):
        return {h: {k: metrics[h][k] for k in ("top1", "top5", "nll", "ece", "n")} for h in metrics}

    # --- chemical-system-disjoint test set, realistic augmentation ---
    x, y, rows, _ = data.patterns("chemsys", "test")
    chem_train = set(np.array(sset.chemsys)[data.chem_split == "train"])
    leaked = sorted({sset.chemsys[r] for r in rows} & chem_train)
    assert not leaked, f"chemical systems on both sides: {leaked[:5]}"
    m = evaluate(clf, x, y)
    result: dict = {
        "date": date.today().isoformat(),
        "command": "matforge benchmark xrd",
        "model": clf.meta.get("name"),
        "weights_sha256": clf.meta.get("weights_sha256"),
        "training": {k: clf.meta["training"][k] for k in ("seed", "epochs", "minutes", "n_train", "threads", "device")},
        "data": d,
        "targets": TARGETS,
    }  # fmt: skip
    chem: dict = {
        "n_patterns": int(len(x)),
        "n_structures": int(len(np.unique(rows))),
        "n_chemical_systems": len({sset.chemsys[r] for r in rows}),
        "overall": summarise(m),
    }
    chem["position_limits"] = {"overall": position_limits(y, m)}
    for name, sel in (
        ("prototype_derived", source[rows] != "pyxtal"),
        ("random_pyxtal", source[rows] == "pyxtal"),
    ):
        if sel.any():
            ysel = {h: v[sel] for h, v in y.items()}
            msel = evaluate(clf, x[sel], ysel)
            chem[name] = summarise(msel)
            chem[name]["n_patterns"] = int(sel.sum())
            chem["position_limits"][name] = position_limits(ysel, msel)
    cm = np.zeros((7, 7), dtype=int)
    np.add.at(cm, (y["crystal_system"], m["crystal_system"]["pred"]), 1)
    chem["crystal_system_confusion"] = {
        "labels": list(CRYSTAL_SYSTEMS),
        "rows_true_cols_pred": cm.tolist(),
    }
    # abstention: accuracy on the patterns the model answers at several thresholds
    abst = {}
    for thr in (0.3, 0.5, 0.7, 0.9):
        abst[str(thr)] = {}
        for h in ("crystal_system", "spacegroup"):
            conf, pred, lab = m[h]["proba_max"], m[h]["pred"], y[h]
            ans = conf >= thr
            abst[str(thr)][h] = {
                "answered": float(ans.mean()),
                "accuracy_answered": float((pred[ans] == lab[ans]).mean()) if ans.any() else None,
            }
    chem["abstention"] = abst
    result["chemsys_split"] = chem
    log(f"chemical-system split: {len(x):,} test patterns; " + _brief(m))

    # --- defect sweeps on the same test structures ---
    test_rows, sweep_dirs, pristine_dir = sweep_shards(data, sweep_structures, seed)
    sweeps = {}
    for name, entries in sweep_dirs.items():
        sweeps[name] = []
        for level, sdir in entries:
            sd = load_shards(sdir)
            sy = labels_for(sset, test_rows[sd["structure"].astype(np.int64)])
            sm = evaluate(clf, sd["x"], sy)
            sweeps[name].append(
                {
                    "level": level,
                    **{h: {"top1": sm[h]["top1"], "top5": sm[h]["top5"]} for h in HEADS},
                }
            )
            log(f"  {name} {level:g}: " + _brief(sm))
    # fully pristine reference (no augmentation at all)
    sd = load_shards(pristine_dir)
    sm = evaluate(clf, sd["x"], labels_for(sset, test_rows[sd["structure"].astype(np.int64)]))
    result["chemsys_split"]["pristine_no_augmentation"] = summarise(sm)
    src_sweep = source[test_rows[sd["structure"].astype(np.int64)]]
    sy = labels_for(sset, test_rows[sd["structure"].astype(np.int64)])
    for name, sel in (("prototype_derived", src_sweep != "pyxtal"),
                      ("random_pyxtal", src_sweep == "pyxtal")):  # fmt: skip
        if sel.any():
            part = summarise(evaluate(clf, sd["x"][sel], {h: v[sel] for h, v in sy.items()}))
            part["n_patterns"] = int(sel.sum())
            result["chemsys_split"][f"pristine_{name}"] = part
    result["defect_sweeps"] = sweeps
    result["defect_sweep_structures"] = len(test_rows)
    vac = {e["level"]: e for e in sweeps["vacancy_fraction"]}
    drop = {
        h: 100 * (vac[0.0][h]["top1"] - vac[0.10][h]["top1"])
        for h in ("crystal_system", "spacegroup")
    }
    result["vacancy10_drop_points"] = drop

    # --- prototype-disjoint split: a model trained without the test prototypes ---
    if proto_epochs > 0:
        x_te, y_te, r_te, _ = data.patterns("prototype", "test")
        pclf = prototype_split_model(
            data, _hyper(clf.meta), proto_epochs, classes=clf.meta["classes"],
            grid=clf.meta["grid"], wavelength=clf.wavelength, device=device, threads=threads,
            log=log,
        )  # fmt: skip
        pm = evaluate(pclf, x_te, y_te)
        result["prototype_split"] = {
            "n_patterns": int(len(x_te)),
            "n_structures": int(len(np.unique(r_te))),
            "n_prototypes": len({sset.prototype[r] for r in r_te}),
            "epochs": proto_epochs,
            "training_minutes": pclf.meta["training"]["minutes"],
            "overall": summarise({h: pm[h] for h in ("crystal_system", "spacegroup")}),
            "note": "test prototypes are absent from training, so the prototype head cannot "
            "name them; crystal system and space group are scored",
        }
        log(
            "prototype split: " + _brief({h: pm[h] for h in ("crystal_system", "spacegroup")})
        )
    # --- set E: real published structures ---
    from matforge.xrd.real_set import evaluate_real_structures

    result["real_structures"] = evaluate_real_structures(clf, jobs=threads, log=log)
    result["benchmark_minutes"] = (time.time() - t_start) / 60
    return result


def position_limits(y: dict, m: dict) -> dict:
    """What peak positions allow on test labels ``y``, beside model results ``m``
    (:func:`~matforge.xrd.cnn.evaluate`): the best crystal-system and space-group accuracy of a
    classifier that reads only where peaks can occur (:mod:`matforge.xrd.extinction`), and the
    model's space-group top-1 counted up to such position classes (extinction-symbol accuracy)."""
    import numpy as np

    from matforge.xrd.extinction import position_ceiling, powder_classes

    sg = np.asarray(y["spacegroup"])
    classes = powder_classes()
    return {
        "ceiling_crystal_system_top1": position_ceiling(y["crystal_system"], groups=classes[sg]),
        "ceiling_spacegroup_top1": position_ceiling(sg),
        "ceiling_spacegroup_top5": position_ceiling(sg, k=5),
        "model_spacegroup_class_top1": float(np.mean(classes[m["spacegroup"]["pred"]] == classes[sg])),
    }


SWEEPS = (
    ("vacancy_fraction", "vacancy", VACANCY_LEVELS, 2),
    ("displacement_rms_angstrom", "displacement", DISPLACEMENT_LEVELS, 1),
    ("noise_counts", "counts", NOISE_LEVELS, 1),
)


def sweep_shards(data, n_structures: int, seed: int):
    """Make (or reuse) the defect-sweep patterns of a seeded sample of ``n_structures``
    chemical-system test structures: every realistic augmentation, with one effect forced on
    at each level of :data:`SWEEPS`, plus a pristine set.

    Returns (test rows in ``data.structures``, ``{sweep name: [(level, shard dir), ...]}``,
    pristine shard dir); the shards' ``structure`` indexes the test rows.
    """
    import numpy as np

    from matforge.xrd.augment import AugmentConfig
    from matforge.xrd.training_data import generate_shards

    test_rows = np.flatnonzero(data.chem_split == "test")
    if len(test_rows) > n_structures:
        pick = np.random.default_rng(seed).choice(len(test_rows), n_structures, replace=False)
        test_rows = np.sort(test_rows[pick])
    sub = data.structures.subset(test_rows)
    root = data.data_dir / f"sweep_s{seed}_n{len(sub)}"
    dirs: dict[str, list] = {}
    for name, key, levels, n_per in SWEEPS:
        config = AugmentConfig().replace(**{f"{key if key != 'counts' else 'noise'}_prob": 1.0})
        dirs[name] = [
            (level, generate_shards(
                sub, root / f"{key}_{level:g}", grid=data.grid, n_per_structure=n_per,
                config=config, seed=seed + 1000, params={key: level},
                description=f"{name} = {level:g}",
            ))
            for level in levels
        ]  # fmt: skip
    pristine = generate_shards(sub, root / "pristine", grid=data.grid, n_per_structure=1,
                               config=AugmentConfig.pristine(), seed=seed + 1000,
                               description="pristine")  # fmt: skip
    return test_rows, dirs, pristine


def _hyper(meta: dict) -> dict:
    """Network and optimiser settings of a trained classifier (from its metadata)."""
    tr = meta["training"]
    return {"arch": meta["arch"], "lr": tr["lr"],
            "batch_size": tr["batch_size"], "weight_decay": tr["weight_decay"],
            "label_smoothing": tr.get("label_smoothing", 0.0)}  # fmt: skip


def prototype_split_model(data, hyper: dict, epochs: int, *, classes, grid, wavelength,
                          device=None, threads: int = 2, log=None):  # fmt: skip
    """A classifier trained on the prototype split's training side with the network and
    optimiser settings ``hyper`` (:func:`_hyper`) for ``epochs`` epochs; cached in
    ``data.data_dir`` under a key of the settings."""
    from matforge.xrd.cnn import XRDClassifier, train_classifier

    seed = data.seed
    key = hashlib.sha256(json.dumps(hyper, sort_keys=True).encode()).hexdigest()[:10]
    stem = data.data_dir / f"proto_split_model_s{seed}_e{epochs}_{key}" / "cnn_v1"
    if stem.with_suffix(".pt").exists():
        return XRDClassifier.load(stem, device=device)
    x_tr, y_tr, _, _ = data.patterns("prototype", "train")
    x_va, y_va, _, _ = data.patterns("prototype", "val", max_per_structure=4)
    if log:
        log(f"training the prototype-split model ({len(x_tr):,} patterns, {epochs} epochs)")
    pclf = train_classifier(
        x_tr, y_tr, x_va, y_va, classes=classes, grid=grid, wavelength=wavelength,
        epochs=epochs, seed=seed, device=device, threads=threads, log=log, **hyper,
    )  # fmt: skip
    pclf.save(stem.parent)
    return pclf


def _brief(metrics) -> str:
    return ", ".join(f"{h} top-1 {v['top1']:.3f} top-5 {v['top5']:.3f}" for h, v in metrics.items())


def _pct(v) -> str:
    return "–" if v is None or v != v else f"{100 * v:.1f}"


def benchmark_markdown(r: dict) -> str:
    """The benchmark result as the Markdown section of docs/benchmarks.md."""
    c = r["chemsys_split"]
    lines = [
        "## XRD",
        "",
        f"Crystal-structure identification from powder XRD with the 1D CNN "
        f"(`matforge.xrd.cnn`, weights `{r['model']}`). Command: `{r['command']}` "
        f"({r['date']}); training: `{r['data'].get('command', 'matforge xrd train')}` "
        f"({r['training']['minutes']:.0f} min on {r['training']['threads']} CPU threads, "
        f"{r['training']['device']}).",
        "",
        f"Test structures are never seen in training. **Chemical-system-disjoint split**: "
        f"{c['n_structures']:,} structures ({c['n_chemical_systems']:,} chemical systems, none "
        f"of them in training), {c['n_patterns']:,} patterns with realistic augmentation "
        f"(vacancies, displacements, strain, crystallite size, texture, zero shift, Kα2, "
        f"background, Poisson noise, impurity phases).",
        "",
        "| test set | patterns | crystal system top-1 | top-5 | space group top-1 | top-5 | prototype top-1 | top-5 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [("chemical-system-disjoint, all", c["overall"], c["n_patterns"])]
    for key, label in (("prototype_derived", "… AFLOW prototypes + substitutions"),
                       ("random_pyxtal", "… random symmetric crystals (pyxtal Wyckoff tables)")):  # fmt: skip
        if key in c:
            rows.append((label, c[key], c[key]["n_patterns"]))
    rows.append(("chemical-system-disjoint, no augmentation", c["pristine_no_augmentation"],
                 c["pristine_no_augmentation"]["crystal_system"]["n"]))  # fmt: skip
    for key, label in (("pristine_prototype_derived", "… AFLOW prototypes + substitutions"),
                       ("pristine_random_pyxtal", "… random symmetric crystals")):  # fmt: skip
        if key in c:
            rows.append((label, c[key], c[key]["n_patterns"]))
    if "prototype_split" in r:
        p = r["prototype_split"]
        rows.append(
            (
                f"prototype-disjoint ({p['n_prototypes']} unseen prototypes)",
                p["overall"],
                p["n_patterns"],
            )
        )
    for label, m, n in rows:
        cells = []
        for h in ("crystal_system", "spacegroup", "prototype"):
            mh = m.get(h)
            cells += [_pct(mh["top1"]) if mh else "–", _pct(mh["top5"]) if mh else "–"]
        lines.append(f"| {label} | {n:,} | " + " | ".join(cells) + " |")
    if "position_limits" in c:
        lines += [
            "",
            "What peak positions allow (`matforge.xrd.extinction`): space groups with the same "
            "lattice metric and the same systematically allowed reflections put peaks at the same "
            "places (enantiomorphs, point groups of one Laue class, trigonal P against hexagonal), "
            "so a powder pattern fixes an *extinction class*, not a space group. The ceiling is the "
            "best top-k accuracy of a classifier that reads only peak positions (the most frequent "
            "labels of each class in this test set); intensities can beat it only where a "
            "structure's intensity fingerprint names its group, as a known prototype does. The "
            "last column counts the model's space group as right when it is in the true class.",
            "",
            "| test set | ceiling: crystal system top-1 | space group top-1 | top-5 | model: space-group class top-1 |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for key, label in (("overall", "chemical-system-disjoint, all"),
                           ("prototype_derived", "… AFLOW prototypes + substitutions"),
                           ("random_pyxtal", "… random symmetric crystals")):  # fmt: skip
            if key in c["position_limits"]:
                q = c["position_limits"][key]
                lines.append(
                    f"| {label} | {_pct(q['ceiling_crystal_system_top1'])} | "
                    f"{_pct(q['ceiling_spacegroup_top1'])} | {_pct(q['ceiling_spacegroup_top5'])} | "
                    f"{_pct(q['model_spacegroup_class_top1'])} |"
                )
    t = r["targets"]
    o = c["overall"]
    drop = r["vacancy10_drop_points"]
    lines += [
        "",
        f"Targets (chemical-system split): crystal system top-1 ≥ {100 * t['crystal_system_top1']:.0f}% "
        f"(measured {_pct(o['crystal_system']['top1'])}%), space group top-1 ≥ "
        f"{100 * t['spacegroup_top1']:.0f}% ({_pct(o['spacegroup']['top1'])}%) and top-5 ≥ "
        f"{100 * t['spacegroup_top5']:.0f}% ({_pct(o['spacegroup']['top5'])}%); at 10% vacancies within "
        f"{t['vacancy10_drop_points']:.0f} points of pristine (drop: crystal system "
        f"{drop['crystal_system']:.1f}, space group {drop['spacegroup']:.1f} points). "
        f"Park et al. (2017) report 94.99% / 81.14% on ICSD patterns.",
        "",
        f"Accuracy (top-1, %) against defect level on {r['defect_sweep_structures']:,} of the "
        "chemical-system test structures (paired: the same other augmentations, realistic, "
        "at every level; 2 patterns per structure for vacancies, 1 otherwise):",
        "",
        "| defect | level | crystal system | space group | prototype |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    names = {"vacancy_fraction": "vacancies (fraction of sites)",
             "displacement_rms_angstrom": "displacements (RMS, Å)",
             "noise_counts": "Poisson noise (counts in strongest peak; 0 = none)"}  # fmt: skip
    for key, entries in r["defect_sweeps"].items():
        for e in entries:
            lines.append(f"| {names[key]} | {e['level']:g} | {_pct(e['crystal_system']['top1'])} | "
                         f"{_pct(e['spacegroup']['top1'])} | {_pct(e['prototype']['top1'])} |")  # fmt: skip
    cm = c["crystal_system_confusion"]
    abbrev = [s[:4] for s in cm["labels"]]
    lines += ["", "Crystal-system confusion (rows: true, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(abbrev) + " |",
              "| --- |" + " ---: |" * len(abbrev)]  # fmt: skip
    for lab, row in zip(cm["labels"], cm["rows_true_cols_pred"], strict=True):
        lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    a = c["abstention"]["0.5"]
    lines += [
        "",
        f"With `--threshold 0.5` the classifier answers {_pct(a['spacegroup']['answered'])}% of the "
        f"space-group questions, {_pct(a['spacegroup']['accuracy_answered'])}% of them correctly "
        f"(crystal system: {_pct(a['crystal_system']['answered'])}% answered, "
        f"{_pct(a['crystal_system']['accuracy_answered'])}% correct).",
        "",
    ]
    if "real_structures" in r:
        from matforge.xrd.real_set import real_markdown

        lines += [*real_markdown(r["real_structures"]), ""]
    return "\n".join(lines)


def write_docs_section(path: Path, section: str, heading: str = "## XRD") -> None:
    """Replace the ``heading`` section of ``path`` (up to the next '## ' heading) or append it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == heading), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        text = (
            "".join(lines[:start])
            + section.rstrip("\n")
            + "\n"
            + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
        )
    path.write_text(text)
