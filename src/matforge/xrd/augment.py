"""Augmentations that make simulated powder patterns look measured.

Real samples differ from an ideal simulated pattern in ways a classifier must not be fooled
by. Structural effects are applied to the crystal before simulating (:func:`perturb`):

* **vacancies** — a fraction (0–25 %) of the sites left empty at random. Randomly placed
  vacancies scatter, on Bragg peaks, as the average crystal: the occupancy of the sites they
  hit drops. Vacancies are put on randomly chosen symmetry orbits (a sublattice, as in real
  cation- or anion-deficient compounds), so relative intensities change, the symmetry not;
* **random atomic displacements** — isotropic Gaussian shifts, RMS in Å (static disorder);
* **lattice strain** — lattice lengths scaled by up to ±3 % with the ties the crystal system
  imposes (a = b = c stays equal in a cubic crystal), so peaks shift without splitting.

Instrument and microstructure effects act on the peak list and the profile (:func:`render`,
vectorised over a batch): crystallite size (5–100 nm, Scherrer broadening), preferred
orientation (March–Dollase along a random hkl), zero-point shift (±0.2°), Cu Kα2 doublets,
pseudo-Voigt shape; and on the pattern: background (polynomial + low-angle exponential +
amorphous hump, :func:`background`), Poisson counting noise (:func:`poisson_noise`), impurity
peaks of a second phase (:func:`augment`), a shortened measured range.

Every random function takes a ``numpy.random.Generator`` (or a seed), so a batch is
reproducible from its seed. Angles are degrees 2θ, wavelengths Å, sizes nm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import cache
from itertools import permutations

import numpy as np

from matforge.xrd.radiation import CU_KA1, CU_KA2, KA2_RATIO

SCHERRER_K = 0.9

CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)
# first space-group number of each crystal system, in CRYSTAL_SYSTEMS order
_CS_FIRST_SG = np.array([1, 3, 16, 75, 143, 168, 195])


def crystal_system_index(spacegroup) -> np.ndarray:
    """Index into :data:`CRYSTAL_SYSTEMS` of space-group numbers 1–230 (array in, array out)."""
    sg = np.asarray(spacegroup)
    if np.any((sg < 1) | (sg > 230)):
        raise ValueError(f"space-group numbers must be 1–230, got {sg[(sg < 1) | (sg > 230)]}")
    return np.searchsorted(_CS_FIRST_SG, sg, side="right") - 1


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges the augmentation parameters are drawn from (uniform unless stated).

    Probabilities say how often an effect is applied at all; a range ``(lo, hi)`` with
    ``lo == hi`` fixes the value. The default is the "realistic" mix used for training and
    for the benchmark's test patterns; :meth:`pristine` switches everything off.
    """

    vacancy_prob: float = 0.5
    vacancy_fraction: tuple[float, float] = (0.0, 0.25)  # of all sites
    displacement_prob: float = 0.5
    displacement_rms: tuple[float, float] = (0.0, 0.1)  # Å
    strain: float = 0.03  # max |relative change| of each lattice length
    size_prob: float = 0.7
    size_nm: tuple[float, float] = (5.0, 100.0)  # log-uniform crystallite size
    fwhm: tuple[float, float] = (0.04, 0.15)  # instrumental FWHM, degrees 2θ
    eta: tuple[float, float] = (0.1, 0.9)  # Lorentzian fraction of the pseudo-Voigt
    texture_prob: float = 0.4
    march_r: tuple[float, float] = (0.6, 1.4)  # March–Dollase r (1 = random powder)
    zero_shift: float = 0.2  # max |zero-point error|, degrees 2θ
    kalpha2_prob: float = 0.5
    background_prob: float = 0.8
    background_level: tuple[float, float] = (0.0, 0.3)  # relative to the strongest peak
    noise_prob: float = 0.9
    noise_counts: tuple[float, float] = (100.0, 1e5)  # log-uniform counts of the strongest peak
    impurity_prob: float = 0.3
    impurity_fraction: tuple[float, float] = (0.02, 0.15)  # impurity's strongest peak / main's
    crop_prob: float = 0.1
    crop: float = 10.0  # max degrees cut from each end of the range
    scale: tuple[float, float] = (1.0, 1.0)  # log-uniform isotropic lattice scale factor
    species_prob: float = 0.0  # chance of replacing the elements by random other ones

    @classmethod
    def pristine(cls) -> AugmentConfig:
        """No augmentation: ideal simulated patterns (0.1° FWHM, η = 0.5, Kα1 only)."""
        return cls(
            vacancy_prob=0, displacement_prob=0, strain=0, size_prob=0, fwhm=(0.1, 0.1),
            eta=(0.5, 0.5), texture_prob=0, zero_shift=0, kalpha2_prob=0, background_prob=0,
            noise_prob=0, impurity_prob=0, crop_prob=0,
        )  # fmt: skip

    @classmethod
    def training(cls) -> AugmentConfig:
        """The realistic mix plus structural diversity for training only: lattice lengths
        changed by up to ±12 % per free axis and ×0.85–1.18 overall, and in 30 % of the
        patterns the elements replaced by random others. Lattices and chemistries of the
        training structures are then never seen twice, so the network has to learn what the
        symmetry does to the pattern rather than the structures' exact peak positions."""
        return cls(strain=0.12, scale=(0.85, 1.18), species_prob=0.3)

    def replace(self, **changes) -> AugmentConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# parameter sampling
# ---------------------------------------------------------------------------------------


def _uniform(rng, lo_hi, n):
    lo, hi = lo_hi
    return np.full(n, float(lo)) if lo == hi else rng.uniform(lo, hi, n)


def _log_uniform(rng, lo_hi, n):
    lo, hi = lo_hi
    return np.full(n, float(lo)) if lo == hi else np.exp(rng.uniform(math.log(lo), math.log(hi), n))


def _gate(rng, prob, values):
    """values where a coin with ``prob`` comes up, else 0 (NaN-free)."""
    if prob >= 1:
        return values
    return np.where(rng.random(len(values)) < prob, values, 0.0)


def sample_params(n: int, config: AugmentConfig, rng) -> dict[str, np.ndarray]:
    """Draw the augmentation parameters of ``n`` patterns.

    Returns arrays of length n: ``vacancy`` (fraction of sites), ``displacement`` (RMS Å),
    ``strain`` (n, 3) relative length changes, ``size_nm`` (0 = no size broadening),
    ``fwhm`` (°), ``eta``, ``march_r`` (1 = no texture), ``texture_hkl`` (n, 3),
    ``zero_shift`` (°), ``kalpha2`` (0/1), ``background`` (relative level), ``counts``
    (0 = noise-free), ``impurity`` (relative level), ``crop_lo``/``crop_hi`` (° cut),
    ``scale`` (isotropic lattice factor), ``species`` (0/1: replace the elements).
    """
    rng = _rng(rng)
    p = {
        "vacancy": _gate(rng, config.vacancy_prob, _uniform(rng, config.vacancy_fraction, n)),
        "displacement": _gate(
            rng, config.displacement_prob, _uniform(rng, config.displacement_rms, n)
        ),
        "strain": rng.uniform(-config.strain, config.strain, (n, 3)) if config.strain else np.zeros((n, 3)),
        "size_nm": _gate(rng, config.size_prob, _log_uniform(rng, config.size_nm, n)),
        "fwhm": _uniform(rng, config.fwhm, n),
        "eta": _uniform(rng, config.eta, n),
        "march_r": np.where(
            rng.random(n) < config.texture_prob, _uniform(rng, config.march_r, n), 1.0
        ),
        "texture_hkl": _random_directions(rng, n),
        "zero_shift": rng.uniform(-config.zero_shift, config.zero_shift, n) if config.zero_shift else np.zeros(n),
        "kalpha2": (rng.random(n) < config.kalpha2_prob).astype(float),
        "background": _gate(rng, config.background_prob, _uniform(rng, config.background_level, n)),
        "counts": _gate(rng, config.noise_prob, _log_uniform(rng, config.noise_counts, n)),
        "impurity": _gate(rng, config.impurity_prob, _uniform(rng, config.impurity_fraction, n)),
    }  # fmt: skip
    p["scale"] = _log_uniform(rng, config.scale, n)
    p["species"] = (rng.random(n) < config.species_prob).astype(float)
    crop = rng.random(n) < config.crop_prob
    p["crop_lo"] = np.where(crop, rng.uniform(0, config.crop, n), 0.0)
    p["crop_hi"] = np.where(crop, rng.uniform(0, config.crop, n), 0.0)
    return p


_DIRECTIONS = np.array(
    [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, -1, 0],
     [1, 1, 2], [2, 1, 0], [1, 0, 2], [0, 1, 2]], dtype=float,
)  # fmt: skip


def _random_directions(rng, n):
    """Preferred-orientation directions: low-index hkl (plate and needle habits)."""
    return _DIRECTIONS[rng.integers(0, len(_DIRECTIONS), n)]


# ---------------------------------------------------------------------------------------
# structural perturbations
# ---------------------------------------------------------------------------------------


def perturb(
    structure,
    *,
    vacancy: float = 0.0,
    displacement: float = 0.0,
    strain=(0.0, 0.0, 0.0),
    scale: float = 1.0,
    species_map: dict[str, str] | None = None,
    crystal_system: str | None = None,
    orbits=None,
    rng=None,
):
    """A perturbed copy of ``structure``: vacancies, displaced atoms, strained lattice.

    Args:
        structure: pymatgen ``Structure``, ideally the conventional standard cell (strain
            ties assume its axes: c is the unique axis of tetragonal/hexagonal cells).
        vacancy: fraction of all sites left empty (0–1). The vacancies go to randomly chosen
            symmetry orbits (``orbits``: orbit id per site, e.g. spglib's
            ``equivalent_atoms``; without it, one orbit per element) as reduced occupancy,
            at most 75 % of an orbit; the fraction realised is returned.
        displacement: RMS of isotropic Gaussian displacements of every site, Å.
        strain: relative changes (ε_a, ε_b, ε_c) of the lattice lengths; tied as the crystal
            system requires (cubic: ε_a for all; tetragonal/trigonal/hexagonal: a = b).
            Monoclinic and triclinic cells also get their non-right angles changed by ε·angle/3.
        scale: factor on all lattice lengths.
        species_map: element replacements, e.g. ``{"Na": "K"}``.
        crystal_system: one of :data:`CRYSTAL_SYSTEMS`; ``None`` applies ε_a to all lengths.
        rng: Generator or seed.

    Returns:
        (structure, realised vacancy fraction).
    """
    from pymatgen.core import Lattice, Structure

    rng = _rng(rng)
    lattice = structure.lattice
    eps = np.asarray(strain, dtype=float)
    if crystal_system in (None, "cubic"):
        eps = np.full(3, eps[0])
    elif crystal_system in ("tetragonal", "trigonal", "hexagonal"):
        eps = np.array([eps[0], eps[0], eps[2]])
    if np.any(eps) or scale != 1:
        abc = np.asarray(lattice.abc) * (1 + eps) * scale
        angles = np.asarray(lattice.angles, dtype=float)
        if crystal_system in ("monoclinic", "triclinic"):
            oblique = np.abs(angles - 90) > 0.5
            angles = np.where(oblique, angles * (1 + eps[::-1] / 3), angles)
        lattice = Lattice.from_parameters(*abc, *angles)

    frac = np.asarray(structure.frac_coords, dtype=float)
    if displacement > 0:
        cart = rng.normal(0.0, displacement / math.sqrt(3), frac.shape)  # RMS over 3 axes
        frac = frac + cart @ lattice.inv_matrix

    species = [sp.symbol if hasattr(sp, "symbol") else str(sp) for sp in structure.species]
    if species_map:
        species = [species_map.get(s, s) for s in species]
    realised = 0.0
    if vacancy > 0:
        occu, realised = _vacancy_occupancies(species, orbits, vacancy, rng)
        species = [{s: o} for s, o in zip(species, occu, strict=True)]
    return Structure(lattice, species, frac, coords_are_cartesian=False), realised


def _vacancy_occupancies(species, orbits, fraction, rng, max_per_orbit=0.75):
    n = len(species)
    if orbits is None:
        _, orbits = np.unique(species, return_inverse=True)
    orbits = np.asarray(orbits)
    ids, inverse, mult = np.unique(orbits, return_inverse=True, return_counts=True)
    order = rng.permutation(len(ids))
    # take orbits in random order until they can hold the vacancies
    target = fraction * n
    chosen, capacity = [], 0.0
    for o in order:
        chosen.append(o)
        capacity += max_per_orbit * mult[o]
        if capacity >= target and rng.random() < 0.5:
            break
    chosen = np.array(chosen)
    per_orbit = np.zeros(len(ids))
    per_orbit[chosen] = min(max_per_orbit, target / mult[chosen].sum())
    occu = 1.0 - per_orbit[inverse]
    return occu, float((1 - occu).sum() / n)


@cache
def _species_pool() -> tuple[str, ...]:
    from matforge.chem import SYMBOLS

    skip = {"H", "He", "Ne", "Ar", "Kr", "Xe", "Rn", "Tc", "Pm", "Po", "At"}
    return tuple(s for s in SYMBOLS[2:83] if s not in skip)  # Li–Bi


def _random_species_map(structure, rng) -> dict[str, str]:
    """An injective map of the structure's elements to random elements (Li–Bi)."""
    elements = sorted({el.symbol for el in structure.composition.elements})
    pool = _species_pool()
    new = rng.choice(len(pool), size=len(elements), replace=False)
    return {e: pool[j] for e, j in zip(elements, new, strict=True)}


# ---------------------------------------------------------------------------------------
# peaks -> profile
# ---------------------------------------------------------------------------------------


def march_dollase(peaklists, reciprocal, directions, r) -> list[np.ndarray]:
    """March–Dollase preferred-orientation factors, one array per peak list.

    P(α) = (r² cos²α + sin²α / r)^(-3/2), α the angle between a reflection's normal and the
    preferred direction; averaged over the symmetry-equivalent reflections of each hkl family
    (signed permutations of its indices at the same d-spacing) and over a peak's families,
    weighted by multiplicity.

    Args:
        peaklists: :class:`~matforge.xrd.simulate.PeakList` s.
        reciprocal: (n, 3, 3) reciprocal lattice rows b_i (no 2π) of each structure, Å⁻¹.
        directions: (n, 3) preferred hkl per structure (a reciprocal-lattice vector).
        r: (n,) March–Dollase parameters; 1 gives factors of 1.
    """
    r = np.asarray(r, dtype=float)
    out = [np.ones(len(p)) for p in peaklists]
    todo = [i for i, p in enumerate(peaklists) if len(p) and r[i] != 1]
    if not todo:
        return out
    fam_hkl, fam_owner, fam_peak, fam_mult, hexa = [], [], [], [], []
    for i in todo:
        p = peaklists[i]
        hkl = p.family_hkl
        is_hex = hkl.shape[1] == 4
        fam_hkl.append(hkl if is_hex else np.pad(hkl, ((0, 0), (0, 1))))
        fam_owner.append(np.full(len(hkl), i))
        fam_peak.append(np.repeat(np.arange(len(p)), np.diff(p.family_offsets)))
        fam_mult.append(p.family_multiplicity)
        hexa.append(np.full(len(hkl), is_hex))
    hkl4 = np.concatenate(fam_hkl).astype(float)
    owner = np.concatenate(fam_owner)
    peak = np.concatenate(fam_peak)
    mult = np.concatenate(fam_mult).astype(float)
    hexa = np.concatenate(hexa)

    variants = _equivalent_variants(hkl4, hexa)  # (F, V, 3) in 3-index hkl
    recip = np.asarray(reciprocal, dtype=float)[owner]  # (F, 3, 3)
    g = np.einsum("fvi,fij->fvj", variants, recip)
    g_norm = np.linalg.norm(g, axis=2)
    g_rep = g_norm[:, :1]
    same_d = np.abs(g_norm - g_rep) <= 1e-6 * np.maximum(g_rep, 1e-12)
    pref = np.einsum("fi,fij->fj", np.asarray(directions, dtype=float)[owner], recip)
    pref /= np.linalg.norm(pref, axis=1, keepdims=True)
    cos = np.einsum("fvj,fj->fv", g, pref) / np.maximum(g_norm, 1e-12)
    rr = r[owner][:, None]
    factor = (rr**2 * cos**2 + (1 - cos**2) / rr) ** -1.5
    fam_factor = (factor * same_d).sum(axis=1) / same_d.sum(axis=1)

    # per peak: multiplicity-weighted mean over its families
    key = owner.astype(np.int64) * (int(peak.max()) + 1) + peak
    uniq, inv = np.unique(key, return_inverse=True)
    num = np.bincount(inv, weights=mult * fam_factor)
    den = np.bincount(inv, weights=mult)
    width = int(peak.max()) + 1
    for k, val in zip(uniq, num / den, strict=True):
        out[k // width][k % width] = val
    return out


def _equivalent_variants(hkl4: np.ndarray, hexa: np.ndarray) -> np.ndarray:
    """Signed permutations of each family's indices as 3-index hkl, shape (F, 48, 3)."""
    perms = np.array(list(permutations(range(3))))  # (6, 3)
    signs = np.array(np.meshgrid([1, -1], [1, -1], [1, -1], indexing="ij")).reshape(3, -1).T
    cubic = hkl4[:, None, :3][:, :, perms].reshape(len(hkl4), 6, 3)  # (F, 6, 3)
    cubic = (cubic[:, :, None, :] * signs[None, None]).reshape(len(hkl4), 48, 3)
    if not hexa.any():
        return cubic
    # Miller–Bravais: permute (h, k, i), flip (h, k, i) together and l apart; keep (h, k, l)
    hki = hkl4[:, None, :3][:, :, perms].reshape(len(hkl4), 6, 3)
    sign_hki = np.array([1, 1, -1, -1])
    sign_l = np.array([1, -1, 1, -1])
    h = (hki[:, :, None, :2] * sign_hki[None, None, :, None]).reshape(len(hkl4), 24, 2)
    ll = np.broadcast_to(
        (hkl4[:, 3, None, None] * sign_l[None, None, :]), (len(hkl4), 6, 4)
    ).reshape(len(hkl4), 24, 1)
    hexv = np.concatenate([h, ll], axis=2)
    hexv = np.concatenate([hexv, hexv], axis=1)
    return np.where(hexa[:, None, None], hexv, cubic)


def render(
    peaklists,
    grid,
    *,
    fwhm,
    eta,
    size_nm=None,
    zero_shift=None,
    kalpha2=None,
    texture=None,
    dtype=np.float32,
) -> np.ndarray:
    """Pseudo-Voigt patterns of a batch of peak lists on ``grid`` (degrees 2θ), at Cu Kα1.

    Peak positions are recomputed from the d-spacings at :data:`CU_KA1` (so the peak lists
    may come from any wavelength), shifted by ``zero_shift`` and, where ``kalpha2`` is set,
    doubled by a Kα2 peak of half the intensity. Widths combine the instrumental ``fwhm`` and
    Scherrer broadening of ``size_nm`` in quadrature. Each pattern is scaled to a maximum of 1.

    Args:
        peaklists: n :class:`~matforge.xrd.simulate.PeakList` s.
        grid: 2θ values in degrees, shape (G,).
        fwhm, eta: per pattern (n,), degrees 2θ and Lorentzian fraction.
        size_nm: per pattern crystallite size in nm; 0 or None = no size broadening.
        zero_shift: per pattern zero-point error in degrees (added to peak positions).
        kalpha2: per pattern 0/1.
        texture: per pattern intensity factors per peak (from :func:`march_dollase`).

    Returns:
        (n, G) array.
    """
    grid = np.asarray(grid, dtype=float)
    n = len(peaklists)

    def per_pattern(v, default):
        return (
            np.full(n, default, dtype=float)
            if v is None
            else np.broadcast_to(np.asarray(v, dtype=float), (n,))
        )

    fwhm, eta = per_pattern(fwhm, 0.1), per_pattern(eta, 0.5)
    size_nm, zero_shift = per_pattern(size_nm, 0.0), per_pattern(zero_shift, 0.0)
    kalpha2 = per_pattern(kalpha2, 0.0)
    counts = np.array([len(p) for p in peaklists])
    owner = np.repeat(np.arange(n), counts)
    d = np.concatenate([p.d_spacings for p in peaklists]) if counts.sum() else np.zeros(0)
    inten = np.concatenate(
        [p.intensity * (1 if texture is None else texture[i]) for i, p in enumerate(peaklists)]
    ) if counts.sum() else np.zeros(0)  # fmt: skip
    # Kα2 copies
    k2 = kalpha2[owner] > 0
    lam = np.concatenate([np.full(len(d), CU_KA1), np.full(int(k2.sum()), CU_KA2)])
    owner = np.concatenate([owner, owner[k2]])
    inten = np.concatenate([inten, KA2_RATIO * inten[k2]])
    d = np.concatenate([d, d[k2]])
    s = lam / (2 * d)
    ok = s < 1
    owner, inten, d, lam, s = owner[ok], inten[ok], d[ok], lam[ok], s[ok]
    theta = np.arcsin(s)
    x0 = np.degrees(2 * theta) + zero_shift[owner]
    width = fwhm[owner]
    L = size_nm[owner]
    has_size = L > 0
    beta = np.zeros(len(x0))
    beta[has_size] = np.degrees(
        SCHERRER_K * lam[has_size] / (10 * L[has_size] * np.cos(theta[has_size]))
    )
    width = np.sqrt(width**2 + beta**2)
    # drop peaks whose profile cannot reach the grid (8 FWHM of Lorentzian tail)
    near = (x0 > grid[0] - 8 * width - 2) & (x0 < grid[-1] + 8 * width + 2)
    owner, inten, x0, width = owner[near], inten[near], x0[near], width[near]
    e = eta[owner]

    out = _pseudo_voigt_sum(grid, n, owner, x0, width, e, inten).astype(dtype, copy=False)
    peak = out.max(axis=1, keepdims=True)
    np.divide(out, peak, out=out, where=peak > 0)
    return out


_WINDOW_FWHM = 25  # half-window of a peak, in FWHM: 1.3 % of a Lorentzian's area lies beyond
_POINTS_PER_FWHM = 8  # broad peaks are evaluated on a coarser grid with this many points/FWHM


def _pseudo_voigt_sum(grid, n, owner, x0, width, eta, inten):
    """Σ over peaks of area-normalised pseudo-Voigts, per pattern, shape (n, G), float32.

    Each peak is evaluated on the grid points within ±25 FWHM of its centre only. Peaks are
    bucketed by window length (powers of two), so each bucket is one dense (peaks × window)
    evaluation and one bincount. Broad peaks (crystallites of a few nm) are evaluated on every
    k-th grid point, at least 8 points per FWHM, and linearly interpolated: ~10× less work
    than the full (peaks × grid) product, within 1 % of the pattern's maximum.
    """
    size = grid.size
    out = np.zeros((n, size), dtype=np.float64)
    if not len(x0):
        return out.astype(np.float32)
    step = (grid[-1] - grid[0]) / max(1, size - 1)  # grids are uniform
    half = np.ceil(_WINDOW_FWHM * width / step).astype(np.int64)
    bucket = np.minimum(2 ** np.ceil(np.log2(np.maximum(half, 8))).astype(np.int64), size)
    c_gauss = 2 * math.sqrt(2 * math.log(2))
    for h in np.unique(bucket):
        sel = np.flatnonzero(bucket == h)
        k = max(1, int(width[sel].min() / step / _POINTS_PER_FWHM))
        coarse = grid[0] + step * k * np.arange((size - 1) // k + 2)  # covers the grid's end
        n_c = len(coarse)
        acc = np.zeros(n * n_c)
        offsets = np.arange(-(h // k) - 1, h // k + 2)
        centre = np.rint((x0 - grid[0]) / (step * k)).astype(np.int64)
        g32 = coarse.astype(np.float32)
        chunk = max(1, 4_000_000 // len(offsets))
        for lo in range(0, len(sel), chunk):
            s = sel[lo : lo + chunk]
            idx = centre[s, None] + offsets[None, :]
            valid = (idx >= 0) & (idx < n_c)
            idx_c = np.clip(idx, 0, n_c - 1)
            dx = g32[idx_c] - x0[s, None].astype(np.float32)
            w = width[s, None].astype(np.float32)
            hw = w / 2
            lor = (hw / np.float32(np.pi)) / (dx * dx + hw * hw)
            sigma = w / np.float32(c_gauss)
            gau = np.exp(np.float32(-0.5) * (dx / sigma) ** 2) / (
                sigma * np.float32(math.sqrt(2 * math.pi))
            )
            ee = eta[s, None].astype(np.float32)
            prof = (ee * lor + (1 - ee) * gau) * inten[s, None].astype(np.float32)
            flat = (owner[s, None] * n_c + idx_c)[valid]
            acc += np.bincount(flat, weights=prof[valid], minlength=n * n_c)
        acc = acc.reshape(n, n_c)
        if k == 1:
            out += acc[:, :size]
        else:  # linear interpolation from every k-th point
            j, frac = np.divmod(np.arange(size), k)
            frac = frac / k
            out += acc[:, j] * (1 - frac) + acc[:, j + 1] * frac
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------
# pattern-level effects
# ---------------------------------------------------------------------------------------


def background(grid, level, rng, dtype=np.float32) -> np.ndarray:
    """Smooth backgrounds of a batch, shape (n, G), each with maximum ``level[i]``.

    A random mix of a positive low-order polynomial in 2θ, a low-angle exponential decay (air
    scatter, fluorescence) and a broad amorphous hump (glass holder, amorphous phase).
    """
    rng = _rng(rng)
    level = np.asarray(level, dtype=float)
    n = len(level)
    x = (np.asarray(grid, dtype=float) - grid[0]) / (grid[-1] - grid[0])  # 0..1
    c = rng.uniform(-1, 1, (n, 3))
    poly = 1 + c[:, :1] * x + c[:, 1:2] * x**2 * 0.5 + c[:, 2:3] * (x**3) * 0.25
    poly -= poly.min(axis=1, keepdims=True) - rng.uniform(0.1, 1, (n, 1))
    decay = rng.uniform(0.02, 0.3, (n, 1))
    expo = rng.uniform(0, 2, (n, 1)) * np.exp(-x / decay)
    centre, width = rng.uniform(0.05, 0.4, (n, 1)), rng.uniform(0.05, 0.2, (n, 1))
    hump = (
        rng.uniform(0, 1, (n, 1))
        * (rng.random((n, 1)) < 0.3)
        * np.exp(-0.5 * ((x - centre) / width) ** 2)
    )
    bg = poly * rng.uniform(0, 1, (n, 1)) + expo + hump
    bg /= np.maximum(bg.max(axis=1, keepdims=True), 1e-12)
    return (bg * level[:, None]).astype(dtype)


def poisson_noise(patterns, counts, rng) -> np.ndarray:
    """Counting noise: each pattern scaled to ``counts`` at its maximum, Poisson-sampled,
    scaled back. ``counts[i] == 0`` leaves pattern i noise-free."""
    rng = _rng(rng)
    x = np.asarray(patterns)
    counts = np.asarray(counts, dtype=float)
    out = x.copy()
    noisy = counts > 0
    if noisy.any():
        peak = np.maximum(x[noisy].max(axis=1, keepdims=True), 1e-12)
        lam = x[noisy] / peak * counts[noisy, None]
        out[noisy] = rng.poisson(np.maximum(lam, 0)) / counts[noisy, None] * peak
    return out


def crop_range(patterns, grid, lo_cut, hi_cut) -> np.ndarray:
    """Zero the first ``lo_cut`` and last ``hi_cut`` degrees of each pattern (a shorter scan)."""
    grid = np.asarray(grid, dtype=float)
    lo = grid[0] + np.asarray(lo_cut)[:, None]
    hi = grid[-1] - np.asarray(hi_cut)[:, None]
    return np.where((grid >= lo) & (grid <= hi), patterns, 0).astype(patterns.dtype)


def augment(
    structures,
    grid,
    rng,
    config: AugmentConfig | None = None,
    *,
    crystal_systems=None,
    orbits=None,
    params: dict | None = None,
    impurity_pool=None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Measured-like patterns of ``structures`` on ``grid``: every augmentation, one call.

    Args:
        structures: n pymatgen Structures (conventional standard cells).
        grid: 2θ grid in degrees (Cu Kα1).
        rng: Generator or seed; the same seed gives the same patterns.
        config: parameter ranges (default :class:`AugmentConfig`).
        crystal_systems: per structure, for symmetry-preserving strain.
        orbits: per structure, symmetry-orbit id per site (spglib ``equivalent_atoms``).
        params: parameters to use instead of drawing them (e.g. a fixed vacancy fraction for
            a defect sweep): any subset of :func:`sample_params`' keys, arrays of length n.
        impurity_pool: structures the second phase is drawn from (default: ``structures``).

    Returns:
        (patterns (n, G) float32 scaled to a maximum of 1, parameters used).
    """
    from matforge.xrd.simulate import simulate

    rng = _rng(rng)
    config = config or AugmentConfig()
    grid = np.asarray(grid, dtype=float)
    n = len(structures)
    p = sample_params(n, config, rng)
    for k, v in (params or {}).items():
        p[k] = np.broadcast_to(np.asarray(v, dtype=float), p[k].shape).copy()
    cs = crystal_systems if crystal_systems is not None else [None] * n
    orb = orbits if orbits is not None else [None] * n
    seeds = rng.integers(0, 2**63 - 1, n)
    perturbed = []
    for i, s in enumerate(structures):
        species_map = None
        if p["species"][i]:
            species_map = _random_species_map(s, np.random.default_rng(seeds[i] + 1))
        if (
            p["vacancy"][i]
            or p["displacement"][i]
            or np.any(p["strain"][i])
            or species_map
            or p["scale"][i] != 1
        ):
            s, p["vacancy"][i] = perturb(
                s, vacancy=p["vacancy"][i], displacement=p["displacement"][i],
                strain=p["strain"][i], scale=p["scale"][i], species_map=species_map,
                crystal_system=cs[i], orbits=orb[i], rng=seeds[i],
            )  # fmt: skip
        perturbed.append(s)
    # peaks at Kα1 over a range wide enough for the shifts and the Kα2 doublet
    t_range = (max(0.5, grid[0] - 3), min(179.0, grid[-1] + 3))
    peaks = simulate(perturbed, wavelength=CU_KA1, two_theta_range=t_range)
    recip = np.array([s.lattice.reciprocal_lattice_crystallographic.matrix for s in perturbed])
    texture = march_dollase(peaks, recip, p["texture_hkl"], p["march_r"])
    x = render(
        peaks, grid, fwhm=p["fwhm"], eta=p["eta"], size_nm=p["size_nm"],
        zero_shift=p["zero_shift"], kalpha2=p["kalpha2"], texture=texture,
    )  # fmt: skip
    has_imp = p["impurity"] > 0
    if has_imp.any():
        pool = impurity_pool if impurity_pool is not None else structures
        pick = rng.integers(0, len(pool), int(has_imp.sum()))
        imp_peaks = simulate([pool[j] for j in pick], wavelength=CU_KA1, two_theta_range=t_range)
        idx = np.flatnonzero(has_imp)
        imp = render(
            imp_peaks, grid, fwhm=p["fwhm"][idx], eta=p["eta"][idx],
            size_nm=p["size_nm"][idx], zero_shift=p["zero_shift"][idx], kalpha2=p["kalpha2"][idx],
        )  # fmt: skip
        x[idx] += imp * p["impurity"][idx, None].astype(np.float32)
    if (p["background"] > 0).any():
        x += background(grid, p["background"], rng)
    x = poisson_noise(x, p["counts"], rng)
    if (p["crop_lo"] > 0).any() or (p["crop_hi"] > 0).any():
        x = crop_range(x, grid, p["crop_lo"], p["crop_hi"])
    peak = x.max(axis=1, keepdims=True)
    np.divide(x, peak, out=x, where=peak > 0)
    return x.astype(np.float32), p
