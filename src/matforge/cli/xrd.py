"""`matforge xrd ...`: simulate patterns, identify structures, train the classifier; and
`matforge benchmark xrd` (:func:`benchmark_command`).

Heavy libraries (numpy, pymatgen, torch, plotly) are imported inside the commands so that
`matforge --help` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from matforge.xrd.benchmark import (
    DEFAULT_DATA_DIR,
    EPOCHS,
    LABEL_SMOOTHING,
    TRAIN_EPOCHS,
    TRAIN_ROUNDS,
)
from matforge.xrd.radiation import CU_KA1

app = typer.Typer(
    help="Powder X-ray diffraction: simulate patterns, identify crystal structures (CNN).",
    no_args_is_help=True,
)



def _console():
    from rich.console import Console

    return Console()


@app.command("simulate")
def simulate_cmd(
    structure: Path = typer.Argument(..., help="CIF or POSCAR file."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Pattern file to write (.xy)."),
    wavelength: str = typer.Option("CuKa1", help="Radiation name (CuKa1, CuKa, MoKa, ...) or Å."),
    two_theta_min: float = typer.Option(10.0, "--min", help="Start of the range, degrees 2θ."),
    two_theta_max: float = typer.Option(90.0, "--max", help="End of the range, degrees 2θ."),
    step: float = typer.Option(0.02, help="Step of the 2θ grid, degrees."),
    fwhm: float = typer.Option(0.1, help="Peak full width at half maximum, degrees 2θ."),
    size_nm: float | None = typer.Option(
        None, help="Crystallite size for Scherrer broadening, nm."
    ),
) -> None:
    """Simulate the powder pattern of a structure file; print its strongest peaks and write a
    two-column .xy profile (2θ, intensity) with -o."""
    import numpy as np

    from matforge.errors import PatternFileError
    from matforge.xrd.io import Pattern, write_xy
    from matforge.xrd.simulate import profile, simulate

    wl = _number_or_name(wavelength)
    if not two_theta_min < two_theta_max:
        raise typer.BadParameter(f"--min ({two_theta_min}) must be below --max ({two_theta_max})")
    if step <= 0:
        raise typer.BadParameter(f"--step must be > 0, got {step}")
    try:
        peaks = simulate(structure, wavelength=wl, two_theta_range=(two_theta_min, two_theta_max))[
            0
        ]
    except (FileNotFoundError, ValueError) as exc:
        raise PatternFileError(f"{structure}: {exc}") from exc
    grid = np.round(np.arange(two_theta_min, two_theta_max + step / 2, step), 6)
    y = profile(peaks, grid, fwhm=fwhm, crystallite_size_nm=size_nm)
    console = _console()
    from rich.table import Table

    table = Table(title=f"{structure.name}: {len(peaks)} reflections, λ = {peaks.wavelength} Å")
    for col in ("2θ (°)", "d (Å)", "I (max 100)", "hkl"):
        table.add_column(col, justify="right" if col != "hkl" else "left")
    order = np.argsort(-peaks.intensity)[:15]
    for i in sorted(order, key=lambda j: peaks.two_theta[j]):
        hkl = ", ".join("".join(str(v) for v in f["hkl"]) for f in peaks.hkls[i])
        table.add_row(f"{peaks.two_theta[i]:.3f}", f"{peaks.d_spacings[i]:.4f}",
                      f"{peaks.intensity[i]:.1f}", hkl)  # fmt: skip
    console.print(table)
    if out is not None:
        pattern = Pattern(
            grid, y, wavelength=peaks.wavelength, source=f"simulated from {structure.name}"
        )
        write_xy(pattern, out)
        console.print(f"wrote {out} ({len(grid)} points, {grid[0]}–{grid[-1]}° 2θ)")


def _pattern_files(items: list[Path]) -> list[Path]:
    """Files of the arguments: a file as given, a folder's pattern files (sorted), a glob's
    matches; raises for an argument that names nothing."""
    import glob

    from matforge.xrd.io import TEXT_SUFFIXES

    suffixes = (*TEXT_SUFFIXES, ".xrdml")
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in suffixes)
            if not found:
                raise typer.BadParameter(f"{item} holds no pattern files ({', '.join(suffixes)})")
            files += found
        elif item.exists():
            files.append(item)
        elif any(c in str(item) for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
            if not found:
                raise typer.BadParameter(f"no file matches {item}")
            files += found
        else:
            raise typer.BadParameter(f"no such file or folder: {item}")
    return list(dict.fromkeys(files))


def _identify_many(files, clf, *, top, threshold, wavelength, axis, as_json, out) -> None:
    """One row per pattern: the best class of each head with its probability, or why the file
    could not be read; a table, or JSON, and ``out`` (.csv or .json)."""
    import pandas as pd
    from rich.progress import Progress

    from matforge.xrd.identify import HEADS, identify_files

    heads = tuple(HEADS.items())
    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task("identifying", total=len(files))
        table = identify_files(files, clf, top=top, threshold=threshold, wavelength=wavelength,
                               axis=axis, on_done=lambda: progress.advance(task))  # fmt: skip
    if _write_table(table, out, as_json):
        return
    from matforge.cli.tables import print_frame

    shown = pd.DataFrame({"file": [Path(f).name for f in table["file"]]})
    for h, title in heads:
        shown[title] = [
            "" if r["error"] else f"{r[h]} ({r[f'{h}_probability']:.2f})"
            for r in table.to_dict("records")
        ]
    shown["notes"] = [
        r["error"] or (f"{n} warning(s)" if (n := len([w for w in r["warnings"].split(" | ") if w]))
                       else "")
        for r in table.to_dict("records")
    ]  # fmt: skip
    title = f"{len(files)} patterns (threshold {threshold:.2f}; below it: uncertain)"
    print_frame(shown, title, max_rows=len(shown), keep=("file",))
    if out is not None:
        _console().print(f"wrote {out}")


def _search_match_cmd(files, *, many, elements, refs, max_phases, refine, model, wavelength,
                      axis, top, jobs, as_json, out, html, save_to, db) -> None:  # fmt: skip
    """`identify --elements/--refs`: search-match each file (:func:`search_match_files`),
    print the answer (one pattern) or a summary table (many), write --out, --html, --save-to."""
    from rich.progress import Progress

    from matforge.errors import MatforgeError
    from matforge.xrd.searchmatch import search_match_files

    with Progress(transient=True, disable=as_json or len(files) < 2) as progress:
        task = progress.add_task("search-match", total=len(files))
        results = search_match_files(
            files, elements, refs=refs, max_phases=max_phases, refine=refine, model=model,
            wavelength=wavelength, axis=axis, top=top, jobs=jobs,
            on_done=lambda: progress.advance(task),
        )  # fmt: skip
    if not many and isinstance(results[0], MatforgeError):
        raise results[0]
    stored = _save_matches(results, save_to, db) if save_to is not None else []
    if many:
        _search_match_table(files, results, as_json=as_json, out=out)
    else:
        res = results[0]
        if as_json:
            d = res.to_dict()
            if stored:
                d["stored_structure_ids"] = stored
            typer.echo(json.dumps(d, indent=2, default=float))
        else:
            _print_search_match(res)
        if html is not None:
            html.parent.mkdir(parents=True, exist_ok=True)
            res.plot().write_html(html, include_plotlyjs=True)
            typer.echo(f"wrote {html} (observed, calculated, phases, difference)", err=as_json)
    if stored:
        typer.echo(f"stored {len(stored)} structure(s) in project {save_to}: ids "
                   f"{', '.join(map(str, stored))}", err=as_json)  # fmt: skip


def _save_matches(results, project: str, db) -> list[int]:
    """Store every found phase's structure (refined lattice when refined) of ``results``;
    the score kept is 1 − Rwp of the pattern's final fit (refined when refined)."""
    from matforge.errors import MatforgeError
    from matforge.store import Store
    from matforge.store.structures import add_xrd_match

    ids = []
    with Store(db) as store:
        for res in results:
            if isinstance(res, MatforgeError):
                continue
            rwp = res.rwp if res.refinement is None else res.refinement.rwp
            for m, s in zip(res.phases, res.structures(), strict=True):
                ids.append(add_xrd_match(store, s, project, pattern=res.source,
                                         label=m.phase.prototype or m.name,
                                         score=max(0.0, 1.0 - rwp)))  # fmt: skip
    return ids


def _print_search_match(res) -> None:
    """One pattern's search-match answer: the phases found, the refinement, the single-phase
    ranking and the mixture steps."""
    import numpy as np
    import pandas as pd

    from matforge.cli.tables import print_frame

    console = _console()
    ref = res.refinement
    console.print(f"[bold]{res.source}[/bold]: {len(res.phases)} phase(s) among "
                  f"{res.n_candidates} candidates for {','.join(res.elements) or 'the references'}"
                  f" ({res.seconds:.1f} s)")  # fmt: skip
    for note in res.warnings:
        console.print(f"[yellow]warning:[/yellow] {note}")
    refined = {} if ref is None else {p.name: p for p in ref.phases}
    rows = []
    for m in res.phases:
        (a, b, c), (al, be, ga) = m.lattice
        if m.name in refined:
            (a, b, c), (al, be, ga) = refined[m.name].abc, refined[m.name].angles
        rows.append({"phase": m.name, "space group": m.phase.spacegroup,
                     "wt %": round(100 * m.weight_fraction, 1),
                     **{k: round(float(v), 5) for k, v in (("a (Å)", a), ("b (Å)", b),
                                                           ("c (Å)", c))},
                     **{k: round(float(v), 3) for k, v in (("α", al), ("β", be), ("γ", ga))}})  # fmt: skip
    title = f"phases found (Rwp {res.rwp:.4f}" + (
        f"; refined Rwp {ref.rwp:.4f})" if ref is not None else ")"
    )
    print_frame(pd.DataFrame(rows), title, keep=("phase",))
    if ref is not None:
        esd = "; ".join(
            f"{p.name}: a ± {p.abc_esd[0]:.5f} Å" for p in ref.phases if np.isfinite(p.abc_esd[0])
        )
        console.print(f"refinement (Pawley, {ref.cycles} cycles): Rwp {ref.rwp_start:.4f} → "
                      f"{ref.rwp:.4f}, zero shift {ref.zero:+.4f}° 2θ" + (f"; {esd}" if esd else ""))  # fmt: skip
    cand = [{"#": i, "candidate": m.name, "space group": m.phase.spacegroup,
             "Rwp": round(m.rwp, 4), "classifier p": round(m.classifier_probability, 3),
             "a (Å)": round(float(m.lattice[0][0]), 4), "c (Å)": round(float(m.lattice[0][2]), 4)}
            for i, m in enumerate(res.candidates, 1)]  # fmt: skip
    print_frame(pd.DataFrame(cand), "single-phase fits, best first", keep=("candidate",))
    for st in res.steps:
        console.print(step_line(st), markup=False)


def step_line(st: dict) -> str:
    """One line on a mixture step of :attr:`SearchMatchResult.steps`: a further phase kept or
    turned down, a phase replaced on the revisit, a phase dropped as redundant, or a phase
    given the species of an isostructural candidate."""
    rwp = f"Rwp {st['rwp_before']:.4f} → {st['rwp_after']:.4f}"
    action = st.get("action", "add")
    if action == "replace":
        return f"revisit: {st['replaces']} replaced by {st['phase']}: {rwp} ({100 * st['gain']:.0f} % lower)"
    if action == "species":
        return (f"species: {st['replaces']} fits as {st['phase']} (the same structure type): "
                f"{rwp} ({100 * st['gain']:.1f} % lower)")  # fmt: skip
    if action == "drop":
        return (f"revisit: {st['phase']} dropped, the others explain its part: without it {rwp} "
                f"({100 * st['gain']:.1f} % higher)")  # fmt: skip
    verdict = "kept" if st["accepted"] else "turned down"
    return (f"further phase {st['phase']}: {rwp} ({100 * st['gain']:.0f} % lower), "
            f"{100 * st['weight_fraction']:.1f} wt % — {verdict}")  # fmt: skip


def _search_match_table(files, results, *, as_json: bool, out) -> None:
    """Many patterns' search-match answers: one row per pattern, printed, and in ``out``."""
    import pandas as pd

    from matforge.cli.tables import print_frame
    from matforge.errors import MatforgeError

    rows = []
    for f, res in zip(files, results, strict=True):
        if isinstance(res, MatforgeError):
            rows.append({"file": str(f), "n_phases": 0, "error": str(res)})
        else:
            rows.append({"file": str(f), **res.summary_row(), "seconds": res.seconds,
                         "error": ""})  # fmt: skip
    keys = next((list(r.summary_row()) for r in results if not isinstance(r, MatforgeError)), [])
    table = pd.DataFrame(rows).reindex(columns=["file", *keys, "seconds", "error"])
    table["error"] = table["error"].fillna("")
    table["n_phases"] = table["n_phases"].fillna(0).astype(int)
    if _write_table(table, out, as_json):
        return
    shown = pd.DataFrame({"file": [Path(f).name for f in table["file"]]})
    ok = table["error"] == ""
    for col, src in (("phases", "phases"), ("wt fractions", "weight_fractions")):
        shown[col] = table[src].where(ok, "") if src in table else ""
    shown["Rwp"] = table["rwp"].where(ok).round(4) if "rwp" in table else float("nan")
    if "refined_rwp" in table and table["refined_rwp"].notna().any():
        shown["refined Rwp"] = table["refined_rwp"].astype(float).round(4)
    shown["notes"] = table["error"]
    print_frame(shown, f"{len(files)} patterns (search-match)", max_rows=len(shown),
                keep=("file", "phases"))  # fmt: skip
    if out is not None:
        _console().print(f"wrote {out}")


def _number_or_name(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


@app.command("identify")
def identify_cmd(
    patterns: list[Path] = typer.Argument(
        ..., help="Pattern file(s) (.xy, .xye, .csv, .xrdml, ...), folders of them, or globs."
    ),
    top: int = typer.Option(5, min=1, help="Candidates shown per head."),
    threshold: float = typer.Option(
        0.5, min=0.0, max=1.0, help="Below this calibrated probability a head answers 'uncertain'."
    ),
    html: Path | None = typer.Option(None, help="Write an interactive overlay (HTML, offline)."),
    wavelength: str | None = typer.Option(
        None,
        help="Radiation name (CuKa1, CuKa, MoKa, CoKa, ...) or Å; overrides the file's "
        f"(default: the file's, else Cu Kα1, {CU_KA1} Å).",
    ),
    axis: str | None = typer.Option(
        None, help="What the first column holds: 2theta (degrees) or q (Å⁻¹); default: the "
        "file's column name, else 2theta.",
    ),  # fmt: skip
    model: Path | None = typer.Option(None, help="Weights (.pt/.json stem); default shipped."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Several patterns: write the summary table (.csv or .json)."
    ),
    elements: str | None = typer.Option(
        None, "--elements", "-e", help="The sample's elements, e.g. Ti,O: search-match among "
        "the bundled prototypes with sensible substitutions (and --refs), fitted to the pattern.",
    ),  # fmt: skip
    refs: list[Path] | None = typer.Option(
        None, "--refs", help="Search-match: a folder (or file) of reference CIFs, your own phase "
        "library; repeatable. Alone (no --elements), only these are candidates.",
    ),  # fmt: skip
    max_phases: int = typer.Option(
        1, "--max-phases", min=1, max=3, help="Search-match: up to this many phases (a mixture)."
    ),
    refine: bool = typer.Option(
        False, "--refine", help="Search-match: Pawley refinement of the answer (free "
        "intensities; lattice, zero shift, widths), with Rwp and the difference curve.",
    ),  # fmt: skip
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="Search-match of many patterns: processes to use."
    ),
    save_to: str | None = typer.Option(
        None, "--save-to", help="Store the matched structure(s) (refined with --refine) in this "
        "project of the store (method xrd_match).",
    ),  # fmt: skip
    db: str | None = typer.Option(
        None, "--db", help="With --save-to: the store, a SQLite path or SQLAlchemy URL "
        "(default: $MATFORGE_DB or ~/.matforge/matforge.db).",
    ),  # fmt: skip
) -> None:
    """Identify crystal system, space group and prototype of a measured pattern, or of many
    (files, folders, globs: one summary table). With --elements (or --refs): which phases, with
    which lattices and weight fractions, make up the pattern (search-match)."""
    from rich.table import Table

    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.identify import HEADS, best_overlay, identify, overlay_figure
    from matforge.xrd.io import read_pattern
    from matforge.xrd.simulate import _wavelength

    if axis is not None and axis.lower() not in ("2theta", "q"):
        raise typer.BadParameter(f"--axis must be 2theta or q, got {axis!r}")
    try:
        wl = None if wavelength is None else _wavelength(_number_or_name(wavelength))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--wavelength") from None
    files = _pattern_files(patterns)
    many = len(files) > 1 or any(p.is_dir() for p in patterns) or out is not None
    if elements is not None or refs:
        if html is not None and many:
            raise typer.BadParameter("--html draws one pattern; give one file", param_hint="--html")
        _search_match_cmd(files, many=many, elements=elements, refs=refs or None,
                          max_phases=max_phases, refine=refine, model=model, wavelength=wl,
                          axis=None if axis is None else axis.lower(), top=top, jobs=jobs,
                          as_json=as_json, out=out, html=html, save_to=save_to, db=db)  # fmt: skip
        return
    for flag, used in (("--max-phases", max_phases != 1), ("--refine", refine)):
        if used:
            raise typer.BadParameter(f"{flag} is for search-match: give --elements (or --refs)")
    if save_to is not None and many:
        raise typer.BadParameter(
            "--save-to with several patterns needs search-match: give --elements (or --refs)"
        )
    if many:
        if html is not None:
            raise typer.BadParameter("--html draws one pattern; give one file", param_hint="--html")
        _identify_many(files, XRDClassifier.load(model), top=top, threshold=threshold,
                       wavelength=wl, axis=axis, as_json=as_json, out=out)  # fmt: skip
        return
    pattern = files[0]
    pat = read_pattern(pattern, wavelength=wl, axis=None if axis is None else axis.lower())
    clf = XRDClassifier.load(model)
    result = identify(pat, model=clf, top=top, threshold=threshold)
    match = None
    if html is not None or save_to is not None:
        match = best_overlay(pat, result)
    if as_json:
        d = result.to_dict()
        if match is not None:
            d["overlay"] = {"prototype": match.label, "scale": match.scale, "score": match.score}
        typer.echo(json.dumps(d, indent=2))
    else:
        console = _console()
        console.print(f"[bold]{pattern}[/bold]  (threshold {threshold:.2f}; below it: uncertain)")
        for note in result.warnings:
            console.print(f"[yellow]warning:[/yellow] {note}")
        for head, title in HEADS.items():
            verdict = result.best(head)
            style = "yellow" if verdict == "uncertain" else "green"
            table = Table(title=f"{title}: [{style}]{verdict}[/{style}]", title_justify="left")
            table.add_column("#", justify="right")
            table.add_column(title)
            if head == "prototype":
                table.add_column("example")
            table.add_column("probability", justify="right")
            for i, c in enumerate(result.candidates[head], 1):
                row = [str(i), c.name]
                if head == "prototype":
                    info = result.prototype_info.get(c.name, {})
                    row.append(
                        " ".join(str(v) for v in (info.get("formula"), info.get("mineral")) if v)
                    )
                row.append(f"{c.probability:.3f}")
                table.add_row(*row)
            console.print(table)
    if save_to is not None:
        from matforge.store import Store
        from matforge.store.structures import add_xrd_match
        from matforge.xrd.identify import prototype_structure

        with Store(db) as store:
            sid = add_xrd_match(store, prototype_structure(match.label)[0], save_to,
                                pattern=str(pattern), label=match.label, score=match.score,
                                scale=match.scale)  # fmt: skip
        typer.echo(f"stored {match.label} (lattice ×{match.scale:.3f}) as structure {sid} in "
                   f"project {save_to}", err=as_json)  # fmt: skip
    if html is not None:
        fig = overlay_figure(pat, result, match)
        html.parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(html, include_plotlyjs=True)
        msg = f"wrote {html} (overlay with {match.label}, lattice ×{match.scale:.3f})"
        try:
            import kaleido  # noqa: F401

            png = html.with_suffix(".png")
            fig.write_image(png)
            msg += f" and {png}"
        except Exception:  # noqa: BLE001 - PNG export is optional (kaleido + a browser)
            pass
        typer.echo(msg, err=as_json)


@app.command("train")
def train_cmd(
    seed: int = typer.Option(0, help="Seed of structures, splits, augmentation and training."),
    epochs: int = typer.Option(TRAIN_EPOCHS, min=1, help="Passes over the training patterns."),
    rounds: int = typer.Option(
        TRAIN_ROUNDS, min=1,
        help="Independently augmented draws of the training patterns; epoch e trains on "
        "round e mod ROUNDS (a fresh draw each epoch, cycled).",
    ),  # fmt: skip
    out: Path = typer.Option(Path("src/matforge/xrd/data"), help="Folder for cnn_v1.pt/.json."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="Cache of structures and patterns."),
    n_variants: int = typer.Option(19, help="Substituted variants per AFLOW prototype."),
    n_random: int = typer.Option(40, help="Random crystals per space group."),
    patterns: int = typer.Option(12, help="Training patterns per prototype-derived structure."),
    random_patterns: int = typer.Option(6, help="Training patterns per random crystal."),
    eval_patterns: int = typer.Option(4, help="Patterns per validation/test structure."),
    batch_size: int = typer.Option(256),
    lr: float = typer.Option(3e-3, help="Peak learning rate (one-cycle)."),
    label_smoothing: float = typer.Option(
        LABEL_SMOOTHING, min=0.0, max=0.5, help="Label smoothing of the cross-entropy."
    ),
    threads: int = typer.Option(
        2, help="CPU threads for torch, and processes that generate the rounds."
    ),
    device: str | None = typer.Option(None, help="torch device; default CUDA when present."),
) -> None:
    """Train the XRD classifier on the chemical-system split's training side (the shipped
    weights are `matforge xrd train` with the defaults)."""
    import numpy as np

    from matforge.xrd.cnn import HEADS, train_classifier
    from matforge.xrd.identify import example_pattern
    from matforge.xrd.io import write_xy
    from matforge.xrd.training_data import (
        classifier_classes,
        grid_spec,
        prepare_data,
        prototype_info,
    )

    console = _console()
    t0 = time.time()
    data = prepare_data(data_dir, seed=seed, n_variants=n_variants, n_random=n_random,
                        train_patterns=patterns, random_train_patterns=random_patterns,
                        eval_patterns=eval_patterns, train_rounds=rounds, jobs=threads,
                        log=console.print)  # fmt: skip
    gen_minutes = (time.time() - t0) / 60
    x_tr, y_tr, rows, _ = data.patterns("chemsys", "train")
    x_tr = [x_tr]
    for r in range(1, rounds):
        x_r, _, rows_r, _ = data.patterns("chemsys", "train", round=r)
        if not np.array_equal(rows_r, rows):
            raise RuntimeError(f"round {r} of the training patterns has other structures")
        x_tr.append(x_r)
    x_va, y_va, _, _ = data.patterns("chemsys", "val", max_per_structure=4)
    console.print(f"{len(rows):,} training patterns × {rounds} round(s) and {len(x_va):,} "
                  "validation patterns")  # fmt: skip
    clf = train_classifier(
        x_tr, y_tr, x_va, y_va, classes=classifier_classes(), grid=grid_spec(data.grid),
        wavelength=CU_KA1, epochs=epochs, batch_size=batch_size, lr=lr,
        label_smoothing=label_smoothing, seed=seed, device=device, threads=threads,
        log=console.print,
    )  # fmt: skip
    clf.meta["prototypes"] = prototype_info()
    clf.meta["training"]["data"] = {
        "seed": seed, "n_variants": n_variants, "n_random": n_random,
        "train_patterns": patterns, "random_train_patterns": random_patterns,
        "eval_patterns": eval_patterns, "rounds": rounds, "split": "chemsys",
        "n_structures": len(data.structures), "data_minutes": gen_minutes,
        "command": f"matforge xrd train --seed {seed} --epochs {epochs} --rounds {rounds} "
        f"--n-variants {n_variants} "
        f"--n-random {n_random} --patterns {patterns} --random-patterns {random_patterns} "
        f"--eval-patterns {eval_patterns} --batch-size {batch_size} --lr {lr:g} "
        f"--label-smoothing {label_smoothing:g} --threads {threads}",
    }  # fmt: skip
    pt, js = clf.save(out)
    write_xy(example_pattern(), out / "example_pattern.xy")
    val = clf.meta["training"]["val"]
    console.print(
        f"saved {pt} ({pt.stat().st_size / 1e6:.1f} MB) and {js}; training "
        f"{clf.meta['training']['minutes']:.1f} min; validation top-1 "
        + ", ".join(f"{h} {val[h]['top1']:.3f}" for h in HEADS)
    )


BENCHMARK_PARTS = ("classifier", "indexing", "searchmatch", "real")


def benchmark_command(
    model: Path | None = typer.Option(None, help="Weights (.pt/.json stem); default shipped."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="Cache of structures and patterns."),
    out: Path = typer.Option(Path("results/xrd"), help="Folder for the results (JSON, Markdown)."),
    docs: Path | None = typer.Option(
        None,
        help="Also rewrite the '## XRD' and '## XRD against issue #17' sections of this file "
        "(docs/benchmarks.md).",
    ),
    parts: str = typer.Option(
        ",".join(BENCHMARK_PARTS),
        help="Comma-separated parts to run: classifier (set A network alone, prototype split, "
        "defect sweeps, E), indexing (set A with indexing, identify speed), searchmatch (C, D "
        "and their speed), real (set E alone). The targets table uses the results in --out "
        "of the parts not run.",
    ),
    proto_epochs: int = typer.Option(
        EPOCHS, min=0, help="Epochs of the prototype-split model (0 skips)."
    ),
    sweep_structures: int = typer.Option(
        1000, min=1, help="Test structures (a seeded sample) in the defect sweeps."
    ),
    indexing_patterns: int = typer.Option(600, min=1, help="Set A patterns indexed (a sample)."),
    single: int = typer.Option(80, min=0, help="Single-phase search-match patterns (C)."),
    mix2: int = typer.Option(30, min=0, help="Two-phase mixtures (D)."),
    mix3: int = typer.Option(20, min=0, help="Three-phase mixtures (D)."),
    real_single: int | None = typer.Option(
        None,
        "--real-single",
        min=0,
        help="Search-match on this many real structures of set E (default all with a prototype).",
    ),
    searchmatch_cache: Path | None = typer.Option(
        None, help="Structure sets of C and D (default: --data-dir)."
    ),
    threads: int = typer.Option(2, help="CPU threads for torch (processes for indexing)."),
    device: str | None = typer.Option(None, help="torch device; default CUDA when present."),
    real_only: bool = typer.Option(
        False, "--real-only", help="Only set E, the real published structures (a minute)."
    ),
) -> None:
    """XRD benchmark of issue #17: the classifier on chemical-system-disjoint and
    prototype-disjoint test sets (top-1/top-5 per head, crystal-system confusion, accuracy vs
    defect level), the network with indexing and the speed of identify, element-aware
    search-match and mixtures (sets C and D) with their speed, real published structures
    (set E), and the table of the issue's targets."""
    from matforge.xrd.benchmark import benchmark_markdown, run_benchmark, write_docs_section

    console = _console()
    chosen = ["real"] if real_only else [p.strip() for p in parts.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARK_PARTS))
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown part(s) {', '.join(unknown) or '(none given)'}; choose among "
            + ", ".join(BENCHMARK_PARTS),
            param_hint="--parts",
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, result: dict) -> None:
        (out / name).write_text(json.dumps(result, indent=2, default=float))
        written.append(str(out / name))

    if "real" in chosen and "classifier" not in chosen:  # the classifier part includes E
        from matforge.xrd.real_set import evaluate_real_structures, real_markdown

        result = evaluate_real_structures(model, jobs=threads, log=console.print)
        save("real_structures.json", result)
        console.print("\n".join(real_markdown(result)), markup=False)
    if "classifier" in chosen:
        result = run_benchmark(model, data_dir, proto_epochs=proto_epochs,
                               sweep_structures=sweep_structures, threads=threads, device=device,
                               log=console.print)  # fmt: skip
        save("benchmark.json", result)
        if "real_structures" in result:
            save("real_structures.json", result["real_structures"])
        md = benchmark_markdown(result)
        (out / "benchmark.md").write_text(md)
        if docs is not None:
            write_docs_section(docs, md)
        console.print(md, markup=False)
    if "indexing" in chosen:
        from matforge.xrd.benchmark_sets import run_indexing

        console.print(f"set A with indexing: {indexing_patterns} patterns")
        save("indexing.json", run_indexing(
            data_dir, model=model, n=indexing_patterns, jobs=threads,
            command=f"matforge benchmark xrd --parts indexing --indexing-patterns "
            f"{indexing_patterns} --threads {threads}",
        ))  # fmt: skip
    if "searchmatch" in chosen:
        from matforge.xrd.benchmark_sets import run_searchmatch

        save("searchmatch.json", run_searchmatch(
            searchmatch_cache or data_dir, model=model, single=single, mix2=mix2, mix3=mix3,
            refine=True, real=real_single,
            command=f"matforge benchmark xrd --parts searchmatch --single {single} "
            f"--mix2 {mix2} --mix3 {mix3}"
            + ("" if real_single is None else f" --real-single {real_single}"), log=console.print,
        ))  # fmt: skip
    names = ("benchmark", "indexing", "searchmatch", "real_structures")
    missing = [n for n in names if not (out / f"{n}.json").exists()]
    if missing:
        console.print(f"no targets table: {', '.join(f'{n}.json' for n in missing)} not in {out}")
    else:
        from matforge.xrd.benchmark_sets import HEADING, targets_markdown

        md = targets_markdown(*(json.loads((out / f"{n}.json").read_text()) for n in names))
        (out / "targets.md").write_text(md)
        written.append(str(out / "targets.md"))
        if docs is not None:
            write_docs_section(docs, md, heading=HEADING)
        console.print(md, markup=False)
    console.print(f"wrote {', '.join(written)}" + (f", {docs}" if docs else ""))


def _write_table(table, out: Path | None, as_json: bool) -> bool:
    """Write a per-pattern DataFrame to ``out`` (.json, else CSV) and, with ``as_json``, print it
    as JSON; True when it was printed (nothing else to show)."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".json":
            out.write_text(table.to_json(orient="records", indent=2))
        else:
            table.to_csv(out, index=False)
    if as_json:
        typer.echo(table.to_json(orient="records", indent=2))
    return as_json
