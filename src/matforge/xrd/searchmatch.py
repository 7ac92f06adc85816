"""Search-match: which known phases, with which lattices, make up a measured pattern.

The workflow of a diffraction lab (and of XRD-AutoAnalyzer, Szymanski et al. 2021, for a known
chemical space): the user names the sample's elements; :func:`search_match`

1. builds the candidate phases (:func:`matforge.xrd.phases.candidate_phases`: the bundled
   prototypes with chemically sensible substitutions, and the user's reference CIFs);
2. screens all of them at once (:func:`prescreen`): each candidate's reflections against the
   measured peaks in ln(sin θ), where a change of the lattice scale is a shift, so one FFT
   cross-correlation scores every scale from ×0.8 to ×1.25 (and a grid of axis ratios ±5 %
   for non-cubic cells);
3. fits the best of them to the pattern (:class:`~matforge.xrd.wholepattern.WholePatternModel`:
   lattice within a few percent, zero shift, peak widths, scale, background, by least squares)
   and ranks them by Rwp together with the classifier's probability of their prototype;
4. for mixtures, fits the next phase to what the previous ones leave, together with them, and
   stops when a further phase no longer explains a real part of the residual (at most three),
   revisits each phase beside the others and settles its species among isostructural
   candidates; weight fractions from the scale factors (Hill & Howard 1987: W_p = S_p (ZMV)_p / Σ S_i (ZMV)_i);
5. optionally refines the result with free reflection intensities, Pawley style
   (:func:`matforge.xrd.refine.refine_fit`).

Angles are degrees 2θ, lattice lengths Å, weight fractions 0–1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from matforge.xrd.radiation import CU_KA1
from matforge.xrd.wholepattern import (
    MAX_WIDTH,
    FitResult,
    LatticeModel,
    PhaseParams,
    Reflections,
    WholePatternModel,
    reciprocal_metric,
)

#: lattice scale searched by the prescreen (relative to the candidate's estimated cell)
SCALE_RANGE = (0.8, 1.25)
#: axis ratios searched by the prescreen for non-cubic cells: ± this, in steps of RATIO_STEP
RATIO_RANGE = 0.05
RATIO_STEP = 0.01
#: candidates fitted after the prescreen (the classifier's top prototypes come on top)
SHORTLIST = 12
#: lattice lengths closer than this (relative) are also tried the other way round
AXIS_SWAP_TOL = 0.05
#: weight of the classifier's prototype probability in the ranking: score = Rwp·(1 − w·p)
CLASSIFIER_WEIGHT = 0.1
#: a single-phase answer must hold the elements the user gave: the score of a candidate
#: lacking a fraction m of them is multiplied by (1 + MISSING_ELEMENT_WEIGHT·m). Light atoms
#: scatter little, so without it a metal sublattice (fcc Ni for a C–Ni carbide) fits about as
#: well as the compound. Chosen on the validation side of the chemical-system split
MISSING_ELEMENT_WEIGHT = 0.5
#: many reflections fit any pattern a little (de Wolff's argument against big cells in
#: indexing): in a single-phase search the score is multiplied by
#: (1 + COMPLEXITY_WEIGHT·log10 N) with N the candidate's reflection families in the measured
#: range. Both weights were chosen on 60 single-phase patterns of the validation side
#: (benchmarks/xrd_searchmatch.py --split val): top-1 0.883 with neither, 0.900 with the
#: element term (0.25: 0.883, 1.0: 0.900), 0.917 with this one too (0.1: 0.917; 0.2: 0.917 but
#: top-5 0.95). In mixtures it cost a pattern of 30 and one of 20 on the validation side, so
#: there it is off
COMPLEXITY_WEIGHT = 0.05
#: a further phase is kept when it lowers Rwp by at least this fraction of the current Rwp …
#: (on the validation side, 30 two-phase and 20 three-phase patterns: 0.15 found all phases in
#: 93 % / 75 % and exactly those in 87 % / 75 %; 0.10 in 97 % / 75 % and 90 % / 75 %)
MIN_RWP_GAIN = 0.10
#: … and makes up at least this weight fraction, unless it lowers Rwp by this fraction or more:
#: such a phase carries much of the diffracted intensity, and a small weight then says that
#: the species of a phase are wrong (a light element's isostructural twin of a heavy one
#: needs a big weight to diffract as strongly; :func:`_species`), not that the phase is absent
MIN_WEIGHT_FRACTION = 0.05
DOMINANT_GAIN = 0.5
#: after the search, a phase is replaced when that lowers Rwp by at least this fraction, and
#: dropped when without it Rwp rises by less (half the gain that admits a phase, so that a
#: phase near that limit is not taken back)
REVISIT_MARGIN = 0.05
#: the screen's first, coarse pass over all candidates (the second refines its best few)
COARSE = {"sigma_u": 0.008, "ratio_range": 0.05, "ratio_step": 0.025}
#: strongest reflection families of a candidate used while screening (big low-symmetry cells
#: have thousands)
SCREEN_REFLECTIONS = 200
#: … and in the final fit: big low-symmetry cells have thousands of weak families in the
#: range (4,498 for an 84-atom monoclinic cell, whose final fit took 117 s of a 130 s search;
#: 7.8 s with this cap). Cells up to about 60 atoms have fewer; for a 144-atom cell (912
#: families) the cap changed Rwp by 1e-4 and the weight fractions by 0.1 point
FINAL_REFLECTIONS = 500
MAX_PHASES = 3
#: a phase whose fitted peaks are this many times wider than the pattern's is a hump, not a
#: phase (:func:`_broad`): phases of one sample differ in crystallite size, not 10-fold
BROAD_RATIO = 10.0
#: the search's fits leave the Lorentzian tails beyond this many FWHM out of their Jacobians
#: (their residuals stay exact): the derivatives change by 0.4 % and cost half as much
JACOBIAN_FWHM = 5.0


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------


@dataclass
class PhaseMatch:
    """One candidate phase fitted to a pattern.

    Attributes:
        phase: the :class:`~matforge.xrd.phases.Phase`.
        rwp: weighted-profile R factor of the fit (0–1; lower is better).
        score: ranking key, Rwp·(1 − w·p)·(1 + v·m)·(1 + u·log10 N) with p the classifier's
            probability of the phase's prototype (:data:`CLASSIFIER_WEIGHT` = w), in a
            single-phase search m the fraction of the given elements the phase lacks
            (:data:`MISSING_ELEMENT_WEIGHT` = v), and N its reflection families in the
            measured range (:data:`COMPLEXITY_WEIGHT` = u).
        classifier_probability: p (0 when the classifier was not run or does not know it).
        lattice: refined (a, b, c) in Å and (α, β, γ) in degrees.
        reference_lattice: the candidate's starting cell (estimated for a substituted
            prototype).
        weight_fraction: in a mixture, 0–1 (1 for a single phase).
        prescreen: the prescreen's cosine score (0–1).
        fit: the :class:`~matforge.xrd.wholepattern.FitResult` the figures come from.
    """

    phase: object
    rwp: float
    score: float
    classifier_probability: float
    lattice: tuple
    reference_lattice: tuple
    weight_fraction: float = 1.0
    prescreen: float = 0.0
    fit: FitResult | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.phase.name

    def lattice_dict(self) -> dict[str, float]:
        (a, b, c), (al, be, ga) = self.lattice
        return {"a": float(a), "b": float(b), "c": float(c), "alpha": float(al),
                "beta": float(be), "gamma": float(ga)}  # fmt: skip

    def to_dict(self) -> dict:
        return {
            "name": self.phase.name,
            "formula": self.phase.formula,
            "prototype": self.phase.prototype,
            "spacegroup": self.phase.spacegroup,
            "crystal_system": self.phase.crystal_system,
            "source": self.phase.source,
            "rwp": self.rwp,
            "score": self.score,
            "classifier_probability": self.classifier_probability,
            "weight_fraction": self.weight_fraction,
            "lattice": self.lattice_dict(),
        }


# ---------------------------------------------------------------------------------------
# prescreen: every candidate, every lattice scale, one FFT
# ---------------------------------------------------------------------------------------

_SIGMA_U = 0.004  # Gaussian broadening of both sides in ln(sin θ) (≈ 0.3° 2θ at 40°)


def net_intensity(x, y, window_deg: float = 4.0) -> np.ndarray:
    """The pattern less a slowly varying background: a running minimum over
    ``window_deg`` smoothed by a running mean of the same width, clipped at 0."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    step = float(np.median(np.diff(x)))
    n = max(3, int(round(window_deg / step)) | 1)
    base = uniform_filter1d(minimum_filter1d(y, n, mode="nearest"), n, mode="nearest")
    return np.clip(y - base, 0, None)


def _gaussian_rfft(n_fft: int, sigma_bins: float) -> np.ndarray:
    freq = np.fft.rfftfreq(n_fft)
    return np.exp(-2 * (np.pi * freq * sigma_bins) ** 2)


def prescreen(x, y, wavelength: float, lattices, refls, *, starts=None, scale_range=SCALE_RANGE,
              ratio_range=RATIO_RANGE, ratio_step=RATIO_STEP, power=1.0, sigma_u=_SIGMA_U):  # fmt: skip
    """Score every candidate against a pattern over lattice scales and axis ratios.

    The background-free pattern and each candidate's reflections (at its reference cell,
    square roots of the intensities, so that weak peaks count) are drawn on a grid of
    u = ln(sin θ) and broadened by the same Gaussian. Scaling a cell by s moves every
    reflection by −ln s in u, so the cosine similarity at every scale in ``scale_range`` is
    one FFT cross-correlation (normalised over the measured range). Cells with more than one
    free length are also tried at axis ratios within ± ``ratio_range`` (the angles stay).

    Args:
        x, y: the pattern (degrees 2θ, intensities).
        wavelength: Å.
        lattices: a :class:`~matforge.xrd.wholepattern.LatticeModel` per candidate.
        refls: their :class:`~matforge.xrd.wholepattern.Reflections` at the reference cell.

    Returns:
        (scores (n,), starting lattice parameters per candidate).

    :class:`Prescreen` keeps the candidates' side for scoring several patterns on one 2θ
    grid (the residuals of a mixture search).
    """
    screen = Prescreen(x, wavelength, lattices, refls, starts=starts, scale_range=scale_range,
                       ratio_range=ratio_range, ratio_step=ratio_step, power=power,
                       sigma_u=sigma_u)  # fmt: skip
    return screen.scores(y)


class Prescreen:
    """:func:`prescreen`'s candidate side on one 2θ grid ``x`` (same arguments, less the
    intensities): their broadened reflection spectra and norms at every lag, computed once;
    :meth:`scores` then costs one inverse FFT per candidate row and pattern."""

    def __init__(self, x, wavelength: float, lattices, refls, *, starts=None,
                 scale_range=SCALE_RANGE, ratio_range=RATIO_RANGE, ratio_step=RATIO_STEP,
                 power=1.0, sigma_u=_SIGMA_U):  # fmt: skip
        self.x = np.asarray(x, dtype=float)
        self.lattices = list(lattices)
        self.power = power
        du = sigma_u / 2
        u_meas = np.log(np.sin(np.clip(np.radians(self.x / 2), 1e-6, None)))
        self.u_meas = u_meas
        u_lo, u_hi = float(u_meas[0]), float(u_meas[-1])
        n_meas = self.n_meas = int(math.ceil((u_hi - u_lo) / du)) + 1
        self.u_grid = u_lo + du * np.arange(n_meas)
        shift_lo, shift_hi = -math.log(scale_range[1]), -math.log(scale_range[0])
        pad_lo = int(math.ceil(-shift_lo / du)) + 8  # candidate grid: measured range + shifts
        pad_hi = int(math.ceil(shift_hi / du)) + 8
        n_cand = n_meas + pad_lo + pad_hi
        n_fft = self.n_fft = 1 << int(math.ceil(math.log2(n_cand + n_meas)))
        self.gauss = _gaussian_rfft(n_fft, sigma_u / du)
        mask_f = np.fft.rfft(np.ones(n_meas), n_fft)

        # rows: (candidate, ratio grid point) with the u positions of their reflections
        ratios = np.exp(np.arange(-ratio_range, ratio_range + 1e-9, ratio_step))
        if starts is None:
            starts = [lat.start() for lat in self.lattices]
        rows_owner, rows_p, rows_u, rows_w = [], [], [], []
        half_lam = math.log(wavelength / 2)
        for i, (lat, refl) in enumerate(zip(self.lattices, refls, strict=True)):
            p0 = np.array(starts[i], dtype=float)
            p0[: lat.n_lengths] /= p0[0]
            grids = [np.array([1.0])] + [ratios] * (lat.n_lengths - 1)
            combos = np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(grids), -1).T
            ps = np.repeat(p0[None], len(combos), axis=0)
            ps[:, : lat.n_lengths] *= combos
            if len(refl):
                # only lengths change along the grid: G* = S⁻¹ G*₀ S⁻¹, S = diag of the length
                # factors, so 1/d² is one product of (n, 9) reflection terms and (9, m) factors
                inv_s = 1.0 / combos[:, lat.groups]  # (m, 3)
                g0 = reciprocal_metric(*lat.cell(p0))
                terms = (refl.hkl[:, :, None] * refl.hkl[:, None, :] * g0).reshape(len(refl), 9)
                inv_d2 = (terms @ (inv_s[:, :, None] * inv_s[:, None, :]).reshape(-1, 9).T).T
            else:
                inv_d2 = np.zeros((len(ps), 0))
            u = half_lam + 0.5 * np.log(np.maximum(inv_d2, 1e-12))
            w = refl.intensity**power
            for k in range(len(ps)):
                rows_owner.append(i)
                rows_p.append(ps[k])
                rows_u.append(u[k])
                rows_w.append(w)
        self.starts = [np.array(p, dtype=float) for p in starts]
        self.rows_owner = np.array(rows_owner, dtype=np.int64)
        self.rows_p = rows_p
        n_rows = len(rows_p)
        lags = np.arange(n_fft)
        # correlation at lag L: Σ_t m(t) c(t + L); the candidate sits at grid offset pad_lo, so
        # a lag L moves it by δ = (pad_lo − L)·du in u
        delta = (pad_lo - lags) * du
        self.valid = (delta >= shift_lo) & (delta <= shift_hi) & (lags < n_cand)
        self.delta = delta[self.valid]
        self.spectra = np.zeros((n_rows, n_fft // 2 + 1), dtype=complex)
        self.den = np.zeros((n_rows, int(self.valid.sum())))
        self.dead = np.zeros((n_rows, int(self.valid.sum())), dtype=bool)
        if not n_rows:
            return
        counts = np.array([len(u) for u in rows_u])
        owner_rows = np.repeat(np.arange(n_rows), counts)
        u_all = np.concatenate(rows_u) if counts.sum() else np.zeros(0)
        w_all = np.concatenate(rows_w) if counts.sum() else np.zeros(0)
        # candidate grid index: position − (u_lo − pad_lo·du), linear interpolation into 2 bins
        pos = (u_all - (u_lo - pad_lo * du)) / du
        ok = (pos >= 0) & (pos < n_cand - 1)
        pos, w_all, owner_rows = pos[ok], w_all[ok], owner_rows[ok]
        j = np.floor(pos).astype(np.int64)
        frac = pos - j
        flat = np.bincount(owner_rows * n_cand + j, w_all * (1 - frac), minlength=n_rows * n_cand)
        flat += np.bincount(owner_rows * n_cand + j + 1, w_all * frac, minlength=n_rows * n_cand)
        c = flat.reshape(n_rows, n_cand)
        for lo in range(0, n_rows, self._chunk):
            cf = np.fft.rfft(c[lo : lo + self._chunk], n_fft, axis=1) * self.gauss
            cb = np.fft.irfft(cf, n_fft, axis=1)
            den = np.fft.irfft(np.fft.rfft(cb * cb, n_fft, axis=1) * np.conj(mask_f), n_fft,
                               axis=1)  # fmt: skip
            self.spectra[lo : lo + self._chunk] = cf
            self.den[lo : lo + self._chunk] = den[:, self.valid]
            # no reflection in the measured range at that lag
            self.dead[lo : lo + self._chunk] = (den < 1e-12 * max(float(den.max()), 1e-300))[
                :, self.valid
            ]

    @property
    def _chunk(self) -> int:
        return max(1, 2_000_000 // self.n_fft)

    def scores(self, y, which=None):
        """(scores, starting lattice parameters) of the candidates ``which`` (indices; None:
        all) against intensities ``y`` on the grid."""
        which = np.arange(len(self.lattices)) if which is None else np.asarray(which, int)
        scores = np.zeros(len(which))
        starts = [self.starts[i].copy() for i in which]
        rows = np.flatnonzero(np.isin(self.rows_owner, which))
        if not len(rows):
            return scores, starts
        net = net_intensity(self.x, np.asarray(y, dtype=float))
        m = np.interp(self.u_grid, self.u_meas, net)
        m = np.clip(m - np.median(m), 0, None) ** self.power
        mf = np.fft.rfft(m, self.n_fft) * self.gauss
        m_b = np.fft.irfft(mf, self.n_fft)[: self.n_meas]
        m_norm = float(np.linalg.norm(m_b))
        mf_b = np.conj(np.fft.rfft(m_b, self.n_fft))
        best = np.full(len(rows), -1.0)
        best_shift = np.zeros(len(rows))
        for lo in range(0, len(rows), self._chunk):
            r = rows[lo : lo + self._chunk]
            num = np.fft.irfft(self.spectra[r] * mf_b, self.n_fft, axis=1)[:, self.valid]
            den = self.den[r]
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = num / (m_norm * np.sqrt(np.maximum(den, 1e-30)))
            cos[self.dead[r]] = -1
            k = np.argmax(cos, axis=1)
            best[lo : lo + self._chunk] = cos[np.arange(len(k)), k]
            best_shift[lo : lo + self._chunk] = self.delta[k]
        owners = self.rows_owner[rows]
        for n, i in enumerate(which):
            sel = np.flatnonzero(owners == i)
            if not len(sel):
                continue
            b = sel[int(np.argmax(best[sel]))]
            scores[n] = max(0.0, best[b])
            p = self.rows_p[rows[b]].copy()
            p[: self.lattices[i].n_lengths] *= math.exp(-best_shift[b])
            starts[n] = p
        return scores, starts


# ---------------------------------------------------------------------------------------
# fitting candidates
# ---------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    """A candidate phase with what the search knows of it."""

    phase: object
    lattice: LatticeModel
    refl: Reflections
    start: np.ndarray
    prescreen: float = 0.0
    prior: float = 0.0  # the classifier's probability of its prototype
    missing: float = 0.0  # fraction of the given elements it lacks (single-phase searches)
    n_refl: int = 1  # reflection families in the measured range (single-phase searches)
    index: int = -1  # its place among the search's candidates


def _lattice_model(phase) -> LatticeModel:
    lat = phase.structure.lattice
    return LatticeModel(lat.abc, lat.angles, phase.crystal_system)


def _d_range(x, wavelength: float) -> tuple[float, float]:
    """d-spacings (Å) a candidate's reference cell must cover so that every lattice scale of
    :data:`SCALE_RANGE` can put reflections anywhere in the measured range ``x``."""
    s = np.sin(np.radians(np.asarray([x[0], x[-1]]) / 2))
    d_max, d_min = wavelength / (2 * np.clip(s, 1e-6, 1))
    return float(d_min / SCALE_RANGE[1]), float(d_max / SCALE_RANGE[0])


def _phase_params(cand: _Candidate, fwhm: float, p=None) -> PhaseParams:
    return PhaseParams(cand.refl, cand.lattice, cand.start if p is None else p,
                       fwhm_u=fwhm, fwhm_y=0.0, eta=0.5)  # fmt: skip


def _fit_new_phase(model: WholePatternModel, fixed: list[PhaseParams], zero, k2, new, fwhm,
                   thorough: bool) -> FitResult:  # fmt: skip
    """Fit candidate ``new`` alongside already fitted phases ``fixed``: first its lattice and
    the zero shift with the widths held; with ``thorough``, then everything."""
    ph = _phase_params(new, fwhm)
    n = len(fixed)
    if n:  # a second phase starts with the widths the first one has
        ph.fwhm_u, ph.fwhm_y, ph.eta = fixed[0].fwhm_u, fixed[0].fwhm_y, fixed[0].eta
    k2_start = k2 if n else (0.5 if model.lambda2 is not None else 0.0)
    # a new phase beside fitted ones: only its lattice moves (their curves are computed once)
    r = model.fit([*fixed, ph], zero, k2_start, free_lattice=[False] * n + [True],
                  free_profile=False, free_kalpha2=False, free_zero=not n, max_nfev=6)  # fmt: skip
    if thorough:
        r = model.fit(r.phases, r.zero, r.kalpha2_ratio, max_nfev=15)
    return r


def _with_swapped_axes(model: WholePatternModel, fit: FitResult, tol: float = AXIS_SWAP_TOL):
    """``fit`` or, where two independent lattice lengths of its last phase came within ``tol``
    of each other, the fit started with those two lengths exchanged if its Rwp is lower.

    Peak positions of a cell with a ≈ c barely tell a from c; the screen's start can put them
    the wrong way round (the Aba2 setting is not the same structure with a and c exchanged),
    and a fit bounded to a few percent keeps them so. The intensities decide."""
    ph = fit.phases[-1]
    lat = ph.lattice
    abc, _ = ph.cell()
    best = fit
    for i, j in ((0, 1), (0, 2), (1, 2)):
        gi, gj = lat.groups[i], lat.groups[j]
        if gi == gj or abs(abc[i] - abc[j]) > tol * max(abc[i], abc[j]):
            continue
        swapped = ph.copy()
        swapped.p[gi], swapped.p[gj] = abc[j] / lat.abc0[i], abc[i] / lat.abc0[j]
        alt = model.fit([*fit.phases[:-1], swapped], fit.zero, fit.kalpha2_ratio, max_nfev=15)
        if alt.rwp < best.rwp:
            best = alt
    return best


def _score(rwp: float, prior: float, missing: float = 0.0, n_refl: int = 1) -> float:
    return (
        rwp
        * (1 - CLASSIFIER_WEIGHT * prior)
        * (1 + MISSING_ELEMENT_WEIGHT * missing)
        * (1 + COMPLEXITY_WEIGHT * np.log10(max(n_refl, 1)))
    )


def _rank_key(c, fit) -> float:
    return _score(fit.rwp, c.prior, c.missing, c.n_refl)


def _complexity(n_refl: int, max_phases: int) -> int:
    """The reflection count the score charges for: ``n_refl`` in a single-phase search, else 1
    (no charge)."""
    return n_refl if max_phases == 1 else 1


def _missing(phase, elements, max_phases: int) -> float:
    """Fraction of ``elements`` that ``phase`` lacks, where one phase must hold them all."""
    if max_phases != 1 or not elements:
        return 0.0
    return len(set(elements) - set(phase.elements)) / len(set(elements))


def weight_fractions(fit: FitResult, structures) -> np.ndarray:
    """Weight fractions (0–1) of the phases of a fit (Hill & Howard 1987).

    W_p = S_p (Z M V)_p / Σ_i S_i (Z M V)_i, with S_p the phase's scale on Σ mult·|F|²·LP per
    unit cell (the fitted scale divided by :attr:`Reflections.absolute`), Z M the mass of the
    unit cell's atoms (amu) and V its volume (Å³), of ``structures`` (the cells whose
    reflections were fitted). Microabsorption is not corrected for.
    """
    s = np.array(
        [sc / ph.reflections.absolute for sc, ph in zip(fit.scales, fit.phases, strict=True)]
    )
    zmv = np.array([st.composition.weight * st.volume for st in structures])
    w = s * zmv
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / max(1, len(w)))


def _refined_structure(phase, params: PhaseParams):
    """The phase's structure with the fitted lattice (fractional coordinates kept)."""
    from pymatgen.core import Lattice, Structure

    abc, angles = params.lattice.cell(params.p)
    s = phase.structure
    return Structure(Lattice.from_parameters(*abc, *angles), s.species_and_occu, s.frac_coords)


# ---------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------


@dataclass
class SearchMatchResult:
    """What search-match says about one pattern.

    Attributes:
        source: where the pattern came from.
        elements: the elements given (empty when only references were searched).
        phases: the phases found, most intense first, each with its weight fraction.
        candidates: the single-phase fits of the best candidates, best first.
        fit: the final fit of all found phases together.
        rwp: its Rwp (0–1).
        n_candidates: phases screened.
        seconds: time the search took, the refinement included.
        refinement: the whole-pattern refinement (:mod:`matforge.xrd.refine`), when asked for.
        refine_seconds: time the refinement took (0 without).
        two_theta, observed: the pattern the fit used.
        warnings: what limits the answer.
    """

    source: str
    elements: tuple
    phases: list[PhaseMatch]
    candidates: list[PhaseMatch]
    fit: FitResult = field(repr=False)
    n_candidates: int
    seconds: float
    two_theta: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    wavelength: float = CU_KA1
    refinement: object = None
    warnings: list[str] = field(default_factory=list)
    #: each further phase tried: name, Rwp before and after, relative gain, weight fraction,
    #: whether it was kept
    steps: list[dict] = field(default_factory=list)
    #: names of the found phases in the order of :attr:`fit`'s phases (not sorted by weight)
    fit_names: list[str] = field(default_factory=list, repr=False)
    refine_seconds: float = 0.0

    @property
    def rwp(self) -> float:
        return self.fit.rwp

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "elements": list(self.elements),
            "rwp": self.rwp,
            "chi2_reduced": self.fit.chi2_reduced,
            "zero_shift": self.fit.zero,
            "n_candidates": self.n_candidates,
            "seconds": self.seconds,
            "phases": [m.to_dict() for m in self.phases],
            "candidates": [m.to_dict() for m in self.candidates],
            "refinement": None if self.refinement is None else self.refinement.to_dict(),
            "mixture_steps": list(self.steps),
            "warnings": list(self.warnings),
        }

    def summary_row(self) -> dict:
        """One line of a many-pattern summary: the phases (" + "), their weight fractions and
        formulas, Rwp (and refined Rwp), the best single-phase candidate's lattice."""
        best = self.phases[0] if self.phases else None
        row = {
            "phases": " + ".join(m.name for m in self.phases),
            "formulas": " + ".join(m.phase.formula for m in self.phases),
            "weight_fractions": " + ".join(f"{m.weight_fraction:.3f}" for m in self.phases),
            "rwp": self.rwp,
            "warnings": " | ".join(self.warnings),
            "refined_rwp": None if self.refinement is None else self.refinement.rwp,
            "n_phases": len(self.phases),
        }
        if best is not None:
            row.update({f"{k}": v for k, v in best.lattice_dict().items()})
        return row

    def to_frame(self):
        """The ranked single-phase candidates as a pandas DataFrame (rank, name, formula,
        prototype, space group, Rwp, classifier probability, score, a, b, c, α, β, γ)."""
        import pandas as pd

        rows = [{"rank": i, **{k: v for k, v in m.to_dict().items() if k != "lattice"},
                 **m.lattice_dict()} for i, m in enumerate(self.candidates, 1)]  # fmt: skip
        return pd.DataFrame(rows)

    def structures(self) -> list:
        """A pymatgen Structure per found phase (same order as :attr:`phases`): its atoms with
        the refined lattice when :attr:`refinement` is there, else the fitted one."""
        from pymatgen.core import Lattice, Structure

        refined = {} if self.refinement is None else {p.name: p for p in self.refinement.phases}
        out = []
        for m in self.phases:
            if m.name in refined:
                abc, angles = refined[m.name].abc, refined[m.name].angles
            else:
                abc, angles = m.lattice
            s = m.phase.structure
            out.append(Structure(Lattice.from_parameters(*abc, *angles), s.species_and_occu,
                                 s.frac_coords))  # fmt: skip
        return out

    def plot(self):
        """A plotly figure: the measured pattern, the calculated one, each phase and the
        background above, the difference (observed − calculated) below; from the refinement
        when there is one (its Rwp in the title), else from the structure-intensity fit."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        ref = self.refinement
        fit = self.fit if ref is None else ref.fit
        x, y = self.two_theta, self.observed
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                            vertical_spacing=0.03)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=y, name="observed", mode="lines",
                                 line={"color": "black", "width": 1}), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=fit.calc, name=f"calculated (Rwp {fit.rwp:.3f})",
                                 mode="lines", line={"color": "crimson", "width": 1}),
                      row=1, col=1)  # fmt: skip
        names = [m.name for m in self.phases]
        by_fit = self.fit_names or names
        for name, curve in zip(by_fit, fit.phase_curves, strict=False):
            m = next((m for m in self.phases if m.name == name), None)
            label = name if m is None else f"{name}, {100 * m.weight_fraction:.0f} wt %"
            fig.add_trace(go.Scatter(x=x, y=curve + fit.background, name=label, mode="lines",
                                     line={"width": 1, "dash": "dot"}), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=fit.background, name="background", mode="lines",
                                 line={"color": "grey", "width": 1, "dash": "dash"}),
                      row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=y - fit.calc, name="difference", mode="lines",
                                 line={"color": "steelblue", "width": 1}), row=2, col=1)  # fmt: skip
        what = "refined (Pawley)" if ref is not None else "fitted"
        fig.update_layout(
            title=f"{self.source}: {' + '.join(names)} — {what}, Rwp {fit.rwp:.3f}",
            template="plotly_white", height=620, legend={"orientation": "h", "y": -0.15},
        )  # fmt: skip
        fig.update_xaxes(title_text="2θ (degrees)", row=2, col=1)
        fig.update_yaxes(title_text="intensity", row=1, col=1)
        fig.update_yaxes(title_text="obs − calc", row=2, col=1)
        return fig


def _as_pattern(pattern, wavelength=None):
    from matforge.xrd.io import Pattern, read_pattern

    return pattern if isinstance(pattern, Pattern) else read_pattern(pattern, wavelength=wavelength)


def _candidate_phases(elements, refs) -> list:
    """The phases a search-match tries (:func:`~matforge.xrd.phases.candidate_phases`); raises
    :class:`~matforge.errors.MatforgeError` when there is nothing to try."""
    from matforge.errors import MatforgeError
    from matforge.xrd.phases import candidate_phases

    if elements is None and refs is None:
        raise MatforgeError("search-match needs the sample's elements or reference structures")
    candidates = candidate_phases(elements, refs)
    if not candidates:
        what = f"elements {elements}" if elements is not None else "the references"
        raise MatforgeError(f"no candidate phase for {what}")
    return candidates


def _prototype_prior(classifier, pattern) -> dict[str, float]:
    """The classifier's probability of every prototype label for ``pattern``."""
    if classifier is None:
        return {}
    proba = classifier.predict_proba(classifier.patterns_to_array([pattern]))
    if "prototype" not in proba:
        return {}
    names = classifier.classes["prototype"]
    return {n: float(p) for n, p in zip(names, proba["prototype"][0], strict=True)}


def _rebinned(x, y, fwhm: float):
    """The pattern with points summed in groups so that a peak keeps ≥ 8 points per FWHM
    (a finer scan only costs time; sums keep counting statistics)."""
    step = float(np.median(np.diff(x)))
    k = int(fwhm / 8 / step) if np.isfinite(fwhm) else 1
    if k < 2:
        return x, y
    n = len(x) // k * k
    return x[:n].reshape(-1, k).mean(axis=1), y[:n].reshape(-1, k).sum(axis=1)


def search_match(
    pattern,
    elements=None,
    *,
    refs=None,
    candidates=None,
    max_phases: int = 1,
    refine: bool = False,
    classifier=None,
    top: int = 5,
    shortlist: int = SHORTLIST,
    wavelength: float | None = None,
) -> SearchMatchResult:
    """Identify the phases of a powder pattern among candidates for known elements.

    Args:
        pattern: a :class:`~matforge.xrd.io.Pattern` or a pattern file.
        elements: the sample's elements (``"Ti,O"`` or symbols): the bundled prototypes with
            sensible substitutions are the candidates (:mod:`matforge.xrd.phases`).
        refs: reference CIF files or folders (the user's phase library), kept when their
            elements are among ``elements`` (all of them without ``elements``).
        candidates: :class:`~matforge.xrd.phases.Phase` s to use instead of building them.
        max_phases: most phases in the answer (1–3); a further phase is kept only when it
            lowers Rwp by :data:`MIN_RWP_GAIN` of its value and weighs
            :data:`MIN_WEIGHT_FRACTION` or more.
        refine: also refine the answer with free reflection intensities
            (:func:`matforge.xrd.refine.refine_fit`).
        classifier: an :class:`~matforge.xrd.cnn.XRDClassifier` whose prototype probabilities
            break near-ties of Rwp (None: Rwp alone).
        top: single-phase candidates kept in the result.
        shortlist: candidates fitted after the prescreen.
        wavelength: Å, for a file that does not state its own.

    Returns:
        A :class:`SearchMatchResult`.
    """
    from matforge.errors import MatforgeError
    from matforge.xrd.identify import check_pattern

    t0 = time.perf_counter()
    if not 1 <= max_phases <= MAX_PHASES:
        raise ValueError(f"max_phases must be 1–{MAX_PHASES}, got {max_phases!r}")
    pat = _as_pattern(pattern, wavelength)
    # refuse what is no pattern (too few points, no signal), keep what was assumed; the
    # classifier's 2θ range does not limit a fit, so every range counts
    notes = [w for w in check_pattern(pat, grid=(0.0, 180.0)) if "classifier's" not in w]
    if candidates is None:
        candidates = _candidate_phases(elements, refs)
    elif not candidates:
        what = f"elements {elements}" if elements is not None else "the references"
        raise MatforgeError(f"no candidate phase for {what}")
    prior = _prototype_prior(classifier, pat)
    given = () if elements is None else _elements(elements)
    model, fwhm, cands, coarse = _prepared(pat, candidates, prior, given, max_phases)
    x, y, lam = model.x, model.y, model.wavelength
    d_min, d_max = _d_range(x, lam)
    ranked = _screen(x, y, lam, cands, shortlist, coarse)
    fits = {}
    for c in ranked:
        fits[id(c)] = _fit_new_phase(model, [], 0.0, 0.0, c, fwhm, thorough=False)
    best_few = sorted(ranked, key=lambda c: _rank_key(c, fits[id(c)]))[:3]
    for c in best_few:
        r = fits[id(c)]
        fits[id(c)] = model.fit(r.phases, r.zero, r.kalpha2_ratio, max_nfev=15)
    order = sorted(ranked, key=lambda c: _rank_key(c, fits[id(c)]))
    if order:
        fits[id(order[0])] = _with_swapped_axes(model, fits[id(order[0])])
    single = [_match(c, fits[id(c)]) for c in order[:top]]

    chosen = [order[0]]
    current = fits[id(order[0])]
    steps: list[dict] = []
    for _ in range(max_phases - 1):
        pool = [c for c in cands if c not in chosen]
        nxt = _next_phase(model, current, pool, fwhm, shortlist, coarse)
        if nxt is None:
            break
        c, r = nxt
        w = weight_fractions(
            _with_absolute(r, [*chosen, c], lam), [ch.phase.structure for ch in (*chosen, c)]
        )
        gain = (current.rwp - r.rwp) / max(current.rwp, 1e-12)
        accepted = gain >= MIN_RWP_GAIN and (w[-1] >= MIN_WEIGHT_FRACTION or gain >= DOMINANT_GAIN)
        steps.append({"action": "add", "phase": c.phase.name, "prototype": c.phase.prototype,
                      "rwp_before": current.rwp, "rwp_after": r.rwp, "gain": gain,
                      "weight_fraction": float(w[-1]), "accepted": bool(accepted)})  # fmt: skip
        if not accepted:
            break
        chosen.append(c)
        current = r
    if len(chosen) > 1:
        chosen, current = _revisit(model, current, chosen, cands, fwhm, shortlist, coarse, steps)

    final, structures = _final_fit(model, current, chosen, lam, d_min, d_max)
    chosen, final, structures = _species(model, current, chosen, cands, final, structures,
                                         (lam, d_min, d_max), steps)  # fmt: skip
    fractions = weight_fractions(final, structures)
    found = []
    for i, c in enumerate(chosen):
        m = _match(c, final, i)
        m.weight_fraction = float(fractions[i])
        m.rwp = final.rwp
        found.append(m)
    found.sort(key=lambda m: -m.weight_fraction)
    refinement = None
    t_refine = time.perf_counter()
    if refine:
        from matforge.xrd.refine import refine_fit

        refinement = refine_fit(model, final, names=[c.phase.name for c in chosen])
    return SearchMatchResult(
        source=pat.source, elements=tuple(() if elements is None else _elements(elements)),
        phases=found, candidates=single, fit=final, n_candidates=len(cands),
        seconds=time.perf_counter() - t0, two_theta=x, observed=y, wavelength=lam,
        refinement=refinement, steps=steps, fit_names=[c.phase.name for c in chosen],
        warnings=notes, refine_seconds=time.perf_counter() - t_refine if refine else 0.0,
    )  # fmt: skip


def _prepared(pat, candidates, prior: dict, given, max_phases: int):
    """What a search works with: the whole-pattern model of ``pat`` (rebinned to its peak
    width), that width, the candidates (:class:`_Candidate`, with the classifier's ``prior``
    per prototype and the ``given`` elements) and the coarse :class:`Prescreen` over them."""
    from matforge.xrd.identify import peak_fwhm
    from matforge.xrd.wholepattern import reflections

    x, y = pat.two_theta, np.clip(pat.intensity, 0, None)
    fwhm, _ = peak_fwhm(x, y)
    fwhm = float(fwhm) if np.isfinite(fwhm) else 0.1
    x, y = _rebinned(x, y, fwhm)
    lam = pat.wavelength
    model = WholePatternModel(x, y, lam, jacobian_fwhm=JACOBIAN_FWHM)
    d_min, d_max = _d_range(x, lam)
    refls = reflections([c.structure for c in candidates], lam, d_min, d_max, absolute=False)
    cands = [
        _Candidate(ph, _lattice_model(ph), _strongest(r, SCREEN_REFLECTIONS), _lattice_model(ph).start(),
                   prior=prior.get(ph.prototype, 0.0) if ph.prototype else 0.0,
                   missing=_missing(ph, given, max_phases),
                   n_refl=_complexity(len(r), max_phases), index=i)
        for i, (ph, r) in enumerate(zip(candidates, refls, strict=True))
    ]  # fmt: skip
    coarse = Prescreen(x, lam, [c.lattice for c in cands], [c.refl for c in cands], **COARSE)
    return model, fwhm, cands, coarse


def _strongest(refl: Reflections, n: int) -> Reflections:
    """The ``n`` most intense families of ``refl`` (all of them when there are fewer)."""
    if len(refl) <= n:
        return refl
    keep = np.sort(np.argsort(-refl.intensity)[:n])
    return Reflections(refl.hkl[keep], refl.intensity[keep], refl.multiplicity[keep],
                       refl.absolute, refl.hexagonal)  # fmt: skip


def _elements(spec) -> tuple[str, ...]:
    from matforge.xrd.phases import parse_elements

    return parse_elements(spec)


def _screen(x, y, lam, cands: list[_Candidate], shortlist: int, coarse: Prescreen):
    """The prescreen's best ``shortlist`` candidates (their ``start`` and ``prescreen`` set),
    plus candidates the classifier gives ≥ 5 % (at most 4 more). ``coarse``: the first,
    coarse pass's :class:`Prescreen` over all the search's candidates."""
    if not cands:
        return []
    lats = [c.lattice for c in cands]
    refl = [c.refl for c in cands]
    s1, st1 = coarse.scores(y, [c.index for c in cands])
    keep = np.argsort(-s1)[: 3 * shortlist]
    s2, st2 = prescreen(
        x, y, lam, [lats[i] for i in keep], [refl[i] for i in keep],
        starts=[st1[i] for i in keep], sigma_u=0.003, ratio_range=0.015, ratio_step=0.005,
    )  # fmt: skip
    for j, i in enumerate(keep):
        cands[i].start, cands[i].prescreen = st2[j], float(s2[j])
    order = [keep[j] for j in np.argsort(-s2)]
    out = [cands[i] for i in order[:shortlist]]
    likely = sorted((c for c in cands if c.prior >= 0.05 and c not in out), key=lambda c: -c.prior)
    for c in likely[:4]:
        if c.prescreen == 0.0:  # not among the kept: a start of its own
            s, st = prescreen(x, y, lam, [c.lattice], [c.refl], sigma_u=0.003,
                              ratio_range=0.03, ratio_step=0.005)  # fmt: skip
            c.start, c.prescreen = st[0], float(s[0])
        out.append(c)
    return out


def _match(c: _Candidate, fit: FitResult, index: int = -1) -> PhaseMatch:
    ph = fit.phases[index]
    lat = c.lattice
    return PhaseMatch(
        phase=c.phase, rwp=fit.rwp, score=_rank_key(c, fit),
        classifier_probability=c.prior, lattice=ph.cell(),
        reference_lattice=(lat.abc0.copy(), lat.angles0.copy()), prescreen=c.prescreen, fit=fit,
    )  # fmt: skip


def _next_phase(model, current: FitResult, pool: list[_Candidate], fwhm, shortlist, coarse):
    """The candidate that best explains what ``current`` leaves, fitted together with it."""
    resid = np.clip(model.y - current.calc, 0, None)
    ranked = _screen(model.x, resid, model.wavelength, pool, shortlist, coarse)
    if not ranked:
        return None
    fixed = current.phases
    fits = [(c, _fit_new_phase(model, fixed, current.zero, current.kalpha2_ratio, c, fwhm,
                               thorough=False)) for c in ranked]  # fmt: skip
    fits.sort(key=lambda cr: cr[1].rwp)
    best = []
    for c, r in fits[:2]:
        r = model.fit(r.phases, r.zero, r.kalpha2_ratio, max_nfev=15)
        if not any(_broad(ph, model.x, fwhm) for ph in r.phases):
            best.append((c, r))
    return min(best, key=lambda cr: cr[1].rwp) if best else None


def _broad(ph: PhaseParams, x: np.ndarray, fwhm: float) -> bool:
    """Whether a fitted phase's peaks are a hump rather than reflections: wider, mid-scan,
    than :data:`BROAD_RATIO` times the pattern's peak width ``fwhm``, or with a width
    parameter at its bound (:data:`MAX_WIDTH`). Such a phase fits what the background
    leaves (an amorphous hump, say) and, beside a new phase, a true phase can turn into one
    while the new phase takes its peaks: a test pattern's 84-atom cell with 4°-wide peaks
    took 60 wt % of a two-phase mixture."""
    mid = float(ph.fwhm_at(math.radians(float(np.median(x)) / 2)))
    return mid > BROAD_RATIO * fwhm or max(ph.fwhm_u, ph.fwhm_y) >= 0.98 * MAX_WIDTH


def _revisit(model, current: FitResult, chosen, cands, fwhm, shortlist, coarse, steps: list):
    """Each chosen phase in turn taken out and searched for again, among all candidates, on
    what the others (refitted without it) leave; the replacement is kept when it lowers Rwp
    by :data:`REVISIT_MARGIN` of its value or more. The greedy search picks its first phase
    on the whole pattern, where a phase that fits some peaks of every component can win;
    beside the others its place shows.

    Then a phase whose removal raises Rwp by less than :data:`REVISIT_MARGIN` of the Rwp
    without it (later phases can make an earlier one redundant) is dropped. Returns the
    phases and fit."""
    # the last phase was searched for beside exactly the others already
    for old in chosen[:-1]:
        if old not in chosen:
            continue
        i = chosen.index(old)
        rest = [c for c in chosen if c is not old]
        base = _without(model, current, i)
        nxt = _next_phase(model, base, [c for c in cands if c not in rest], fwhm,
                          max(1, shortlist // 2), coarse)  # fmt: skip
        if nxt is None or nxt[0] is old or nxt[1].rwp > (1 - REVISIT_MARGIN) * current.rwp:
            continue
        c, r = nxt
        steps.append({"action": "replace", "phase": c.phase.name,
                      "prototype": c.phase.prototype, "replaces": old.phase.name,
                      "rwp_before": current.rwp, "rwp_after": r.rwp,
                      "gain": (current.rwp - r.rwp) / max(current.rwp, 1e-12),
                      "accepted": True})  # fmt: skip
        chosen, current = [*rest, c], r
    while len(chosen) > 1:
        without = [_without(model, current, i) for i in range(len(chosen))]
        gains = [(w.rwp - current.rwp) / max(w.rwp, 1e-12) for w in without]
        i = int(np.argmin(gains))
        if gains[i] >= REVISIT_MARGIN:
            break
        steps.append({"action": "drop", "phase": chosen[i].phase.name,
                      "prototype": chosen[i].phase.prototype, "rwp_before": current.rwp,
                      "rwp_after": without[i].rwp, "gain": gains[i],
                      "accepted": True})  # fmt: skip
        chosen, current = [c for k, c in enumerate(chosen) if k != i], without[i]
    return chosen, current


def _species(model, current: FitResult, chosen, cands, final: FitResult, structures, ranges,
             steps: list):  # fmt: skip
    """The chosen phases' species settled among isostructural candidates (the same prototype
    with other elements on its sites): peak positions cannot tell them apart, and the search's
    short fits leave their Rwp a near-tie (a hexagonal one-atom cell as Li or as Te: 0.0336
    against 0.0337 beside Li2Te), which decides the weight fractions. Each such twin is put
    on the phase's fitted cell and scored with the scales alone (the others' fitted profiles
    kept); the best one that beats the chosen species there gets the final fit in its place
    and is kept if that fit's Rwp is lower (the same number of parameters: no margin). In a
    single-phase search a twin lacking more of the given elements is not tried. ``ranges``:
    (wavelength, d_min, d_max) of the reflections."""
    lam, d_min, d_max = ranges
    for i in range(len(chosen)):
        old = chosen[i]
        twins = [c for c in cands if c.phase.prototype == old.phase.prototype
                 and c.missing <= old.missing and c is not old and c not in chosen]  # fmt: skip
        if not twins:
            continue
        cell = final.phases[i]
        on_cell = [_refined_structure(c.phase, cell) for c in (old, *twins)]
        base, *scores = [_scales_only(model, final, i, ph) for ph in
                         _phases_on(on_cell, [cell] * len(on_cell), lam, d_min, d_max)]  # fmt: skip
        best, t = min(zip(scores, twins, strict=True), key=lambda st: st[0])
        if best >= base:
            continue
        trial = [*chosen[:i], t, *chosen[i + 1 :]]
        fit, structs = _final_fit(model, current, trial, lam, d_min, d_max)
        if fit.rwp >= final.rwp:
            continue
        steps.append({"action": "species", "phase": t.phase.name, "prototype": t.phase.prototype,
                      "replaces": old.phase.name, "rwp_before": final.rwp, "rwp_after": fit.rwp,
                      "gain": (final.rwp - fit.rwp) / max(final.rwp, 1e-12),
                      "accepted": True})  # fmt: skip
        chosen, final, structures = trial, fit, structs
    return chosen, final, structures


def _scales_only(model, fit: FitResult, i: int, phase: PhaseParams) -> float:
    """Rwp of ``fit`` with ``phase`` in place of its phase ``i``, every lattice and profile
    kept and only scales and background solved again."""
    phases = [*fit.phases[:i], phase, *fit.phases[i + 1 :]]
    return model.fit(phases, fit.zero, fit.kalpha2_ratio, free_lattice=False, free_profile=False,
                     free_zero=False, free_kalpha2=False).rwp  # fmt: skip


def _without(model, fit: FitResult, i: int) -> FitResult:
    """``fit`` without its phase ``i``: the others' scales and the background solved again,
    their lattices and profiles kept."""
    phases = [ph for k, ph in enumerate(fit.phases) if k != i]
    return model.fit(phases, fit.zero, fit.kalpha2_ratio, free_lattice=False, free_profile=False,
                     free_zero=False, free_kalpha2=False)  # fmt: skip


def _with_absolute(fit: FitResult, chosen: list[_Candidate], lam: float) -> FitResult:
    """``fit`` with each phase's :attr:`Reflections.absolute` computed (for weight fractions)."""
    from matforge.xrd.wholepattern import absolute_factor

    for ph, c in zip(fit.phases, chosen, strict=True):
        if ph.reflections.absolute == 1.0:
            ph.reflections.absolute = absolute_factor(c.phase.structure, ph.reflections, lam)
    return fit


def _final_fit(model, current: FitResult, chosen, lam, d_min, d_max):
    """The chosen phases re-simulated at their fitted lattices (intensities and absolute
    scales of the refined cells; at most :data:`FINAL_REFLECTIONS` families each, the
    strongest) and fitted once more together."""
    structures = [
        _refined_structure(c.phase, ph) for c, ph in zip(chosen, current.phases, strict=True)
    ]
    phases = _phases_on(structures, current.phases, lam, d_min, d_max)
    final = model.fit(phases, current.zero, current.kalpha2_ratio, lattice_rel=0.01,
                      angle_deg=1.0, max_nfev=40)  # fmt: skip
    return final, structures


def _phases_on(structures, like: list[PhaseParams], lam, d_min, d_max) -> list[PhaseParams]:
    """Fit parameters of ``structures`` (refined cells), started at their own lattices with
    the crystal system and widths of the matching ``like`` phase, their reflections (at most
    :data:`FINAL_REFLECTIONS` families each, the strongest) simulated in one call."""
    from matforge.xrd.wholepattern import reflections

    refls = [_strongest(r, FINAL_REFLECTIONS) for r in reflections(structures, lam, d_min, d_max)]
    phases = []
    for s, r, ph in zip(structures, refls, like, strict=True):
        lat = LatticeModel(s.lattice.abc, s.lattice.angles, ph.lattice.crystal_system)
        phases.append(PhaseParams(r, lat, lat.start(), ph.fwhm_u, ph.fwhm_y, ph.eta))
    return phases


# ---------------------------------------------------------------------------------------
# many patterns
# ---------------------------------------------------------------------------------------

#: what a worker of :func:`search_match_files` holds: candidates, classifier and settings
#: (set once per process by :func:`_init_worker`, so the candidates cross the process
#: boundary once, not once per pattern)
_WORKER: dict = {}


def _init_worker(candidates, model, use_classifier: bool, settings: dict, threads: int | None):
    clf = None
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    if use_classifier:
        from matforge.xrd.cnn import XRDClassifier

        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        clf = XRDClassifier.load(model)
    _WORKER.update(candidates=candidates, classifier=clf, settings=settings)


def _match_file(path: str):
    """Search-match of one file with the worker's state; a refused file gives its error."""
    from matforge.errors import MatforgeError
    from matforge.xrd.io import read_pattern

    st = _WORKER["settings"]
    try:
        pat = read_pattern(path, wavelength=st["wavelength"], axis=st["axis"])
        return search_match(pat, st["elements"], candidates=_WORKER["candidates"],
                            classifier=_WORKER["classifier"], max_phases=st["max_phases"],
                            refine=st["refine"], top=st["top"])  # fmt: skip
    except MatforgeError as exc:
        return exc


def search_match_files(
    files,
    elements=None,
    *,
    refs=None,
    max_phases: int = 1,
    refine: bool = False,
    model=None,
    use_classifier: bool = True,
    wavelength: float | None = None,
    axis: str | None = None,
    top: int = 5,
    jobs: int = 1,
    on_done=None,
) -> list:
    """Search-match of many pattern files against one set of candidates.

    The candidates (``elements``, ``refs``: see :func:`search_match`) are built once; a bad
    reference file or element fails the whole call, before any pattern is read. With
    ``jobs`` > 1 the files are shared among that many processes (single-threaded each).

    Args:
        files: pattern files.
        model: classifier weights (None: the shipped ones); ``use_classifier=False`` ranks by
            Rwp alone.
        wavelength, axis: for files that do not state them (:func:`~matforge.xrd.io.read_pattern`).
        on_done: called with no argument after each file (a progress bar).

    Returns:
        One item per file, in order: its :class:`SearchMatchResult`, or the
        :class:`~matforge.errors.MatforgeError` that refused the file.
    """

    if not 1 <= max_phases <= MAX_PHASES:
        raise ValueError(f"max_phases must be 1–{MAX_PHASES}, got {max_phases!r}")
    candidates = _candidate_phases(elements, refs)
    settings = {"elements": elements, "max_phases": max_phases, "refine": refine, "top": top,
                "wavelength": wavelength, "axis": axis}  # fmt: skip
    files = [str(f) for f in files]
    out = []
    if jobs <= 1 or len(files) <= 1:
        _init_worker(candidates, model, use_classifier, settings, None)
        for f in files:
            out.append(_match_file(f))
            if on_done is not None:
                on_done()
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked copy of a process that has started torch's or BLAS's threads
    # can hang
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(files)), mp_context=ctx, initializer=_init_worker,
                             initargs=(candidates, model, use_classifier, settings, 1)) as ex:  # fmt: skip
        for result in ex.map(_match_file, files):
            out.append(result)
            if on_done is not None:
                on_done()
    return out
