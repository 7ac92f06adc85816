"""Peak search on a measured powder pattern: background, Kα2, positions with uncertainties.

:func:`find_peaks` turns a scan into the list of reflections an indexing program reads
(:mod:`matforge.xrd.indexing`):

1. **Noise** — the counting noise σ at each point, from the robust spread (median absolute
   deviation) of the second differences of the scan in a running window, so a background that
   changes level or a pattern on a count scale or on a 0–1 scale are treated alike.
2. **Background** — SNIP (statistics-sensitive non-linear iterative peak clipping, Ryan et al.
   1988; Morháč et al. 1997): a point is replaced by the mean of its neighbours ``k`` points
   away whenever that is lower, for ``k`` growing up to a window wider than the peaks (set
   from their measured width) and back down. Peaks are clipped, slow backgrounds and broad
   amorphous humps survive.
3. **Kα2** — for a known anode (Cu, Mo, Co, Fe, Cr, Ag Kα1 wavelength) the Kα2 component is
   stripped (Rachinger 1948): the Kα1 profile J solves I(2θ) = J(2θ) + R·J(2θ − Δ(2θ)), with
   Δ the Kα2 − Kα1 splitting at that angle from Bragg's law and R = 0.5, solved by fixed-point
   iteration (R < 1 makes it converge geometrically). ``kalpha2="auto"`` strips only when the
   scan has a Kα2 component: where the doublet is resolved, stripping a scan that has none
   leaves negative lobes of half the peaks' height at 2θ + Δ, stripping one that has leaves a
   clean profile.
4. **Peaks** — local maxima of the stripped, background-free profile (lightly smoothed
   against counting noise) whose prominence exceeds ``min_snr`` σ and ``min_height`` of the
   strongest peak; each position is the vertex of a least-squares parabola through the points
   above about 70 % of the peak's height on the unsmoothed profile, its uncertainty from the
   noise, the width and the number of points (see :func:`find_peaks`).

Angles are degrees 2θ at the pattern's wavelength (Kα1 for a laboratory tube), d-spacings Å.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from matforge.xrd.radiation import KA2_RATIO, KALPHA

__all__ = ["KALPHA", "PeakTable", "find_peaks", "snip_background", "strip_kalpha2"]

#: fewest points of a scan the peak search accepts
MIN_POINTS = 50
#: negative share of the stripped profile (where the doublet is resolved) above which a scan is
#: judged to have no Kα2 component: about 1/3 when there is none, noise-level when there is
_KA2_NEGATIVE_SHARE = 0.12


@dataclass
class PeakTable:
    """Peaks found on one pattern, in increasing 2θ.

    Attributes:
        two_theta: positions in degrees 2θ at ``wavelength`` (Kα1 when Kα2 was stripped).
        sigma: one-standard-deviation uncertainty of each position, degrees 2θ.
        height: height above the background, in the pattern's intensity units.
        fwhm: full width at half maximum, degrees 2θ.
        wavelength: Å.
        kalpha2_stripped: whether a Kα2 component was removed before the search.
        noise: typical counting noise σ under the peaks, intensity units.
        background: the background on ``grid`` (intensity units).
        grid: the 2θ points of the (uniform) scan the search ran on, degrees.
        profile: the background-free (and Kα2-stripped) profile on ``grid``.
        source: where the pattern came from.
    """

    two_theta: np.ndarray
    sigma: np.ndarray
    height: np.ndarray
    fwhm: np.ndarray
    wavelength: float
    kalpha2_stripped: bool = False
    noise: float = 0.0
    background: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    profile: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    source: str = ""

    def __len__(self) -> int:
        return len(self.two_theta)

    def __repr__(self) -> str:
        return (
            f"PeakTable({len(self)} peaks, λ={self.wavelength} Å, "
            f"Kα2 {'stripped' if self.kalpha2_stripped else 'kept'}, source={self.source!r})"
        )

    @property
    def d(self) -> np.ndarray:
        """d-spacings in Å (Bragg's law at ``wavelength``)."""
        return self.wavelength / (2 * np.sin(np.radians(self.two_theta) / 2))

    @property
    def relative_intensity(self) -> np.ndarray:
        """Heights scaled so the strongest peak is 100."""
        top = self.height.max() if len(self) else 1.0
        return 100 * self.height / top

    def to_frame(self):
        """The peaks as a pandas DataFrame: ``two_theta``, ``sigma``, ``d`` (Å),
        ``height``, ``relative_intensity`` (strongest 100), ``fwhm`` (degrees 2θ)."""
        import pandas as pd

        return pd.DataFrame({
            "two_theta": self.two_theta, "sigma": self.sigma, "d": self.d,
            "height": self.height, "relative_intensity": self.relative_intensity,
            "fwhm": self.fwhm,
        })  # fmt: skip


# ---------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------


def noise_sigma(y: np.ndarray, window: int = 101) -> np.ndarray:
    """Counting noise σ at each point: the running median of |second difference| over
    ``window`` points, / 0.6745 (normal MAD) / √6 (the second difference of white noise has
    variance 6σ²). Peaks a few points wide are outliers the median ignores."""
    from scipy.ndimage import median_filter

    y = np.asarray(y, dtype=float)
    d2 = np.abs(np.convolve(y, [1.0, -2.0, 1.0], mode="same"))
    d2[0], d2[-1] = d2[1], d2[-2]
    window = max(5, min(window, len(y) // 2 * 2 - 1))
    sigma = median_filter(d2, size=window, mode="nearest") / (0.6745 * math.sqrt(6))
    positive = sigma[sigma > 0]
    floor = float(np.median(positive)) * 0.1 if len(positive) else 1e-12
    return np.maximum(sigma, max(floor, 1e-12 * float(np.ptp(y) or 1.0)))


def snip_background(y, window: int) -> np.ndarray:
    """SNIP background of a uniformly sampled scan: clipping half-windows 1…``window`` points
    and back (a half-window must exceed a peak's half width at its base)."""
    v = np.asarray(y, dtype=float).copy()
    n = len(v)
    window = int(max(1, min(window, (n - 1) // 2)))
    for k in [*range(1, window + 1), *range(window - 1, 0, -1)]:
        mean = 0.5 * (v[: n - 2 * k] + v[2 * k :])
        np.minimum(v[k : n - k], mean, out=v[k : n - k])
    return v


def kalpha_lines(wavelength: float) -> tuple[float, float] | None:
    """(Kα1, Kα2) of the anode whose Kα1 line is ``wavelength`` (±0.001 Å), else None."""
    for ka1, ka2 in KALPHA.values():
        if abs(wavelength - ka1) <= 1e-3:
            return ka1, ka2
    return None


def strip_kalpha2(
    two_theta, y, wavelength: float, ka2: float | None = None, ratio: float = KA2_RATIO
) -> np.ndarray:
    """Kα1 profile of a background-free scan with a Kα2 doublet (Rachinger correction).

    Solves I(2θ) = J(2θ) + ``ratio`` · J(2θ − Δ(2θ)) for J, where Δ(2θ) is the Kα2 − Kα1
    splitting of a reflection whose Kα2 peak sits at 2θ: 2θ₁ = 2 asin(sin θ · λ₁/λ₂). Fixed-point
    iteration, 12 steps (the error shrinks as ``ratio``¹²)."""
    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(y, dtype=float)
    if ka2 is None:
        lines = kalpha_lines(wavelength)
        if lines is None:
            raise ValueError(f"no known anode has a Kα1 line at {wavelength} Å: give ka2")
        ka2 = lines[1]
    # where the Kα1 reflection lies whose Kα2 falls on x
    s = np.sin(np.radians(x) / 2) * (wavelength / ka2)
    source = 2 * np.degrees(np.arcsin(np.clip(s, -1, 1)))
    j = y.copy()
    for _ in range(12):
        j = y - ratio * np.interp(source, x, j, left=0.0, right=0.0)
    return j


def _uniform(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scan on a uniform grid of its median step (unchanged when already uniform)."""
    steps = np.diff(x)
    step = float(np.median(steps))
    if np.all(np.abs(steps - step) <= 0.01 * step):
        return x, y
    grid = x[0] + step * np.arange(int(math.floor((x[-1] - x[0]) / step)) + 1)
    return grid, np.interp(grid, x, y)


def _check(two_theta, intensity, source: str) -> tuple[np.ndarray, np.ndarray]:
    from matforge.errors import PatternFileError

    name = source or "the pattern"
    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise PatternFileError(
            f"{name}: 2θ and intensity must be 1-D arrays of equal length, got shapes "
            f"{x.shape} and {y.shape}"
        )
    if len(x) < MIN_POINTS:
        raise PatternFileError(
            f"{name}: {len(x)} points; a peak search needs a measured scan of at least "
            f"{MIN_POINTS} points"
        )
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PatternFileError(
            f"{name}: point {i + 1} (2θ = {x[i]!r}, intensity = {y[i]!r}) is not a finite number"
        )
    steps = np.diff(x)
    if not (steps > 0).all():
        i = int(np.flatnonzero(steps <= 0)[0])
        raise PatternFileError(
            f"{name}: 2θ must increase strictly; point {i + 2} ({x[i + 1]:g}°) follows {x[i]:g}°"
        )
    if not (0 < x[0] and x[-1] < 180):
        raise PatternFileError(f"{name}: 2θ runs {x[0]:g}–{x[-1]:g}°, outside 0–180°")
    if float(np.ptp(y)) == 0:
        raise PatternFileError(f"{name}: no signal: all intensities are equal")
    return x, y


# ---------------------------------------------------------------------------------------
# the peak search
# ---------------------------------------------------------------------------------------


def find_peaks(
    pattern,
    intensity=None,
    *,
    wavelength: float | None = None,
    kalpha2: bool | str = "auto",
    min_snr: float = 6.0,
    min_height: float = 0.01,
    max_peaks: int = 80,
    source: str = "",
) -> PeakTable:
    """Find the peaks of a powder pattern.

    Args:
        pattern: a :class:`~matforge.xrd.io.Pattern`, or the 2θ values (degrees, increasing)
            with ``intensity`` given.
        intensity: the intensities when ``pattern`` is an array of 2θ values.
        wavelength: Å (default: the Pattern's, else Cu Kα1 1.5406 Å).
        kalpha2: ``True`` strip a Kα2 component, ``False`` keep the profile as it is,
            ``"auto"`` strip it when the scan has one (only for a known anode's Kα1
            wavelength, :data:`KALPHA`; a monochromated or synchrotron scan is left alone).
        min_snr: least prominence of a peak, in units of the noise σ at its position.
        min_height: least height of a peak relative to the strongest one (0–1).
        max_peaks: keep at most this many, the most prominent.
        source: a name for error messages (default: the Pattern's source).

    Returns:
        A :class:`PeakTable`. Position uncertainties are σ = √(σ_fit² + (0.03·FWHM)² +
        (step/√12)²): the parabola's vertex error from the noise, a share of the width for
        the profile's asymmetry and overlaps, and the sampling step.

    Raises:
        PatternFileError: fewer than :data:`MIN_POINTS` points, non-finite values, 2θ not
            increasing, or no signal.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks as scipy_find_peaks
    from scipy.signal import peak_widths

    from matforge.xrd.io import Pattern
    from matforge.xrd.radiation import CU_KA1

    if isinstance(pattern, Pattern):
        x, y = pattern.two_theta, pattern.intensity
        wavelength = pattern.wavelength if wavelength is None else wavelength
        source = source or pattern.source
    else:
        if intensity is None:
            raise TypeError("give a Pattern, or 2θ values and intensities")
        x, y = pattern, intensity
    wavelength = CU_KA1 if wavelength is None else float(wavelength)
    if kalpha2 not in (True, False, "auto"):
        raise ValueError(f"kalpha2 must be True, False or 'auto', got {kalpha2!r}")
    x, y = _check(x, y, source)
    x, y = _uniform(x, y)
    step = float(x[1] - x[0])
    sigma = noise_sigma(y)

    # typical width first (the background window and the smoothing scale with it)
    rough = gaussian_filter1d(y, 1.0)
    idx, props = scipy_find_peaks(rough, prominence=max(6 * float(np.median(sigma)),
                                                        0.02 * float(np.ptp(rough))))  # fmt: skip
    if len(idx):
        top = np.argsort(-props["prominences"])[:15]
        w = peak_widths(rough, idx[top], rel_height=0.5)[0]
        width_pts = float(np.median(w))
    else:
        width_pts = 3.0
    width_pts = float(np.clip(width_pts, 1.5, 0.25 * len(x)))
    window = int(np.clip(round(2.5 * width_pts), 5, len(x) // 4))
    background = snip_background(gaussian_filter1d(y, max(0.5, width_pts / 6)), window)
    net = y - background

    stripped = False
    lines = kalpha_lines(wavelength)
    if kalpha2 is not False and lines is not None:
        j = strip_kalpha2(x, net, wavelength, lines[1])
        if kalpha2 is True:
            net, stripped = j, True
        else:
            net, stripped = _choose_kalpha2(x, net, j, wavelength, lines, width_pts * step, sigma)

    smooth = gaussian_filter1d(net, max(0.4, width_pts / 5))
    noise_smooth = sigma / math.sqrt(max(1.0, 0.8 * width_pts / 5 * math.sqrt(math.pi) * 2))
    # a prominence is a difference of two noisy values (√2), and stripping Kα2 adds the
    # noise of the shifted copy: Var J = Var I / (1 − R²)
    noise_smooth = noise_smooth * math.sqrt(2)
    if stripped:
        noise_smooth = noise_smooth / math.sqrt(1 - KA2_RATIO**2)
    strongest = float(smooth.max())
    if strongest <= 0:
        return PeakTable(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), wavelength,
                         stripped, float(np.median(sigma)), background, x, net, source)  # fmt: skip
    idx, props = scipy_find_peaks(smooth, height=min_height * strongest,
                                  prominence=min_snr * noise_smooth)  # fmt: skip
    # a peak's own prominence must beat the noise where it sits
    keep = props["prominences"] >= min_snr * noise_smooth[idx]
    idx, prom = idx[keep], props["prominences"][keep]
    if len(idx) > max_peaks:
        best = np.sort(np.argsort(-prom)[:max_peaks])
        idx, prom = idx[best], prom[best]
    if not len(idx):
        return PeakTable(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), wavelength,
                         stripped, float(np.median(sigma)), background, x, net, source)  # fmt: skip
    widths = peak_widths(smooth, idx, rel_height=0.5)[0]
    pos, pos_sigma, height = _vertex(x, net, smooth, idx, widths, sigma)
    fwhm = widths * step
    total_sigma = np.sqrt(pos_sigma**2 + (0.03 * fwhm) ** 2 + step**2 / 12)
    order = np.argsort(pos)
    return PeakTable(
        two_theta=pos[order], sigma=total_sigma[order], height=height[order], fwhm=fwhm[order],
        wavelength=wavelength, kalpha2_stripped=stripped, noise=float(np.median(sigma[idx])),
        background=background, grid=x, profile=net, source=source,
    )  # fmt: skip


def _choose_kalpha2(x, net, stripped, wavelength, lines, fwhm_deg, sigma):
    """(profile, stripped?) for ``kalpha2="auto"``: strip when the stripped profile is clean
    where the doublet is resolved (splitting over 0.7 FWHM), keep the scan when stripping
    leaves negative lobes there (a scan without Kα2). Undecidable (no resolved strong
    signal): strip, as a laboratory tube emits both lines."""
    ka1, ka2 = lines
    theta = np.radians(x) / 2
    split = np.degrees(2 * np.tan(theta) * (ka2 - ka1) / ka1)
    resolved = split >= 0.7 * fwhm_deg
    signal = np.abs(stripped) > 3 * sigma
    region = resolved & signal
    if region.sum() < 5:
        return stripped, True
    neg = float(np.clip(-stripped[region], 0, None).sum())
    share = neg / float(np.abs(stripped[region]).sum())
    if share > _KA2_NEGATIVE_SHARE:
        return net, False
    return stripped, True


def _vertex(x, net, smooth, idx, widths, sigma):
    """Position, its noise uncertainty and height of each peak: a least-squares parabola
    through the points within ±0.35 FWHM of the maximum (at least ±1 point) of the
    background-free profile ``net``. Falls back on the smoothed maximum when the parabola
    does not open downwards or its vertex leaves the window."""
    step = float(x[1] - x[0])
    half = np.maximum(1, np.round(0.35 * widths)).astype(int)
    pos = x[idx].astype(float)
    height = smooth[idx].astype(float)
    pos_sigma = np.full(len(idx), step)
    n = len(x)
    for h in np.unique(half):
        sel = np.flatnonzero(half == h)
        centre = np.clip(idx[sel], h, n - 1 - h)
        offsets = np.arange(-h, h + 1)
        cols = centre[:, None] + offsets  # (m, 2h+1)
        t = offsets * step
        design = np.stack([np.ones_like(t), t, t * t], axis=1)  # (2h+1, 3)
        # the noisy profile is what the parabola fits; with ±1 point it interpolates
        yy = net[cols]
        coef, *_ = np.linalg.lstsq(design, yy.T, rcond=None)  # (3, m)
        c0, c1, c2 = coef
        ok = c2 < 0
        vertex = np.where(ok, -c1 / np.where(ok, 2 * c2, 1.0), 0.0)
        ok &= np.abs(vertex) <= (h + 0.5) * step
        pos[sel] = np.where(ok, x[centre] + vertex, x[idx[sel]])
        height[sel] = np.where(ok, c0 + c1 * vertex + c2 * vertex**2, smooth[idx[sel]])
        # vertex error: δv = δc1 / (2|c2|), δc1 = σ / √Σt² (symmetric window)
        s = sigma[centre]
        denom = np.sqrt(np.sum(t * t)) * 2 * np.maximum(np.abs(c2), 1e-300)
        err = np.where(ok, s / denom, step)
        pos_sigma[sel] = np.minimum(err, widths[sel] * step)
    return pos, pos_sigma, np.maximum(height, 0.0)
