"""Powder X-ray diffraction patterns of crystal structures, vectorised over hkl and structures.

:func:`simulate` reproduces pymatgen's ``XRDCalculator.get_pattern`` (kinematic theory:
atomic scattering factors, Lorentz–polarisation factor, multiplicity from summing over every
reciprocal-lattice point in the limiting sphere) using the same scattering-factor table, the
same peak-merging and intensity cut-offs, but computes all hkl of a batch of structures in a
few numpy calls instead of a Python loop per peak. :func:`profile` turns a peak list into a
continuous pattern on a 2θ grid (pseudo-Voigt, optional Scherrer size broadening).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from matforge.errors import MatforgeWarning
from matforge.xrd.radiation import WAVELENGTHS

# pymatgen's AbstractDiffractionPatternCalculator tolerances.
TWO_THETA_TOL = 1e-5  # degrees; peaks closer than this (after binning) are merged
SCALED_INTENSITY_TOL = 1e-3  # peaks below this on the 0–100 scale are dropped
SCHERRER_K = 0.9

# Memory bounds (results do not depend on them): hkl box points enumerated per batch of
# structures, and complex entries of one structure-factor slab (2**22 × 16 B = 64 MB).
_MAX_BOX = 2_000_000
_MAX_BOX_ENTRIES = 4_194_304


@dataclass(frozen=True, eq=False)
class PeakList:
    """Diffraction peaks of one structure.

    Attributes:
        two_theta: peak positions in degrees 2θ, increasing, shape (n,).
        intensity: integrated intensities scaled so the strongest peak is 100, shape (n,).
        d_spacings: interplanar spacings in Å, shape (n,).
        wavelength: the wavelength in Å the peaks were computed for.
        family_hkl: Miller indices of each hkl family, shape (n_families, 3), or
            (n_families, 4) Miller–Bravais indices for hexagonal lattices (as pymatgen).
        family_multiplicity: number of reflections in each family, shape (n_families,).
        family_offsets: families of peak ``i`` are rows ``family_offsets[i]:family_offsets[i+1]``.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    d_spacings: np.ndarray
    wavelength: float
    family_hkl: np.ndarray
    family_multiplicity: np.ndarray
    family_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.two_theta)

    def __repr__(self) -> str:
        return f"PeakList({len(self)} peaks, λ={self.wavelength} Å)"

    @cached_property
    def hkls(self) -> list[list[dict]]:
        """Per peak, its hkl families as pymatgen writes them: ``[{"hkl": (h, k, l), "multiplicity": m}]``."""
        with _gc_paused():
            hkl = map(tuple, self.family_hkl.tolist())
            mult = self.family_multiplicity.tolist()
            off = self.family_offsets.tolist()
            fams = [{"hkl": h, "multiplicity": m} for h, m in zip(hkl, mult, strict=True)]
            return [fams[off[i] : off[i + 1]] for i in range(len(off) - 1)]


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while building many small acyclic containers: with a
    large heap (pymatgen structures) its passes would cost more than the building itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cache
def _scattering_table() -> dict[str, tuple[int, np.ndarray]]:
    """pymatgen's atomic scattering parameters: symbol -> (Z, (4, 2) array of (a_i, b_i))."""
    from importlib.resources import files

    from pymatgen.core.periodic_table import Element

    src = files("pymatgen.analysis.diffraction").joinpath("atomic_scattering_params.json")
    params = json.loads(src.read_text())
    return {sym: (Element(sym).Z, np.asarray(c, dtype=float)) for sym, c in params.items()}


def _as_structure(obj):
    from pymatgen.core import IStructure

    if isinstance(obj, IStructure):
        return obj
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"structure file not found: {path}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            structure = _read_structure(path)
        notes = _parser_notes(caught)
        if notes:
            warnings.warn(f"{path}: {'; '.join(notes)}", MatforgeWarning, stacklevel=3)
        return structure
    raise TypeError(f"expected a pymatgen Structure or a CIF/POSCAR path, got {type(obj).__name__}")


def _read_structure(path: Path):
    from pymatgen.core import Structure

    try:
        return Structure.from_file(path)
    except ValueError:
        # from_file guesses the format from the file name; fall back on the content
        text = path.read_text()
        fmt = "cif" if "_cell_length_a" in text else "poscar"
        try:
            return Structure.from_str(text, fmt=fmt)
        except Exception as exc:
            raise ValueError(f"{path}: not a readable CIF or POSCAR file ({exc})") from exc


def _parser_notes(caught) -> list[str]:
    """What pymatgen's parsers warned about a file, each note once, without their boilerplate
    ("Issues encountered while parsing CIF:") and as plain sentences."""
    notes: list[str] = []
    for w in caught:
        for line in str(w.message).splitlines():
            line = line.removeprefix("Issues encountered while parsing CIF:").strip()
            if line.startswith("No _symmetry_equiv_pos_as_xyz type key found"):
                line = "the CIF lists no symmetry operations: read as P1 (atoms as listed)"
            if line and line.rstrip(".") not in notes:
                notes.append(line.rstrip("."))
    return notes


def _wavelength(wavelength) -> float:
    if isinstance(wavelength, str):
        try:
            return WAVELENGTHS[wavelength]
        except KeyError:
            raise ValueError(
                f"unknown radiation {wavelength!r}; use one of {', '.join(WAVELENGTHS)} or a float in Å"
            ) from None
    value = float(wavelength)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"wavelength must be a positive number of Å, got {wavelength!r}")
    return value


def simulate(
    structures,
    wavelength: str | float = "CuKa",
    two_theta_range: tuple[float, float] | None = (10, 90),
    debye_waller: Mapping[str, float] | None = None,
) -> list[PeakList]:
    """Powder XRD peak lists of crystal structures (pymatgen ``XRDCalculator``-compatible).

    Args:
        structures: a pymatgen ``Structure``, a CIF/POSCAR path, or an iterable of them.
        wavelength: radiation name from :data:`WAVELENGTHS` (``"CuKa"`` = 1.54184 Å, as
            pymatgen) or a wavelength in Å.
        two_theta_range: (min, max) in degrees 2θ; ``None`` for the whole limiting sphere.
        debye_waller: isotropic Debye–Waller B factors in Å² per element symbol; the
            scattering factor of that element is multiplied by exp(−B s²), s = sin θ/λ.

    Returns:
        One :class:`PeakList` per structure, intensities scaled to a maximum of 100 (an empty
        PeakList when no reflection falls in the range).

    Partial occupancies weight each species' scattering factor by its occupancy. Anisotropic
    displacement parameters (``U11_cif`` site properties) are not applied.
    """
    from pymatgen.core import IStructure

    if isinstance(structures, str | os.PathLike | IStructure) or not isinstance(
        structures, Iterable
    ):
        structures = [structures]
    structures = [_as_structure(s) for s in structures]
    lam = _wavelength(wavelength)
    if two_theta_range is None:
        min_r, max_r = 0.0, 2 / lam
    else:
        lo, hi = (float(t) for t in two_theta_range)
        if not 0 <= lo < hi <= 180:
            raise ValueError(
                f"two_theta_range must satisfy 0 <= min < max <= 180, got {two_theta_range}"
            )
        min_r, max_r = (2 * math.sin(math.radians(t / 2)) / lam for t in (lo, hi))
    if not structures:
        return []

    table = _scattering_table()
    dw = dict(debye_waller or {})
    scatterers = [_scatterers(s, table, dw) for s in structures]
    matrices = np.array([s.lattice.matrix for s in structures], dtype=float).reshape(-1, 3, 3)
    recip = np.linalg.inv(matrices).transpose(0, 2, 1)  # crystallographic: rows b_i, no 2π
    lengths = np.sqrt((matrices**2).sum(axis=2))
    # |h| = |g·a| <= |g| |a|: the hkl box that holds the limiting sphere
    nmax = np.floor(max_r * lengths + 1e-8).astype(np.int64)
    hexagonal = _is_hexagonal(matrices, lengths)
    box = (nmax[:, 0] + 1) * (2 * nmax[:, 1] + 1) * (2 * nmax[:, 2] + 1)

    cum_box = np.cumsum(box)
    results: list[PeakList] = []
    start = 0
    with _single_threaded_blas():
        while start < len(structures):
            done = cum_box[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(cum_box, done + _MAX_BOX, side="right")))
            results.extend(
                _simulate_batch(
                    scatterers[start:stop], recip[start:stop], nmax[start:stop],
                    hexagonal[start:stop], lam, min_r, max_r,
                )
            )  # fmt: skip
            start = stop
    return results


class _Scatterers(NamedTuple):
    """A structure's (site, species) entries and the form-factor parameters of its elements."""

    frac: np.ndarray  # (E, 3) fractional coordinates
    occu: np.ndarray  # (E,) occupancies
    group: np.ndarray  # (E,) index of the entry's element in the arrays below
    z: np.ndarray  # (G,) atomic numbers
    a: np.ndarray  # (G, 4) pymatgen's a_i
    b: np.ndarray  # (G, 4) pymatgen's b_i
    dw: np.ndarray  # (G,) Debye–Waller B in Å²


@cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return None
    return ThreadpoolController()  # scanning the loaded libraries costs ~1 ms: once


def _single_threaded_blas():
    """The structure-factor products are many small matrices: BLAS threads only contend."""
    controller = _blas_controller()
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def _scatterers(structure, table, dw: Mapping[str, float]) -> _Scatterers:
    sites: list[int] = []
    occus: list[float] = []
    species: list = []
    for i, comp in enumerate(structure.species_and_occu):
        for sp, occu in comp.items():
            sites.append(i)
            occus.append(occu)
            species.append(sp)
    if not sites:
        raise ValueError("cannot simulate the XRD pattern of a structure with no sites")
    # scattering depends on the element only (as in pymatgen: Fe2+ scatters as Fe)
    symbol_group: dict[str, int] = {}
    species_group = {}
    for sp in dict.fromkeys(species):
        sym = getattr(sp, "symbol", None) or str(sp)
        if sym not in table:
            raise ValueError(
                f"no X-ray scattering factors for {sym!r} in {structure.composition.reduced_formula}; "
                f"pymatgen's table covers {len(table)} elements"
            )
        species_group[sp] = symbol_group.setdefault(sym, len(symbol_group))
    coeff = np.array([table[s][1] for s in symbol_group], dtype=float)  # (G, 4, 2)
    return _Scatterers(
        frac=np.asarray(structure.frac_coords, dtype=float)[sites],
        occu=np.asarray(occus, dtype=float),
        group=np.array([species_group[sp] for sp in species], dtype=np.int64),
        z=np.array([table[s][0] for s in symbol_group], dtype=float),
        a=coeff[:, :, 0],
        b=coeff[:, :, 1],
        dw=np.array([dw.get(s, 0.0) for s in symbol_group], dtype=float),
    )


def _is_hexagonal(matrices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """pymatgen's ``Lattice.is_hexagonal`` (5° angle, 0.01 Å length tolerance), per lattice."""
    a, b, c = matrices[:, 0], matrices[:, 1], matrices[:, 2]

    def angle(u, v, nu, nv):
        cos = np.clip(np.einsum("ni,ni->n", u, v) / (nu * nv), -1, 1)
        return np.degrees(np.arccos(cos))

    ang = np.stack(
        [angle(b, c, lengths[:, 1], lengths[:, 2]), angle(a, c, lengths[:, 0], lengths[:, 2]),
         angle(a, b, lengths[:, 0], lengths[:, 1])], axis=1,
    )  # fmt: skip
    right = np.abs(ang - 90) <= 5
    hexa = (np.abs(ang - 60) <= 5) | (np.abs(ang - 120) <= 5)
    m = np.argmax(hexa, axis=1)
    rows = np.arange(len(m))
    other1, other2 = np.array([1, 0, 0])[m], np.array([2, 2, 1])[m]
    return (
        (right.sum(axis=1) == 2)
        & (hexa.sum(axis=1) == 1)
        & (np.abs(lengths[rows, other1] - lengths[rows, other2]) <= 0.01)
    )


def _reflections(metric: np.ndarray, nmax: np.ndarray, sc: _Scatterers, min_r: float, max_r: float):
    """One structure's reflections with min_r <= |g| <= max_r and their |F|².

    Only the Friedel half-space h > 0 | (h = 0, k > 0) | (h = k = 0, l > 0) is enumerated:
    form factors are real, so F(-g) = F(g)* and I(-g) = I(g).

    F(g) = Σ_e f_e(s) S_e(g), where the phase sums S_e(g) = Σ_{j of element e} occu_j
    exp(2πi (h x_j + k y_j + l z_j)) factorise over the three axes: over a whole (h, k, l)
    box they are one complex matrix product (BLAS) of small per-axis tables, not
    (reflections × atoms) exponentials. The box is cut into slabs of h to bound memory.

    Returns (hk, l_index, |g|² in Å⁻², |F|²), sorted by |g| with ties in pymatgen's order
    (-h, -k, -l); hk = h·(2 n_k + 1) + k + n_k and l_index = l + n_l.
    """
    n_groups, n_entries = len(sc.z), len(sc.occu)
    n1, n2, n3 = (int(n) for n in nmax)
    w2, w3 = 2 * n2 + 1, 2 * n3 + 1
    nm = max(n1, n2, n3)
    # per-axis phase tables exp(2πi n x) for n = -nm..nm: (E, 3, 2nm+1), by powers of exp(2πi x)
    e = np.empty((n_entries, 3, 2 * nm + 1), dtype=complex)
    e[:, :, nm] = 1
    if nm:
        base = np.exp((2j * math.pi) * sc.frac)
        e[:, :, nm + 1 :] = np.cumprod(
            np.broadcast_to(base[:, :, None], (n_entries, 3, nm)), axis=2
        )
        e[:, :, nm - 1 :: -1] = e[:, :, nm + 1 :].conj()
    a = e[:, 0, nm : nm + n1 + 1] * sc.occu[:, None]  # h = 0..n1
    b = e[:, 1, nm - n2 : nm + n2 + 1]  # k = -n2..n2
    if n_groups == 1:
        c = e[:, 2, nm - n3 : nm + n3 + 1]  # l = -n3..n3
    else:  # one block of l columns per element, so the product sums each element apart
        c = np.zeros((n_entries, n_groups, w3), dtype=complex)
        c[np.arange(n_entries), sc.group] = e[:, 2, nm - n3 : nm + n3 + 1]
        c = c.reshape(n_entries, -1)
    # |g|² = (h, k, l) G* (h, k, l)ᵀ, split into an (hk) part, an (hk)·l part and an l part
    k = np.arange(-n2, n2 + 1, dtype=float)
    l = np.arange(-n3, n3 + 1, dtype=float)  # noqa: E741
    q_l = metric[2, 2] * l * l
    r_lo, r_hi = min_r * min_r, (max_r + 1e-8) ** 2
    slab = max(1, _MAX_BOX_ENTRIES // (w2 * w3 * max(n_groups, 3)))
    parts = []
    for h0 in range(0, n1 + 1, slab):
        h = np.arange(h0, min(h0 + slab, n1 + 1), dtype=float)[:, None]
        q_hk = metric[0, 0] * h * h + (2 * metric[0, 1]) * h * k + metric[1, 1] * k * k
        lin = (2 * metric[0, 2]) * h + (2 * metric[1, 2]) * k
        g2 = q_hk.reshape(-1, 1) + lin.reshape(-1, 1) * l + q_l  # (slab·w2, w3)
        mask = g2 <= r_hi
        if r_lo > 0:
            mask &= g2 >= r_lo
        if h0 == 0:  # h = 0: keep k > 0, or k = 0 and l > 0
            mask[:n2] = False
            mask[n2, : n3 + 1] = False
        hk, il = np.nonzero(mask)
        if len(hk):
            ab = (a[:, h0 : h0 + len(h), None] * b[:, None, :]).reshape(n_entries, -1)
            box = (ab.T @ c).reshape(-1, n_groups, w3)  # (slab·w2, G, w3)
            parts.append((hk + h0 * w2, il, g2[hk, il], box[hk, :, il]))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    hk, il, g2, sums = (
        parts[0] if len(parts) == 1 else (np.concatenate(x) for x in zip(*parts, strict=True))
    )
    # Box order is h, k, l ascending; a stable sort of the reversed rows breaks |g| ties by
    # -h, -k, -l as pymatgen does.
    order = len(g2) - 1 - np.argsort(g2[::-1], kind="stable")
    hk, il, g2, sums = hk[order], il[order], g2[order], sums[order]
    # f(s) = Z - 41.78214 s² Σ a_i exp(-b_i s²), s = |g|/2, pymatgen's fit and table.
    # Symmetry-equivalent reflections share |g| (to rounding), so f is evaluated once per run
    # of equal |g| in the sorted rows.
    new = np.ones(len(g2), dtype=bool)
    new[1:] = g2[1:] - g2[:-1] > 1e-12 * g2[1:]
    run = np.cumsum(new) - 1
    s2 = (g2[new] / 4)[:, None, None]
    f = sc.z - 41.78214 * s2[:, :, 0] * np.sum(sc.a * np.exp(-sc.b * s2), axis=2)  # (runs, G)
    if sc.dw.any():
        f = f * np.exp(-sc.dw * s2[:, :, 0])
    f = f[run]  # (M, G)
    fsum = np.einsum("mg,mg->m", f, sums) if n_groups > 1 else f[:, 0] * sums[:, 0]
    return hk, il, g2, fsum.real**2 + fsum.imag**2


def _simulate_batch(scatterers, recip, nmax, hexagonal, lam, min_r, max_r):
    n_struct = len(scatterers)
    # --- reflections and |F|² of each structure, rows grouped by structure, sorted by |g| ---
    metric = recip @ recip.transpose(0, 2, 1)
    rows = [_reflections(metric[s], nmax[s], sc, min_r, max_r) for s, sc in enumerate(scatterers)]
    owner = np.repeat(np.arange(n_struct), [len(r[0]) for r in rows])
    hk, il, g2, i_hkl = (np.concatenate([r[i] for r in rows]) for i in range(4))
    gnorm = np.sqrt(g2)
    n_rows = len(gnorm)
    h, k = np.divmod(hk, (2 * nmax[:, 1] + 1)[owner])
    k -= nmax[owner, 1]
    l = il - nmax[owner, 2]  # noqa: E741

    # --- Lorentz–polarisation, ×2 for the -g half-space (Friedel: F(-g) = F(g)*) ---
    theta = np.arcsin(np.clip(lam * gnorm / 2, -1, 1))
    cos2t = np.cos(2 * theta)
    intensity = 2 * i_hkl * (1 + cos2t**2) / (np.sin(theta) ** 2 * np.cos(theta))
    two_theta = np.degrees(2 * theta)

    # --- merge reflections in the same TWO_THETA_TOL bin (rows are sorted by |g|) ---
    key = np.round(two_theta / TWO_THETA_TOL).astype(np.int64)
    new_peak = np.ones(n_rows, dtype=bool)
    new_peak[1:] = (key[1:] != key[:-1]) | (owner[1:] != owner[:-1])
    first = np.flatnonzero(new_peak)
    peak_of_row = np.cumsum(new_peak) - 1
    peak_int = np.add.reduceat(intensity, first) if n_rows else np.zeros(0)
    peak_owner = owner[first]
    peak_bounds = np.searchsorted(peak_owner, np.arange(n_struct + 1))
    peak_max = np.zeros(n_struct)
    has_peaks = peak_bounds[1:] > peak_bounds[:-1]
    if has_peaks.any():
        peak_max[has_peaks] = np.maximum.reduceat(peak_int, peak_bounds[:-1][has_peaks])
    with np.errstate(invalid="ignore", divide="ignore"):
        kept = peak_int / peak_max[peak_owner] * 100 > SCALED_INTENSITY_TOL

    # --- hkl families of the kept peaks ---
    row_kept = kept[peak_of_row]
    fam_peak, fam_hkl, fam_mult = _families(
        h[row_kept], k[row_kept], l[row_kept], peak_of_row[row_kept], hexagonal[owner[row_kept]]
    )

    peak_ids = np.flatnonzero(kept)
    bounds = np.searchsorted(peak_owner[peak_ids], np.arange(n_struct + 1))
    fam_bounds = np.append(np.searchsorted(fam_peak, peak_ids), len(fam_peak))
    tt, dd, yy = two_theta[first[peak_ids]], 1.0 / gnorm[first[peak_ids]], peak_int[peak_ids]
    out = []
    for s in range(n_struct):
        lo, hi = bounds[s], bounds[s + 1]
        f_lo, f_hi = fam_bounds[lo], fam_bounds[hi]
        y = yy[lo:hi]
        if len(y):
            y = y / (y.max() / 100)  # pymatgen's normalize(mode="max", value=100)
        out.append(
            PeakList(
                two_theta=tt[lo:hi],
                intensity=y,
                d_spacings=dd[lo:hi],
                wavelength=lam,
                family_hkl=fam_hkl[f_lo:f_hi, : 4 if hexagonal[s] else 3],
                family_multiplicity=fam_mult[f_lo:f_hi],
                family_offsets=fam_bounds[lo : hi + 1] - f_lo,
            )
        )
    return out


def _families(h, k, l, peak, hexagonal):  # noqa: E741
    """Group the reflections ±(h, k, l) of each peak into permutation families.

    pymatgen's ``get_unique_families``: Miller indices whose sorted absolute values agree
    form a family (on Miller–Bravais (h, k, -h-k, l) indices for hexagonal lattices), named
    by its lexicographically largest member, with the member count as multiplicity. Rows
    come in pymatgen's order; families are returned per peak in order of first appearance.

    Returns (family_peak, family_hkl (n, 4); the 4th column is 0 unless hexagonal, multiplicity).
    """
    n = len(h)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros((0, 4), dtype=np.int64), empty
    idx = np.where(
        hexagonal[:, None],
        np.stack([h, k, -h - k, l], axis=1),
        np.stack([h, k, l, np.zeros_like(h)], axis=1),
    ).astype(np.int64)
    base = 2 * int(np.abs(idx).max()) + 1
    half = base // 2
    # +hkl and -hkl share a family, so only +hkl rows are grouped; each counts twice
    abs_sorted = np.sort(np.abs(idx), axis=1)
    fam_code = peak.astype(np.int64)
    lex_pos = np.zeros(n, dtype=np.int64)
    lex_neg = np.zeros(n, dtype=np.int64)
    for j in range(4):
        fam_code = fam_code * base + abs_sorted[:, j]
        lex_pos = lex_pos * base + (idx[:, j] + half)
        lex_neg = lex_neg * base + (half - idx[:, j])
    if base**4 * (int(peak.max()) + 1) >= 2**62:  # int64 codes would overflow
        raise ValueError("Miller indices too large for the family grouping")
    uniq, first_row, inverse, counts = np.unique(
        fam_code, return_index=True, return_inverse=True, return_counts=True
    )
    best = np.full(len(uniq), np.iinfo(np.int64).min)
    np.maximum.at(best, inverse, np.maximum(lex_pos, lex_neg))
    rep = np.empty((len(uniq), 4), dtype=np.int64)
    for j in range(3, -1, -1):
        rep[:, j] = best % base - half
        best //= base
    fam_peak = uniq // base**4
    order = np.lexsort((first_row, fam_peak))
    return fam_peak[order], rep[order], 2 * counts[order]


def profile(
    peaklist: PeakList,
    grid,
    fwhm: float | None = None,
    eta: float = 0.5,
    crystallite_size_nm: float | None = None,
) -> np.ndarray:
    """A continuous pattern on ``grid`` (degrees 2θ): a pseudo-Voigt peak per reflection.

    Each peak is η·Lorentzian + (1 − η)·Gaussian of equal FWHM, normalised to unit area (per
    degree 2θ) and scaled by the peak's integrated intensity, so broadening keeps areas.

    Args:
        peaklist: peaks from :func:`simulate`.
        grid: 2θ values in degrees, shape (n,).
        fwhm: instrumental full width at half maximum in degrees 2θ; default 0.1° when no
            crystallite size is given, else 0 (size broadening only).
        eta: Lorentzian fraction of the pseudo-Voigt, 0–1.
        crystallite_size_nm: mean crystallite size L in nm. Adds Scherrer broadening
            β = Kλ / (L cos θ) (K = 0.9, β in radians 2θ), combined with ``fwhm`` in
            quadrature.

    Returns:
        Intensities on ``grid``, shape (n,).
    """
    grid = np.asarray(grid, dtype=float)
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must be between 0 and 1, got {eta!r}")
    if fwhm is None:
        fwhm = 0.1 if crystallite_size_nm is None else 0.0
    if fwhm < 0:
        raise ValueError(f"fwhm must be >= 0 degrees, got {fwhm!r}")
    x0 = np.asarray(peaklist.two_theta, dtype=float)
    widths = np.full(len(x0), float(fwhm))
    if crystallite_size_nm is not None:
        if not crystallite_size_nm > 0:
            raise ValueError(f"crystallite_size_nm must be > 0, got {crystallite_size_nm!r}")
        theta = np.radians(x0 / 2)
        beta = SCHERRER_K * peaklist.wavelength / (10 * crystallite_size_nm * np.cos(theta))
        widths = np.sqrt(widths**2 + np.degrees(beta) ** 2)
    if len(x0) and not (widths > 0).all():
        raise ValueError("peak widths must be > 0: give fwhm > 0 or a crystallite size")
    out = np.zeros(grid.shape)
    # chunks of peaks bound the (grid × peaks) temporary to ~32 MB
    step = max(1, 4_000_000 // max(1, grid.size))
    for i in range(0, len(x0), step):
        dx = grid.reshape(-1, 1) - x0[i : i + step]
        w = widths[i : i + step]
        hw = w / 2
        lorentz = (hw / np.pi) / (dx * dx + hw * hw)
        sigma = w / (2 * math.sqrt(2 * math.log(2)))
        gauss = np.exp(-0.5 * (dx / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        out += (eta * lorentz + (1 - eta) * gauss) @ peaklist.intensity[i : i + step]
    return out.reshape(grid.shape)
