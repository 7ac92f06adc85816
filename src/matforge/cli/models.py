"""`matforge train`, `predict`, `pretrain`, `benchmark matbench` and `report model`.

Heavy libraries (pandas, scikit-learn, LightGBM, plotly) are imported inside the command
functions, so `matforge --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from matforge.cli.tables import decimal_option, read_user_table, sep_option, sheet_option

_MODEL_HELP = (
    "Model spec: auto, auto_trees, lgbm, rf, gp, transformer, transformer_pretrained or small "
    "(see matforge.models.presets)."
)
_HOME_HELP = "Registry folder (default: $MATFORGE_HOME/models or ~/.matforge/models)."

benchmark_app = typer.Typer(help="Benchmarks on bundled data.", no_args_is_help=True)
report_app = typer.Typer(help="Self-contained HTML reports (work offline).", no_args_is_help=True)


def _echo_metrics(title: str, metrics: dict, unit: str | None) -> None:
    """The metrics with their units (``unit``: the target's) as a table on stdout."""
    from rich.console import Console
    from rich.table import Table

    from matforge.models.pipeline import metric_unit

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for k, v in metrics.items():
        shown = metric_unit(k, unit)
        table.add_row(
            k,
            f"{v:.4g}" if isinstance(v, float) else str(v),
            "—" if shown == "" else (shown or ""),  # "—": dimensionless
        )
    Console().print(table)


def _fit_with_progress(est, formulas: list[str], y) -> None:
    """``est.fit(formulas, y)`` under a progress bar on stderr: one stage at a time
    (featurizing, each cross-validation fold, calibration, applicability domain)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        stage = bar.add_task("featurizing", total=1)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(stage, description=name, completed=done, total=total)

        est.fit(formulas, y, progress=progress)


def train(
    name: str = typer.Option(..., "--name", "-n", help="Name to save the model under."),
    dataset: str | None = typer.Option(None, "--dataset", help="Bundled dataset to train on."),
    csv: Path | None = typer.Option(
        None,
        "--csv",
        help="Your own table (.csv in any common dialect, .tsv, .xlsx, .parquet): a formula "
        "column and a target column.",
        exists=True,
        dir_okay=False,
    ),
    target: str | None = typer.Option(
        None, "--target", help="Target column (default: the dataset's target)."
    ),
    model: str = typer.Option("auto", "--model", "-m", help=_MODEL_HELP),
    formula_col: str = typer.Option("formula", "--formula-col", help="Column of formulas."),
    unit: str | None = typer.Option(None, "--unit", help="Unit of the target (CSV input)."),
    task: str = typer.Option(
        "auto",
        "--task",
        help="regression, classification or auto (2 distinct values = classification).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace a saved model of that name."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
    home: Path | None = typer.Option(None, "--home", help=_HOME_HELP),
) -> None:
    """Train a model on a bundled dataset or a table file, print CV metrics and save it.

    Rows whose formula cannot be parsed or whose target is missing are listed and left out.
    A progress bar on stderr follows the fit (featurizing, cross-validation folds,
    calibration, applicability domain); the metrics table gives each metric's unit (MAE and
    RMSE in the target's unit, "—" for dimensionless scores such as R² and ROC-AUC).
    """
    import numpy as np
    import pandas as pd

    from matforge.errors import MatforgeError, ModelRegistryError
    from matforge.models.presets import make_model
    from matforge.models.registry import model_dir, save_model

    if (dataset is None) == (csv is None):
        raise typer.BadParameter("give exactly one of --dataset and --csv")
    model_dir(name, home)  # validate the name before the (long) fit
    if not force and (model_dir(name, home) / "metadata.json").exists():
        raise ModelRegistryError(f"model {name!r} already exists; pass --force to replace it")
    source = dataset
    if dataset is not None:
        from matforge.datasets import dataset_info, load_dataset

        info = dataset_info(dataset)
        df = load_dataset(dataset)
        target = target or info.target
        unit = unit or (info.unit if target == info.target else None)
        if task == "auto":
            task = info.task if target == info.target else "auto"
    else:
        df = read_user_table(csv, "training table", sep, decimal, sheet, (formula_col,))
        source = str(csv)
    if formula_col not in df.columns:
        raise MatforgeError(f"{source}: no column {formula_col!r}; columns: {list(df.columns)}")
    if target is None:
        others = [
            c for c in df.columns if c != formula_col and pd.api.types.is_numeric_dtype(df[c])
        ]
        if len(others) != 1:
            raise MatforgeError(f"{source}: pass --target (numeric columns: {others})")
        target = others[0]
    if target not in df.columns:
        raise MatforgeError(f"{source}: no target column {target!r}; columns: {list(df.columns)}")
    y = df[target]
    if task == "auto":
        task = "classification" if y.dropna().nunique() == 2 else "regression"
    formulas = df[formula_col].astype(str).tolist()
    bad = _bad_rows(formulas, y, task, source, formula_col, target)
    keep = np.setdiff1d(np.arange(len(df)), [r for r, _ in bad])
    if len(keep) < 10:
        raise MatforgeError(f"{source}: only {len(keep)} usable rows; need at least 10")
    y_fit = y.to_numpy()[keep]
    if task == "regression":
        y_fit = y_fit.astype(float)
    est = make_model(
        model,
        task,
        y=y_fit if task == "regression" else None,
        random_state=seed,
        target=target,
        unit=unit,
    )
    typer.echo(
        f"training {model} ({type(est.estimator).__name__}) on {len(keep):,} rows of "
        f"{source}, target {target!r} ...",
        err=True,
    )
    _fit_with_progress(est, [formulas[i] for i in keep], y_fit)
    path = save_model(est, name, home, overwrite=force, extra={"source": source})
    _echo_metrics(
        f"cross-validated metrics ({est.n_train_:,} unique compositions)", est.cv_metrics_, unit
    )
    typer.echo(f"saved model {name!r} to {path}")


def _bad_rows(formulas, y, task, source, formula_col, target) -> list[tuple[int, str]]:
    """(row, message) for unparseable formulas and missing targets; printed, then skipped."""
    import pandas as pd

    from matforge.chem import CompositionBatch

    batch = CompositionBatch.from_formulas(formulas, errors="collect", source=source)
    bad = [(r, f"{formula_col}: {msg}") for r, msg in batch.errors]
    missing = pd.isna(y).to_numpy()
    if task == "regression":
        missing |= ~pd.to_numeric(y, errors="coerce").notna().to_numpy()
    bad += [
        (int(r), f"{target}: missing or non-numeric value {y.iloc[r]!r}")
        for r in missing.nonzero()[0]
    ]
    bad.sort()
    for r, msg in bad[:20]:
        typer.echo(f"skipped line {r + 2} of {source}: {msg}", err=True)  # +2: header, 1-based
    if len(bad) > 20:
        typer.echo(f"... and {len(bad) - 20} more skipped rows", err=True)
    return bad


def _is_csv_argument(arg: str) -> bool:
    """A predict argument names a table file (rather than being a formula)."""
    from matforge.tables import TABLE_SUFFIXES

    return arg.lower().endswith(TABLE_SUFFIXES) or Path(arg).is_file()


def predict(
    inputs: list[str] = typer.Argument(
        ...,
        metavar="CSV_OR_FORMULAS",
        help="A table file with a formula column (.csv, .tsv, .xlsx, .parquet), or formulas "
        "(Fe2O3 NiO ...).",
        show_default=False,
    ),
    model_name: str = typer.Option(..., "--model", "-m", help="Name of a saved model."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Output CSV (required for a CSV input; default for formulas: a table on stdout).",
    ),
    formula_col: str = typer.Option("formula", "--formula-col", help="Column of formulas."),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
    home: Path | None = typer.Option(None, "--home", help=_HOME_HELP),
) -> None:
    """Predict a saved model's target (mean and std) for formulas or a CSV file of them.

    For a CSV file the output has the input columns plus ``<target>_mean`` and
    ``<target>_std`` (for a classifier: probability of the positive class and its Bernoulli
    std), ``domain_distance`` and ``in_domain`` (the applicability domain) and an ``error``
    column naming why a row could not be predicted. For formulas given as arguments the
    columns are ``formula``, ``<target>_mean \\[unit]``, ``<target>_std \\[unit]`` (the
    model's unit, e.g. ``yield_strength_mean \\[MPa]``), ``domain_distance``, ``in_domain``
    and ``error``, printed as a table or written with ``-o``.

    ``domain_distance`` is the distance to the training compositions (~1: as close as they
    are to each other); a row is ``in_domain`` up to the 99th percentile of the training
    rows' own distances. Rows out of domain are counted in a warning on stderr: their
    predictions are extrapolations.
    """
    from matforge.models.registry import load_model

    model = load_model(model_name, home)  # an unknown model fails before anything heavy loads

    import pandas as pd

    from matforge.errors import MatforgeError

    csv_args = [a for a in inputs if _is_csv_argument(a)]
    if csv_args and len(inputs) > 1:
        raise typer.BadParameter(
            f"give one CSV file or formulas, not both (CSV: {', '.join(csv_args)})"
        )
    target = model.target or "target"
    if csv_args:
        input_csv = Path(csv_args[0])
        if not input_csv.is_file():
            raise typer.BadParameter(f"file {str(input_csv)!r} does not exist")
        if output is None:
            raise typer.BadParameter("a CSV input needs -o/--output for the predictions")
        df = read_user_table(input_csv, "input table", sep, decimal, sheet, (formula_col,))
        if formula_col not in df.columns:
            raise MatforgeError(
                f"{input_csv}: no column {formula_col!r}; columns: {list(df.columns)}"
            )
        mean_col, std_col = f"{target}_mean", f"{target}_std"
        where = [f"line {row + 2} of {input_csv}" for row in range(len(df))]
    else:
        df = pd.DataFrame({"formula": inputs})
        formula_col = "formula"
        unit = f" [{model.unit}]" if model.unit else ""
        mean_col, std_col = f"{target}_mean{unit}", f"{target}_std{unit}"
        where = [f"argument {i + 1}" for i in range(len(df))]
    formulas = df[formula_col].astype(str).where(df[formula_col].notna(), "").tolist()
    pred, errors = model.predict_frame(formulas, return_errors=True)
    out = df.copy()
    out[mean_col] = pred["mean"].to_numpy()
    out[std_col] = pred["std"].to_numpy()
    out["domain_distance"] = pred["domain_distance"].to_numpy()
    out["in_domain"] = pred["in_domain"].array
    for row, msg in errors:
        typer.echo(f"{where[row]}: {msg}", err=True)
    out["error"] = pred["error"].to_numpy()
    n_bad = len(errors)
    n_out = int((~pred["in_domain"]).sum())  # NA (no prediction) is not counted
    if n_out:
        threshold = model.applicability_domain().threshold_
        typer.echo(
            f"warning: {n_out} of {len(df) - n_bad} predicted rows are outside the model's "
            f"applicability domain (domain_distance > {threshold:.3g}, farther from the "
            "training compositions than 99% of them are from the rest): predictions there "
            "are extrapolations; treat mean ± std with caution",
            err=True,
        )
    if output is None:
        from matforge.cli.tables import print_frame

        if not n_bad:
            out = out.drop(columns="error")
        title = f"{model_name}: {target}" + (f" ({model.unit})" if model.unit else "")
        shown = out.astype(object).where(out.notna(), "")  # no prediction: an empty cell
        print_frame(shown, title, max_rows=len(shown), right=(mean_col, std_col, "domain_distance"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output, index=False)
    typer.echo(
        f"wrote {len(df) - n_bad:,} predictions to {output}"
        + (f" ({n_bad} rows could not be predicted; see the error column)" if n_bad else "")
    )


@benchmark_app.command("matbench")
def benchmark_matbench(
    task: list[str] = typer.Option(
        [],
        "--task",
        "-t",
        help="Matbench task (repeatable; default: the six composition tasks "
        "steels, expt_gap, expt_is_metal, glass, log_kvrh, log_gvrh).",
    ),
    model: str = typer.Option("auto", "--model", "-m", help=_MODEL_HELP),
    folds: str | None = typer.Option(None, "--folds", help="Comma-separated folds, e.g. 0,1."),
    out: Path = typer.Option(Path("results/matbench"), "--out", help="Results folder."),
    seed: int = typer.Option(0, "--seed", help="Random seed (fold k uses seed + k)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Threads for fold models."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Keep the folds an earlier, interrupted run of the same model and seed wrote "
        "to <out>/<task>.json (same matforge version) and fit only the missing ones.",
    ),
) -> None:
    """Run the Matbench v0.1 protocol on the official folds; write JSON and table.md.

    Each task's JSON (and table.md) is rewritten after every fold, so an interrupted run
    keeps the folds it finished (--resume continues from them).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from matforge.models.matbench import DEFAULT_TASKS, resumable_folds, run_task, write_result

    tasks = [t if t.startswith("matbench_") else f"matbench_{t}" for t in task] or list(
        DEFAULT_TASKS
    )
    fold_list = None
    if folds:
        try:
            fold_list = [int(f) for f in folds.split(",") if f.strip()]
        except ValueError:
            raise typer.BadParameter(
                f"expected comma-separated integers, got {folds!r}", param_hint="--folds"
            ) from None
    n_folds = len(fold_list) if fold_list else 5
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        for t in tasks:
            bar_id = bar.add_task(f"{t} ({model})", total=n_folds)

            def start(task_name, k, _row, bar_id=bar_id):
                bar.update(bar_id, description=f"{task_name} fold {k}")

            def end(task_name, k, row, bar_id=bar_id):
                metric = "roc_auc" if "roc_auc" in row else "mae"
                bar.console.print(
                    f"{task_name} fold {k}: {metric} {row[metric]:.4g}"
                    f"  ({row['fit_seconds']:.0f} s)"
                )
                bar.advance(bar_id)

            done = resumable_folds(out / f"{t}.json", model, seed) if resume else []
            if done:
                bar.console.print(
                    f"{t}: resuming; folds {sorted(r['fold'] for r in done)} already done"
                )
            result = run_task(
                t,
                model,
                fold_list,
                random_state=seed,
                n_jobs=jobs,
                on_fold_start=start,
                on_fold_end=end,
                on_partial=lambda partial: write_result(partial, out),
                done=done,
            )
            path = write_result(result, out)
            metric = result["metric"]
            goal = result["goal"]
            verdict = "" if goal is None else ("  goal met" if goal["met"] else "  goal MISSED")
            bar.console.print(
                f"[bold]{t}[/bold]: {metric} {result['mean'][metric]:.4g} "
                f"± {result['std'][metric]:.2g}{verdict} → {path}"
            )
    typer.echo(f"table: {out / 'table.md'}")


@report_app.command("model")
def report_model(
    name: str = typer.Argument(..., help="Name of a saved model."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file (default: <name>-report.html)."
    ),
    home: Path | None = typer.Option(None, "--home", help=_HOME_HELP),
) -> None:
    """Parity plot, residual histogram and calibration curve of a saved model (offline HTML)."""
    from matforge.models.registry import load_model
    from matforge.report.model import write_model_report

    model = load_model(name, home)
    path = write_model_report(model, output or Path(f"{name}-report.html"), name)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``predict``, ``benchmark matbench`` and ``report model`` to ``app``."""
    app.command("train")(train)
    app.command("predict")(predict)
    app.command("pretrain")(pretrain_command)
    app.add_typer(benchmark_app, name="benchmark")
    app.add_typer(report_app, name="report")


def pretrain_command(
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the encoder (.pt)."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Passes over the pretraining data."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the initialisation and the "
                             "batch order (the same seed gives the same file on a CPU)."),
    max_rows: int | None = typer.Option(None, "--max-rows", min=100,
                                        help="Pretrain on a random subset (quick runs)."),
    exclude: str = typer.Option("matbench", "--exclude", help="Datasets whose compositions "
                                "are left out: 'matbench' (the eight Matbench composition "
                                "tasks, all folds), 'none', or comma-separated dataset names."),
    exclude_csv: Path | None = typer.Option(None, "--exclude-csv", exists=True, dir_okay=False,
                                            help="Also leave out the compositions of this CSV's "
                                            "'formula' column (your own test set)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch CPU threads."),
) -> None:
    """Pretrain the composition attention network on OQMD (formation enthalpy, volume per
    atom, band gap; multi-task) for fine-tuning with
    ``CompositionTransformer(pretrained=FILE)``.

    Compositions of the datasets in --exclude (and --exclude-csv) are never seen, so a model
    fine-tuned from the file can be judged on them; the file records the compositions it saw
    and ``check_leakage`` refuses a test set that shares one.

    Example (a few minutes on 2 cores)::

        matforge pretrain -o encoder.pt --max-rows 20000 --epochs 2
    """
    from matforge.models.pretrain import EXCLUDE, pretrain

    if exclude == "matbench":
        names = list(EXCLUDE)
    elif exclude == "none":
        names = []
    else:
        names = [n.strip() for n in exclude.split(",") if n.strip()]
    extra = []
    if exclude_csv is not None:
        df = read_user_table(exclude_csv, "table")
        if "formula" not in df.columns:
            raise typer.BadParameter(f"{exclude_csv} has no 'formula' column",
                                     param_hint="--exclude-csv")  # fmt: skip
        extra = df["formula"].dropna().astype(str).tolist()
    summary = pretrain(out, exclude=names, exclude_formulas=extra, max_rows=max_rows,
                       epochs=epochs, seed=seed, n_threads=threads,
                       progress=lambda msg: typer.echo(msg, err=True))  # fmt: skip
    last = summary["validation_mae"][-1]
    typer.echo(f"wrote {out} ({summary['bytes'] / 1e6:.1f} MB, {summary['rows']:,} compositions, "
               f"{summary['seconds']:.0f} s); validation MAE "
               + ", ".join(f"{t} {v:.4g}" for t, v in last.items()))
