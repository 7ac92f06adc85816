"""`matforge campaign new | suggest | observe | status | report | list` (`matforge benchmark
campaign` is in :mod:`matforge.cli.campaign_benchmark`).

A campaign lives in the store (``--db``, default ``$MATFORGE_DB`` or
``~/.matforge/matforge.db``), so every command can run in a new process. Heavy libraries
(pandas, scikit-learn, plotly) are imported inside the command functions, so `matforge --help`
stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from matforge.cli.tables import (
    decimal_option,
    print_frame,
    read_user_table,
    sep_option,
    sheet_option,
)

app = typer.Typer(
    help="Sequential-learning campaigns: from past experiments to the next batch to run.",
    no_args_is_help=True,
)

_DB_HELP = (
    "Store: a SQLite path or SQLAlchemy URL (default: $MATFORGE_DB or ~/.matforge/matforge.db)."
)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise typer.BadParameter(f"expected a comma-separated list, got {text!r}")
    return items


def _levels(items: list[str], option: str) -> dict[str, list[str] | None]:
    """``--categorical`` / ``--ordinal`` values: ``NAME`` (levels from the data) or
    ``NAME=LEVEL,LEVEL,...`` (declared; for --ordinal, lowest first)."""
    out: dict[str, list[str] | None] = {}
    for item in items:
        name, sep, levels = item.partition("=")
        name = name.strip()
        if not name:
            raise typer.BadParameter(f"{option} {item!r}: expected NAME or NAME=LEVEL,LEVEL,...")
        if name in out:
            raise typer.BadParameter(f"{option} names {name!r} twice")
        out[name] = _split(levels) if sep else None
    return out


@app.command("new")
def new(
    name: str = typer.Argument(..., help="Name of the campaign (unique in the store)."),
    from_: Path | None = typer.Option(
        None, "--from", exists=True, dir_okay=False,
        help="Past experiments (.csv, .tsv, .xlsx or .parquet): design columns and measured "
        "results. Rows without any result are candidates (formula campaigns).",
    ),
    target: list[str] = typer.Option(
        ..., "--target", "-t",
        help="Objective, e.g. 'yield_strength max', 'cost min', 'gap = 1.3', "
        "'gap in [1.2, 1.4]'. Repeat for several objectives.",
    ),
    formula: str | None = typer.Option(
        None, "--formula", help="Column of chemical formulas: choose among candidate "
        "compositions (--pool, or the data's rows without results)."
    ),
    features: str | None = typer.Option(
        None, "--features", help="Comma-separated design columns (process parameters): a box "
        "spanning the data's range (whole numbers: integers; text: categorical), or the "
        "candidates of --pool. Beside --formulation: process parameters of the blends; beside "
        "--formula: other columns the model sees."
    ),
    formulation: str | None = typer.Option(
        None, "--formulation", help="Comma-separated ingredient columns: blends whose amounts "
        "sum to the data's row total (1 or 100)."
    ),
    categorical: list[str] = typer.Option(
        [], "--categorical", help="A categorical design column (solvent, catalyst type), even "
        "if it holds numbers: NAME (its levels in the data) or NAME=L1,L2,... (every level it "
        "may take). Repeatable; a column not in --features is added to it.",
    ),
    ordinal: list[str] = typer.Option(
        [], "--ordinal", help="An ordered design column: NAME (numbers, ordered by value) or "
        "NAME=LOW,...,HIGH (levels lowest first). Repeatable.",
    ),
    continuous: str | None = typer.Option(
        None, "--continuous", help="Comma-separated columns of whole numbers to propose as "
        "real numbers (they are integers otherwise)."
    ),
    cost_column: str | None = typer.Option(
        None, "--cost-column", help="Column of --pool (or of the candidates) with each "
        "experiment's cost: suggestions maximise the acquisition per unit cost."
    ),
    ingredient_cost: list[str] = typer.Option(
        [], "--ingredient-cost", help="NAME=PRICE: price of an ingredient per unit of its "
        "amount (formulations; unpriced ones cost nothing). Repeatable.",
    ),
    experiment_cost: float = typer.Option(
        0.0, "--experiment-cost", help="A fixed cost added to every experiment."
    ),
    cost_unit: str | None = typer.Option(
        None, "--cost-unit", help="What costs are counted in (EUR, h, ...), for reports."
    ),
    max_components: int | None = typer.Option(
        None, "--max-components", min=1, help="At most this many ingredients in a blend."
    ),
    pool: Path | None = typer.Option(
        None, "--pool", exists=True, dir_okay=False,
        help="Table of candidate experiments to choose from (.csv, .tsv, .xlsx, .parquet).",
    ),
    id_column: str | None = typer.Option(
        None, "--id", help="Column of candidate ids in --pool (quoted back in suggestions)."
    ),
    constraint: list[str] = typer.Option(
        [], "--constraint", help="Constraint on a measured property, e.g. 'density < 5'."
    ),
    ingredient_features: Path | None = typer.Option(
        None, "--ingredient-features", exists=True, dir_okay=False,
        help="Table with one row per ingredient (first column: its name) of descriptors; their "
        "amount-weighted means are added to the model's features.",
    ),
    model: str = typer.Option("auto", "--model", help="auto, rf, gp or lgbm (alias: boosted)."),
    acquisition: str = typer.Option(
        "auto", "--acquisition", help="auto, ei, pi, ucb, mli, mu, ts, random, ehvi or parego."
    ),
    batch_strategy: str | None = typer.Option(
        None, "--batch-strategy",
        help="kriging_believer (default), local_penalization or top.",
    ),
    precision: list[str] = typer.Option(
        [], "--precision",
        help="Round suggestions to this step: STEP for every ingredient amount and continuous "
        "parameter, NAME=STEP for one (amounts=STEP for the amounts), 0 for not rounded. "
        "Repeatable. Default: 0.1 %% of the total for amounts, 3 significant figures of the "
        "range for parameters.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Create a campaign from a table of past experiments (CSV, TSV, .xlsx or .parquet).

    Describe the experiments with exactly one of --formula, --features and --formulation
    (--features may go beside either of the others). Failed past experiments are rows marked
    in a 'failed' column (yes, or what went wrong).
    """
    import pandas as pd

    from matforge.design.campaign import FAILED_COLUMN, Campaign, CampaignError, infer_space
    from matforge.design.costs import CostModel, parse_ingredient_costs
    from matforge.design.objectives import parse_objective
    from matforge.design.spaces import parse_precision
    from matforge.store import Store

    objectives = [parse_objective(t) for t in target]
    props = [o.name for o in objectives]
    dialect = {"sep": sep, "decimal": decimal, "sheet": sheet,
               "text_columns": [formula] if formula else []}
    data = read_user_table(from_, "data file", **dialect) if from_ is not None else None
    pool_df = read_user_table(pool, "candidate pool", **dialect) if pool is not None else None
    if data is None:
        if pool_df is None:
            raise typer.BadParameter("give past experiments (--from) or candidates (--pool)")
        data = pool_df.iloc[:0]
    cons = list(constraint)
    from matforge.design.objectives import parse_constraint

    cons_props = [parse_constraint(c).name for c in cons]
    space = infer_space(
        data if len(data) or pool_df is None else pool_df,
        formula=formula, features=_split(features), formulation=_split(formulation),
        max_components=max_components, pool=pool_df, targets=props + cons_props,
        id_column=id_column, categorical=_levels(categorical, "--categorical"),
        ordinal=_levels(ordinal, "--ordinal"), continuous=_split(continuous) or [],
    )
    costs = None
    if cost_column is not None or ingredient_cost or experiment_cost:
        costs = CostModel(column=cost_column, ingredients=parse_ingredient_costs(ingredient_cost),
                          per_experiment=experiment_cost, unit=cost_unit)
    initial = None
    if len(data):
        present = [p for p in props + cons_props if p in data.columns]
        if not present:
            raise CampaignError(f"{from_}: no column for {props}; have {list(data.columns)}")
        measured = data[present].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)
        if FAILED_COLUMN in data.columns and FAILED_COLUMN not in props + cons_props:
            flag = data[FAILED_COLUMN]
            text = flag.astype(str).str.strip().str.lower()
            measured |= flag.notna() & ~text.isin(["", "no", "n", "false", "0", "0.0", "ok"])
        initial = data[measured]
    ing = None
    if ingredient_features is not None:
        ing = read_user_table(ingredient_features, "ingredient features", sep, decimal, sheet,
                              text_columns=[])
        ing = ing.set_index(ing.columns[0])
    with Store(db) as store:
        c = Campaign.create(
            store, name, space, objectives, model=model, acquisition=acquisition,
            batch_strategy=batch_strategy, constraints=cons, ingredient_features=ing, seed=seed,
            initial=initial, source=f"initial:{from_.name}" if from_ is not None else "initial",
            precision=parse_precision(precision) or None, costs=costs,
        )
        n_initial = len(initial) if initial is not None else 0
        n_failed = int(c.history()["failed"].sum()) if n_initial else 0
        failed_note = f" ({n_failed} failed)" if n_failed else ""
        typer.echo(f"campaign {name!r} created in {store!r}: {', '.join(map(str, objectives))}; "
                   f"{n_initial} past experiment(s){failed_note}; space {c.space!r}")
        if c.costs is not None:
            typer.echo(f"cost of an experiment: {c.costs}; suggestions maximise the "
                       f"acquisition per unit cost")
        if c.space.precision:
            typer.echo("suggestions rounded to: " + ", ".join(
                f"{col} {step}" for col, step in c.space.precision.items()))


@app.command("suggest")
def suggest(
    name: str = typer.Argument(..., help="Campaign name."),
    n: int = typer.Option(1, "-n", "--n", min=1, help="How many experiments to propose."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write them to this CSV."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Propose the next N experiments (recorded as pending until their results arrive)."""
    from matforge.design.campaign import Campaign
    from matforge.store import Store

    with Store(db, create=False) as store:
        c = Campaign.load(store, name)
        df = c.suggest(n)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(output, index=False)
        typer.echo(f"{len(df)} suggestion(s) written to {output}; fill in "
                   f"{', '.join(c.properties)} (or, where an experiment failed, a 'failed' "
                   f"column) and run `matforge campaign observe {name} FILE`")
    title = f"{name}: batch {int(df['batch'].iloc[0]) if len(df) else '-'}"
    print_frame(df, title, optional=[c_ for c_ in ("batch", "acquisition") if c_ in df])


@app.command("observe")
def observe(
    name: str = typer.Argument(..., help="Campaign name."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="Table of results (.csv, .tsv, .xlsx, .parquet): "
                                "suggestion_id or design columns, and the measured properties."),
    failed: bool = typer.Option(
        False, "--failed", help="Rows without any measured value are failed experiments (no "
        "result, did not form), recorded as such instead of refused. A 'failed' column (yes, or "
        "what went wrong) marks failures row by row without this option.",
    ),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Record measured results; they are matched to the suggestions by id or design values."""
    from matforge.design.campaign import Campaign
    from matforge.design.spaces import CompositionPool
    from matforge.store import Store

    with Store(db, create=False) as store:
        c = Campaign.load(store, name)
        formula = [c.space.formula_column] if isinstance(c.space, CompositionPool) else []
        df = read_user_table(file, "results file", sep, decimal, sheet, text_columns=formula)
        report = c.observe(df, source=file.name, blank_means_failed=failed)
        pending = len(c.pending())
    failed_note = f", {report.failed} of them failed" if report.failed else ""
    typer.echo(f"{report.recorded} result(s) recorded ({report.matched} answering suggestions, "
               f"{report.unplanned} unplanned{failed_note}), {report.duplicates} already "
               f"recorded; {pending} suggestion(s) still pending")


@app.command("status")
def status(
    name: str = typer.Argument(..., help="Campaign name."),
    pending_csv: Path | None = typer.Option(
        None, "--pending", help="Write the pending suggestions to this CSV."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    margin: float = typer.Option(
        0.0, "--margin", min=0.0, help="For the stopping estimate: how much better counts (in "
        "the objective's units; a distance to the target for a target)."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Counts of experiments and suggestions, the best result so far, and how likely it is
    that a better candidate remains (the model's estimate, for deciding when to stop)."""
    import json

    from matforge.design.campaign import Campaign
    from matforge.store import Store

    with Store(db, create=False) as store:
        c = Campaign.load(store, name)
        s = c.status()
        s["stopping"] = c.stopping(margin).as_dict()
        pending = c.pending()
    if pending_csv is not None:
        pending.to_csv(pending_csv, index=False)
    if as_json:
        typer.echo(json.dumps(s, indent=2, default=str))
        return
    typer.echo(f"campaign {s['name']}: {', '.join(s['objectives'])}")
    if s["constraints"]:
        typer.echo(f"constraints: {', '.join(s['constraints'])}")
    failed = f", {s['failed']} failed" if s["failed"] else ""
    typer.echo(f"observations: {s['observations']} ({s['initial']} initial, {s['answered']} "
               f"answering suggestions, {s['unplanned']} unplanned{failed})")
    typer.echo(f"suggestions: {s['batches']} batch(es), {s['pending']} pending, "
               f"{s['cancelled']} cancelled")
    if "cost" in s:
        unit = f" {s['cost']['unit']}" if s["cost"]["unit"] else ""
        unpriced = (f" ({s['cost']['unpriced']} experiment(s) without a price)"
                    if s["cost"]["unpriced"] else "")
        typer.echo(f"spent on experiments since the start: {s['cost']['spent']:g}{unit}"
                   f"{unpriced}")
    from matforge.design.stopping import StoppingEstimate

    typer.echo("stopping: " + StoppingEstimate(**s["stopping"]).summary())
    if s["best"]:
        import pandas as pd

        print_frame(pd.DataFrame(s["best"]), "best so far")
    if len(pending):
        cols = [c_ for c_ in pending.columns if c_ not in ("status", "created_at")]
        optional = [c_ for c_ in ("batch", "acquisition") if c_ in cols]
        print_frame(pending[cols], "pending", optional=optional)


@app.command("report")
def report(
    name: str = typer.Argument(..., help="Campaign name."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="HTML file."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Write a self-contained HTML report (opens offline)."""
    from matforge.design.campaign import Campaign
    from matforge.report.campaign import write_campaign_report
    from matforge.store import Store

    with Store(db, create=False) as store:
        c = Campaign.load(store, name)
        path = write_campaign_report(c, output)
    typer.echo(f"report written to {path}")


@app.command("list")
def list_cmd(db: str | None = typer.Option(None, "--db", help=_DB_HELP)) -> None:
    """The campaigns in the store: objectives, space, results, pending suggestions, created."""
    from matforge.design.campaign import Campaign
    from matforge.store import Store

    with Store(db, create=False) as store:
        df = Campaign.overview(store)
        where = repr(store)
    if not len(df):
        typer.echo(f"no campaigns in {where}; create one with `matforge campaign new`")
        return
    df["created_at"] = [f"{t:%Y-%m-%d %H:%M}" if t is not None else "" for t in df["created_at"]]
    df["space"] = df["space"].str.removesuffix("Space")  # FormulationSpace -> Formulation
    df = df.drop(columns="created_by").rename(columns={"created_at": "created (UTC)"})
    print_frame(df, f"campaigns in {where}", max_rows=len(df))
