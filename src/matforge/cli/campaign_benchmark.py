"""`matforge benchmark campaign` (:func:`benchmark_command`, wired by the main app): replay real
datasets with hidden labels and compare campaign strategies. Heavy libraries are imported inside
the command, so `matforge --help` stays fast."""

from __future__ import annotations

from pathlib import Path

import typer

from matforge.cli.campaign import _split
from matforge.cli.tables import (
    decimal_option,
    print_frame,
    read_user_table,
    sep_option,
    sheet_option,
)


def benchmark_command(
    all_: bool = typer.Option(False, "--all", help="Every bundled campaign benchmark."),
    name: list[str] = typer.Option([], "--name", help="A bundled benchmark (repeatable)."),
    seeds: int = typer.Option(20, "--seeds", min=1, help="Replays per strategy (seeds 0..N-1)."),
    batch: str = typer.Option("1,5", "--batch", help="Batch sizes of the default strategy."),
    out: Path = typer.Option(Path("results/campaigns"), "--out", help="Results folder."),
    csv: Path | None = typer.Option(
        None, "--csv", exists=True, dir_okay=False,
        help="Benchmark your own table instead (.csv, .tsv, .xlsx or .parquet).",
    ),
    target: str | None = typer.Option(
        None, "--target", help="With --csv: COLUMN:max, COLUMN:min or COLUMN:=VALUE."
    ),
    formula: str | None = typer.Option(None, "--formula", help="With --csv: formula column."),
    features: str | None = typer.Option(
        None, "--features", help="With --csv: comma-separated feature columns."
    ),
    strategies: str = typer.Option(
        "default,baseline,random", "--strategies", help="Which of default, baseline, random."
    ),
    budget: int | None = typer.Option(
        None, "--budget", min=11, help="Experiments per replay (default: per benchmark)."
    ),
    max_candidates: int | None = typer.Option(
        None, "--max-candidates", min=20, help="Subsample each pool (quick checks)."
    ),
    html: bool = typer.Option(True, "--html/--no-html", help="Also write report.html."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes for the replays."),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
) -> None:
    """Replay real datasets with hidden labels: experiments needed to find a top-1 % candidate,
    acceleration over random search, best-so-far curves (JSON + HTML in --out)."""
    import json
    import time

    from rich.console import Console

    from matforge.design.benchmark import (
        BENCHMARKS,
        load_problem,
        problem_from_table,
        run_benchmark,
    )

    console = Console(stderr=True)
    batches = [int(b) for b in _split(batch)]
    if csv is not None:
        if target is None:
            raise typer.BadParameter("--csv needs --target COLUMN:max|min|=VALUE")
        df = read_user_table(csv, "table", sep, decimal, sheet,
                             text_columns=[formula] if formula else [])
        problems = [problem_from_table(df, target, formula=formula, features=_split(features),
                                       name=csv.stem, budget=budget)]
        specs = None
    else:
        names = list(BENCHMARKS) if all_ else list(name)
        if not names:
            raise typer.BadParameter("give --all, --name NAME or --csv FILE")
        problems = []
        specs = [(n, budget, max_candidates) for n in names]
        for n in names:
            console.print(f"loading {n} ...")
            problems.append(load_problem(n, budget=budget, max_candidates=max_candidates))
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def save(entry: dict) -> None:
        path = out / f"{entry['info']['name']}.json"
        path.write_text(json.dumps(entry, indent=1), encoding="utf-8")

    results = run_benchmark(
        problems, seeds=list(range(seeds)), batches=batches, strategies=_split(strategies),
        jobs=jobs, specs=specs, on_problem_done=save,
        progress=lambda msg: console.print(msg, highlight=False),
    )
    results["command"] = "matforge benchmark campaign " + " ".join(
        ([f"--csv {csv} --target '{target}'"] if csv else
         (["--all"] if all_ else [f"--name {n}" for n in name]))
        + [f"--seeds {seeds}", f"--batch {batch}"]
        + ([f"--jobs {jobs}"] if jobs > 1 else [])
        + ([f"--budget {budget}"] if budget else [])
        + ([f"--max-candidates {max_candidates}"] if max_candidates else []))
    results["wall_seconds"] = time.time() - started
    (out / "summary.json").write_text(json.dumps(
        {k: v for k, v in results.items() if k != "problems"}, indent=1), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    from matforge.design.benchmark import markdown_table

    (out / "table.md").write_text(f"`{results['command']}`\n\n" + markdown_table(results),
                                  encoding="utf-8")
    if html:
        from matforge.report.campaign import write_benchmark_report

        write_benchmark_report(results, out / "report.html")
    s = results["summary"]
    import pandas as pd

    keys = list(s["median_acceleration_top"])
    rows = [{"problem": r["problem"], **{k: r.get(k, float("nan")) for k in keys}}
            for r in s["rows"]]  # fmt: skip
    rows.append({"problem": "median", **s["median_acceleration_top"]})
    print_frame(pd.DataFrame(rows), "acceleration factor (top-1 %)", max_rows=len(rows),
                keep=("problem",))  # fmt: skip
    for k, v in s["targets"].items():
        typer.echo(f"{k}: " + ", ".join(f"{t} {'yes' if ok else 'NO'}" for t, ok in v.items()))
    typer.echo(f"results in {out}/ ({results['wall_seconds']:.0f} s)")
