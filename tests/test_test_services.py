"""`make test` brings up the test services itself (scripts/test_services.sh), on a fresh machine
as in CI: PostgreSQL for the store tests and chromium for the browser tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "test_services.sh"


def _run_services(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120
    )


def test_set_variables_are_kept_and_exported_for_a_posix_shell():
    """Variables the user set are handed on unchanged (nothing installed), quoted so that the
    /bin/sh that make uses reads them back exactly."""
    env = dict(
        os.environ,
        MATFORGE_TEST_PG_URL="postgresql+psycopg://u:p@db.example:5433/t",
        MATFORGE_CHROMIUM="/opt/my chromium/it's here",
    )
    done = _run_services(env)
    assert done.returncode == 0, done.stderr
    assert "ci_postgres" not in done.stderr and "ci_chromium" not in done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "export MATFORGE_TEST_PG_URL",
        "export MATFORGE_CHROMIUM",
    ]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MATFORGE_")}
    echoed = subprocess.run(
        [
            "sh",
            "-c",
            done.stdout + 'printf "%s\\n%s\\n" "$MATFORGE_TEST_PG_URL" "$MATFORGE_CHROMIUM"',
        ],
        capture_output=True,
        text=True,
        env=clean,
        check=True,
    )
    assert echoed.stdout.splitlines() == [env["MATFORGE_TEST_PG_URL"], env["MATFORGE_CHROMIUM"]]


def test_make_test_brings_up_services_before_pytest():
    """Both test targets export the services' variables, and stop when the bring-up fails."""
    for target in ("test", "test-all"):
        # under `make test` itself, MAKELEVEL/MAKEFLAGS would add "make[1]: ..." lines
        env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        dry = subprocess.run(
            ["make", "-n", "--no-print-directory", target],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        recipe = dry.stdout.strip().splitlines()[-1]
        assert recipe.index("scripts/test_services.sh") < recipe.index("-m pytest")
        # `eval "$(...)"` would succeed on a failed bring-up; the assignment's status must count
        assert 'services=$(bash scripts/test_services.sh) && eval "$services" &&' in recipe


def test_ci_runs_exactly_make_test():
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make test"]
