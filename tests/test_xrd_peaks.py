"""Peak search on measured-like powder patterns (``matforge.xrd.peaks``): background, Kα2,
positions with uncertainties, and clear errors for scans it cannot read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from matforge.errors import PatternFileError
from matforge.xrd.io import CU_KA1, Pattern
from matforge.xrd.peaks import KALPHA, find_peaks, snip_background, strip_kalpha2

GRID = np.round(np.arange(10.0, 90.0 + 1e-9, 0.02), 4)


@pytest.fixture(scope="module")
def silicon_peaks():
    """Reflections of silicon (Fd-3m, a = 5.431 Å) at Cu Kα1."""
    from pymatgen.core import Lattice, Structure

    from matforge.xrd.simulate import simulate

    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]])
    return simulate(si, wavelength=CU_KA1, two_theta_range=(5, 95))[0]


def measured(peaks, *, zero=0.05, counts=3000.0, kalpha2=True, seed=0, fwhm=0.08):
    """A laboratory scan of ``peaks``: zero shift, optional Kα2 doublet (half the Kα1
    intensity), a sloping background and Poisson counting noise."""
    from matforge.xrd.simulate import profile

    y = profile(peaks, GRID - zero, fwhm=fwhm)
    if kalpha2:
        ka1, ka2 = KALPHA["Cu"]
        s = np.sin(np.radians(peaks.two_theta) / 2) * ka2 / ka1
        doublet = dataclasses.replace(
            peaks, two_theta=2 * np.degrees(np.arcsin(s)), intensity=0.5 * peaks.intensity
        )
        y = y + profile(doublet, GRID - zero, fwhm=fwhm)
    y = y / y.max() * counts + 60 + 40 * np.exp(-(GRID - 10) / 25)
    y = np.random.default_rng(seed).poisson(y).astype(float)
    return Pattern(GRID, y, wavelength=CU_KA1, source="silicon.xy")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_peaks_of_a_laboratory_scan_sit_on_the_reflections(silicon_peaks, seed):
    pt = find_peaks(measured(silicon_peaks, seed=seed))
    assert pt.kalpha2_stripped  # a Cu tube scan with its doublet
    true = silicon_peaks.two_theta[(silicon_peaks.two_theta > 11) & (silicon_peaks.two_theta < 89)]
    # every reflection found once, nothing else (no Kα2 ghost, no noise peak)
    assert len(pt) == len(true) == 6
    err = pt.two_theta - (true + 0.05)
    assert np.abs(err).max() < 0.01
    # the uncertainties are honest: errors within 3 σ, σ not absurdly large
    assert (np.abs(err) <= 3 * pt.sigma).all()
    assert (pt.sigma < 0.03).all() and (pt.sigma > 0).all()
    assert pt.relative_intensity.max() == 100
    assert np.allclose(pt.fwhm, 0.08, atol=0.03)
    assert np.allclose(pt.d, CU_KA1 / (2 * np.sin(np.radians(pt.two_theta) / 2)))
    frame = pt.to_frame()
    assert list(frame.columns) == ["two_theta", "sigma", "d", "height", "relative_intensity",
                                   "fwhm"]  # fmt: skip


def test_a_scan_without_kalpha2_is_left_alone_and_forced_stripping_leaves_ghosts(silicon_peaks):
    p = measured(silicon_peaks, kalpha2=False)
    auto = find_peaks(p)
    assert not auto.kalpha2_stripped and len(auto) == 6
    kept = find_peaks(p, kalpha2=False)
    assert np.allclose(kept.two_theta, auto.two_theta)
    # stripping a monochromated scan digs negative lobes at 2θ + Δ: visible in the profile
    forced = find_peaks(p, kalpha2=True)
    assert forced.kalpha2_stripped
    assert forced.profile.min() < -0.2 * forced.profile.max()
    # a doublet that is not stripped shows as extra peaks at high angle
    doublet = find_peaks(measured(silicon_peaks), kalpha2=False)
    assert len(doublet) > 6


def test_snip_background_follows_a_slope_under_peaks():
    x = np.linspace(10, 90, 4001)
    bg = 100 + 0.5 * (x - 10) + 30 * np.exp(-(((x - 30) / 15) ** 2))
    peaks = sum(1000 * np.exp(-0.5 * ((x - c) / 0.05) ** 2) for c in (25, 40, 41, 70))
    est = snip_background(bg + peaks, window=20)
    assert np.abs(est - bg).max() < 2.0  # the peaks clipped, slope and hump kept


def test_strip_kalpha2_turns_a_doublet_into_one_peak():
    x = np.linspace(60, 80, 2001)
    ka1, ka2 = KALPHA["Cu"]
    t1 = 70.0
    t2 = 2 * np.degrees(np.arcsin(np.sin(np.radians(t1 / 2)) * ka2 / ka1))

    def g(c):
        return np.exp(-0.5 * ((x - c) / 0.03) ** 2)

    j = strip_kalpha2(x, g(t1) + 0.5 * g(t2), ka1)
    assert np.abs(j - g(t1)).max() < 0.01
    with pytest.raises(ValueError, match="no known anode"):
        strip_kalpha2(x, g(t1), 1.2345)


def test_bad_scans_are_refused_with_the_point_named():
    x = np.linspace(10, 80, 200)
    y = np.exp(-((x - 40) ** 2))
    with pytest.raises(PatternFileError, match="a.xy: 20 points"):
        find_peaks(x[:20], y[:20], source="a.xy")
    bad = y.copy()
    bad[16] = np.nan
    with pytest.raises(PatternFileError, match=r"a.xy: point 17 .*not a finite number"):
        find_peaks(x, bad, source="a.xy")
    back = x.copy()
    back[50] = back[48]
    with pytest.raises(PatternFileError, match="point 51"):
        find_peaks(back, y, source="a.xy")
    with pytest.raises(PatternFileError, match="no signal"):
        find_peaks(x, np.ones_like(x), source="a.xy")
    with pytest.raises(PatternFileError, match="equal length"):
        find_peaks(x, y[:-1])
    with pytest.raises(PatternFileError, match="outside 0–180"):
        find_peaks(x + 150, y)
    with pytest.raises(ValueError, match="kalpha2"):
        find_peaks(x, y, kalpha2="yes")
    with pytest.raises(TypeError):
        find_peaks(x)


def test_flat_noisy_scans_have_no_peaks():
    for seed in range(5):
        y = np.random.default_rng(seed).poisson(np.full(len(GRID), 200.0)).astype(float)
        assert len(find_peaks(GRID, y)) == 0
