"""The bundled Ma et al. (2015) data and users' own adsorption-energy tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from matforge.errors import CatalysisError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ADSORBATES",
    "ADSORPTION_PROPERTY",
    "adsorption_measurements",
    "load_adsorption",
    "load_ma2015",
    "read_adsorption_csv",
    "store_adsorption",
]

#: adsorbates matforge's volcanoes and oracle know
ADSORBATES = ("CO", "H", "O", "OH")

#: the store property adsorption energies go to (canonical unit eV); the adsorbate, the surface
#: and its parsed parts are conditions of each measurement
ADSORPTION_PROPERTY = "adsorption_energy"

#: columns of :func:`read_adsorption_csv` that describe the surface (conditions in the store)
_SURFACE_COLUMNS = ("surface", "surface_type", "top_layer", "guest", "adsorbate")


def load_ma2015(clean: bool = False) -> pd.DataFrame:
    """The bundled ``catalysis_ma2015_co`` dataset: 295 surfaces, CO binding energy (eV) in
    ``binding_energy_of_adsorbed``, the 13 descriptors, and the parsed ``surface``,
    ``surface_type``, ``top_layer``, ``host``, ``guest`` columns. ``clean=True`` keeps one row
    per physical surface (drops the repeated pure metals, keeping the first)."""
    from matforge.datasets import load_dataset

    df = load_dataset("catalysis_ma2015_co")
    if clean:
        pure = df["flag"].str.contains("duplicate_surface")
        repeated = pure & df["top_layer"].where(pure).duplicated() & pure
        df = df[~repeated].reset_index(drop=True)
    return df


def read_adsorption_csv(path: str | Path, *, energy: str = "energy") -> pd.DataFrame:
    """A user's adsorption energies: CSV with columns ``surface``, ``adsorbate`` and ``energy``
    (eV; name another column with ``energy``), plus optional descriptor columns (kept as they
    are). Every row is validated; the error lists every bad row with its line number and
    nothing is returned half-read. The result has canonical ``surface`` notation, the parsed
    ``surface_type``, ``top_layer``, ``guest`` columns and the energy in
    ``binding_energy_of_adsorbed``."""
    import pandas as pd

    from matforge.catalysis.surfaces import parse_surface
    from matforge.errors import IngestError

    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise CatalysisError(f"{path}: no such file") from None
    except Exception as exc:
        raise CatalysisError(f"{path}: not a readable CSV file ({exc})") from None
    need = ["surface", "adsorbate", energy]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise CatalysisError(f"{path}: missing column(s) {missing}; have {list(raw.columns)}")
    bad, rows = [], []
    for i, rec in raw.iterrows():
        line = i + 2  # header is line 1
        try:
            s = parse_surface(rec["surface"], source=f"{path.name} line {line}")
        except CatalysisError as exc:
            bad.append((line, "surface", str(exc)))
            continue
        ads = rec["adsorbate"].strip()
        if ads not in ADSORBATES:
            bad.append((line, "adsorbate", f"unknown adsorbate {ads!r}; known: {ADSORBATES}"))
            continue
        try:
            e = float(rec[energy])
            if not np.isfinite(e):
                raise ValueError
        except ValueError:
            bad.append((line, energy, f"energy {rec[energy]!r} is not a finite number (eV)"))
            continue
        rows.append({"surface": s.notation, "surface_type": s.surface_type, "top_layer": s.top,
                     "guest": s.guest, "adsorbate": ads, "binding_energy_of_adsorbed": e,
                     **{c: rec[c] for c in raw.columns if c not in need}})
    if bad:
        first = "; ".join(f"line {ln}, column {col}: {msg}" for ln, col, msg in bad[:5])
        raise IngestError(f"{path}: {len(bad)} bad row(s): {first}", rows=bad)
    out = pd.DataFrame(rows)
    for c in out.columns:
        if c not in ("surface", "surface_type", "top_layer", "guest", "adsorbate"):
            try:
                out[c] = pd.to_numeric(out[c])
            except ValueError:
                pass  # a text column: kept as text
    return out


def adsorption_measurements(table: pd.DataFrame) -> pd.DataFrame:
    """A table of :func:`read_adsorption_csv` as store rows: ``formula`` (the surface's slab
    composition, :attr:`Surface.formula`), ``value`` (the energy, eV) and the surface,
    adsorbate and descriptor columns as conditions."""
    import pandas as pd

    from matforge.catalysis.surfaces import parse_surface

    missing = [c for c in ("surface", "adsorbate", "binding_energy_of_adsorbed")
               if c not in table.columns]
    if missing:
        raise CatalysisError(f"the adsorption table lacks the column(s) {missing}")
    out = pd.DataFrame({
        "formula": [parse_surface(s).formula for s in table["surface"]],
        "value": table["binding_energy_of_adsorbed"].to_numpy(dtype=float),
    })
    for c in table.columns:
        if c not in ("binding_energy_of_adsorbed", "formula", "value"):
            out[c] = table[c].to_numpy()
    return out


def store_adsorption(store, path: str | Path, *, project: str, energy: str = "energy",
                     method: str = "computation", source: str | None = None,
                     created_by: str | None = None, allow_duplicate: bool = False) -> int:
    """Validate a user's adsorption CSV (:func:`read_adsorption_csv`) and add it to ``store``
    (a :class:`matforge.store.Store`) as :data:`ADSORPTION_PROPERTY` measurements in eV; return
    the number written. All or nothing: a bad row fails the whole file before anything is
    written, and a file already stored in ``project`` is refused unless ``allow_duplicate``.
    Read it back with :func:`load_adsorption`."""
    path = Path(path)
    table = read_adsorption_csv(path, energy=energy)
    return store.add_measurements(
        adsorption_measurements(table), project=project, property=ADSORPTION_PROPERTY,
        unit="eV", method=method, source=source or str(path), created_by=created_by,
        dataset=path.name, allow_duplicate=allow_duplicate,
    )


def load_adsorption(store, *, project: str | None = None,
                    adsorbate: str | None = None) -> pd.DataFrame:
    """Adsorption energies kept in ``store`` as a table :class:`AdsorptionModel` trains on:
    the columns of :func:`read_adsorption_csv` (energy in ``binding_energy_of_adsorbed``, eV)
    plus ``measurement_id``, ``method`` and ``source``; only ``adsorbate``'s if given."""
    import json

    import pandas as pd

    if adsorbate is not None and adsorbate not in ADSORBATES:
        raise CatalysisError(f"unknown adsorbate {adsorbate!r}; known: {ADSORBATES}")
    m = store.measurements(property=ADSORPTION_PROPERTY, project=project)
    rows = []
    for rec in m.itertuples(index=False):
        cond = json.loads(rec.conditions) if rec.conditions else {}
        if "surface" not in cond or "adsorbate" not in cond:
            continue  # an adsorption_energy row not written by store_adsorption
        rows.append({**cond, "binding_energy_of_adsorbed": rec.value,
                     "measurement_id": rec.id, "method": rec.method, "source": rec.source})
    out = pd.DataFrame(rows, columns=[*_SURFACE_COLUMNS, "binding_energy_of_adsorbed",
                                      "measurement_id", "method", "source"]
                       if not rows else None)
    if adsorbate is not None and len(out):
        out = out[out["adsorbate"] == adsorbate].reset_index(drop=True)
    return out
