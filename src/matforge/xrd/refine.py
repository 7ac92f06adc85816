"""Whole-pattern refinement (Pawley style) of the phases search-match found.

The refinement frees every reflection's intensity, so that the cell is refined from peak
positions and shapes without trusting the structure's intensities (texture, vacancies or an
approximate structure model then no longer pull it), as Pawley (1981) and Le Bail, Duroy &
Fourquet (1988) do. Each cycle

1. solves all reflection intensities (≥ 0; reflections of one phase at the same d-spacing
   share one) and the background by linear least squares at the current cells and profiles
   (:func:`pawley_intensities`), then
2. refines lattice parameters, zero shift, peak widths, η and the Kα2 ratio by nonlinear least
   squares with those intensities held (:class:`~matforge.xrd.wholepattern.WholePatternModel`).

Both steps minimise the same weighted sum of squares, so Rwp can only go down; cycles stop
when it changes by less than :data:`RWP_TOLERANCE`. Splitting the steps keeps the nonlinear
problem small (Pawley's simultaneous fit has a parameter per reflection). Scale factors lose
their meaning: weight fractions come from the structure-based fit.

Angles are degrees 2θ, lengths Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from matforge.xrd.wholepattern import FitResult, PhaseParams, WholePatternModel

#: stop when a cycle lowers Rwp by less than this (absolute)
RWP_TOLERANCE = 2e-4


@dataclass
class RefinedPhase:
    """A phase after refinement.

    Attributes:
        name: the phase's name.
        abc, angles: lattice lengths (Å) and angles (degrees).
        abc_esd, angles_esd: their standard uncertainties from the least-squares covariance
            (0 where symmetry fixes a value).
        fwhm_u, fwhm_y, eta: profile: H² = U² + (Y / cos θ)², degrees 2θ; Lorentzian fraction.
        n_reflections: reflections in the refined range.
    """

    name: str
    abc: np.ndarray
    angles: np.ndarray
    abc_esd: np.ndarray
    angles_esd: np.ndarray
    fwhm_u: float
    fwhm_y: float
    eta: float
    n_reflections: int

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "a": float(self.abc[0]), "b": float(self.abc[1]), "c": float(self.abc[2]),
            "alpha": float(self.angles[0]), "beta": float(self.angles[1]),
            "gamma": float(self.angles[2]),
            "a_esd": float(self.abc_esd[0]), "b_esd": float(self.abc_esd[1]),
            "c_esd": float(self.abc_esd[2]),
            "fwhm_u": self.fwhm_u, "fwhm_y": self.fwhm_y, "eta": self.eta,
            "n_reflections": self.n_reflections,
        }  # fmt: skip


@dataclass
class Refinement:
    """What the whole-pattern refinement gives.

    Attributes:
        phases: the refined phases.
        zero: zero shift (degrees 2θ), added to every calculated position.
        kalpha2_ratio: I(Kα2)/I(Kα1) (0 without a Kα2 line).
        rwp_start: Rwp of the fit refinement started from (structure intensities).
        rwp: Rwp after refinement (weighted profile R factor, 0–1).
        chi2_reduced: χ² per degree of freedom with the pattern's noise weights.
        cycles: intensity / cell cycles run.
        two_theta, observed, calculated, background, difference: curves (difference =
            observed − calculated).
        fit: the last :class:`~matforge.xrd.wholepattern.FitResult`.
    """

    phases: list[RefinedPhase]
    zero: float
    kalpha2_ratio: float
    rwp_start: float
    rwp: float
    chi2_reduced: float
    cycles: int
    two_theta: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    calculated: np.ndarray = field(repr=False)
    background: np.ndarray = field(repr=False)
    difference: np.ndarray = field(repr=False)
    fit: FitResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "method": "Pawley (intensities free, alternating with the cell)",
            "rwp_start": self.rwp_start,
            "rwp": self.rwp,
            "chi2_reduced": self.chi2_reduced,
            "zero_shift": self.zero,
            "kalpha2_ratio": self.kalpha2_ratio,
            "cycles": self.cycles,
            "phases": [p.to_dict() for p in self.phases],
        }


def pawley_intensities(model: WholePatternModel, fit: FitResult) -> list[np.ndarray]:
    """Reflection intensities of every phase (each phase's strongest = 1) that fit the
    pattern best, by non-negative least squares at the fixed cells and profiles of ``fit``,
    together with the background. Reflections at the same d-spacing of one phase (within
    10⁻⁶) share one parameter, split in their current proportion."""
    from scipy.optimize import nnls

    n_grid = len(model.x)
    groups = []
    n_cols = 0
    for ph in fit.phases:
        refl = ph.reflections
        inv_d2 = ph.lattice.inv_d2(ph.p, refl.hkl)
        key = np.round(np.log(np.maximum(inv_d2, 1e-12)) * 1e6).astype(np.int64)
        _, group = np.unique(key, return_inverse=True)
        groups.append((group + n_cols, refl.intensity))
        n_cols += int(group.max()) + 1 if len(group) else 0
    a = np.zeros((n_grid, n_cols + model.basis.shape[1]))
    for ph, (group, inten) in zip(fit.phases, groups, strict=True):
        for k, gi, prof in model.peak_profiles(ph, fit.zero, fit.kalpha2_ratio):
            np.add.at(
                a,
                (gi.ravel(), np.repeat(group[k], gi.shape[1])),
                (prof * inten[k][:, None]).ravel(),
            )
    a[:, n_cols:] = model.basis
    aw = a * model.sw[:, None]
    ata = aw.T @ aw
    atb = aw.T @ (model.y * model.sw)
    scale = np.sqrt(np.maximum(np.diag(ata), 1e-300))
    used = np.diag(ata) > 1e-300 * max(float(np.diag(ata).max()), 1e-300)
    ata_s = ata[np.ix_(used, used)] / np.outer(scale[used], scale[used])
    chol = np.linalg.cholesky(ata_s + 1e-10 * np.eye(int(used.sum())))
    z = np.linalg.solve(chol, atb[used] / scale[used])
    coef = np.zeros(len(scale))
    coef[used] = nnls(chol.T, z, maxiter=50 * len(z))[0] / scale[used]
    out = []
    for group, inten in groups:
        new = inten * coef[group]
        top = new.max() if len(new) else 0.0
        out.append(new / top if top > 0 else new)
    return out


def refine_fit(
    model: WholePatternModel,
    start: FitResult,
    *,
    names: list[str] | None = None,
    max_cycles: int = 8,
) -> Refinement:
    """Refine the phases of ``start`` on ``model``'s pattern with free reflection intensities.

    Args:
        model: the pattern and its weights.
        start: a fit to refine from (e.g. search-match's, with structure intensities).
        names: a name per phase for the report.
        max_cycles: intensity / cell cycles at most (it stops earlier when
            Rwp changes by less than :data:`RWP_TOLERANCE`).
    """
    fit = start
    cycles = 0
    while cycles < max_cycles:
        cycles += 1
        intensities = pawley_intensities(model, fit)
        phases = [
            replace(ph.copy(), reflections=replace(ph.reflections, intensity=inten))
            for ph, inten in zip(fit.phases, intensities, strict=True)
        ]
        new = model.fit(phases, fit.zero, fit.kalpha2_ratio, max_nfev=40)
        done = fit.rwp - new.rwp < RWP_TOLERANCE
        if new.rwp <= fit.rwp:
            fit = new
        if done:
            break
    names = names or [f"phase {i + 1}" for i in range(len(fit.phases))]
    refined = []
    for name, ph in zip(names, fit.phases, strict=True):
        abc, angles = ph.cell()
        abc_esd, angles_esd = ph.cell_esd()
        n_refl = len(ph.reflections)
        refined.append(RefinedPhase(name, abc, angles, abc_esd, angles_esd, float(ph.fwhm_u),
                                    float(ph.fwhm_y), float(ph.eta), n_refl))  # fmt: skip
    return Refinement(
        phases=refined, zero=fit.zero, kalpha2_ratio=fit.kalpha2_ratio, rwp_start=start.rwp,
        rwp=fit.rwp, chi2_reduced=fit.chi2_reduced, cycles=cycles, two_theta=model.x,
        observed=model.y, calculated=fit.calc, background=fit.background,
        difference=model.y - fit.calc, fit=fit,
    )  # fmt: skip


def refine_phases(pattern, phases: list[PhaseParams], *, zero: float = 0.0,
                  kalpha2_ratio: float = 0.0, names=None, weights=None) -> Refinement:  # fmt: skip
    """Refinement of ``phases`` (starting values) on a pattern
    (:class:`~matforge.xrd.io.Pattern` or a file): first a fit with the phases' own
    intensities, then :func:`refine_fit`."""
    from matforge.xrd.io import Pattern, read_pattern

    p = pattern if isinstance(pattern, Pattern) else read_pattern(pattern)
    model = WholePatternModel(p.two_theta, p.intensity, p.wavelength, weights=weights)
    start = model.fit(phases, zero, kalpha2_ratio, max_nfev=60)
    return refine_fit(model, start, names=names)
