"""`matforge generate train|sample|optimize` and `matforge benchmark generate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Generative design: sample new compositions, or design them against a model.",
    no_args_is_help=True,
)

_MODEL_HELP = "rnn (recurrent language model) or gan."
_WEIGHTS_HELP = "A model file from `generate train` (default: the shipped model)."


def _elements(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [e.strip() for e in text.replace(" ", ",").split(",") if e.strip()]


def _load(model: str, weights: Path | None):
    from matforge.generate.defaults import load_default, model_class

    if weights is None:
        return load_default(model)
    return model_class(model).load(weights)


def _condition(text: str | None) -> tuple[float, float] | None:
    """``band_gap=1.0:1.8`` -> (1.0, 1.8); the name is checked against the model's."""
    if not text:
        return None
    from matforge.errors import GenerateError

    name, _, window = text.partition("=")
    try:
        lo, hi = (float(v) for v in window.split(":"))
    except ValueError:
        raise GenerateError(
            f"--condition must be NAME=LOW:HIGH (e.g. band_gap=1.0:1.8), got {text!r}"
        ) from None
    return name.strip(), (lo, hi)


def _condition_values(condition_on, bins, unit, frame, column, formulas):
    """The Condition of ``--condition-on COLUMN[=NAME] --bins ...`` and the mean of COLUMN per
    canonical formula of ``formulas`` (NaN where unlabelled); (None, None) without it."""
    import numpy as np
    import pandas as pd

    from matforge.errors import GenerateError
    from matforge.generate.corpus import mean_by_formula
    from matforge.generate.rnn import Condition

    if not condition_on:
        if bins:
            raise GenerateError("--bins needs --condition-on COLUMN")
        return None, None
    col, _, name = condition_on.partition("=")
    col, name = col.strip(), (name.strip() or col.strip())
    if col not in frame:
        raise GenerateError(f"no column {col!r} to condition on; "
                            f"columns: {', '.join(frame.columns)}")  # fmt: skip
    try:
        edges = tuple(sorted(float(v) for v in (bins or "").split(",") if v.strip()))
    except ValueError:
        raise GenerateError(f"--bins must be numbers separated by commas, got {bins!r}") from None
    if not edges:
        raise GenerateError("--condition-on needs --bins, e.g. --bins 0.5,1,1.8,3,5")
    y = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    means = mean_by_formula(frame[column].astype(str), y)
    values = np.array([means.get(f, np.nan) for f in formulas])
    return Condition(name, edges, unit), values


def _training_formulas(dataset: list[str], csv: Path | None, column: str):
    """(formulas, where they came from, the table they came from or None for the corpus)."""
    import pandas as pd

    from matforge.errors import GenerateError
    from matforge.generate.corpus import load_corpus

    if csv is not None:
        if not csv.is_file():
            raise GenerateError(f"no file {csv}")
        # keep_default_na=False: sodium nitride is written "NaN"
        df = pd.read_csv(csv, dtype=str, keep_default_na=False)
        if column not in df:
            raise GenerateError(f"{csv} has no column {column!r}; columns: {', '.join(df.columns)}")
        return df[column].astype(str).tolist(), str(csv), df
    if dataset:
        from matforge.datasets import load_dataset

        df = pd.concat([load_dataset(name) for name in dataset], ignore_index=True)
        if column not in df:
            column = "formula"
        return df["formula"].astype(str).tolist(), ",".join(dataset), df
    return load_corpus(), "the Materials Project corpus", None


@app.command("train")
def train_command(
    model: str = typer.Option("rnn", "--model", help=_MODEL_HELP),
    dataset: list[str] = typer.Option([], "--dataset", help="Bundled dataset(s) to learn from "
                                      "(default: the union of the Materials Project sets)."),
    csv: Path = typer.Option(None, "--csv", help="A CSV file of formulas to learn from."),
    column: str = typer.Option("formula", "--column", help="Formula column of --csv."),
    valid_only: bool = typer.Option(True, "--valid-only/--all-compositions",
                                    help="Keep only charge-neutral, electronegativity-balanced ones."),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs (default: the shipped setting)."),
    time_limit: float = typer.Option(None, "--time-limit", help="Stop after this many seconds."),
    condition_on: str = typer.Option(None, "--condition-on", metavar="COLUMN[=NAME]",
                                     help="Condition on bins of this column of --csv/--dataset "
                                     "(then `sample --condition NAME=LOW:HIGH`)."),
    bins: str = typer.Option(None, "--bins", help="Bin edges of --condition-on, e.g. 0.5,1,1.8,3,5."),
    unit: str = typer.Option("", "--unit", help="Unit of --condition-on (for the record)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(None, "--out", "-o", help="Model file (default: generate_<model>.pt)."),
) -> None:  # fmt: skip
    """Train a generative model; with the defaults this reproduces the shipped weights."""
    from rich.console import Console
    from rich.progress import Progress

    from matforge.errors import GenerateError
    from matforge.generate.corpus import canonicalize_valid
    from matforge.generate.defaults import TRAINING, train_default

    console = Console()
    if condition_on and csv is None and not dataset:  # before the corpus is read
        raise GenerateError("--condition-on needs --csv or --dataset (the corpus has no property)")
    formulas, source, frame = _training_formulas(dataset, csv, column)
    with console.status(
        "reducing to integer formulas" + (" and checking charge balance" if valid_only else "")
    ):
        formulas, dropped = canonicalize_valid(formulas, valid_only=valid_only)
    condition, values = _condition_values(condition_on, bins, unit, frame, column, formulas)
    if condition is not None:
        labelled = int((values == values).sum())  # not NaN
        console.print(f"conditioned on {condition.name}: bins {', '.join(condition.describe_bins())}; "
                      f"{labelled:,} of {len(formulas):,} compositions labelled")  # fmt: skip
    console.print(f"{len(formulas):,} distinct compositions from {source}"
                  + (f" ({dropped:,} rows were repeats, not integer formulas"
                     + (" or not charge-balanced)" if valid_only else ")") if dropped else ""))  # fmt: skip
    fit = dict(TRAINING[model]["fit"]) if model in TRAINING else {}
    if epochs is not None:
        fit["epochs"] = epochs
    total = fit.get("epochs", 1)
    with Progress(console=console) as bar:
        task = bar.add_task(f"training {model}", total=total)

        def tick(epoch: int, loss: float) -> None:
            bar.update(task, completed=epoch, description=f"training {model} (loss {loss:.3f})")

        if condition is not None:
            fit["values"] = values
        fitted = train_default(model, formulas, seed=seed, time_limit=time_limit, progress=tick,
                               condition=condition, **fit)  # fmt: skip
    path = fitted.save(out or Path(f"generate_{model}.pt"))
    report = fitted.fit_report_
    console.print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) after {report.get('seconds', 0)} s"
    )


@app.command("sample")
def sample_command(
    model: str = typer.Option("rnn", "--model", help=_MODEL_HELP),
    n: int = typer.Option(20_000, "-n", help="Number of samples."),
    temperature: float = typer.Option(1.0, "--temperature", help="Above 1: more novel, less valid."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling (rnn)."),
    elements_in: str = typer.Option(None, "--elements-in", help="Elements every sample contains, e.g. Ti,O."),
    elements_out: str = typer.Option(None, "--elements-out", help="Elements no sample contains."),
    condition: str = typer.Option(None, "--condition", help="A property bin of a conditioned "
                                  "model, e.g. band_gap=1.0:1.8."),
    weights: Path = typer.Option(None, "--weights", help=_WEIGHTS_HELP),
    unique: bool = typer.Option(True, "--unique/--keep-duplicates", help="One row per composition."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("generated.csv"), "--out", "-o"),
) -> None:  # fmt: skip
    """Sample new compositions; each row carries its validity, novelty and nearest known one."""
    from rich.console import Console

    from matforge.generate.sampling import sample_annotated

    console = Console()
    gen = _load(model, weights)
    cond = _condition(condition)
    with console.status(f"sampling {n:,} compositions ..."):
        table = sample_annotated(gen, n, temperature=temperature, top_p=top_p,
                                 required=_elements(elements_in), forbidden=_elements(elements_out),
                                 condition=cond, seed=seed, unique=unique)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    console.print(f"wrote {len(table):,} compositions to {out}: "
                  f"{table['cn_eb'].mean():.1%} charge-neutral + electronegativity-balanced, "
                  f"{table['novel'].mean():.1%} not in the Materials Project corpus")  # fmt: skip


@app.command("optimize")
def optimize_command(
    reward: str = typer.Option(..., "--reward", help='Goal(s), e.g. "band_gap in [1.0, 1.8]", '
                               '"band_gap >= 5", "maximize bulk_modulus", joined by "and".'),
    model_ref: list[str] = typer.Option([], "--model-ref", metavar="PROPERTY=REGISTRY_MODEL",
                                        help="The registry model predicting a property of the reward."),
    method: str = typer.Option("rl", "--method", help="rl, ga, best-of-n or random."),
    budget: int = typer.Option(2000, "--budget", help="Distinct compositions the models may score."),
    top: int = typer.Option(100, "--top", help="Designs written to the output."),
    elements_in: str = typer.Option(None, "--elements-in", help="Elements every design contains."),
    elements_out: str = typer.Option(None, "--elements-out", help="Elements no design contains."),
    max_distance: float = typer.Option(3.0, "--max-distance", help="Domain distance beyond which "
                                       "the reward decays (a negative value turns it off)."),
    weights: Path = typer.Option(None, "--weights", help=_WEIGHTS_HELP + " (rl, best-of-n)"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("designs.csv"), "--out", "-o"),
) -> None:  # fmt: skip
    """Design compositions against registry models: reinforcement learning by default."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from matforge.errors import GenerateError
    from matforge.generate.corpus import load_corpus
    from matforge.generate.metrics import annotate
    from matforge.generate.optimize import optimize
    from matforge.generate.reward import Reward, parse_goals
    from matforge.models.registry import load_model

    console = Console()
    goals = parse_goals(reward)
    refs = {}
    for item in model_ref:
        name, sep, ref = item.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise GenerateError(f"--model-ref must be PROPERTY=REGISTRY_MODEL, got {item!r}")
        refs[name.strip()] = ref.strip()
    missing = [g.property for g in goals if g.property not in refs]
    if missing:
        raise GenerateError(f"the reward names {', '.join(missing)} but no --model-ref "
                            f"{missing[0]}=MODEL was given")  # fmt: skip
    models = {
        name: load_model(ref) for name, ref in refs.items() if name in {g.property for g in goals}
    }
    known = load_corpus()
    r = Reward(goals, models, known=known, required=_elements(elements_in),
               forbidden=_elements(elements_out),
               max_distance=None if max_distance < 0 else max_distance)  # fmt: skip
    prior = _load("rnn", weights) if method in ("rl", "best-of-n") else None
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn()]  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{method}: best reward 0.000", total=budget)

        def tick(calls: int, best: float) -> None:
            bar.update(task, completed=calls, description=f"{method}: best reward {best:.3f}")

        if max_distance >= 0:
            bar.update(task, description=f"{method}: learning the model's domain")
            r.domain  # noqa: B018 -- fitted before the clock of the search starts
        result = optimize(r, method, budget=budget, prior=prior, seed=seed, progress=tick)
    best = result.top(top)
    notes = annotate(best["formula"].tolist(), known).drop(columns=["formula"])
    table = best.drop(columns=["gate"]).join(notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    console.print(f"{result.calls:,} model calls in {result.seconds:.0f} s; wrote the best "
                  f"{len(table)} designs to {out}")  # fmt: skip
    if len(table):
        import pandas as pd

        from matforge.cli.tables import print_frame

        shown = pd.DataFrame({"formula": table["formula"], "reward": table["reward"]})
        for g in goals:
            mean, std = table[g.property], table[f"{g.property}_std"]
            shown[g.property] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(mean, std, strict=True)]
        shown["nearest known"] = table.get("nearest_known", "")
        print_frame(shown, f"best {min(10, len(shown))} designs", max_rows=10,
                    right=[g.property for g in goals], keep=("formula",))  # fmt: skip


def benchmark_command(
    out: Path = typer.Option(Path("results/generate/benchmark.json"), "--out", "-o"),
    quick: bool = typer.Option(False, "--quick", help="One seed, smaller samples: a smoke run."),
    part: str = typer.Option("all", "--part", help="all, generation or design."),
    models: str = typer.Option("rnn,gan", "--models", help="Generators of the generation part."),
    methods: str = typer.Option("rl,ga,best-of-n,random,conditioned", "--methods",
                                help="Methods of the design part."),
) -> None:  # fmt: skip
    """Generation (validity, novelty, rediscovery) and design (oracle vs judge) of issue #14."""
    from rich.console import Console

    from matforge.generate.benchmark import run_benchmark
    from matforge.jsonable import to_jsonable

    console = Console()
    doc = run_benchmark(quick=quick, part=part, models=_elements(models) or (),
                        methods=_elements(methods) or (), progress=console.print)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_jsonable(doc), indent=2) + "\n")
    console.print(f"wrote {out} ({doc['seconds']:.0f} s)")
