"""The element table, Z = 1..103, built once by ``scripts/build_elements.py``.

Columns (``element_table()``; index = symbol in Z order):

* every Magpie property matminer's ``MagpieData`` serves, under matminer's name (``Number``,
  ``MendeleevNumber``, ``AtomicWeight`` [g/mol], ``MeltingT`` [K], ``CovalentRadius`` [pm],
  ``Electronegativity``, ``N{s,p,d,f}Valence``, ``GSvolume_pa`` [Å^3/atom], ``GSbandgap`` [eV],
  ``GSmagmom`` [μB/atom], ``SpaceGroupNumber``, ... — see :data:`MAGPIE_PROPERTIES`), with NaN
  exactly where matminer's raw data has NaN; ``OxidationStates`` is a list column.
* from pymatgen: ``pauling_en`` (Pauling ``X``; NaN for noble gases etc.), ``oxidation_states``,
  ``common_oxidation_states``, ``icsd_oxidation_states`` (lists of int), ``ionic_radii`` (list of
  ``[oxidation state, radius in Å]``), ``covalent_radius`` (Cordero 2008, Å).
* ``ionization_energies`` (list, eV; Magpie's table, which MagpieData itself cannot parse).
* from smact 4: ``smact_oxidation_states`` (the ICSD24 states ``smact_validity`` uses by default;
  ``None`` where smact has none), ``smact_pauling_en`` (NaN where smact has ``None``),
  ``smact_metal`` (smact's alloy rule).
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# fmt: off
SYMBOLS: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr",
)
# fmt: on
N_ELEMENTS = len(SYMBOLS)
Z: dict[str, int] = {s: i + 1 for i, s in enumerate(SYMBOLS)}

#: The noble gases of the table (Og, Z = 118, is beyond it).
NOBLE_GASES: tuple[str, ...] = ("He", "Ne", "Ar", "Kr", "Xe", "Rn")
#: Elements without a stable isotope: Tc, Pm and everything after Bi (Th and U included).
RADIOACTIVE: tuple[str, ...] = ("Tc", "Pm", *SYMBOLS[83:])
#: Named groups for :func:`element_set` (``--exclude-elements radioactive,noble-gases``).
ELEMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "radioactive": RADIOACTIVE,
    "noble-gases": NOBLE_GASES,
}
#: What screens leave out unless told otherwise: elements nobody synthesises a functional
#: material from (radioactive) and those that form almost no solids (noble gases).
DEFAULT_EXCLUDED = "radioactive,noble-gases"


def element_set(spec) -> tuple[str, ...]:
    """Element symbols, in Z order, from a spec: comma-separated symbols and group names
    (``"radioactive,noble-gases,Cd"``; see :data:`ELEMENT_GROUPS`), ``"none"`` or ``""`` for
    none, or an iterable of symbols. An unknown name raises
    :class:`~matforge.errors.InvalidFormula` naming it."""
    from matforge.errors import InvalidFormula

    items = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for item in (str(i).strip() for i in items):
        if not item or item.lower() == "none":
            continue
        if item.lower() in ELEMENT_GROUPS:
            chosen.update(ELEMENT_GROUPS[item.lower()])
        elif item in Z:
            chosen.add(item)
        else:
            groups = ", ".join(ELEMENT_GROUPS)
            raise InvalidFormula(
                f"unknown element {item!r}: give element symbols (Fe, Cd, ...), {groups} or none"
            )
    return tuple(sorted(chosen, key=Z.__getitem__))


def describe_elements(symbols) -> str:
    """``symbols`` for a person: groups named when wholly present (``"radioactive (Tc, Pm,
    Po-Lr), noble gases (He, Ne, Ar, Kr, Xe, Rn)"``)."""
    given = set(symbols)
    left = set(given)
    parts = []
    for name, group in ELEMENT_GROUPS.items():
        if set(group) <= given:
            shown = [s for s in group if s not in ("Tc", "Pm") or name != "radioactive"]
            runs = f"{shown[0]}-{shown[-1]}" if name == "radioactive" else ", ".join(shown)
            lead = "Tc, Pm, " if name == "radioactive" else ""
            parts.append(f"{name.replace('-', ' ')} ({lead}{runs})")
            left -= set(group)
    if left:
        parts.append(", ".join(sorted(left, key=Z.__getitem__)))
    return "; ".join(parts) if parts else "none"


#: The 22 properties of matminer's ``ElementProperty.from_preset("magpie")``, in its order.
MAGPIE_PRESET: tuple[str, ...] = (
    "Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row", "CovalentRadius",
    "Electronegativity", "NsValence", "NpValence", "NdValence", "NfValence", "NValence",
    "NsUnfilled", "NpUnfilled", "NdUnfilled", "NfUnfilled", "NUnfilled", "GSvolume_pa",
    "GSbandgap", "GSmagmom", "SpaceGroupNumber",
)  # fmt: skip

_LIST_COLUMNS = frozenset(
    {
        "OxidationStates",
        "oxidation_states",
        "common_oxidation_states",
        "icsd_oxidation_states",
        "smact_oxidation_states",
        "ionic_radii",
        "ionization_energies",
    }
)


@cache
def _raw() -> dict[str, Any]:
    text = files("matforge.chem").joinpath("data", "elements.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    if tuple(doc["columns"]["symbol"]) != SYMBOLS:  # pragma: no cover - damaged data file
        from matforge.errors import MatforgeError

        raise MatforgeError("matforge/chem/data/elements.json: symbols do not match SYMBOLS")
    return doc


def _floats(values: list) -> np.ndarray:
    out = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    out.setflags(write=False)
    return out


@cache
def _numeric(name: str) -> np.ndarray:
    return _floats(_raw()["columns"][name])


def _magpie_names() -> tuple[str, ...]:
    return tuple(n for n in _raw()["magpie_columns"] if n != "OxidationStates")


def __getattr__(name: str) -> Any:
    # MAGPIE_PROPERTIES needs the data file: computed on first access, not at import
    if name == "MAGPIE_PROPERTIES":
        return _magpie_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def provenance() -> dict[str, Any]:
    """Where the table came from: library versions, data files, filter settings."""
    return dict(_raw()["provenance"])


def magpie_property(name: str, *, impute_nan: bool = False) -> np.ndarray:
    """One scalar Magpie property for Z = 1..103 as a read-only float64 array (index Z - 1).

    Values are those of ``matminer.utils.data.MagpieData(impute_nan=False)``; with
    ``impute_nan=True`` NaN entries are replaced by the value ``MagpieData(impute_nan=True)``
    substitutes (the property's mean over Z = 1..118), so featurizers can reproduce either mode.
    Units are Magpie's (see the module docstring).
    """
    names = _magpie_names()
    if name not in names:
        from matforge.errors import MatforgeError

        hint = " (a list column: use element_table())" if name == "OxidationStates" else ""
        raise MatforgeError(f"unknown Magpie property {name!r}{hint}; known: {', '.join(names)}")
    values = _numeric(name)
    if not impute_nan:
        return values
    fill = _raw()["magpie_impute"][name]
    out = np.where(np.isnan(values), math.nan if fill is None else fill, values)
    out.setflags(write=False)
    return out


def magpie_impute_value(name: str) -> float | list[float]:
    """The value ``MagpieData(impute_nan=True)`` substitutes for a missing ``name``."""
    value = _raw()["magpie_impute"][name]
    return math.nan if value is None else value


def property_array(name: str) -> np.ndarray:
    """Any scalar numeric column of :func:`element_table` as a read-only float64 array."""
    col = _raw()["columns"].get(name)
    if col is None or name in _LIST_COLUMNS or name == "symbol":
        from matforge.errors import MatforgeError

        raise MatforgeError(f"{name!r} is not a scalar column of the element table")
    return _numeric(name)


def oxidation_state_lists(kind: str = "smact") -> tuple[tuple[int, ...], ...]:
    """Oxidation states per element (index Z - 1) from one source.

    ``kind``: ``"smact"`` (smact 4's default ICSD24 set), ``"common"``, ``"icsd"`` or ``"all"``
    (pymatgen's ``common_oxidation_states``, ``icsd_oxidation_states``, ``oxidation_states``).
    Elements without data get an empty tuple.
    """
    column = {
        "smact": "smact_oxidation_states",
        "common": "common_oxidation_states",
        "icsd": "icsd_oxidation_states",
        "all": "oxidation_states",
    }.get(kind)
    if column is None:
        from matforge.errors import MatforgeError

        raise MatforgeError(f"unknown oxidation-state set {kind!r}: smact, common, icsd or all")
    return _oxidation_lists(column)


@cache
def _oxidation_lists(column: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(v) if v else () for v in _raw()["columns"][column])


def element_table() -> pd.DataFrame:
    """All element data as a DataFrame indexed by symbol (Z order), one column per property.

    Scalar columns are float64 with NaN for missing values (``smact_metal`` is bool); list
    columns hold Python lists (``None`` where smact has no oxidation states). A fresh copy is
    returned on every call.
    """
    return _table().copy()


@cache
def _table() -> pd.DataFrame:
    import pandas as pd

    cols = _raw()["columns"]
    data: dict[str, Any] = {}
    for name, values in cols.items():
        if name == "symbol":
            continue
        if name in _LIST_COLUMNS:
            col = np.empty(N_ELEMENTS, dtype=object)
            col[:] = [None if v is None else list(v) for v in values]
            data[name] = col
        elif name == "smact_metal":
            data[name] = np.array(values, dtype=bool)
        else:
            data[name] = _floats(values).copy()
    df = pd.DataFrame(data, index=pd.Index(SYMBOLS, name="symbol"))
    df.insert(0, "Z", np.arange(1, N_ELEMENTS + 1))
    return df
