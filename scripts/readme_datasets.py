"""Regenerate the datasets table in README.md from the bundled catalog.

    .venv/bin/python scripts/readme_datasets.py

The table sits between the `<!-- DATASETS:BEGIN -->` and `<!-- DATASETS:END -->` markers;
full BibTeX entries are in the catalog (`matforge datasets show NAME`) and in DATASETS.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from matforge.datasets import list_datasets

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- DATASETS:BEGIN -->", "<!-- DATASETS:END -->"


def _first_author(entry: str) -> str | None:
    """Surname of the first author of one BibTeX entry, LaTeX accents removed."""
    match = re.search(r'author\s*=\s*(?:\{((?:[^{}]|\{[^{}]*\})*)\}|"([^"]*)")', entry, re.I)
    if not match:
        return None
    plain = re.sub(r"\\[\"'`^~=.]|[{}\\]", "", match.group(1) or match.group(2))
    first = re.split(r"\s+and\s+", plain.strip())[0].strip()
    return first.split(",")[0].strip() if "," in first else first.split()[-1]


def short_citation(bibtex: str) -> str:
    """'Dunn et al. 2020, doi:10.1038/...' from the first BibTeX entry of a citation block."""
    entries = re.split(r"\n(?=@)", bibtex.strip())
    parts = []
    for entry in entries:
        author = _first_author(entry)
        year = re.search(r"year\s*=\s*[{\"]?(\d{4})", entry, re.I)
        doi = re.search(r"doi\s*=\s*[{\"]([^}\"]+)", entry, re.I)
        text = f"{author} et al." if author else "see catalog"
        if year:
            text += f" {year.group(1)}"
        if doi:
            text += f", doi:{doi.group(1).strip()}"
        parts.append(text)
    return "; ".join(dict.fromkeys(parts))


def table() -> str:
    rows = [
        "| dataset | rows | property | unit | source | citation |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for info in list_datasets():
        source = str(info.source).split(":", 1)[0]
        prop = str(info.property).replace("|", "/")
        rows.append(
            f"| `{info.name}` | {info.rows:,} | {prop} | {info.unit} | {source} "
            f"| {short_citation(info.citation)} |"
        )
    return "\n".join(rows)


def main() -> None:
    text = README.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + table() + "\n" + text[stop:])
    print(f"updated {README}")


if __name__ == "__main__":
    main()
