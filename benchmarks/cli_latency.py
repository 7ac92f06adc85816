"""Latency of the `matforge` command as a new user meets it: help, errors, small jobs.

Usage: ``.venv/bin/python benchmarks/cli_latency.py [--repeats 5] [--out FILE.json]`` — prints
one JSON document (and writes it to ``--out`` when given).

Every timing is the wall-clock time of a fresh ``matforge`` process (the console script next to
this Python), median of ``--repeats`` runs, in a temporary folder with ``MATFORGE_HOME`` and the
store pointed into it, so nothing touches the user's home:

* ``matforge --help`` and the ``--help`` of every command and sub-command, the list taken from
  the Typer app itself (target ≤ 0.5 s each);
* ``matforge predict --model nope ...``: the error for a model that does not exist (≤ 1 s);
* ``matforge predict`` of 3 formulas with a saved random-forest model (trained once beforehand
  on ``matbench_steels``; ≤ 3 s);
* ``matforge ingest`` of a 2-row CSV into a new SQLite store (≤ 2 s).

Timings depend on the machine's load, reported as ``os.getloadavg()`` before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELP_TARGET_S = 0.5
MISSING_MODEL_TARGET_S = 1.0
PREDICT_TARGET_S = 3.0
INGEST_TARGET_S = 2.0


def matforge_exe() -> str:
    """The console script installed beside this interpreter (``.venv/bin/matforge``)."""
    exe = Path(sys.executable).with_name("matforge")
    if not exe.exists():  # pragma: no cover - running outside the virtualenv
        raise SystemExit(f"no matforge script beside {sys.executable}; run with .venv/bin/python")
    return str(exe)


def command_paths() -> list[list[str]]:
    """Every command and sub-command of the Typer app, as argument lists (root first)."""
    import typer.main

    from matforge.cli.main import app

    out: list[list[str]] = []

    def walk(cmd, path: list[str]) -> None:
        out.append(path)
        for name in sorted(getattr(cmd, "commands", {}) or {}):
            walk(cmd.commands[name], [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def timed(args: list[str], env: dict, cwd: Path, expect_rc: int = 0) -> float:
    """Wall-clock seconds of one fresh ``matforge`` process; fails on an unexpected status."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [matforge_exe(), *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != expect_rc:
        raise SystemExit(
            f"matforge {' '.join(args)}: exit {proc.returncode} (expected {expect_rc})\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed


def median_time(args_for_run, env: dict, cwd: Path, repeats: int, expect_rc: int = 0) -> float:
    """Median over ``repeats`` runs; ``args_for_run(i)`` gives the arguments of run ``i``."""
    return statistics.median(timed(args_for_run(i), env, cwd, expect_rc) for i in range(repeats))


def entry(name: str, seconds: float, target: float) -> dict:
    return {
        "command": name,
        "median_s": round(seconds, 3),
        "target_s": target,
        "pass": seconds <= target,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    opts = parser.parse_args()

    load_before = os.getloadavg()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="matforge-latency-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "MATFORGE_HOME": str(work / "home"),
            "MATFORGE_DB": str(work / "default.db"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "COLUMNS": "100",
        }

        for path in command_paths():
            args = [*path, "--help"]
            t = median_time(lambda _i, a=args: a, env, work, opts.repeats)
            results.append(entry("matforge " + " ".join(args), t, HELP_TARGET_S))

        (work / "formulas.csv").write_text("formula\nFe0.7Ni0.2Cr0.1\nFe0.8C0.01Mn0.19\nFe0.9Ni0.1\n")
        missing = ["predict", "--model", "nope", "formulas.csv", "-o", "out.csv"]
        t = median_time(lambda _i: missing, env, work, opts.repeats, expect_rc=2)
        results.append(entry("matforge " + " ".join(missing), t, MISSING_MODEL_TARGET_S))

        t0 = time.perf_counter()
        timed(["train", "--dataset", "matbench_steels", "--model", "rf", "--name", "steels-rf"],
              env, work)  # fmt: skip
        train_s = time.perf_counter() - t0
        predict = ["predict", "--model", "steels-rf", "formulas.csv", "-o", "preds.csv"]
        t = median_time(lambda _i: predict, env, work, opts.repeats)
        results.append(entry("matforge " + " ".join(predict), t, PREDICT_TARGET_S))

        (work / "two.csv").write_text("formula,value\nFe2O3,210\nNiO,180\n")

        def ingest(i: int) -> list[str]:  # a new store each run: what a first ingest costs
            return ["ingest", "two.csv", "--project", "p", "--property", "bulk_modulus",
                    "--unit", "GPa", "--db", str(work / f"lab{i}.db")]  # fmt: skip

        t = median_time(ingest, env, work, opts.repeats)
        results.append(entry("matforge ingest two.csv ... --db NEW.db (2 rows)", t, INGEST_TARGET_S))

    report = {
        "benchmark": "cli_latency",
        "repeats": opts.repeats,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "setup_train_steels_rf_s": round(train_s, 2),
        "all_pass": all(r["pass"] for r in results),
        "failed": [r["command"] for r in results if not r["pass"]],
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if opts.out:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
