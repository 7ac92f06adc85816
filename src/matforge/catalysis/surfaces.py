"""Bimetallic surfaces: the notation of Ma et al. (2015), parsing, and enumeration.

Notation (the one of the bundled ``catalysis_ma2015_co`` data; the top layer is always written
last, after ``@``):

==================  ==============  ====================================================
notation            surface_type    meaning
==================  ==============  ====================================================
``X@T``             overlayer       a monolayer of T on a bulk of X (``Ni@Cu``: Cu on Ni)
``T-B@T``           subsurface      T surface, a layer of B right below it, bulk T
``T3B@T``           intermetallic   a T monolayer on the L1\\ :sub:`2` intermetallic T3B
``B1T``             single_atom     isolated B atoms in the top layer of T (``Pd1Cu``)
==================  ==============  ====================================================

The source data spell ``T3B@T`` as ``T$_{3}$B@T`` (LaTeX); both are accepted. The overlayer
reading (top layer after ``@``) follows the records themselves: the PIF record of ``Ni@Cu``
gives "Top monolayer formula" Cu and "Bulk formula" Ni, and its CO binding energy (−0.69 eV)
is Cu-like (Cu@Cu: −0.63 eV), not Ni-like (Ni@Ni: −1.52 eV).

Only {100} facets are in the data; :class:`Surface` carries the facet so that the oracle can
build (111) slabs too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matforge.errors import CatalysisError

__all__ = [
    "SURFACE_TYPES",
    "Surface",
    "check_metal",
    "enumerate_surfaces",
    "parse_surface",
    "parse_surfaces",
]

SURFACE_TYPES = ("overlayer", "subsurface", "intermetallic", "single_atom")

_EL = r"([A-Z][a-z]?)"
_PATTERNS = (
    ("intermetallic", re.compile(rf"^{_EL}(?:3|\$_\{{3\}}\$){_EL}@{_EL}$")),
    ("subsurface", re.compile(rf"^{_EL}-{_EL}@{_EL}$")),
    ("overlayer", re.compile(rf"^{_EL}@{_EL}$")),
    ("single_atom", re.compile(rf"^{_EL}1{_EL}$")),
)


def _element_flags():
    from matforge.chem.elements import element_table

    t = element_table()
    return t


def check_metal(symbol: str, *, role: str = "metal", source: str | None = None) -> str:
    """``symbol`` if it is an element that can sit in a metal surface, else :class:`CatalysisError`.

    The top layer (``role="top layer"``) must be a d-block metal: the d-band descriptors and the
    volcano relations assume one. Other positions accept any metal or metalloid (Ge, Sb ...),
    as the data hold Ga, Ge, In, Sn, Tl, Pb and Bi intermetallics.
    """
    from matforge.chem.elements import SYMBOLS

    where = f" ({source})" if source else ""
    if not isinstance(symbol, str) or symbol not in SYMBOLS:
        import difflib

        close = difflib.get_close_matches(str(symbol), SYMBOLS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CatalysisError(f"unknown element {symbol!r} as {role}{where}{hint}")
    row = _element_flags().loc[symbol]
    if role in ("top layer", "single atom"):
        if not bool(row["IsDBlock"]):
            raise CatalysisError(
                f"{symbol!r} cannot be the {role}{where}: the adsorption models need a "
                "d-block metal there (the d-band descriptors and scaling relations assume one)"
            )
    elif not (bool(row["IsMetal"]) or bool(row["IsMetalloid"])):
        raise CatalysisError(f"{symbol!r} is not a metal; it cannot be the {role}{where}")
    return symbol


@dataclass(frozen=True)
class Surface:
    """One bimetallic surface.

    ``top``: element of the top layer (for a single-atom alloy, the majority element);
    ``guest``: the other element (overlayer: the bulk; subsurface: the subsurface layer;
    intermetallic: B of T3B; single atom: the isolated atom); ``surface_type`` one of
    :data:`SURFACE_TYPES`; ``facet`` ``"100"`` or ``"111"``.
    """

    top: str
    guest: str
    surface_type: str
    facet: str = "100"

    def __post_init__(self):
        if self.surface_type not in SURFACE_TYPES:
            raise CatalysisError(
                f"unknown surface type {self.surface_type!r}; use one of {SURFACE_TYPES}"
            )
        if self.facet not in ("100", "111"):
            raise CatalysisError(f"facet must be '100' or '111', got {self.facet!r}")
        src = self.notation
        check_metal(self.top, role="top layer", source=src)
        check_metal(self.guest, role="single atom" if self.surface_type == "single_atom"
                    else "guest metal", source=src)
        if self.surface_type == "single_atom" and self.is_pure:
            raise CatalysisError(f"{src}: a single-atom alloy needs two different metals")

    @property
    def notation(self) -> str:
        """The canonical string (see the module docstring)."""
        t, g = self.top, self.guest
        return {
            "overlayer": f"{g}@{t}",
            "subsurface": f"{t}-{g}@{t}",
            "intermetallic": f"{t}3{g}@{t}",
            "single_atom": f"{g}1{t}",
        }[self.surface_type]

    @property
    def host(self) -> str:
        """The bulk under the top layers: an element, or the intermetallic's formula."""
        if self.surface_type == "overlayer":
            return self.guest
        if self.surface_type == "intermetallic":
            return f"{self.top}3{self.guest}"
        return self.top

    @property
    def formula(self) -> str:
        """Composition of the surface's slab model, the key of the material in the store.

        Fraction of the guest metal: a monolayer on a 4-layer slab (overlayer) or one of 4
        layers (subsurface) 0.25 and 0.75 as in Ma et al.'s data (``Ag@Pd`` is
        ``Ag0.75Pd0.25``, ``Pd-Nb@Pd`` ``Nb0.25Pd0.75``), 0.2 for a T3B intermetallic under a
        pure T layer (also theirs), 1/16 for one atom in the 2×2 top layer of a 4-layer slab.
        Different surfaces can share a composition (``Ni@Cu`` and ``Ni-Cu@Ni``): the store
        tells them apart by their ``surface`` condition.
        """
        if self.is_pure:
            return self.top
        x = {"overlayer": 0.75, "subsurface": 0.25, "intermetallic": 0.2,
             "single_atom": 0.0625}[self.surface_type]
        return f"{self.guest}{x:g}{self.top}{1 - x:g}"

    @property
    def is_pure(self) -> bool:
        """True for a pure metal written as an alloy (``Cu@Cu``, ``Cu-Cu@Cu``, ``Cu3Cu@Cu``)."""
        return self.top == self.guest

    def __str__(self) -> str:
        return self.notation


def parse_surface(text: str, *, facet: str = "100", source: str | None = None) -> Surface:
    """A :class:`Surface` from its notation; :class:`CatalysisError` names what is wrong.

    ``source`` (e.g. ``"row 7 of my.csv"``) is added to error messages.
    """
    where = f" ({source})" if source else ""
    if not isinstance(text, str) or not text.strip():
        raise CatalysisError(f"empty surface notation{where}")
    s = text.strip()
    for kind, pattern in _PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        if kind == "overlayer":
            guest, top = m.groups()
        elif kind == "single_atom":
            guest, top = m.groups()
        else:
            top, guest, top2 = m.groups()
            if top2 != top:
                raise CatalysisError(
                    f"surface {s!r}{where}: a {kind} surface is written "
                    f"{'T-B@T' if kind == 'subsurface' else 'T3B@T'} with the same metal T on "
                    f"both sides, got {top!r} and {top2!r}"
                )
        try:
            return Surface(top=top, guest=guest, surface_type=kind, facet=facet)
        except CatalysisError as exc:
            raise CatalysisError(f"surface {s!r}{where}: {exc}") from None
    raise CatalysisError(
        f"cannot read surface {s!r}{where}; write X@T (monolayer of T on X), T-B@T (B below a "
        "T surface), T3B@T (T on the intermetallic T3B) or B1T (single B atoms in T)"
    )


def parse_surfaces(texts: Iterable[str], *, facet: str = "100",
                   source: str | None = None) -> list[Surface]:
    """Parse many notations; the error names the first bad one and its position (0-based)."""
    out = []
    for i, t in enumerate(texts):
        out.append(parse_surface(t, facet=facet,
                                 source=f"item {i}" + (f" of {source}" if source else "")))
    return out


def enumerate_surfaces(
    metals: Sequence[str],
    types: Sequence[str] = ("overlayer", "subsurface", "intermetallic"),
    *,
    top_metals: Sequence[str] | None = None,
    include_pure: bool = True,
    facet: str = "100",
) -> list[Surface]:
    """Every surface of the given ``types`` over ``metals`` (each ordered pair top, guest).

    ``top_metals`` restricts the top layer (default: the d-block metals among ``metals``;
    others only appear as guests, and never as the isolated atom of a single-atom alloy). Pure metals appear once, as overlayers ``T@T``, when
    ``include_pure``. Unknown elements raise :class:`CatalysisError`.
    """
    metals = list(dict.fromkeys(metals))
    if not metals:
        raise CatalysisError("no metals given")
    for m in metals:
        check_metal(m, role="metal")
    for t in types:
        if t not in SURFACE_TYPES:
            raise CatalysisError(f"unknown surface type {t!r}; use any of {SURFACE_TYPES}")
    t = _element_flags()
    if top_metals is None:
        tops = [m for m in metals if bool(t.loc[m, "IsDBlock"])]
    else:
        tops = list(dict.fromkeys(top_metals))
        for m in tops:
            check_metal(m, role="top layer")
    if not tops:
        raise CatalysisError(f"none of {metals} can be a top layer (d-block metals only)")
    out: list[Surface] = []
    seen = set()
    for top in tops:
        for guest in metals:
            for kind in types:
                if top == guest:
                    if not include_pure:
                        continue
                    kind = "overlayer"
                if kind == "single_atom" and not bool(t.loc[guest, "IsDBlock"]):
                    continue  # the isolated atom is the adsorption site: d-block only
                s = Surface(top, guest, kind, facet)
                if s.notation not in seen:
                    seen.add(s.notation)
                    out.append(s)
    return out
