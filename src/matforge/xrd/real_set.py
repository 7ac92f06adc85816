"""Set E of the XRD benchmark (issue #17 §5): real, well-known crystal structures.

The structures (``data/real_structures.json``, written by ``scripts/xrd_real_structures.py``)
are Crystallography Open Database entries shipped with the ``crystals`` package and three
minerals written from their published cells, each kept only where spglib confirms the space
group the publication states. Their patterns are simulated with the realistic augmentation of
the test sets (without impurity phases or cropped ranges, which would test something else)
and every head is scored: crystal system, space group, space-group powder class and, where a
bundled AFLOW prototype is the same structure, prototype; the network alone and with the
indexing. No target: it shows how the classifier does outside its generator.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["REAL_STRUCTURES", "evaluate_real_structures", "real_markdown", "real_structures"]

REAL_STRUCTURES = Path(__file__).parent / "data" / "real_structures.json"


@cache
def real_structures() -> tuple[dict, ...]:
    """The rows of set E: ``name``, ``formula``, ``spacegroup``, ``crystal_system``,
    ``prototype`` (AFLOW label or None), ``citation`` and ``structure`` (pymatgen, the
    conventional standard cell)."""
    from pymatgen.core import Lattice, Structure

    rows = json.loads(REAL_STRUCTURES.read_text())["structures"]
    out = []
    for r in rows:
        s = Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"])
        keep = ("name", "formula", "spacegroup", "crystal_system", "prototype", "citation")
        out.append({**{k: r[k] for k in keep}, "structure": s})
    return tuple(out)


def evaluate_real_structures(
    model=None,
    *,
    patterns_per_structure: int = 5,
    seed: int = 0,
    jobs: int = 1,
    names=None,
    log=None,
) -> dict:
    """Every head on simulated measured-like patterns of set E (see the module docstring);
    ``names``: only these structures (default all).

    Returns per method (``network_alone``, ``network_plus_indexing``) top-1 of crystal system,
    space group, space-group class and prototype (on the structures with one), per crystal
    system the counts and crystal-system top-1, and each structure's most frequent answers.
    """
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, AugmentConfig, augment
    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.extinction import powder_classes
    from matforge.xrd.identify import coherent_proba, index_patterns
    from matforge.xrd.io import Pattern
    from matforge.xrd.radiation import CU_KA1
    from matforge.xrd.training_data import make_grid, symmetry_labels

    clf = model if isinstance(model, XRDClassifier) else XRDClassifier.load(model)
    rows = real_structures()
    if names is not None:
        unknown = set(names) - {r["name"] for r in rows}
        if unknown:
            raise ValueError(f"not in set E: {', '.join(sorted(unknown))}")
        wanted = set(names)
        rows = tuple(r for r in rows if r["name"] in wanted)
    grid = make_grid()
    structures, systems, orbits, owner = [], [], [], []
    for i, r in enumerate(rows):
        conv, _, orb = symmetry_labels(r["structure"])
        for _ in range(patterns_per_structure):
            structures.append(conv)
            systems.append(r["crystal_system"])
            orbits.append(orb)
            owner.append(i)
    owner = np.asarray(owner)
    config = AugmentConfig().replace(impurity_prob=0.0, crop_prob=0.0)
    x, _ = augment(structures, grid, seed, config, crystal_systems=systems, orbits=orbits)
    patterns = [Pattern(grid, x[k].astype(float), wavelength=CU_KA1,
                        source=f"{rows[owner[k]]['name']} #{k}") for k in range(len(x))]  # fmt: skip
    if log:
        log(f"set E: {len(rows)} real structures, {len(patterns)} patterns")
    # a str is a scan the peak search refused: not indexed, as identify() treats it
    indexings = [None if isinstance(r, str) else r for r in index_patterns(patterns, jobs=jobs)]
    proba = clf.predict_proba(patterns)
    methods = {
        "network_alone": coherent_proba(proba, [None] * len(patterns), clf.classes),
        "network_plus_indexing": coherent_proba(proba, indexings, clf.classes),
    }
    classes = powder_classes()
    sg_true = np.array([rows[i]["spacegroup"] for i in owner])
    cs_true = np.array([CRYSTAL_SYSTEMS.index(rows[i]["crystal_system"]) for i in owner])
    protos = list(clf.classes["prototype"])
    proto_true = np.array(
        [protos.index(p) if (p := rows[i]["prototype"]) in protos else -1 for i in owner]
    )
    has_proto = proto_true >= 0
    out: dict = {
        "n_structures": len(rows),
        "n_patterns": len(patterns),
        "patterns_per_structure": patterns_per_structure,
        "n_with_prototype": int(len({int(i) for i in owner[has_proto]})),
        "augmentation": "realistic test-set augmentation without impurity phases or cropping",
        "structures_per_system": {
            s: sum(r["crystal_system"] == s for r in rows) for s in CRYSTAL_SYSTEMS
        },
    }
    for name, p in methods.items():
        cs = p["crystal_system"].argmax(axis=1)
        sg = p["spacegroup"].argmax(axis=1) + 1  # space-group numbers
        pr = p["prototype"].argmax(axis=1)
        out[name] = {
            "crystal_system_top1": float((cs == cs_true).mean()),
            "spacegroup_top1": float((sg == sg_true).mean()),
            "spacegroup_class_top1": float((classes[sg - 1] == classes[sg_true - 1]).mean()),
            "prototype_top1": float((pr[has_proto] == proto_true[has_proto]).mean())
            if has_proto.any()
            else None,
            "per_system": {
                s: float((cs[cs_true == c] == c).mean())
                for c, s in enumerate(CRYSTAL_SYSTEMS)
                if (cs_true == c).any()
            },
        }
        if name == "network_plus_indexing":
            per = []
            for i, r in enumerate(rows):
                sel = owner == i
                per.append({
                    "name": r["name"], "formula": r["formula"], "spacegroup": r["spacegroup"],
                    "crystal_system": r["crystal_system"],
                    "crystal_system_right": float((cs[sel] == cs_true[sel]).mean()),
                    "spacegroup_right": float((sg[sel] == sg_true[sel]).mean()),
                    "answer_spacegroup": int(np.bincount(sg[sel]).argmax()),
                })  # fmt: skip
            out["per_structure"] = per
    return out


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def real_markdown(e: dict) -> list[str]:
    """Set E as Markdown lines (a table per method and per crystal system)."""
    counts = ", ".join(f"{s} {n}" for s, n in e["structures_per_system"].items() if n)
    lines = [
        f"**E: real structures** — {e['n_structures']} published structures (Crystallography "
        f"Open Database entries shipped with the `crystals` package and three minerals from "
        f"their papers; space groups confirmed by spglib; {counts}), "
        f"{e['patterns_per_structure']} measured-like patterns each ({e['augmentation']}). "
        f"Prototype top-1 on the {e['n_with_prototype']} structures that are a bundled AFLOW "
        "prototype. No target.",
        "",
        "| method | crystal system | space group | space-group class | prototype |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (("network_alone", "network alone"),
                       ("network_plus_indexing", "network + indexing")):  # fmt: skip
        m = e[key]
        lines.append(
            f"| {label} | {_pct(m['crystal_system_top1'])} | {_pct(m['spacegroup_top1'])} | "
            f"{_pct(m['spacegroup_class_top1'])} | {_pct(m['prototype_top1'])} |"
        )
    systems = list(e["network_alone"]["per_system"])
    lines += [
        "",
        "| crystal system top-1 by true system | " + " | ".join(systems) + " |",
        "| --- |" + " ---: |" * len(systems),
    ]
    for key, label in (("network_alone", "network alone"),
                       ("network_plus_indexing", "network + indexing")):  # fmt: skip
        lines.append(
            f"| {label} | " + " | ".join(_pct(e[key]["per_system"][s]) for s in systems) + " |"
        )
    return lines
