"""Every cheap `matforge` command shown in README.md and docs/*.md runs and exits as documented.

The ```bash blocks (and the ``$ ``-prompted lines of ```console blocks) are read from the files
themselves, so an edited example is tested as edited. Each block runs in a folder of its own
(``docs/`` linked in for the bundled examples), with ``HOME``, ``MATFORGE_HOME`` and
``MATFORGE_DB`` inside it, so nothing touches the user's home. Commands run through ``bash``
in the order of their block: a test runs the cheap commands above its own first (once per
block), so the files they create exist and ``-k`` picks out any single command. The block's
own ``printf``/``python -c``/``export`` lines run as they come; other shell lines (``make``,
``curl``, ``source``) are not matforge's and are left out.

What is not run by default, and why, is the table :data:`NOT_RUN` below; ``@pytest.mark.slow``
ones run under ``make test-all``. A test fails when a command in the docs no longer matches a
table entry (:func:`test_tables_name_documented_commands`), so the tables cannot go stale.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent  # the virtualenv's bin: matforge and python
TIMEOUT_S = 600

SKIP, SLOW = "skip", "slow"

# Commands that are not run in the default suite: (file, command as documented, comments
# stripped and continuation lines joined) -> (SKIP or SLOW, why). SLOW ones run with -m slow.
# A documented command that fails and cannot be fixed at once goes here as (SKIP, "fails:
# <error>"), and into an issue; none does at the time of writing.
NOT_RUN: dict[tuple[str, str], tuple[str, str]] = {
    # -- long: minutes of training, screening or benchmarking ----------------------------------
    ("README.md", "matforge screen run enumerate --elements B,C,N,Ti,W,Re,Os --max-atoms 6 "
     "--arities 2,3 --balance charge --exclude elasticity --preset superhard-fast --derive "
     "hardness_vickers --where \"hardness_vickers > 20\" --rank-by ucb:hardness_vickers "
     "--top-k 50 --out results/screen --save-all"):
        (SLOW, "~5 s, with its query ~6 s: keeps the default run under ~90 s on a busy machine"),
    ("README.md", "matforge screen query results/screen/results.parquet \"SELECT formula, "
     "hardness_vickers, hardness_vickers_std FROM results ORDER BY hardness_vickers DESC "
     "LIMIT 10\""): (SLOW, "needs results/screen from the slow screen above"),
    ("README.md", "matforge catalysis screen --metals Cu,Ag,Au,Zn,Sn,Ir,Rh --out "
     "results/catalysis/screen"): (SLOW, "fits the adsorption model, ~17 s on one core"),
    ("README.md", "matforge demo catalysis"): (SLOW, "about a minute"),
    ("README.md", "matforge catalysis loop --seeds 3"): (SLOW, "closed-loop replay, minutes"),
    ("README.md", "matforge generate sample --model rnn -n 20000 -o generated.csv"):
        (SLOW, "20,000 samples, ~30 s on one core"),
    ("README.md", "matforge generate sample -n 2000 --elements-in Ti,O --elements-out Pb "
     "--temperature 1.2 -o tio.csv"): (SLOW, "2,000 annotated samples, ~11 s on one core"),
    ("README.md", "matforge generate sample --model gan -n 20000 -o gan.csv"):
        (SLOW, "20,000 samples with novelty search"),
    ("README.md", "matforge train --dataset matbench_expt_gap --model lgbm --name gap"):
        (SLOW, "LightGBM with cross-validation on 4,604 rows"),
    ("README.md", "matforge generate optimize --reward \"band_gap in [1.0, 1.8]\" --model-ref "
     "band_gap=gap --budget 2000 -o designs.csv"): (SLOW, "2,000 model calls of an RL agent"),
    ("README.md", "matforge screen run designs.csv --model band_gap=gap --rank-by "
     "-band_gap_std --out results/designs"): (SLOW, "needs designs.csv from the slow optimize"),
    ("README.md", "matforge generate train --model rnn -o my_lm.pt"): (SKIP, "~10 min training"),
    ("README.md", "matforge generate train --model gan -o my_gan.pt"): (SKIP, "~7 min training"),
    ("README.md", "matforge benchmark matbench --task matbench_steels --folds 0,1 --model rf"):
        (SLOW, "two cross-validated folds"),
    ("models.md", "matforge pretrain -o src/matforge/models/data/pretrained_oqmd.pt --epochs 8 "
     "--seed 0"): (SKIP, "rebuilds the bundled encoder, ~200 s on 2 cores"),
    ("README.md", "matforge pretrain -o encoder.pt --max-rows 2000 --epochs 1"):
        (SLOW, "~8 s, most of it building the 301,358-row table; tests/test_models_pretrain.py "
         "covers pretraining in the default run"),
    ("benchmarks.md", "matforge catalysis loop --seeds 10 --budget 110 --out "
     "results/catalysis/loop.json"): (SKIP, "~5 min benchmark"),
    ("screening.md", "matforge screen run elasticity_pool --preset superhard --funnel 0.05 "
     "-o results/pool"): (SKIP, "trains the full superhard models and screens 128,000 rows"),
    ("screening.md", "matforge demo superhard"): (SKIP, "the make-demo job, 2.5-4 min"),
    ("screening.md", "matforge demo superhard --fast"): (SLOW, "16-30 s smoke run"),
    ("xrd.md", "matforge benchmark xrd --real-only --out results/xrd"):
        (SLOW, "435 patterns identified with indexing, ~2 min"),
    # the XRD search-match examples: the README's rutile+anatase mixture with refinement runs by
    # default; these variants of it (5-10 s each) are also covered by test_xrd_cli.py
    ("xrd.md", "matforge xrd identify docs/examples/xrd/sno2_textured.xy --elements Sn,O "
     "--refine --html sno2-fit.html"): (SLOW, "a Pawley refinement, ~6 s"),
    ("xrd.md", "matforge xrd identify docs/examples/xrd/tio2/rutile_anatase.xy --elements Ti,O "
     "--refs docs/examples/xrd/refs --max-phases 3"):
        (SLOW, "the README's mixture without --refine, ~8 s"),
    ("xrd.md", "matforge xrd identify docs/examples/xrd/tio2 --elements Ti,O --refs "
     "docs/examples/xrd/refs --max-phases 3 --out tio2-phases.csv"):
        (SLOW, "a folder of three patterns, ~10 s"),
    # -- needs a file the block does not create --------------------------------------------------
    ("README.md", "matforge campaign new pv --from my_gaps.csv --formula formula -t "
     "\"band_gap in [1.0, 1.8]\" --pool generated.csv --db lab.db"):
        (SKIP, "my_gaps.csv is the reader's own data"),
    ("README.md", "matforge campaign suggest pv -n 4 --db lab.db -o next.csv"):
        (SKIP, "needs campaign 'pv' from the skipped command above"),
    ("README.md", "matforge generate train --model rnn --csv my_compositions.csv --column "
     "formula --epochs 20 -o lab_lm.pt"): (SKIP, "my_compositions.csv is the reader's own data"),
    ("README.md", "matforge generate sample --weights lab_lm.pt -n 1000 -o lab_samples.csv"):
        (SKIP, "needs lab_lm.pt from the skipped training above"),
    ("screening.md", "matforge screen run enumerate --elements B,C,N,Ti,W,Re,Os --max-atoms 8 "
     "--arities 2,3 --balance charge --exclude elasticity --model bulk_modulus=my-bulk --model "
     "shear_modulus=my-shear --derive hardness_vickers --where \"hardness_vickers > 30\" "
     "--rank-by ucb:hardness_vickers --top-k 100 --out results/screen --save-all --dask "
     "local:2"): (SKIP, "models my-bulk and my-shear are the reader's own"),
    ("screening.md", "matforge screen run results/screen --resume"):
        (SKIP, "resumes the skipped screen above"),
    ("screening.md", "matforge screen query results/screen/results.parquet \"SELECT formula, "
     "hardness_vickers, hardness_vickers_std FROM results\n     WHERE bulk_modulus > 250 ORDER "
     "BY hardness_vickers DESC LIMIT 20\""): (SKIP, "queries the skipped screen above"),
    # -- a server: runs until stopped (tests/test_cli_serve.py starts it) ------------------------
    ("README.md", "matforge serve --port 8000"): (SKIP, "a server; tested in test_cli_serve.py"),
    ("server.md", "matforge serve --port 8000"): (SKIP, "a server; tested in test_cli_serve.py"),
}  # fmt: skip

# Exit status other than 0, and a phrase the output must contain, where the docs say what a
# command prints: (file, command) -> (exit status, phrase).
EXPECT: dict[tuple[str, str], tuple[int, str]] = {
    ("README.md", "matforge ingest moduli.csv --project oxides --property bulk_modulus --unit "
     "GPa --db lab.db"): (2, "1 of 3 rows of moduli.csv are invalid; nothing was written"),
    ("README.md", "matforge ingest moduli.csv --project oxides --property bulk_modulus --unit "
     "GPa --db lab.db --skip-invalid"): (0, "2 of 3 rows"),
    ("store.md", "matforge ingest moduli.csv --project oxides --property bulk_modulus --unit "
     "GPa --db lab.db"): (2, "value -5 GPa is physically impossible for bulk_modulus"),
    ("store.md", "matforge ingest moduli.csv --project oxides --property bulk_modulus --unit "
     "GPa --db lab.db --allow-unphysical"): (0, "1 outside the physical range of bulk_modulus"),
    ("README.md", "matforge train --dataset matbench_steels --model rf --name steels-rf"):
        (0, "coverage"),
    ("README.md", "matforge predict --model steels-rf alloys.csv -o preds.csv"):
        (0, "wrote 2 predictions to preds.csv"),
    ("campaigns.md", "matforge campaign new opv --from docs/examples/opv_blends.csv --target "
     "\"degradation min\" --formulation pce10,p3ht,pcbm --db lab.db"):
        (0, "16 past experiment(s)"),
    ("campaigns.md", "matforge campaign suggest opv -n 4 -o next.csv --db lab.db"):
        (0, "4 suggestion(s) written to next.csv"),
    ("campaigns.md", "matforge campaign observe opv next.csv --db lab.db"):
        (0, "4 result(s) recorded (4 answering suggestions, 0 unplanned)"),
    ("campaigns.md", "matforge campaign status opv --db lab.db"): (0, "observations: 20"),
    ("campaigns.md", "matforge campaign report opv -o opv.html --db lab.db"):
        (0, "report written to opv.html"),
}  # fmt: skip


def _measure_next_csv(folder: Path) -> None:
    """What the reader does by hand before ``campaign observe``: add the measured column."""
    path = folder / "next.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # a stand-in measurement: the model's own prediction
        row["degradation"] = row["degradation_mean"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# Steps the docs ask of the reader between two commands: (file, command) -> function(folder).
BEFORE = {
    ("README.md", "matforge campaign observe opv next.csv --db lab.db"): _measure_next_csv,
    ("campaigns.md", "matforge campaign observe opv next.csv --db lab.db"): _measure_next_csv,
}

SETUP_PREFIXES = ("printf ", "python -c ", "export ")  # shell lines of a block that are run


@dataclass
class Step:
    file: str
    line: int
    command: str  # as documented, comments stripped, continuations joined
    block: str  # its folder: "README.md:57" (a README block) or "campaigns.md" (a docs page)
    setup: bool = False  # a printf / python -c / export line, not a test of its own
    index: int = 0  # position in its folder's sequence
    status: str = "run"
    reason: str = ""
    marks: list = field(default_factory=list)


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` after blank space, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _complete(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return not text.endswith("\\")


def _id(step: Step) -> str:
    command = step.command.replace("\n", " ")
    return f"{step.file}:{step.line}:{command[:80]}"


def documented_steps() -> list[Step]:
    """The matforge commands and setup lines of every bash/console block, in order."""
    steps: list[Step] = []
    for path in DOC_FILES:
        lines = path.read_text("utf-8").splitlines()
        # A docs page is one walk-through (its blocks share a folder); the README's blocks are
        # independent examples (each its own folder: two of them create campaign 'opv').
        block, position, i = path.name, 0, 0
        while i < len(lines):
            fence = re.match(r"^```(bash|console)\s*$", lines[i])
            i += 1
            if not fence:
                continue
            if path.name == "README.md":
                block, position = f"{path.name}:{i}", 0
            current, first = None, 0
            while i < len(lines) and not lines[i].startswith("```"):
                raw, i = lines[i], i + 1
                if current is None:
                    text = raw.strip()
                    if fence.group(1) == "console":
                        if not text.startswith("$ "):
                            continue
                        text = text[2:]
                    text = _strip_comment(text)
                    if not text:
                        continue
                    current, first = text, i
                else:
                    current = (current[:-1].rstrip() + " " + _strip_comment(raw).strip()
                               if current.endswith("\\")
                               else current + "\n" + _strip_comment(raw))  # fmt: skip
                if not _complete(current):
                    continue
                command, current = current, None
                is_matforge = command.startswith("matforge ")
                if not is_matforge and not command.startswith(SETUP_PREFIXES):
                    continue
                step = Step(path.name, first, command, block, setup=not is_matforge)
                step.index, position = position, position + 1
                status, step.reason = NOT_RUN.get((path.name, command), ("run", ""))
                step.status = status
                if status == SLOW:
                    step.marks = [pytest.mark.slow]
                elif status == SKIP:  # listed by -ra with its reason, never silently absent
                    step.marks = [pytest.mark.skip(reason=f"{_id(step)}: {step.reason}")]
                steps.append(step)
    return steps


STEPS = documented_steps()
TESTS = [s for s in STEPS if not s.setup]


def _env(folder: Path) -> dict[str, str]:
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(folder / "home"),
        "MATFORGE_HOME": str(folder / "home" / ".matforge"),
        "MATFORGE_DB": str(folder / "home" / "default.db"),
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "COLUMNS": "120",
        "LANG": "C.UTF-8",
    }
    for var in ("MATFORGE_TEST_PG_URL", "TMPDIR"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


class Block:
    """A block's folder and environment; runs its steps once each, in order."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "home").mkdir(parents=True)
        (folder / "docs").symlink_to(ROOT / "docs")
        self.env = _env(folder)
        self.done: dict[int, subprocess.CompletedProcess | None] = {}

    def run(self, step: Step) -> subprocess.CompletedProcess | None:
        if step.index in self.done:
            return self.done[step.index]
        before = BEFORE.get((step.file, step.command))
        if before is not None:
            before(self.folder)
        if step.command.startswith("export "):
            name, _, value = step.command[len("export ") :].partition("=")
            self.env[name] = value.replace("$PWD", str(self.folder))
            result = None
        else:
            result = subprocess.run(
                ["bash", "-o", "pipefail", "-c", step.command],
                cwd=self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        self.done[step.index] = result
        return result


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    made: dict[str, Block] = {}

    def get(name: str) -> Block:
        if name not in made:
            made[name] = Block(tmp_path_factory.mktemp(re.sub(r"\W", "_", name)))
        return made[name]

    return get


def _check(step: Step, result: subprocess.CompletedProcess) -> str | None:
    """Why ``result`` is not what the docs promise for ``step`` (None when it is)."""
    code, phrase = EXPECT.get((step.file, step.command), (0, ""))
    output = result.stdout + result.stderr
    closed_pipe = "| head" in step.command and result.returncode == 1 and not result.stderr
    if closed_pipe:  # head exited first: click exits 1 without a word on EPIPE (pipefail)
        return None if code == 0 else f"exit status 1 (closed pipe), expected {code}"
    if result.returncode != code:
        return f"exit status {result.returncode}, expected {code}"
    if phrase and phrase not in output:
        return f"output lacks {phrase!r}"
    return None


def _run_up_to(blocks, step: Step, *, with_slow: bool) -> subprocess.CompletedProcess:
    block = blocks(step.block)
    for before in (s for s in STEPS if s.block == step.block and s.index < step.index):
        if before.status == SKIP or (before.status == SLOW and not with_slow):
            continue
        result = block.run(before)
        if result is not None and not before.setup and _check(before, result):
            pytest.fail(f"an earlier command of the block failed: {before.file}:{before.line}: "
                        f"{before.command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")  # fmt: skip
        if result is not None and before.setup and result.returncode != 0:
            pytest.fail(f"setup line {before.file}:{before.line} failed: {before.command}\n"
                        f"{result.stderr[-3000:]}")  # fmt: skip
    return block.run(step)


@pytest.mark.parametrize(
    "step", [pytest.param(s, id=_id(s), marks=s.marks) for s in TESTS]
)  # fmt: skip
def test_documented_command(step: Step, blocks):
    result = _run_up_to(blocks, step, with_slow=step.status == SLOW)
    problem = _check(step, result)
    assert problem is None, (
        f"{step.file}:{step.line}: `{step.command}`: {problem}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


def test_tables_name_documented_commands():
    """Every entry of the tables is a command the docs still show (else it is stale)."""
    documented = {(s.file, s.command) for s in STEPS}
    stale = [key for table in (NOT_RUN, EXPECT, BEFORE) for key in table if key not in documented]
    assert stale == []


def test_docs_show_commands():
    """The extraction finds the documented commands (not an empty, vacuous parametrisation)."""
    run = [s for s in TESTS if s.status != SKIP]
    assert {"README.md", "campaigns.md", "xrd.md", "server.md"} <= {s.file for s in run}
    assert len(run) >= 30
