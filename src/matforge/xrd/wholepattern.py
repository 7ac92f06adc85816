"""A whole-pattern model of a powder pattern and its weighted least-squares fit.

The calculated pattern is

    y_calc(2θ) = Σ_p s_p Σ_k I_pk [PV(2θ − 2θ_pk(λ₁)) + r PV(2θ − 2θ_pk(λ₂))] + Σ_j b_j B_j(2θ)

with, per phase p, reflections k of fixed relative intensity I_pk (a structure's own, or
refined freely by :mod:`matforge.xrd.refine`) at positions from Bragg's law and
the phase's lattice (constrained by its crystal system, :class:`LatticeModel`) plus a zero
shift; pseudo-Voigt peaks of unit area whose FWHM H² = U² + (Y / cos θ)² combines an
instrumental width U and Scherrer-like size broadening Y (degrees 2θ), Lorentzian fraction η;
the Kα2 doublet (ratio r, 0 for a monochromatic beam) where the wavelength is a known Kα1
line; a non-negative background of Bernstein polynomials and low-angle exponential decays
(air scatter).

The linear parameters (scales s_p ≥ 0, background b_j ≥ 0) are solved exactly at every step
(non-negative least squares on the normal equations: variable projection), so the nonlinear
least squares (:func:`scipy.optimize.least_squares`) runs over lattice, zero shift, widths, η
and r only. Weights are 1/σ² with σ² from the pattern's own counting noise
(:func:`noise_weights`).

Angles are degrees 2θ, wavelengths and lattice lengths Å.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from matforge.xrd.radiation import KALPHA2

#: peaks are evaluated within ± this many FWHM of their centre (a Lorentzian keeps 97.9 % of
#: its area there), tapered to zero over the last fifth so the model is smooth in positions
WINDOW_FWHM = 15.0
#: Bernstein polynomials of this degree: degree + 1 columns. Degree 8 left the misfit of a
#: measured-like background (an amorphous hump, a steep rise at low angle) for a spurious
#: phase to soak up in 3 of 6 rutile + anatase mixtures; 24 (about 3° of a 70° scan a column)
#: follows such backgrounds and is still far broader than a peak
BACKGROUND_DEGREE = 24
#: decay lengths (fractions of the scanned range) of the exp(−t/τ) background columns: the
#: air scatter and fluorescence that rise towards low angle faster than a polynomial can
BACKGROUND_DECAYS = (0.01, 0.03, 0.1)
MIN_FWHM = 0.005  # degrees 2θ
#: upper bound of the fitted width parameters U and Y (degrees 2θ)
MAX_WIDTH = 3.0
#: phase curves a fit keeps per phase (the base point of a finite-difference Jacobian, and
#: the last steps), so that moving one phase's parameter recomputes that phase only
_RECENT_CURVES = 4


def kalpha2_of(wavelength: float) -> float | None:
    """The Kα2 wavelength (Å) belonging to a Kα1 ``wavelength``, or None for any other."""
    for k1, k2 in KALPHA2.items():
        if abs(wavelength - k1) < 2e-4:
            return k2
    return None


# ---------------------------------------------------------------------------------------
# reflections and lattices
# ---------------------------------------------------------------------------------------


@dataclass
class Reflections:
    """Reflections of one phase: representative Miller indices and relative intensities.

    Attributes:
        hkl: (n, 3) Miller indices (3-index, of the phase's cell), one per hkl family.
        intensity: (n,) relative integrated intensities (strongest peak of the structure = 1).
        multiplicity: (n,) reflections in each family.
        absolute: factor from ``intensity`` to Σ |F|²·LP per unit cell (electrons²), which
            makes scales comparable between phases (weight fractions).
        hexagonal: families grouped on Miller–Bravais indices (a hexagonal cell).
    """

    hkl: np.ndarray
    intensity: np.ndarray
    multiplicity: np.ndarray
    absolute: float = 1.0
    hexagonal: bool = False  # the families were grouped on Miller–Bravais indices

    def __len__(self) -> int:
        return len(self.intensity)


def reflections(structures, wavelength: float, d_min: float, d_max: float = 1e3,
                absolute: bool = True, min_intensity: float = 5e-4) -> list[Reflections]:  # fmt: skip
    """The reflections of each structure with d-spacings in [d_min, d_max] (Å), intensities
    from :func:`matforge.xrd.simulate.simulate` at ``wavelength`` (one vectorised call for
    all), split over the hkl families of each peak by multiplicity (the families of one peak
    are symmetry-equivalent or coincide). Families weaker than ``min_intensity`` (the
    strongest peak = 1) are left out. ``absolute`` also computes each
    :attr:`Reflections.absolute` (over the families kept)."""
    from matforge.xrd.simulate import simulate

    s_hi = min(wavelength / (2 * d_min), 1.0)
    s_lo = min(wavelength / (2 * d_max), s_hi * 0.999)
    tt = (max(0.0, 2 * math.degrees(math.asin(s_lo))), 2 * math.degrees(math.asin(s_hi)))
    out = []
    for structure, peaks in zip(
        structures,
        simulate(list(structures), wavelength=wavelength, two_theta_range=tt),
        strict=True,
    ):
        hkl = np.asarray(peaks.family_hkl, dtype=float)
        hexagonal = hkl.shape[1] == 4
        if hexagonal:  # Miller–Bravais (h, k, i, l) -> (h, k, l)
            hkl = hkl[:, [0, 1, 3]]
        counts = np.diff(peaks.family_offsets)
        owner = np.repeat(np.arange(len(peaks)), counts)
        mult = np.asarray(peaks.family_multiplicity, dtype=float)
        share = mult / np.bincount(owner, weights=mult, minlength=len(peaks))[owner]
        inten = peaks.intensity[owner] / 100.0 * share
        keep = inten >= min_intensity
        refl = Reflections(hkl=hkl.reshape(-1, 3)[keep], intensity=inten[keep],
                           multiplicity=mult[keep], hexagonal=hexagonal)  # fmt: skip
        if absolute:
            refl.absolute = absolute_factor(structure, refl, wavelength)
        out.append(refl)
    return out


def absolute_factor(structure, refl: Reflections, wavelength: float) -> float:
    """Σ |F|²·LP over every reflection of the families, per unit of relative intensity: the
    factor that turns the structure's relative intensities into electrons² per unit cell
    (the reflections' Miller indices must be those of ``structure``'s cell).

    A family stands for every signed permutation of its indices at its d-spacing
    (Miller–Bravais permutations in a hexagonal cell), as pymatgen groups them; those are not
    all symmetry-equivalent (in a rhombohedral lattice some are absent), so |F|² is summed
    over each of them rather than taken from one."""
    from matforge.xrd.augment import _equivalent_variants
    from matforge.xrd.simulate import _scatterers, _scattering_table

    if not len(refl):
        return 1.0
    h = np.rint(refl.hkl).astype(np.int64)
    hkl4 = np.column_stack([h[:, 0], h[:, 1], -h[:, 0] - h[:, 1] if refl.hexagonal else
                            np.zeros(len(h), np.int64), h[:, 2]]).astype(float)  # fmt: skip
    if not refl.hexagonal:
        hkl4 = np.column_stack([h, np.zeros(len(h))]).astype(float)
    variants = _equivalent_variants(hkl4, np.full(len(h), refl.hexagonal))  # (n, V, 3)
    recip = structure.lattice.reciprocal_lattice_crystallographic.matrix
    g2_all = ((variants @ recip) ** 2).sum(axis=2)
    g2_ref = ((h @ recip) ** 2).sum(axis=1)
    same = np.abs(g2_all - g2_ref[:, None]) <= 1e-6 * g2_ref[:, None]
    fam, var = np.nonzero(same)
    vec = np.rint(variants[fam, var]).astype(np.int64)
    base = 2 * int(np.abs(vec).max()) + 1
    code = ((fam * base + vec[:, 0] + base // 2) * base + vec[:, 1] + base // 2) * base + vec[:, 2]
    _, first = np.unique(code, return_index=True)
    fam, vec = fam[first], vec[first].astype(float)
    sc = _scatterers(structure, _scattering_table(), {})
    g2 = g2_ref[fam]
    s2 = (g2 / 4)[:, None, None]
    f = sc.z - 41.78214 * s2[:, :, 0] * np.sum(sc.a * np.exp(-sc.b * s2), axis=2)  # (m, G)
    phase = np.exp(2j * np.pi * (vec @ sc.frac.T))  # (m, E)
    fsum = (phase * sc.occu * f[:, sc.group]).sum(axis=1)
    theta = np.arcsin(np.clip(wavelength * np.sqrt(g2) / 2, 0, 1))
    lp = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    absolute = np.abs(fsum) ** 2 * lp
    total = refl.intensity.sum()
    return float(absolute.sum() / total) if total > 0 else 1.0


class LatticeModel:
    """The free parameters of a cell under the ties of its crystal system.

    Parameters are relative factors on groups of equal lattice lengths (1 = the reference
    cell), followed by the free angles in degrees: cubic a; tetragonal and hexagonal a, c
    (whichever two lengths are equal share a factor); rhombohedral axes a, α; orthorhombic
    a, b, c; monoclinic a, b, c and its oblique angle; triclinic all six.
    """

    def __init__(self, abc, angles, crystal_system: str):
        self.abc0 = np.asarray(abc, dtype=float)
        self.angles0 = np.asarray(angles, dtype=float)
        self.crystal_system = crystal_system
        a, al = self.abc0, self.angles0
        right = np.abs(al - 90) < 1e-3
        rhombo = (
            crystal_system == "trigonal"
            and np.ptp(a) < 1e-4 * a.max()
            and np.ptp(al) < 1e-3
            and not right.all()
        )
        if crystal_system == "cubic" or rhombo:
            groups = [0, 0, 0]
        elif crystal_system in ("tetragonal", "hexagonal", "trigonal"):
            pairs = [(0, 1), (0, 2), (1, 2)]
            i, j = min(pairs, key=lambda p: abs(a[p[0]] - a[p[1]]) / a.max())
            k = 3 - i - j
            groups = [0, 0, 0]
            groups[k] = 1
        else:
            groups = [0, 1, 2]
        self.groups = np.array(groups)
        self.n_lengths = int(self.groups.max()) + 1
        if rhombo:
            self.angle_map = [[0, 1, 2]]  # one parameter for all three angles
        elif crystal_system == "monoclinic":
            oblique = [i for i in range(3) if not right[i]]
            self.angle_map = [[oblique[0]]] if oblique else []
        elif crystal_system == "triclinic":
            self.angle_map = [[0], [1], [2]]
        else:
            self.angle_map = []
        self.n_params = self.n_lengths + len(self.angle_map)

    def start(self) -> np.ndarray:
        """Parameters of the reference cell."""
        return np.array([1.0] * self.n_lengths + [self.angles0[m[0]] for m in self.angle_map])

    def cell(self, p) -> tuple[np.ndarray, np.ndarray]:
        """(a, b, c) in Å and (α, β, γ) in degrees of parameters ``p``."""
        p = np.asarray(p, dtype=float)
        abc = self.abc0 * p[self.groups]
        angles = self.angles0.copy()
        for j, idx in enumerate(self.angle_map):
            angles[idx] = p[self.n_lengths + j]
        return abc, angles

    def bounds(self, p, rel: float, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ± ``rel`` on the length factors and ± ``angle_deg`` on the angles around ``p``."""
        p = np.asarray(p, dtype=float)
        lo, hi = p.copy(), p.copy()
        lo[: self.n_lengths] *= 1 - rel
        hi[: self.n_lengths] *= 1 + rel
        lo[self.n_lengths :] -= angle_deg
        hi[self.n_lengths :] += angle_deg
        return lo, hi

    def inv_d2(self, p, hkl) -> np.ndarray:
        """1/d² (Å⁻²) of reflections ``hkl`` (n, 3) in the cell of parameters ``p``."""
        return (hkl @ reciprocal_metric(*self.cell(p)) * hkl).sum(axis=1)


def reciprocal_metric(abc, angles) -> np.ndarray:
    """The reciprocal metric tensor G* (Å⁻²) of a cell: 1/d² = hᵀ G* h."""
    a, b, c = abc
    ca, cb, cg = np.cos(np.radians(angles))
    g = np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )
    return np.linalg.inv(g)


# ---------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------


@dataclass
class PhaseParams:
    """One phase in the model: reflections, lattice model and its current profile values."""

    reflections: Reflections
    lattice: LatticeModel
    p: np.ndarray  # lattice parameters (LatticeModel)
    fwhm_u: float = 0.1  # degrees 2θ
    fwhm_y: float = 0.0  # degrees 2θ at θ = 0, grows as 1 / cos θ
    eta: float = 0.5
    p_esd: np.ndarray | None = None  # standard uncertainties of p after a fit (NaN: held)

    def copy(self) -> PhaseParams:
        return replace(self, p=np.array(self.p, dtype=float))

    def cell(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b, c) in Å and (α, β, γ) in degrees."""
        return self.lattice.cell(self.p)

    def fwhm_at(self, theta):
        """Peak FWHM (degrees 2θ) at Bragg angle(s) ``theta`` (radians): √(U² + (Y/cos θ)²),
        at least :data:`MIN_FWHM`."""
        return np.maximum(np.sqrt(self.fwhm_u**2 + (self.fwhm_y / np.cos(theta)) ** 2), MIN_FWHM)

    def cell_esd(self) -> tuple[np.ndarray, np.ndarray]:
        """Standard uncertainties of (a, b, c) and (α, β, γ) (NaN where not refined, 0 where
        fixed by symmetry)."""
        lat = self.lattice
        esd = np.full(lat.n_params, np.nan) if self.p_esd is None else np.asarray(self.p_esd)
        abc = lat.abc0 * esd[lat.groups]
        angles = np.zeros(3)
        for j, idx in enumerate(lat.angle_map):
            angles[idx] = esd[lat.n_lengths + j]
        return abc, angles


@dataclass
class FitResult:
    """A fitted model: parameters, linear coefficients and curves on the pattern's points."""

    phases: list[PhaseParams]
    zero: float
    kalpha2_ratio: float
    scales: np.ndarray  # per phase, multiplying the relative intensities
    background_coef: np.ndarray
    calc: np.ndarray
    background: np.ndarray
    phase_curves: np.ndarray  # (n_phases, G)
    rwp: float
    chi2_reduced: float
    n_params: int
    extra: dict = field(default_factory=dict)


def _profile_part(part: str, dx, fwhm, derivatives: bool = False):
    """The unit-area Lorentzian (``part="lorentz"``, tapered to zero over the last fifth of
    ± :data:`WINDOW_FWHM` FWHM) or Gaussian (``"gauss"``) of width ``fwhm`` at offsets ``dx``
    from its centre (degrees 2θ, broadcast together); with ``derivatives``, the tuple (profile,
    d/d dx, d/d fwhm)."""
    if part == "lorentz":
        hw = fwhm / 2
        den = dx * dx + hw * hw
        prof = (hw / np.pi) / den
        if derivatives:
            d_ddx = -2 * dx * prof / den
            d_dh = 0.5 * (prof / hw - 2 * hw * prof / den)
        rr = np.abs(dx) / (WINDOW_FWHM * fwhm)
        edge = rr > 0.8
        if edge.any():  # the taper cos²(π/2 · (rr − 0.8)/0.2)
            t = np.clip((rr[edge] - 0.8) / 0.2, 0, 1)
            taper = np.cos(t * np.pi / 2) ** 2
            if derivatives:
                slope = np.where(t < 1, -np.pi / 2 / 0.2 * np.sin(np.pi * t), 0.0)
                lor, hp = prof[edge], np.broadcast_to(fwhm, dx.shape)[edge]
                d_ddx[edge] = d_ddx[edge] * taper + lor * slope * np.sign(dx[edge]) / (
                    WINDOW_FWHM * hp
                )
                d_dh[edge] = d_dh[edge] * taper + lor * slope * (-rr[edge] / hp)
            prof[edge] *= taper
        return (prof, d_ddx, d_dh) if derivatives else prof
    c = 2 * math.sqrt(2 * math.log(2))  # FWHM / σ
    sigma = fwhm / c
    prof = np.exp(-0.5 * (dx / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    if not derivatives:
        return prof
    return prof, -dx / sigma**2 * prof, prof * (dx * dx / sigma**3 - 1 / sigma) / c


class WholePatternModel:
    """A pattern (2θ ``x``, intensities ``y``, weights) and phases to fit to it.

    Args:
        x, y: the measured pattern, degrees 2θ (increasing, about uniform steps) and
            intensities.
        wavelength: Å; a known Kα1 line gets a Kα2 doublet with a fitted ratio.
        weights: 1/σ² per point (default :func:`noise_weights`).
        jacobian_fwhm: the Lorentzian reach of :meth:`fit`'s Jacobian, in FWHM (below
            :data:`WINDOW_FWHM`, an approximate and cheaper one; see
            :meth:`phase_derivatives`).
    """

    def __init__(self, x, y, wavelength: float, weights=None, background_degree=BACKGROUND_DEGREE,
                 jacobian_fwhm: float = WINDOW_FWHM):  # fmt: skip
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.wavelength = float(wavelength)
        self.lambda2 = kalpha2_of(self.wavelength)
        self.w = noise_weights(self.y) if weights is None else np.asarray(weights, dtype=float)
        self.sw = np.sqrt(self.w)
        self.step = float((self.x[-1] - self.x[0]) / max(1, len(self.x) - 1))
        self.jacobian_fwhm = float(jacobian_fwhm)
        t = (self.x - self.x[0]) / max(self.x[-1] - self.x[0], 1e-12)
        n = background_degree
        self.basis = np.stack(
            [math.comb(n, j) * t**j * (1 - t) ** (n - j) for j in range(n + 1)]
            + [np.exp(-t / tau) for tau in BACKGROUND_DECAYS],
            axis=1,
        )
        self.norm = float(np.sqrt((self.w * self.y**2).sum()))

    # ----- profile -----

    def _peaks(self, phase: PhaseParams, zero: float, r: float):
        """Centres, widths, η and intensities of every peak of ``phase`` (Kα1 and Kα2)."""
        refl = phase.reflections
        inv_d2 = phase.lattice.inv_d2(phase.p, refl.hkl)
        d = 1 / np.sqrt(np.maximum(inv_d2, 1e-12))
        out = []
        lams = [(self.wavelength, 1.0)]
        if self.lambda2 is not None and r > 0:
            lams.append((self.lambda2, r))
        for lam, factor in lams:
            s = lam / (2 * d)
            ok = s < 0.999
            theta = np.arcsin(s[ok])
            centre = np.degrees(2 * theta) + zero
            out.append(
                (centre, phase.fwhm_at(theta), refl.intensity[ok] * factor, np.flatnonzero(ok))
            )
        return out

    def _window(self, centre, ic, reach: float):
        """Grid indices (n, W) within ± ``reach`` degrees of each centre (``ic``: its nearest
        grid index), clipped to the grid, whether each lies on it, and x − centre."""
        half = int(math.ceil(reach / self.step)) + 1
        gi = ic[:, None] + np.arange(-half, half + 1)[None, :]
        valid = (gi >= 0) & (gi < len(self.x))
        gi = np.clip(gi, 0, len(self.x) - 1)
        return gi, valid, self.x[gi] - centre[:, None]

    def peak_profiles(self, phase: PhaseParams, zero: float, r: float):
        """Per block of peaks: (reflection index (n,), grid indices (n, W), profile values
        (n, W)) with the intensities not applied; the blocks add up to unit-area
        pseudo-Voigts. The Lorentzian part spans ± :data:`WINDOW_FWHM` FWHM, tapered to zero
        at its ends (so that the model is smooth in the peak positions), the Gaussian part
        ± 3 FWHM (beyond which it is below e⁻²⁴ of its height)."""
        rows = []
        for centre, width, inten, idx in self._peaks(phase, zero, r):
            factor = inten / np.maximum(phase.reflections.intensity[idx], 1e-300)
            near = (centre > self.x[0] - WINDOW_FWHM * width) & (
                centre < self.x[-1] + WINDOW_FWHM * width
            )
            if not near.any():
                continue
            c, h, f, k = centre[near], width[near], factor[near], idx[near]
            ic = np.rint((c - self.x[0]) / self.step).astype(np.int64)
            for part, reach in (("lorentz", WINDOW_FWHM), ("gauss", 3.0)):
                weight = phase.eta if part == "lorentz" else 1.0 - phase.eta
                if weight <= 0:
                    continue
                gi, valid, dx = self._window(c, ic, reach * h.max())
                prof = _profile_part(part, dx, h[:, None])
                prof *= (weight * f)[:, None]
                prof[~valid] = 0.0
                rows.append((k, gi, prof))
        return rows

    def phase_curve(self, phase: PhaseParams, zero: float, r: float) -> np.ndarray:
        """Σ_k I_k · profile_k on the grid, shape (G,)."""
        out = np.zeros(len(self.x))
        inten = phase.reflections.intensity
        for k, gi, prof in self.peak_profiles(phase, zero, r):
            out += np.bincount(gi.ravel(), weights=(prof * inten[k][:, None]).ravel(),
                               minlength=len(self.x))  # fmt: skip
        return out

    def phase_derivatives(self, phase: PhaseParams, zero: float, r: float,
                          lorentz_fwhm: float = WINDOW_FWHM) -> np.ndarray:  # fmt: skip
        """Derivatives of :meth:`phase_curve` on the grid with respect to [zero shift, Kα2
        ratio, lattice parameters..., U, Y, η] (the order of :meth:`fit`'s parameters), shape
        (5 + lattice parameters, G).

        Analytic in the peak centres and widths (pseudo-Voigt, its taper included); the
        centres' dependence on the lattice parameters goes through 1/d² = hᵀ G*(p) h, with
        dG*/dp by central differences of the 3 × 3 reciprocal metric (relative error about
        1e-10: the tests compare with differences of the whole curve).

        ``lorentz_fwhm`` below :data:`WINDOW_FWHM` leaves out the Lorentzian tails beyond that
        many FWHM: an approximate Jacobian for a fit (its steps, not its residual), cheaper
        in proportion (at 5 FWHM the derivatives change by about 0.4 %)."""
        from scipy.sparse import csc_matrix

        refl, lat = phase.reflections, phase.lattice
        n_lat = lat.n_params
        p = np.asarray(phase.p, dtype=float)
        out = np.zeros((5 + n_lat, len(self.x)))
        hkl = refl.hkl
        q = lat.inv_d2(p, hkl)
        dq = np.empty((n_lat, len(q)))
        for j in range(n_lat):
            step = 1e-6 * max(1.0, abs(p[j]))
            hi, lo = p.copy(), p.copy()
            hi[j] += step
            lo[j] -= step
            dg = (reciprocal_metric(*lat.cell(hi)) - reciprocal_metric(*lat.cell(lo))) / (2 * step)
            dq[j] = (hkl @ dg * hkl).sum(axis=1)
        u, yb = phase.fwhm_u, phase.fwhm_y
        inten = refl.intensity
        n_grid = len(self.x)
        lams = [(self.wavelength, 1.0, False)]
        if self.lambda2 is not None:
            lams.append((self.lambda2, r, True))
        for lam, factor, is_k2 in lams:
            s = lam / 2 * np.sqrt(np.maximum(q, 1e-12))
            k = np.flatnonzero(s < 0.999)
            theta = np.arcsin(s[k])
            cos = np.cos(theta)
            c = np.degrees(2 * theta) + zero
            raw = np.sqrt(u**2 + (yb / cos) ** 2)
            h = np.maximum(raw, MIN_FWHM)
            near = (c > self.x[0] - WINDOW_FWHM * h) & (c < self.x[-1] + WINDOW_FWHM * h)
            if not near.any():
                continue
            k, theta, cos, c, raw, h = (v[near] for v in (k, theta, cos, c, raw, h))
            # d centre / d q and d width / d θ, then per parameter: (n_peaks,) factors
            dtheta_dq = lam / (4 * np.sqrt(np.maximum(q[k], 1e-12)) * cos)
            dc_dq = np.degrees(2 * dtheta_dq)
            free_w = raw >= MIN_FWHM
            dh_dtheta = np.where(free_w, yb**2 * np.sin(theta) / cos**3 / raw, 0.0)
            # per peak and output row: the factors on d profile/d centre, d/d width, profile
            nk = len(k)
            coef = np.zeros((3 * nk, 5 + n_lat))
            coef[:nk, 0] = 1.0  # zero shift moves every centre
            coef[:nk, 2 : 2 + n_lat] = (dc_dq * dq[:, k]).T
            coef[nk : 2 * nk, 2 : 2 + n_lat] = (dh_dtheta * dtheta_dq * dq[:, k]).T
            coef[nk : 2 * nk, 2 + n_lat] = np.where(free_w, u / raw, 0.0)
            coef[nk : 2 * nk, 3 + n_lat] = np.where(free_w, yb / cos**2 / raw, 0.0)
            amp = inten[k]
            ic = np.rint((c - self.x[0]) / self.step).astype(np.int64)
            for part, reach in (("lorentz", min(lorentz_fwhm, WINDOW_FWHM)), ("gauss", 3.0)):
                weight = phase.eta if part == "lorentz" else 1.0 - phase.eta
                gi, valid, dx = self._window(c, ic, reach * h.max())
                base, d_ddx, d_dh = _profile_part(part, dx, h[:, None], derivatives=True)
                # the centre enters as dx = x − centre: d/d centre = −d/d dx
                blocks = np.concatenate([-d_ddx, d_dh, base])
                blocks[np.tile(~valid, (3, 1))] = 0.0
                a = coef * np.tile(weight * factor * amp, 3)[:, None]
                a[2 * nk :, 4 + n_lat] = (1.0 if part == "lorentz" else -1.0) * factor * amp
                if is_k2:
                    a[2 * nk :, 1] = weight * amp
                width = blocks.shape[1]
                scatter = csc_matrix(
                    (blocks.ravel(), np.tile(gi, (3, 1)).ravel(),
                     np.arange(0, blocks.size + 1, width)), shape=(n_grid, 3 * nk),
                )  # fmt: skip
                out += (scatter @ a).T
        return out

    # ----- linear part -----

    def solve(self, phases, zero: float, r: float, known=None):
        """Best non-negative scales and background for fixed nonlinear parameters.

        ``known`` maps phase positions to curves already computed at these parameters.
        Returns (coefficients: phases then background, phase curves (P, G), calc)."""
        from scipy.optimize import nnls

        known = known or {}
        curves = np.array(
            [
                known[i] if i in known else self.phase_curve(ph, zero, r)
                for i, ph in enumerate(phases)
            ]
        ).reshape(-1, len(self.x))
        a = np.concatenate([curves.T, self.basis], axis=1)
        aw = a * self.sw[:, None]
        bw = self.y * self.sw
        # NNLS on the normal equations' Cholesky factor: (n_cols × n_cols) instead of (G × n_cols)
        ata = aw.T @ aw
        atb = aw.T @ bw
        scale = np.sqrt(np.maximum(np.diag(ata), 1e-300))
        ata_s = ata / scale[:, None] / scale[None, :]
        try:
            chol = np.linalg.cholesky(ata_s + 1e-12 * np.eye(len(ata_s)))
            z = np.linalg.solve(chol, atb / scale)
            coef_s, _ = nnls(chol.T, z, maxiter=50 * len(z))
        except np.linalg.LinAlgError:  # a phase with no peak in range: fall back to the full NNLS
            coef_s, _ = nnls(aw / scale[None, :], bw, maxiter=50 * a.shape[1])
        coef = coef_s / scale
        calc = a @ coef
        return coef, curves, calc

    # ----- nonlinear least squares -----

    def fit(
        self,
        phases: list[PhaseParams],
        zero: float = 0.0,
        kalpha2_ratio: float = 0.0,
        *,
        free_lattice: bool | list[bool] = True,
        free_profile: bool | list[bool] = True,
        free_zero: bool = True,
        free_kalpha2: bool = True,
        lattice_rel: float = 0.03,
        angle_deg: float = 3.0,
        zero_max: float = 0.5,
        max_nfev: int = 200,
    ) -> FitResult:
        """Weighted least squares over the chosen nonlinear parameters (the linear ones are
        solved at every step); bounds ± ``lattice_rel`` on length factors and ± ``angle_deg``
        on angles around the start, |zero| ≤ ``zero_max``. Returns the fitted model."""
        from scipy.optimize import least_squares

        phases = [ph.copy() for ph in phases]
        n = len(phases)
        fl = [free_lattice] * n if isinstance(free_lattice, bool) else list(free_lattice)
        fp = [free_profile] * n if isinstance(free_profile, bool) else list(free_profile)
        use_k2 = self.lambda2 is not None and free_kalpha2
        # parameter vector: [zero, r, per phase: lattice..., u, y, eta]
        x0, lo, hi, free = (
            [zero, kalpha2_ratio],
            [-zero_max, 0.0],
            [zero_max, 0.7],
            [free_zero, use_k2],
        )
        for ph, a, b in zip(phases, fl, fp, strict=True):
            llo, lhi = ph.lattice.bounds(ph.p, lattice_rel, angle_deg)
            x0 += list(ph.p) + [ph.fwhm_u, ph.fwhm_y, ph.eta]
            lo += list(llo) + [MIN_FWHM, 0.0, 0.0]
            hi += list(lhi) + [MAX_WIDTH, MAX_WIDTH, 1.0]
            free += [a] * ph.lattice.n_params + [b] * 3
        x0, lo, hi, free = (np.array(v, dtype=float) for v in (x0, lo, hi, free))
        free = free.astype(bool)
        x0 = np.clip(x0, lo, hi)

        def unpack(v):
            full = x0.copy()
            full[free] = v
            i = 2
            for ph in phases:
                m = ph.lattice.n_params
                ph.p = full[i : i + m]
                ph.fwhm_u, ph.fwhm_y, ph.eta = full[i + m : i + m + 3]
                i += m + 3
            return full[0], full[1]

        # phases none of whose parameters move (zero shift and Kα2 ratio held too) keep their
        # curves: computed once, not at every step
        known = {}
        if not free[:2].any():
            i = 2
            for j, ph in enumerate(phases):
                m = ph.lattice.n_params + 3
                if not free[i : i + m].any():
                    known[j] = self.phase_curve(ph, zero, kalpha2_ratio)
                i += m

        # a finite-difference step moves one parameter: the curves of the other phases are the
        # ones of the base point, so each phase keeps its last few curves by parameter values
        recent: list[dict[bytes, np.ndarray]] = [{} for _ in phases]

        def curves_at(z, r) -> dict[int, np.ndarray]:
            out = dict(known)
            for j, ph in enumerate(phases):
                if j in out:
                    continue
                key = np.array([z, r, *ph.p, ph.fwhm_u, ph.fwhm_y, ph.eta]).tobytes()
                curve = recent[j].get(key)
                if curve is None:
                    if len(recent[j]) >= _RECENT_CURVES:
                        recent[j].pop(next(iter(recent[j])))
                    curve = recent[j][key] = self.phase_curve(ph, z, r)
                out[j] = curve
            return out

        last: dict = {}  # the linear solution at the last residual's parameters

        def residual(v):
            z, r = unpack(v)
            coef, curves, calc = self.solve(phases, z, r, curves_at(z, r))
            last.update(key=v.tobytes(), coef=coef, curves=curves)
            return self.sw * (self.y - calc) / self.norm

        def jacobian(v):
            if last.get("key") != v.tobytes():
                residual(v)
            z, r = unpack(v)
            return self._projected_jacobian(phases, z, r, free, last["coef"], last["curves"])

        esd = np.full(len(x0), np.nan)
        if free.any():
            res = least_squares(residual, x0[free], jac=jacobian, bounds=(lo[free], hi[free]),
                                method="trf", x_scale="jac", max_nfev=max_nfev,
                                ftol=1e-6, xtol=1e-6)  # fmt: skip
            z, r = unpack(res.x)
            dof = max(1, len(self.y) - int(free.sum()))
            # standard uncertainties: (JᵀJ)⁺ scaled by the reduced residual (a parameter at a
            # bound, a width at 0 say, has a null column: the pseudo-inverse leaves it at 0)
            cov = np.linalg.pinv(res.jac.T @ res.jac) * (2 * res.cost / dof)
            esd[free] = np.sqrt(np.clip(np.diag(cov), 0, None))
        else:
            z, r = unpack(x0[free])
        out = self.result(phases, z, r, n_params=int(free.sum()))
        i = 2
        for ph in out.phases:
            ph.p_esd = esd[i : i + ph.lattice.n_params]
            i += ph.lattice.n_params + 3
        out.extra["zero_esd"] = float(esd[0])
        return out

    def _projected_jacobian(self, phases, zero, r, free, coef, curves) -> np.ndarray:
        """Jacobian of :meth:`fit`'s residual over its free parameters (variable projection
        with Kaufman's approximation: the derivative of the model at fixed linear
        coefficients, with its part in the span of the active linear columns taken out, since
        those coefficients are re-solved at every step; Golub & Pereyra 2003)."""
        d = np.zeros((len(free), len(self.x)))
        i = 2
        for j, ph in enumerate(phases):
            m = ph.lattice.n_params + 3
            if coef[j] > 0 and (free[:2].any() or free[i : i + m].any()):
                dj = self.phase_derivatives(ph, zero, r, self.jacobian_fwhm) * coef[j]
                d[:2] += dj[:2]
                d[i : i + m] = dj[2:]
            i += m
        jac = d[free].T * self.sw[:, None]
        active = np.flatnonzero(coef > 0)
        if len(active):
            cols = np.concatenate([curves.T, self.basis], axis=1)[:, active] * self.sw[:, None]
            q, _ = np.linalg.qr(cols)
            jac -= q @ (q.T @ jac)
        return -jac / self.norm

    def result(self, phases, zero: float, r: float, n_params: int = 0) -> FitResult:
        """The model's curves and figures of merit at fixed parameters."""
        coef, curves, calc = self.solve(phases, zero, r)
        n = len(phases)
        bg = self.basis @ coef[n:]
        resid = self.y - calc
        rwp = float(np.sqrt((self.w * resid**2).sum()) / max(self.norm, 1e-300))
        dof = max(1, len(self.y) - n_params - len(coef))
        chi2 = float((self.w * resid**2).sum() / dof)
        return FitResult(
            phases=[ph.copy() for ph in phases], zero=float(zero), kalpha2_ratio=float(r),
            scales=coef[:n].copy(), background_coef=coef[n:].copy(), calc=calc, background=bg,
            phase_curves=curves * coef[:n, None], rwp=rwp, chi2_reduced=chi2,
            n_params=n_params + len(coef),
        )  # fmt: skip


def noise_weights(y, esd=None) -> np.ndarray:
    """Least-squares weights 1/σ² of a pattern.

    With ``esd`` given, 1/esd². Otherwise counting statistics up to a factor: σ² = k·max(y, f)
    with the floor f = 1 % of the maximum (points near zero would otherwise weigh without
    bound) and k estimated from the pattern itself, from the scatter of each point about the
    mean of its neighbours (robust median; for counts k ≈ 1). A noise-free pattern gets the
    smallest k the scatter allows, so its χ² is large: there, Rwp is the figure to read.
    """
    y = np.asarray(y, dtype=float)
    if esd is not None:
        esd = np.asarray(esd, dtype=float)
        return 1.0 / np.maximum(esd, 1e-12 * max(1.0, float(np.abs(y).max()))) ** 2
    floor = max(0.01 * float(np.abs(y).max()), 1e-12)
    base = np.maximum(y, floor)
    d2 = y[1:-1] - 0.5 * (y[:-2] + y[2:])
    ratio = d2 * d2 / (1.5 * base[1:-1])
    k = float(np.median(ratio)) / 0.4549 if len(ratio) else 1.0  # median of χ²₁
    k = max(k, 1e-6 * floor)
    return 1.0 / (k * base)
