"""`matforge catalysis ...`: screen alloy catalysts, evaluate models, replay the closed loop."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Catalyst screening: CO binding energies of bimetallic surfaces (offline).",
    no_args_is_help=True,
)


def _metals(text: str) -> list[str]:
    return [m.strip() for m in text.replace(" ", ",").split(",") if m.strip()]


def _window(text: str) -> tuple[float, float]:
    from matforge.errors import CatalysisError

    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise CatalysisError(f"--window must be LOW:HIGH in eV (e.g. -0.7:-0.5), got {text!r}") from None
    return low, high


def run_screen(metals: list[str], *, types: list[str], window: tuple[float, float], top: int,
               out: Path, descriptors: str, verify: int, oracle: str, in_domain_only: bool,
               console) -> Path:
    """The screen of ``matforge catalysis screen`` and ``matforge demo catalysis``."""
    import pandas as pd

    from matforge.catalysis import enumerate_surfaces, load_ma2015, screen_surfaces
    from matforge.catalysis.model import AdsorptionModel, out_of_fold
    from matforge.report.catalysis import write_catalysis_report

    enumerate_surfaces(metals, types)  # bad metals or types fail here, before any training
    train = load_ma2015(clean=True)
    with console.status(f"training the {descriptors} model on {len(train)} DFT surfaces ..."):
        model = AdsorptionModel(descriptors).fit(train)
    with console.status("screening ..."):
        ranked = screen_surfaces(metals, types=types, model=model, window=window,
                                 in_domain_only=in_domain_only)
    with console.status("5-fold out-of-fold predictions for the parity plot ..."):
        oof = out_of_fold(train, descriptors=descriptors)
    oracle_df = None
    if verify > 0:
        from rich.progress import track

        from matforge.catalysis.oracle import adsorption_energy, get_calculator

        calc = get_calculator(oracle)  # a clear error if the package is missing
        rows = []
        for _, r in track(list(ranked.head(verify).iterrows()), description="oracle",
                          console=console):
            res = adsorption_energy(r["surface"], "CO", calculator=calc)
            rows.append({"surface": r["surface"], "mean": r["mean"], "std": r["std"],
                         "oracle": res["energy"], "site": res["site"]})
        oracle_df = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(out / "candidates.csv", index=False)
    if oracle_df is not None:
        oracle_df.to_csv(out / "oracle.csv", index=False)
    report = write_catalysis_report(
        out / "report.html", ranked, training=train, oof=oof, oracle=oracle_df, top=top,
        title=f"Catalyst screen over {', '.join(metals)}",
        notes={"model": repr(model), "training surfaces": len(train),
               "out-of-fold RMSE (eV)": f"{((oof['mean'] - oof['dft']) ** 2).mean() ** 0.5:.3f}",
               "surface types": ", ".join(types)},
    )
    from matforge.cli.tables import print_frame

    shown = pd.DataFrame({
        "rank": ranked["rank"], "surface": ranked["surface"], "type": ranked["surface_type"],
        "E_CO (eV)": ranked["mean"], "std": ranked["std"], "P(window)": ranked["probability"],
        "in domain": ranked["in_domain"].map({True: "yes", False: "no"}),
        "DFT (eV)": ranked["dft_energy"],
    })  # fmt: skip
    print_frame(shown, f"top {min(top, len(ranked))} of {len(ranked)} surfaces, window "
                f"{window[0]:g} to {window[1]:g} eV", max_rows=top, keep=("surface",))  # fmt: skip
    console.print(f"wrote {out / 'candidates.csv'} and the report {report}")
    return report


@app.command("screen")
def screen_command(
    metals: str = typer.Option("Cu,Ag,Au,Ni,Pd,Pt,Zn,Sn", "--metals", "-m",
                               help="Comma-separated metals to combine (any d-block top layer)."),
    types: str = typer.Option("overlayer,subsurface,intermetallic,single_atom", "--types",
                              help="Surface types to enumerate."),
    window: str = typer.Option("-0.7:-0.5", help="Optimal CO binding window LOW:HIGH (eV)."),
    top: int = typer.Option(20, help="Candidates shown and plotted."),
    out: Path = typer.Option(Path("results/catalysis/screen"), help="Output folder."),
    descriptors: str = typer.Option("dft_free", help="dft_free (any surface) or ma2015."),
    verify: int = typer.Option(0, help="Verify the top N with the atomistic oracle."),
    oracle: str = typer.Option("chgnet", help="Oracle for --verify: chgnet or sevenn."),
    in_domain_only: bool = typer.Option(False, help="Drop extrapolated surfaces."),
) -> None:
    """Enumerate alloy surfaces over METALS, predict CO binding energies with uncertainty and
    a domain flag, rank by the probability of the optimal window, write CSV + HTML report."""
    from rich.console import Console

    run_screen(_metals(metals), types=_metals(types), window=_window(window), top=top, out=out,
               descriptors=descriptors, verify=verify, oracle=oracle,
               in_domain_only=in_domain_only, console=Console())


@app.command("ingest")
def ingest_command(
    file: Path = typer.Argument(..., help="CSV with columns surface, adsorbate, energy (eV) and "
                                "optional descriptor columns.", dir_okay=False),
    project: str = typer.Option(..., "--project", "-p", help="Project the energies belong to."),
    energy: str = typer.Option("energy", help="Name of the energy column (eV)."),
    method: str = typer.Option("computation", help="experiment, computation or prediction."),
    source: str | None = typer.Option(None, help="Provenance, e.g. a DOI (default: the path)."),
    allow_duplicate: bool = typer.Option(False, "--allow-duplicate",
                                         help="Store a file already stored in this project."),
    db: str | None = typer.Option(None, "--db", help="Store: a SQLite path or SQLAlchemy URL "
                                  "(default: $MATFORGE_DB or ~/.matforge/matforge.db)."),
) -> None:
    """Validate your adsorption energies row by row and add them to the store as
    adsorption_energy measurements (eV), the surface and adsorbate as conditions.

    All or nothing: a bad row (unknown metal, impossible surface notation, unknown adsorbate,
    non-numeric energy) fails the file with its line number and nothing is written."""
    from matforge.catalysis.data import ADSORPTION_PROPERTY, store_adsorption
    from matforge.store import Store

    with Store(db) as store:
        n = store_adsorption(store, file, project=project, energy=energy, method=method,
                             source=source, allow_duplicate=allow_duplicate)
    typer.echo(f"stored {n} {ADSORPTION_PROPERTY} measurements (eV) from {file} in project "
               f"{project!r}")


@app.command("cv")
def cv_command(
    descriptors: str = typer.Option("dft_free", help="dft_free or ma2015."),
    estimator: str = typer.Option("linear_forest", help="linear_forest, rf, gp or boosted."),
    repeats: int = typer.Option(1, help="Repeats of 5-fold CV."),
) -> None:
    """Cross-validate a model on the bundled surfaces (5-fold and leave-one-top-metal-out)."""
    from matforge.catalysis import load_ma2015
    from matforge.catalysis.model import cross_validate, leave_one_group_out

    df = load_ma2015()
    cv = cross_validate(df, descriptors=descriptors, estimator=estimator, n_repeats=repeats)
    lo = leave_one_group_out(df, descriptors=descriptors, estimator=estimator)
    typer.echo(f"5-fold CV x{repeats}: RMSE {cv['rmse']:.3f} eV, 95 % coverage "
               f"{cv['coverage_95']:.3f}; leave-one-top-metal-out: RMSE {lo['rmse']:.3f} eV, "
               f"95 % coverage {lo['coverage_95']:.3f}")


@app.command("loop")
def loop_command(
    strategies: str = typer.Option("mli,default,random", help="Strategies to replay."),
    seeds: int = typer.Option(10, help="Replays per strategy (seeds 0..N-1)."),
    budget: int = typer.Option(110, help="Calculations per replay (10 random initial ones)."),
    out: Path = typer.Option(Path("results/catalysis/loop.json"), help="JSON output."),
) -> None:
    """Closed loop on the bundled surfaces with hidden energies: calculations to find the
    surfaces in the CO2-reduction window, against random search."""
    from rich.console import Console

    from matforge.catalysis.loop import closed_loop_benchmark

    console = Console()
    res = closed_loop_benchmark(strategies=_metals(strategies), seeds=tuple(range(seeds)),
                                budget=budget, progress=console.log)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    p = res["problem"]
    console.print(f"{p['n_in_window']} of {p['n_candidates']} surfaces in the window; random "
                  f"search needs on average {p['random_expected_calculations']}")
    for name, s in res["strategies"].items():
        found = {k: round(v["mean"], 1) for k, v in s["calculations_to_find"].items()}
        acc = {k: round(v, 2) for k, v in s["acceleration"].items()}
        console.print(f"{name:8s} found {s['found_at_budget_mean']:.1f} in {budget}; "
                      f"calculations to find k: {found}; acceleration: {acc}")
    console.print(f"wrote {out}")


def demo_command(
    out: Path = typer.Option(Path("results/demo/catalysis"), help="Output folder."),
    verify: int = typer.Option(3, help="Verify the top N with the oracle when installed."),
) -> None:
    """Catalyst screening end to end on the bundled data: train on 285 DFT surfaces, screen
    overlayer/subsurface/intermetallic/single-atom alloys of 10 metals, report (offline)."""
    import importlib.util

    from rich.console import Console

    console = Console()
    have_oracle = importlib.util.find_spec("chgnet") is not None
    if verify and not have_oracle:
        console.print("[yellow]chgnet is not installed: skipping the oracle verification "
                      "(pip install chgnet to enable it)[/yellow]")
    run_screen(["Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Zn", "Sn", "Ir", "Rh"],
               types=["overlayer", "subsurface", "intermetallic", "single_atom"],
               window=(-0.7, -0.5), top=20, out=out, descriptors="dft_free",
               verify=verify if have_oracle else 0, oracle="chgnet", in_domain_only=False,
               console=console)
