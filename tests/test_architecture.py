"""The rules of docs/architecture.md (issue #19 §1 and §5).

* Only ``matforge.store`` talks to the database: the source of every module outside it is
  scanned for what would mean it holds SQL or reaches into tables — an import of SQLAlchemy or
  of ``matforge.store.schema``, or any use of a table object that a store module defines
  (``from matforge.store.accounts import users``, ``accounts.users.c.id``).
* Imports run downwards: nothing below the top floor imports ``matforge.cli``,
  ``matforge.server`` or ``matforge.report``, and the server does not import the CLI.
* Every package and file docs/architecture.md names exists.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import matforge
import matforge.store

SRC = Path(matforge.__file__).resolve().parent
FORBIDDEN_MODULES = ("sqlalchemy", "matforge.store.schema")


def _store_tables() -> dict[str, set[str]]:
    """{store module name: names of the SQLAlchemy tables it defines}."""
    import sqlalchemy as sa

    tables: dict[str, set[str]] = {}
    for info in pkgutil.walk_packages(matforge.store.__path__, "matforge.store."):
        if ".migrations" in info.name:
            continue
        mod = importlib.import_module(info.name)
        names = {k for k, v in vars(mod).items() if isinstance(v, sa.Table)}
        if names:
            tables[info.name] = names
    return tables


def _violations(path: Path, tables: dict[str, set[str]]) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> store module holding tables
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(FORBIDDEN_MODULES):
                    found.append(f"line {node.lineno}: import {a.name}")
                if a.name in tables and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(FORBIDDEN_MODULES):
                found.append(f"line {node.lineno}: from {node.module} import ...")
                continue
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full.startswith(FORBIDDEN_MODULES):
                    found.append(f"line {node.lineno}: from {node.module} import {a.name}")
                elif full in tables:
                    aliases[a.asname or a.name] = full
                elif a.name in tables.get(node.module, ()):
                    found.append(f"line {node.lineno}: table {full}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr in tables[aliases[node.value.id]]):
            found.append(f"line {node.lineno}: table {aliases[node.value.id]}.{node.attr}")
    return found


def test_only_the_store_talks_to_the_database():
    tables = _store_tables()
    assert tables, "the store defines no tables? the scan is broken"
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("store/"):
            continue
        found = _violations(path, tables)
        if found:
            offenders[rel] = found
    assert not offenders, f"modules outside matforge.store that reach the database: {offenders}"


def test_the_scan_sees_sql_and_tables(tmp_path):
    tables = _store_tables()
    mod, names = next(iter(tables.items()))
    table = sorted(names)[0]
    bad = tmp_path / "bad.py"
    bad.write_text(
        f"import sqlalchemy as sa\nfrom {mod} import {table}\n"
        f"import {mod} as t\nx = t.{table}.c\n"
    )
    found = _violations(bad, tables)
    assert len(found) == 3, found
    good = tmp_path / "good.py"
    good.write_text("from matforge.store import Store\nStore\n")
    assert _violations(good, tables) == []


TOP_FLOOR = ("cli", "server", "report")


def _imported_matforge_packages(path: Path) -> set[tuple[int, str]]:
    """(line, first-level matforge package) of every import in ``path``, lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                      if node.module == "matforge"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "matforge" and len(parts) > 1:
                out.add((node.lineno, parts[1]))
    return out


def test_imports_run_downwards():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        here = rel.split("/")[0] if "/" in rel else rel.removesuffix(".py")
        if here == "__main__":
            continue
        for line, pkg in _imported_matforge_packages(path):
            if pkg == here:
                continue
            if pkg in TOP_FLOOR and here not in TOP_FLOOR:
                wrong.append(f"{rel}:{line} imports matforge.{pkg}")
            if (here, pkg) in {("server", "cli"), ("report", "cli"), ("report", "server")}:
                wrong.append(f"{rel}:{line} imports matforge.{pkg}")
    assert not wrong, wrong


def test_the_architecture_page_names_what_exists():
    import re

    page = (SRC.parents[1] / "docs" / "architecture.md").read_text("utf-8")
    named = set(re.findall(r"`((?:[a-z_]+/)+(?:[a-z_]+\.py)?)`", page))
    named |= set(re.findall(r"`([a-z_]+\.py)`", page))
    assert len(named) > 30, "the page names no paths? the scan is broken"
    root = SRC.parents[1]
    missing = [p for p in sorted(named)
               if not any((base / p).exists() for base in (SRC, root, root / "tests"))]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
    # and every first-level package is on the page
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    absent = sorted(p for p in packages if f"`{p}/`" not in page)
    assert not absent, f"packages missing from docs/architecture.md: {absent}"
