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
    lopo: bool | None = typer.Option(
        None, "--lopo/--no-lopo",
        help="Score the candidate strategies and choose by leave-one-problem-out "
        "(default: with --all).",
    ),
    candidates: str | None = typer.Option(
        None, "--candidates", help="With --lopo: comma-separated candidates (default: all)."
    ),
    liang: bool | None = typer.Option(
        None, "--liang/--no-liang",
        help="Liang et al.'s own measures on their five sets (default: with --all).",
    ),
    liang_seeds: int | None = typer.Option(
        None, "--liang-seeds", min=1, help="Campaigns per algorithm for --liang (default: --seeds)."
    ),
    liang_max: int | None = typer.Option(
        None, "--liang-max-experiments", min=3,
        help="Cut Liang-protocol campaigns at this many experiments (quick passes).",
    ),
    resume: bool = typer.Option(
        True, "--resume/--no-resume",
        help="Reuse the replays already in --out/replays and --out/liang (each is saved as "
        "it finishes).",
    ),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
) -> None:
    """Replay real datasets with hidden labels: experiments needed to find a top-1 % candidate,
    acceleration over random search, best-so-far curves (JSON + HTML in --out). With --all
    (or --lopo / --liang): the candidate strategies chosen by leave-one-problem-out, and
    Liang et al.'s measures on their five sets. Interrupted runs resume from --out."""
    import json
    import shutil
    import time

    from rich.console import Console

    from matforge.design.benchmark import (
        BENCHMARKS,
        LIANG_BENCHMARKS,
        load_problem,
        lopo_markdown,
        lopo_report,
        problem_from_table,
        run_benchmark,
    )
    from matforge.design.candidates import CANDIDATES

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
    lopo = all_ if lopo is None else lopo
    names_run = [p.name for p in problems]
    liang_sets = [n for n in names_run if n in LIANG_BENCHMARKS] if csv is None else []
    liang = (all_ if liang is None else liang) and bool(liang_sets)
    cand = _split(candidates) or list(CANDIDATES)
    unknown = [c for c in cand if c not in CANDIDATES]
    if unknown:
        raise typer.BadParameter(f"unknown candidate(s) {unknown}; known: {list(CANDIDATES)}")
    if lopo and len(problems) < 2:
        raise typer.BadParameter("--lopo needs at least two problems")
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        for sub in ("replays", "liang"):
            shutil.rmtree(out / sub, ignore_errors=True)
    started = time.time()

    def save(entry: dict) -> None:
        path = out / f"{entry['info']['name']}.json"
        path.write_text(json.dumps(entry, indent=1), encoding="utf-8")

    results = run_benchmark(
        problems, seeds=list(range(seeds)), batches=batches, strategies=_split(strategies),
        jobs=jobs, specs=specs, on_problem_done=save, cache_dir=out / "replays",
        progress=lambda msg: console.print(msg, highlight=False),
    )
    tables = []
    if lopo:
        console.print(f"candidates {', '.join(cand)}: batch size 1, until the goal is met ...")
        cand_results = run_benchmark(
            problems, seeds=list(range(seeds)), batches=[1],
            strategies=list(dict.fromkeys([*cand, "baseline", "random"])), jobs=jobs,
            specs=specs, cache_dir=out / "replays", stop="top",
            progress=lambda msg: console.print(msg, highlight=False),
        )
        results["lopo"] = lopo_report(cand_results, cand)
        results["lopo"]["candidates_described"] = cand_results["strategies"]
        results["lopo"]["seconds_per_replay"] = {
            p: {k: r["seconds_per_replay"] for k, r in e["runs"].items()}
            for p, e in cand_results["problems"].items()}
        tables.append("## Leave-one-problem-out choice (top-1 % AF, batch size 1)\n\n"
                      + lopo_markdown(results["lopo"]))
    if liang:
        from matforge.design.liang2021 import markdown_table as liang_table
        from matforge.design.liang2021 import run_liang

        results["liang"] = run_liang(
            liang_sets, seeds=list(range(liang_seeds or seeds)), jobs=jobs,
            cache_dir=out / "liang", max_experiments=liang_max,
            progress=lambda msg: console.print(msg, highlight=False),
        )
        (out / "liang.json").write_text(json.dumps(results["liang"], indent=1),
                                         encoding="utf-8")
        tables.append("## Liang et al.'s measures (their protocol)\n\n"
                      + liang_table(results["liang"]))
    results["command"] = "matforge benchmark campaign " + " ".join(
        ([f"--csv {csv} --target '{target}'"] if csv else
         (["--all"] if all_ else [f"--name {n}" for n in name]))
        + [f"--seeds {seeds}", f"--batch {batch}"]
        + ([f"--jobs {jobs}"] if jobs > 1 else [])
        + ([f"--budget {budget}"] if budget else [])
        + ([f"--max-candidates {max_candidates}"] if max_candidates else [])
        + (["--lopo"] if lopo and not all_ else []) + (["--no-lopo"] if all_ and not lopo else [])
        + ([f"--candidates {','.join(cand)}"] if lopo and candidates else [])
        + (["--liang"] if liang and not all_ else [])
        + (["--no-liang"] if all_ and not liang else [])
        + ([f"--liang-seeds {liang_seeds}"] if liang and liang_seeds else [])
        + ([f"--liang-max-experiments {liang_max}"] if liang and liang_max else []))
    results["wall_seconds"] = time.time() - started
    (out / "summary.json").write_text(json.dumps(
        {k: v for k, v in results.items() if k != "problems"}, indent=1), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    from matforge.design.benchmark import markdown_table

    (out / "table.md").write_text(
        f"`{results['command']}`\n\n" + markdown_table(results)
        + "".join("\n" + t for t in tables), encoding="utf-8")
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
    if lopo:
        r = results["lopo"]
        typer.echo(f"leave-one-problem-out: median AF {r['lopo_median']:.2f} on held-out "
                   f"problems (in-suite choice {r['in_suite']['chosen']}: "
                   f"{r['in_suite_median']:.2f}); chosen: "
                   + ", ".join(f"{p} {v['chosen']}" for p, v in r["problems"].items()))
        for t, v in r.get("targets", {}).items():
            typer.echo(f"  target {t}: {'met' if v['met'] else 'NOT met'} "
                       f"({json.dumps({k: x for k, x in v.items() if k != 'met'})})")
    typer.echo(f"results in {out}/ ({results['wall_seconds']:.0f} s)")
