"""Powder patterns of phase mixtures with known weight fractions.

A phase p of weight fraction W_p in a mixture occupies the volume fraction
v_p = (W_p / ρ_p) / Σ_i (W_i / ρ_i) of the sample (ρ its density), and diffracts in proportion
to v_p / V_p² times Σ mult·|F|²·LP per unit cell (V_p the cell volume), the kinematic
intensity of Rietveld analysis (absorption contrast between phases is neglected). This is what
search-match inverts with Hill & Howard's W_p ∝ S_p Z M V
(:func:`matforge.xrd.searchmatch.weight_fractions`).

Angles are degrees 2θ, wavelengths Å.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np


def simulate_mixture(
    structures,
    weight_fractions,
    grid,
    *,
    fwhm: float = 0.1,
    eta: float = 0.5,
    size_nm: float = 0.0,
    zero_shift: float = 0.0,
    kalpha2: bool = False,
    texture: list | None = None,
    background: float = 0.0,
    counts: float = 0.0,
    rng=None,
    source: str = "simulated mixture",
):
    """A Cu Kα1 pattern (with Kα2 when asked) of a mixture of ``structures``.

    Args:
        structures: pymatgen Structures of the phases.
        weight_fractions: one per phase, summing to 1.
        grid: 2θ points in degrees.
        fwhm, eta, size_nm, zero_shift, kalpha2: profile (see
            :func:`matforge.xrd.augment.render`), shared by the phases.
        texture: per phase, None or ``(hkl direction, March–Dollase r)``.
        background: a smooth background of this height relative to the strongest peak
            (:func:`matforge.xrd.augment.background`).
        counts: counts in the strongest point (Poisson noise); 0 = noise-free.
        rng: seed or Generator (background shape, noise).

    Returns:
        A :class:`~matforge.xrd.io.Pattern` (in counts when noisy, else maximum 1).
    """
    from matforge.xrd.augment import (
        background as make_background,
    )
    from matforge.xrd.augment import (
        march_dollase,
        poisson_noise,
        render,
    )
    from matforge.xrd.io import Pattern
    from matforge.xrd.radiation import CU_KA1
    from matforge.xrd.simulate import PeakList, simulate
    from matforge.xrd.wholepattern import Reflections, absolute_factor

    rng = np.random.default_rng(rng)
    grid = np.asarray(grid, dtype=float)
    w = np.asarray(weight_fractions, dtype=float)
    if len(w) != len(structures) or (w < 0).any() or abs(w.sum() - 1) > 1e-6:
        raise ValueError(f"weight_fractions must be {len(structures)} values ≥ 0 summing to 1")
    t_range = (max(0.5, grid[0] - 3), min(179.0, grid[-1] + 3))
    peaks = simulate(list(structures), wavelength=CU_KA1, two_theta_range=t_range)
    parts = []
    for i, (s, pk) in enumerate(zip(structures, peaks, strict=True)):
        inten = pk.intensity / 100.0
        if texture is not None and texture[i] is not None:
            direction, r = texture[i]
            recip = s.lattice.reciprocal_lattice_crystallographic.matrix[None]
            inten = inten * march_dollase([pk], recip, np.asarray([direction], float), [r])[0]
        absolute = _absolute_per_relative(s, pk, CU_KA1, Reflections, absolute_factor)
        # v_p / V_p² with v_p ∝ W_p / ρ_p = W_p V_p / M_p: the scale is W_p / (M_p V_p)
        scale = w[i] / (s.composition.weight * s.volume) * absolute
        parts.append(replace(pk, intensity=inten * scale))
    combined = PeakList(
        two_theta=np.concatenate([p.two_theta for p in parts]),
        intensity=np.concatenate([p.intensity for p in parts]),
        d_spacings=np.concatenate([p.d_spacings for p in parts]),
        wavelength=CU_KA1,
        family_hkl=np.zeros((0, 3), dtype=np.int64),
        family_multiplicity=np.zeros(0, dtype=np.int64),
        family_offsets=np.zeros(1, dtype=np.int64),
    )
    y = render([combined], grid, fwhm=fwhm, eta=eta, size_nm=size_nm, zero_shift=zero_shift,
               kalpha2=float(kalpha2), dtype=np.float64)  # fmt: skip
    if background > 0:
        y = y + make_background(grid, [background], rng, dtype=np.float64)
    if counts > 0:
        y = poisson_noise(y / y.max(), [counts], rng) * counts
    return Pattern(grid, y[0], wavelength=CU_KA1, source=source)


def _absolute_per_relative(structure, peaks, wavelength, reflections_cls, absolute_factor):
    """Σ mult·|F|²·LP per unit cell of ``structure`` per unit of its relative intensities
    (strongest peak = 1)."""
    hkl = np.asarray(peaks.family_hkl, dtype=float)
    hexagonal = hkl.shape[1] == 4
    if hexagonal:
        hkl = hkl[:, [0, 1, 3]]
    owner = np.repeat(np.arange(len(peaks)), np.diff(peaks.family_offsets))
    mult = np.asarray(peaks.family_multiplicity, dtype=float)
    share = mult / np.bincount(owner, weights=mult, minlength=len(peaks))[owner]
    refl = reflections_cls(hkl=hkl, intensity=peaks.intensity[owner] / 100 * share,
                           multiplicity=mult, hexagonal=hexagonal)  # fmt: skip
    return absolute_factor(structure, refl, wavelength)
