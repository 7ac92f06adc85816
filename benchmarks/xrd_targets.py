"""Issue #17's XRD targets, set by set, from the results under ``results/xrd/`` (nothing is
recomputed here; ``matforge benchmark xrd`` writes them and this table):
:func:`matforge.xrd.benchmark_sets.targets_markdown`.

    python benchmarks/xrd_targets.py [--docs docs/benchmarks.md]

prints the table (and with ``--docs`` writes it as the section "## XRD against issue #17").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from matforge.xrd.benchmark import write_docs_section
    from matforge.xrd.benchmark_sets import HEADING, targets_markdown

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results/xrd"))
    ap.add_argument("--docs", type=Path, help="write the section into this Markdown file")
    args = ap.parse_args()
    docs = [json.loads((args.results / f"{name}.json").read_text())
            for name in ("benchmark", "indexing", "searchmatch", "real_structures")]  # fmt: skip
    md = targets_markdown(*docs)
    print(md)
    if args.docs:
        write_docs_section(args.docs, md, heading=HEADING)


if __name__ == "__main__":
    main()
