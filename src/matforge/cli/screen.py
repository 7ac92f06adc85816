"""`matforge screen run|query`, `matforge map`, and the `demo superhard` command body.

Only Typer is imported at module level; numpy, pandas, LightGBM, Dask and plotly load inside
the command bodies, so `matforge --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="High-throughput screening of candidate compositions (see docs/screening.md).",
    no_args_is_help=True,
)

_SPACE_HELP = (
    "Candidate space: a bundled dataset name (elasticity_pool), a CSV/Parquet file with a "
    "formula column, 'store:URL' (the materials of a store), 'enumerate' (with --elements, "
    "--max-atoms, --arities) or 'substitute:DATASET_OR_FILE' (one element swapped for a similar "
    "one)."
)


def register(app_: typer.Typer) -> None:
    """Add the `screen` group and the `map` command to the root Typer app."""
    app_.add_typer(app, name="screen")
    app_.command("map")(map_command)


def _executor(dask: str | None, processes: int) -> str:
    if dask:
        return dask if dask.startswith("dask:") else f"dask:{dask}"
    return f"processes:{processes}" if processes > 1 else "serial"


def _space(spec: str, column: str, elements: str | None, max_atoms: int, arities: str,
           balance: str | None, exclude: str | None, unique: bool):  # fmt: skip
    from matforge.errors import SpaceSpecError
    from matforge.screen.space_spec import space_from_spec

    try:
        return space_from_spec(spec, column=column, elements=elements, max_atoms=max_atoms,
                               arities=arities, balance=balance, exclude=exclude, unique=unique)  # fmt: skip
    except SpaceSpecError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None


def _models(items: list[str], preset: str | None, console):
    """NAME=REGISTRY_MODEL pairs, or the superhard preset (trained now)."""
    from matforge.screen.streaming import PropertyModel

    if preset:
        if preset not in ("superhard", "superhard-fast"):
            raise typer.BadParameter("presets: superhard, superhard-fast", param_hint="--preset")
        from matforge.screen.superhard import SuperhardSettings, train_superhard

        s = SuperhardSettings.fast_settings() if preset.endswith("fast") else SuperhardSettings()
        trained = train_superhard(s, status=console.status)
        return trained.models, trained.featurizer
    if not items:
        raise typer.BadParameter("give --model NAME=REGISTRY_MODEL (repeatable) or --preset")
    from matforge.models.registry import load_model

    models = {}
    for item in items:
        name, sep, ref = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected NAME=REGISTRY_MODEL, got {item!r}", param_hint="--model")
        models[name] = PropertyModel.from_composition_model(load_model(ref))
    return models, None


# Written to OUT when a screen starts: its options, so that `screen run OUT --resume` can
# continue a killed screen from the folder alone.
COMMAND_FILE = "command.json"
# Options that never come from COMMAND_FILE: the folder is where it is now.
_NOT_SAVED = ("space", "out", "resume")


def _save_options(out: Path, opts: dict) -> None:
    import json

    from matforge.screen.space_spec import absolute_spec

    saved = {k: str(v) if isinstance(v, Path) else v for k, v in opts.items() if k != "resume"}
    saved["space"], saved["exclude"] = absolute_spec(saved["space"]), absolute_spec(saved["exclude"])
    out.mkdir(parents=True, exist_ok=True)
    (out / COMMAND_FILE).write_text(json.dumps(saved, indent=1) + "\n")


def _resume_options(ctx: typer.Context, folder: Path) -> dict:
    """The options of the screen saved in ``folder``; options given on the command line win
    (the checkpoint still refuses a different configuration)."""
    import json

    def given(name: str) -> bool:  # by name: Typer may carry its own copy of click's enum
        return ctx.get_parameter_source(name).name != "DEFAULT"

    if not ctx.params["resume"]:
        raise typer.BadParameter(f"{str(folder)!r} is a folder: add --resume to continue the "
                                 "screen written there", param_hint="SPACE")  # fmt: skip
    f = folder / COMMAND_FILE
    if not f.exists():
        raise typer.BadParameter(f"{f} not found: {str(folder)!r} is not the output folder of a "
                                 "screen (or one written before its options were saved; give "
                                 "the space and options again, with --out)", param_hint="SPACE")  # fmt: skip
    saved = json.loads(f.read_text())
    opts = dict(ctx.params)
    for name, value in saved.items():
        if name in opts and name not in _NOT_SAVED and not given(name):
            opts[name] = value
    opts["space"] = saved["space"]
    if not given("out"):
        opts["out"] = folder
    return opts


@app.command("run")
def run_command(
    ctx: typer.Context,
    space: str = typer.Argument(..., help=_SPACE_HELP + " To continue a killed screen: its "
                                "output folder, with --resume (its saved options are used)."),
    model: list[str] = typer.Option([], "--model", "-m", metavar="NAME=REGISTRY_MODEL",
                                    help="A property name and a model saved in the registry."),
    preset: str = typer.Option(None, help="Train built-in models instead: superhard, superhard-fast."),
    derive: list[str] = typer.Option([], "--derive", "-d", help="Derived property (repeatable): "
                                     "hardness_vickers, hardness_tian, pugh_ratio, poisson_ratio."),
    where: str = typer.Option(None, "--where", "-w", help='Filter, e.g. "hardness_vickers > 40".'),
    rank_by: str = typer.Option(None, "--rank-by", "-r", help="col, -col, ucb:col[:k], lcb:col, "
                                "probability, novelty:col[:w], pareto:a,-b."),
    top_k: int = typer.Option(100, "--top-k", "-k"),
    out: Path = typer.Option(Path("results/screen"), "--out", "-o", help="Output folder."),
    save_all: bool = typer.Option(False, "--save-all", help="Write every candidate to results.parquet."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/.checkpoint."),
    dask: str = typer.Option(None, "--dask", help="local:N (LocalCluster) or tcp://host:port."),
    processes: int = typer.Option(1, "--processes", "-j", help="Local worker processes."),
    chunk_size: int = typer.Option(20_000, "--chunk-size"),
    funnel: float = typer.Option(None, "--funnel", help="Fraction kept by a cheap-model pre-screen."),
    column: str = typer.Option("formula", "--column", help="Formula column of a file/dataset."),
    elements: str = typer.Option(None, "--elements", help="enumerate: comma-separated symbols."),
    max_atoms: int = typer.Option(8, "--max-atoms", help="enumerate: atoms per formula unit."),
    arities: str = typer.Option("2,3", "--arities", help="enumerate: numbers of elements."),
    balance: str = typer.Option(None, "--balance", help="enumerate: 'charge' or 'en' balance."),
    exclude: str = typer.Option(None, "--exclude", help="Dataset/file of known compositions to skip."),
    exclude_elements: str = typer.Option(
        "radioactive,noble-gases", "--exclude-elements",
        help="Leave out compositions with any of these elements: symbols and the groups "
        "radioactive (Tc, Pm, Po-Lr) and noble-gases, comma-separated; 'none' keeps all."),
    unique: bool = typer.Option(True, "--unique/--keep-duplicates", help="One row per composition."),
    seed: int = typer.Option(0, "--seed", help="Monte Carlo seed."),
) -> None:  # fmt: skip
    """Screen a candidate space: featurize, predict (mean and std), derive, filter, rank.

    Registry models (--model) add ``domain_distance`` and ``in_domain`` (inside every model's
    applicability domain) to the results; the summary counts the candidates outside it.
    """
    from rich.console import Console

    from matforge.screen.streaming import Funnel, Screen

    if Path(space).is_dir():
        opts = _resume_options(ctx, Path(space))
    else:
        opts = dict(ctx.params)
    (space, model, preset, derive, where, rank_by, top_k, out, save_all, dask, processes,
     chunk_size, funnel, column, elements, max_atoms, arities, balance, exclude, unique, seed,
     exclude_elements) = (
        opts[k] for k in ("space", "model", "preset", "derive", "where", "rank_by", "top_k", "out",
                          "save_all", "dask", "processes", "chunk_size", "funnel", "column",
                          "elements", "max_atoms", "arities", "balance", "exclude", "unique",
                          "seed", "exclude_elements"))  # fmt: skip
    out = Path(out)
    console = Console()
    from matforge.chem import describe_elements, element_set

    left_out = element_set(exclude_elements)  # an unknown symbol fails before any work
    sp = _space(space, column, elements, max_atoms, arities, balance, exclude, unique)
    sp = sp.without_elements(left_out)
    models, fz = _models(model, preset, console)
    screen = Screen(
        sp, models, featurizer=fz, derive=derive, where=where, rank_by=rank_by, top_k=top_k,
        funnel=Funnel(keep=funnel) if funnel else None, seed=seed, chunk_size=chunk_size,
    )  # fmt: skip
    console.print(f"screening {sp.name}: {len(sp):,} positions")
    console.print(f"leaving out compositions with {describe_elements(left_out)} "
                  "(--exclude-elements)", highlight=False)  # fmt: skip
    if not (resume and (out / COMMAND_FILE).exists()):
        _save_options(out, opts)
    result = screen.run(executor=_executor(dask, processes), out=out, save_all=save_all,
                        resume=resume, progress=True)  # fmt: skip
    _print_top(console, result.top, 20)
    _print_summary(console, result.summary)


def _print_top(console, top, n: int) -> None:
    import pandas as pd

    from matforge.cli.tables import print_frame

    skip = {"index", "score"}
    cols = [c for c in top.columns if c not in skip and not c.endswith("_std")][:10]
    shown = pd.DataFrame(index=top.index[:n])
    numeric = []
    for c in cols:
        v = top[c].head(n)
        std = top[f"{c}_std"].head(n) if f"{c}_std" in top.columns else None
        if pd.api.types.is_float_dtype(v) and std is not None:
            shown[c] = [f"{m:.3g} ± {s:.2g}" if s == s else f"{m:.3g}" for m, s in zip(v, std, strict=True)]
            numeric.append(c)
        else:
            shown[c] = v
    print_frame(shown.reset_index(drop=True), f"top {min(n, len(top))}", max_rows=n,
                right=numeric, keep=[c for c in ("formula",) if c in cols])  # fmt: skip


def _print_summary(console, s: dict) -> None:
    funnel = s.get("funnel")
    console.print(
        f"[bold]{s['positions']:,}[/bold] positions, {s['candidates']:,} candidates "
        f"(filtered: {s['filtered'] or 'none'}), {s['rejected']:,} rejected, "
        f"{s['evaluated_full']:,} evaluated by the full models"
        + (f" (funnel on {funnel['column']} >= {funnel['threshold']:.3g})" if funnel else "")
        + f", {s['passed']:,} passed the filter; {s['seconds']:.1f} s "
        f"({s['candidates_per_s']:,.0f} candidates/s)"
    )
    if s.get("out_of_domain") is not None:
        n_out, n_top = s["out_of_domain"], s["out_of_domain_top"]
        console.print(
            f"{n_out:,} of {s['evaluated_full']:,} evaluated candidates ({n_top} of the "
            f"{s['kept']:,} kept) are outside the models' applicability domain (in_domain = "
            "False): their predictions are extrapolations"
            if n_out
            else "every evaluated candidate is inside the models' applicability domain"
        )
    if s.get("rejects_file"):
        console.print(f"rejects: {s['rejects_file']}")


@app.command("query")
def query_command(
    results: Path = typer.Argument(..., help="results.parquet (or a folder/glob of parts)."),
    sql: str = typer.Argument(..., help="SQL over the view 'results', e.g. "
                              "\"SELECT formula, hardness_vickers FROM results ORDER BY 2 DESC LIMIT 10\""),
    limit: int = typer.Option(50, help="Rows printed (use LIMIT in the SQL for more control)."),
    csv: Path = typer.Option(None, "--csv", help="Write the whole answer to this CSV instead."),
) -> None:  # fmt: skip
    """Query screening results with DuckDB (the file is scanned, not loaded)."""
    import duckdb

    src = str(results / "*.parquet") if results.is_dir() else str(results)
    if not results.is_dir() and not results.exists() and "*" not in src:
        raise typer.BadParameter(f"{results} does not exist", param_hint="RESULTS")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW results AS SELECT * FROM read_parquet('{src.replace(chr(39), '')}')")
    try:
        rel = con.sql(sql)
    except duckdb.Error as exc:
        from matforge.errors import ScreenError

        raise ScreenError(f"query failed: {exc}") from None
    if rel is None:
        return
    if csv:
        rel.df().to_csv(csv, index=False)
        typer.echo(f"wrote {csv}")
        return
    from matforge.cli.tables import print_frame

    df = rel.limit(limit).df()
    print_frame(df, "", max_rows=limit, keep=[c for c in ("formula",) if c in df.columns])


def map_command(
    source: str = typer.Argument(..., help="A bundled dataset (the map's training data) or a "
                                 "results file (CSV/Parquet with a formula column: candidates)."),
    output: Path = typer.Option(Path("map.html"), "--output", "-o", help="HTML file to write."),
    train: str = typer.Option("elasticity", "--train", help="Training dataset when SOURCE is a "
                              "results file."),
    color: str = typer.Option("cluster", "--color", help="'cluster' or a numeric column of the "
                              "training dataset (e.g. bulk_modulus)."),
    top: int = typer.Option(50, "--top", help="Candidates overlaid from a results file."),
    embedding: str = typer.Option("pca", "--embedding", help="pca or umap (needs umap-learn)."),
) -> None:  # fmt: skip
    """Materials map (2-D embedding, HDBSCAN clusters) of a dataset, with candidates overlaid."""
    import pandas as pd

    from matforge.datasets import dataset_info, list_datasets, load_dataset
    from matforge.report.map import build_map, map_figure, write_map_html

    names = {d.name for d in list_datasets()}
    cands = None
    if source in names:
        train_name = source
    else:
        path = Path(source)
        if not path.exists():
            raise typer.BadParameter(f"{source!r}: not a bundled dataset or an existing file")
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        if "formula" not in df.columns:
            raise typer.BadParameter(f"{path} has no 'formula' column")
        if "rank" in df.columns:
            df = df.sort_values("rank")
        cands = df["formula"].astype(str).head(top).tolist()
        train_name = train
    tdf = load_dataset(train_name)
    target = dataset_info(train_name).target
    value_col = color if color != "cluster" else target
    values = tdf[value_col] if value_col in tdf.columns else None
    if color != "cluster" and values is None:
        raise typer.BadParameter(f"dataset {train_name} has no column {color!r}", param_hint="--color")
    tmap, cmap, domain = build_map(tdf["formula"].astype(str), values, cands,
                                   value_name=value_col or "value", embedding=embedding)  # fmt: skip
    fig = map_figure(tmap, cmap, color=color,
                     title=f"Materials map of {train_name} ({domain.n_clusters_} clusters)")  # fmt: skip
    write_map_html(fig, output, title=f"matforge materials map: {train_name}",
                   note=f"{len(tmap):,} training compounds"
                   + (f", {len(cmap):,} candidates from {source}" if cmap is not None else ""))  # fmt: skip
    typer.echo(f"wrote {output}")


def superhard_command(
    fast: bool = typer.Option(False, "--fast", help="Small models and a pool sample (< 60 s)."),
    out: Path = typer.Option(Path("results/superhard"), "--out", "-o", help="Output folder."),
    dask: str = typer.Option(None, "--dask", help="Screen on Dask: local:N or tcp://host:port."),
    processes: int = typer.Option(1, "--processes", "-j", help="Local worker processes."),
) -> None:
    """Search for superhard materials: train B and G models on bundled Materials Project data,
    screen the elasticity_pool candidates, rank by predicted Vickers hardness, validate on
    held-out hard compounds, write candidates.parquet, top.csv and report.html."""
    import time

    from rich.console import Console

    from matforge.report.superhard import write_superhard_report
    from matforge.screen.superhard import SuperhardSettings, run_superhard

    console = Console()
    t0 = time.perf_counter()
    settings = SuperhardSettings.fast_settings() if fast else SuperhardSettings()
    result = run_superhard(out, settings=settings, executor=_executor(dask, processes),
                           progress=console.is_terminal, log=console.print)  # fmt: skip
    report = write_superhard_report(result, out / "report.html")
    import pandas as pd

    from matforge.cli.tables import print_frame

    best = result.top.head(20)
    shown = pd.DataFrame({
        "#": best["rank_in_pool"].astype(int),
        "formula": best["formula"].astype(str),
        "Hv (GPa)": [f"{m:.1f} ± {e:.1f}" for m, e in zip(best["hardness_vickers"],
                                                          best["hardness_vickers_std"], strict=True)],
        "B (GPa)": [f"{m:.0f} ± {e:.0f}" for m, e in zip(best["bulk_modulus"],
                                                        best["bulk_modulus_std"], strict=True)],
        "G (GPa)": [f"{m:.0f} ± {e:.0f}" for m, e in zip(best["shear_modulus"],
                                                        best["shear_modulus_std"], strict=True)],
        "B/G": best["pugh_ratio"].round(2),
        "distance": best["distance"].round(2),
    })  # fmt: skip
    print_frame(shown, "Top 20 superhard candidates (predicted; Chen model, mean ± std)",
                max_rows=20, right=("Hv (GPa)", "B (GPa)", "G (GPa)"), keep=("formula",))  # fmt: skip
    rec = result.recall
    console.print(
        f"validation: {rec['n_heldout']} held-out hard compounds among {rec['n_ranked']:,} ranked: "
        f"recall {100 * rec['top_1pct']:.0f}% in the top 1%, {100 * rec['top_5pct']:.0f}% in the "
        f"top 5%, {100 * rec['top_10pct']:.0f}% in the top 10% (random: 1/5/10%)"
    )
    console.print(
        f"wrote {out / 'candidates.parquet'}, {out / 'top.csv'}, {report} "
        f"in {time.perf_counter() - t0:.0f} s"
    )
