"""The Matbench v0.1 protocol on the bundled official folds, with calibration metrics.

For each fold ``k`` of a task, a fresh model is fitted on the official training rows only (all
model choices inside it — thresholds, blend weights, calibration — use inner cross-validation on
those rows) and scored on the official test rows:

* regression: MAE, RMSE, R² (target units) and the calibration of the Gaussian predictive
  intervals: coverage of the 68% and 95% intervals, miscalibration area, Spearman correlation
  of ``|error|`` with the predicted std;
* classification: ROC-AUC as Matbench scores it — on boolean predictions (Matbench requires
  ``bool`` predictions for classification and passes them to ``roc_auc_score``, so the figure
  equals the balanced accuracy); the labels use the probability threshold the model chose on its
  training fold. The ROC-AUC of the probabilities (``roc_auc_proba``), accuracy, balanced
  accuracy and F1 are recorded too.

:func:`run_task` returns the result as a JSON-ready dict; :func:`write_result` and
:func:`summary_markdown` put it beside the published composition-only leaderboard figures
(:data:`LEADERBOARD`, Matbench v0.1, mean over the 5 folds).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from matforge import __version__
from matforge.errors import MatforgeError
from matforge.jsonable import to_jsonable

__all__ = [
    "DEFAULT_TASKS",
    "GOALS",
    "LEADERBOARD",
    "SCHEMA",
    "resumable_folds",
    "run_task",
    "summary_markdown",
    "write_result",
]

SCHEMA = "matforge.matbench/1"

#: the composition-only tasks benchmarked by default (smallest first)
DEFAULT_TASKS: tuple[str, ...] = (
    "matbench_steels",
    "matbench_expt_gap",
    "matbench_expt_is_metal",
    "matbench_glass",
    "matbench_log_kvrh",
    "matbench_log_gvrh",
)

#: Published Matbench v0.1 figures (mean over the 5 folds) of composition-only models:
#: (model, value); the last entry of each list is the best composition-only entry.
LEADERBOARD: dict[str, dict[str, Any]] = {
    "matbench_expt_gap": {
        "metric": "mae",
        "entries": [("CrabNet", 0.346), ("MODNet", 0.333), ("Darwin", 0.287)],
    },
    "matbench_steels": {
        "metric": "mae",
        "entries": [("Automatminer", 97.5), ("MODNet", 87.8), ("TPOT-Mat", 79.95)],
    },
    "matbench_log_kvrh": {"metric": "mae", "entries": [("CrabNet", 0.0758)]},
    "matbench_log_gvrh": {"metric": "mae", "entries": [("Finder-comp", 0.0996)]},
    "matbench_glass": {
        "metric": "roc_auc",
        "entries": [("Automatminer", 0.861), ("MODNet", 0.960)],
    },
    "matbench_expt_is_metal": {
        "metric": "roc_auc",
        "entries": [("Automatminer", 0.921), ("Darwin", 0.960)],
    },
    "matbench_mp_e_form": {"metric": "mae", "entries": [("CrabNet", 0.0862)]},
    "matbench_mp_gap": {"metric": "mae", "entries": [("CrabNet", 0.2655)]},
}

#: matforge's goals (mean over the 5 folds): (metric, "<=" or ">=", value)
GOALS: dict[str, tuple[str, str, float]] = {
    "matbench_expt_gap": ("mae", "<=", 0.35),
    "matbench_steels": ("mae", "<=", 95.0),
    "matbench_log_kvrh": ("mae", "<=", 0.080),
    "matbench_log_gvrh": ("mae", "<=", 0.105),
    "matbench_glass": ("roc_auc", ">=", 0.90),
    "matbench_expt_is_metal": ("roc_auc", ">=", 0.92),
}
#: every regression task: the 95% intervals must cover between 90% and 98% of test rows
COVERAGE_95_RANGE = (0.90, 0.98)

FoldCallback = Callable[[str, int, dict[str, Any]], None]


def run_task(
    task: str,
    model: str = "auto",
    folds: Sequence[int] | None = None,
    *,
    featurizer: Sequence[str] | None = None,
    random_state: int = 0,
    n_jobs: int | None = None,
    on_fold_start: FoldCallback | None = None,
    on_fold_end: FoldCallback | None = None,
    on_partial: Callable[[dict[str, Any]], None] | None = None,
    done: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Run the Matbench protocol for ``task`` with the named model spec; JSON-ready result.

    ``folds`` (default all five, 0-based) picks official folds; ``featurizer`` overrides the
    spec's feature set. ``on_fold_start(task, k, {})`` / ``on_fold_end(task, k, metrics)`` are
    called around each fold (progress bars). Model seeds are ``random_state + k``.

    ``on_partial(result)`` receives the result of the folds finished so far after every fold
    (to write it, so that an interrupted run keeps them); ``done`` are per-fold rows of an
    earlier run with the same model and seed (:func:`resumable_folds`): those folds are not
    refitted.
    """
    from matforge.datasets import dataset_info, load_dataset, matbench_folds
    from matforge.models.calibration import calibration_report
    from matforge.models.pipeline import classification_metrics, regression_metrics
    from matforge.models.presets import make_model

    info = dataset_info(task)
    if info.matbench is None:
        raise MatforgeError(f"{task!r} is not a Matbench task")
    if info.input != "composition":
        raise MatforgeError(f"{task!r} needs structures; only composition tasks are supported")
    df = load_dataset(task)
    formulas = df["formula"].astype(str).tolist()
    y_all = df[info.target].to_numpy()
    splits = matbench_folds(task)
    folds = list(range(len(splits))) if folds is None else [int(k) for k in folds]
    bad = [k for k in folds if not 0 <= k < len(splits)]
    if bad:
        raise MatforgeError(f"fold {bad[0]} does not exist; {task} has folds 0-{len(splits) - 1}")
    is_clf = info.task == "classification"
    earlier = {int(r["fold"]): dict(r) for r in done}

    def build(k: int):
        return make_model(
            model,
            info.task,
            y=None if is_clf else y_all[splits[k][0]],
            featurizer=featurizer,
            random_state=random_state + k,
            n_jobs=n_jobs,
            target=info.target,
            unit=info.unit,
        )

    if earlier:  # a recipe whose meaning changed since (same name) must not mix with its past
        old = dict(done[0].get("_spec") or {})
        probe = build(min(earlier)).estimator
        now = f"{type(probe).__module__}.{type(probe).__name__}"
        if old.get("model_class") and old["model_class"] != now:
            raise MatforgeError(
                f"{task}: the earlier folds were fitted with {old['model_class']}, but "
                f"{model!r} now builds {now}; run without --resume (or with another --out)"
            )
    per_fold: list[dict[str, Any]] = []
    spec: dict[str, Any] = {}
    for k in folds:
        if k in earlier:
            per_fold.append(earlier[k])
            continue
        if on_fold_start:
            on_fold_start(task, k, {})
        train, test = splits[k]
        y_train = y_all[train]
        m = build(k)
        check = getattr(m.estimator, "check_leakage", None)
        if check is not None:  # a pretrained model: no test composition in its pretraining
            check([formulas[i] for i in test])
        t0, c0 = time.perf_counter(), time.process_time()
        m.fit([formulas[i] for i in train], y_train)
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        mean, std, errors = m.predict(
            [formulas[i] for i in test], return_std=True, return_errors=True
        )
        predict_s = time.perf_counter() - t0
        if np.isnan(mean).any():
            raise MatforgeError(
                f"{task} fold {k}: {int(np.isnan(mean).sum())} test rows "
                f"could not be predicted: {errors[:3]}"
            )
        row: dict[str, Any] = {
            "fold": k,
            "n_train": int(len(train)),
            "n_test": int(len(test)),
            "n_train_unique": m.n_train_,
        }
        if is_clf:
            positive = m.classes_[1]
            row.update(classification_metrics(y_all[test] == positive, mean, m.threshold_))
        else:
            y_test = y_all[test].astype(float)
            row.update(regression_metrics(y_test, mean))
            rep = calibration_report(y_test, mean, std)
            row.update(
                {
                    key: rep[key]
                    for key in (
                        "coverage_68",
                        "coverage_95",
                        "miscalibration_area",
                        "spearman_error_std",
                        "nll",
                    )
                }
            )
        row.update(
            {
                f"cv_{key}": v
                for key, v in m.cv_metrics_.items()
                if key in ("mae", "roc_auc", "roc_auc_proba", "coverage_95")
            }
        )
        # wall and CPU seconds: on a shared machine the wall time depends on the neighbours
        row.update({"fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "predict_seconds": predict_s})
        row.update(_model_choices(m))
        per_fold.append(to_jsonable(row))
        spec = {
            "model_class": f"{type(m.estimator).__module__}.{type(m.estimator).__name__}",
            "target_transform": m.target_transform,
            "feature_set": list(m.featurizer),
            "n_features": len(m.feature_labels_),
        }
        if on_fold_end:
            on_fold_end(task, k, per_fold[-1])
        if on_partial and len(per_fold) < len(folds):
            on_partial(
                _assemble(task, info, model, spec, per_fold, len(splits), is_clf, random_state)
            )
    if not spec:
        spec = dict(done[0].get("_spec") or {}) if done else {}
    return _assemble(task, info, model, spec, per_fold, len(splits), is_clf, random_state)


def resumable_folds(path: str | os.PathLike, model: str, random_state: int) -> list[dict]:
    """Per-fold rows of an earlier result file for the same model and seed (else ``[]``).

    Each row carries the earlier run's model description and date under ``"_spec"`` so a
    resumed run that fits no new fold can still describe the model, and keeps the date its
    results were written (rather than the date of the resume).
    """
    p = Path(path)
    if not p.is_file():
        return []
    try:
        r = json.loads(p.read_text("utf-8"))
    except ValueError:
        return []
    if (
        r.get("schema") != SCHEMA
        or r.get("model") != model
        or r.get("random_state") != random_state
        or r.get("matforge_version") != __version__
    ):
        return []
    keys = ("model_class", "target_transform", "feature_set", "n_features", "date")
    spec = {k: r.get(k) for k in keys}
    return [{**row, "_spec": spec} for row in r.get("folds", [])]


def _assemble(task, info, model, spec, per_fold, n_splits, is_clf, random_state) -> dict:
    """The JSON-ready result of the folds in ``per_fold``."""
    per_fold = [{k: v for k, v in r.items() if k != "_spec"} for r in per_fold]
    folds = [r["fold"] for r in per_fold]
    metric = "roc_auc" if is_clf else "mae"
    keys = [
        key
        for key in per_fold[0]
        if key not in ("fold",)
        and isinstance(per_fold[0][key], int | float)
        and not isinstance(per_fold[0][key], bool)
    ]
    mean_row = {key: _mean([r.get(key) for r in per_fold]) for key in keys}
    std_row = {key: _std([r.get(key) for r in per_fold]) for key in keys}
    result = {
        "schema": SCHEMA,
        "task": task,
        "task_type": info.task,
        "target": info.target,
        "unit": info.unit,
        "metric": metric,
        "model": model,
        **spec,
        "folds_run": folds,
        "complete": sorted(folds) == list(range(n_splits)),
        "folds": per_fold,
        "mean": mean_row,
        "std": std_row,
        "fit_seconds_total": float(sum(r["fit_seconds"] for r in per_fold)),
        "fit_cpu_seconds_total": float(sum(r["fit_cpu_seconds"] for r in per_fold)),
        "predict_seconds_total": float(sum(r["predict_seconds"] for r in per_fold)),
        "goal": _goal(task, mean_row, is_clf),
        "leaderboard": [
            {"model": n, metric: v} for n, v in LEADERBOARD.get(task, {}).get("entries", [])
        ],
        "matforge_version": __version__,
        "date": spec.get("date") or datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "random_state": random_state,
    }
    return result


def write_result(result: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write ``<out_dir>/<task>.json`` and refresh ``<out_dir>/table.md`` (all results in the
    folder); returns the JSON path. The JSON is written to a temporary file and renamed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result['task']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    tmp.replace(path)
    results = []
    for p in sorted(out.glob("*.json")):
        try:
            r = json.loads(p.read_text("utf-8"))
        except ValueError:
            continue
        if r.get("schema") == SCHEMA:
            results.append(r)
    (out / "table.md").write_text(summary_markdown(results), "utf-8")
    return path


def summary_markdown(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of results beside the published composition-only figures."""
    order = {t: i for i, t in enumerate(DEFAULT_TASKS)}
    rows = sorted(results, key=lambda r: (order.get(r["task"], 99), r["task"]))
    lines = [
        "# Matbench v0.1 (composition-only) — matforge results",
        "",
        "Mean ± std over the official folds run; MAE in the target's unit. Classification: "
        "ROC-AUC as Matbench scores it, on boolean predictions (= balanced accuracy); the "
        "ROC-AUC of the probabilities is in brackets. Published figures: Matbench v0.1 "
        "leaderboard, composition-only models (last one listed = best).",
        "",
        "| task | metric | matforge | model | folds | 95% cov. | 68% cov. | miscal. area "
        "| Spearman | goal | published | fit s (wall / CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        metric, mean, std = r["metric"], r["mean"], r["std"]
        ours = f"{_fmt(mean.get(metric))} ± {_fmt(std.get(metric))}"
        if metric == "roc_auc" and mean.get("roc_auc_proba") is not None:
            ours += f" (probabilities: {_fmt(mean['roc_auc_proba'])})"
        unit = f" {r['unit']}" if metric == "mae" and r.get("unit") else ""
        cal = ["—"] * 4
        if r["task_type"] == "regression":
            cal = [
                _fmt(mean.get(k), 3)
                for k in ("coverage_95", "coverage_68", "miscalibration_area", "spearman_error_std")
            ]
        goal = r.get("goal") or {}
        goal_txt = (
            f"{goal['op']} {goal['value']}: {'met' if goal['met'] else 'missed'}" if goal else "—"
        )
        published = ", ".join(f"{e['model']} {e[metric]}" for e in r.get("leaderboard", []))
        folds = ",".join(str(k) for k in r["folds_run"])
        lines.append(
            f"| {r['task']} | {metric}{unit} | {ours} | {r['model']} | {folds} | {cal[0]} "
            f"| {cal[1]} | {cal[2]} | {cal[3]} | {goal_txt} | {published or '—'} "
            f"| {r['fit_seconds_total']:.0f} / {r.get('fit_cpu_seconds_total', 0):.0f} |"
        )
    dates = sorted(r["date"] for r in rows)
    if dates:
        lines += [
            "",
            f"matforge {rows[0]['matforge_version']}; results last written "
            + (dates[0] if dates[0] == dates[-1] else f"between {dates[0]} and {dates[-1]}")
            + f" (each task's file, after its latest fold); {rows[0]['machine']['cpus']} CPUs.",
        ]
    return "\n".join(lines) + "\n"


# -- helpers --------------------------------------------------------------------------------
def _model_choices(m) -> dict[str, Any]:
    """Data-driven choices the model made on its training fold (for the record)."""
    est = m.estimator_
    out: dict[str, Any] = {"std_scale": float(m.std_scale_)}
    if hasattr(m, "threshold_"):
        out["decision_threshold"] = float(m.threshold_)
    if hasattr(est, "threshold_"):
        out["gate_threshold"] = float(est.threshold_)
    if hasattr(est, "weights_"):
        names = [entry[0] for entry in (getattr(est, "estimators", None) or est.regressors)]
        out["blend_weights"] = {n: float(w) for n, w in zip(names, est.weights_, strict=True)}
    return out


def _goal(task: str, mean_row: dict[str, float], is_clf: bool) -> dict[str, Any] | None:
    goal = GOALS.get(task)
    if goal is None:
        return None
    metric, op, value = goal
    got = mean_row.get(metric, math.nan)
    met = bool(got <= value if op == "<=" else got >= value)
    out = {"metric": metric, "op": op, "value": value, "met": met}
    if not is_clf:
        cov = mean_row.get("coverage_95", math.nan)
        lo, hi = COVERAGE_95_RANGE
        out["coverage_95_range"] = [lo, hi]
        out["coverage_95_met"] = bool(lo <= cov <= hi)
        out["met"] = met and out["coverage_95_met"]
    return out


def _mean(values) -> float | None:
    vals = [v for v in values if isinstance(v, int | float) and v is not None]
    return float(np.mean(vals)) if vals else None


def _std(values) -> float | None:
    vals = [v for v in values if isinstance(v, int | float) and v is not None]
    return float(np.std(vals)) if len(vals) > 1 else (0.0 if vals else None)


def _fmt(value, digits: int | None = None) -> str:
    if value is None:
        return "—"
    if digits is not None:
        return f"{value:.{digits}f}"
    a = abs(value)
    return f"{value:.4f}" if a < 1 else f"{value:.3f}" if a < 10 else f"{value:.1f}"
