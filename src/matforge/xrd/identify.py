"""Identify the crystal structure of a measured powder pattern.

:func:`identify` runs the trained classifier (:mod:`matforge.xrd.cnn`) on a pattern and
returns the most probable crystal systems, space groups and AFLOW prototypes with calibrated
probabilities; a head whose best probability is below the threshold is "uncertain" (the
classifier abstains). :func:`match_prototype` simulates a candidate prototype and fits its
lattice scale to the measured peaks, and :func:`overlay_figure` draws both (plotly).

One coherent answer (:func:`coherent_proba`): the pattern's peaks are indexed
(:mod:`matforge.xrd.indexing`); a convincing cell settles the lattice family and weighs the
space groups by the extinction classes its reflections allow, the network ranks the groups
inside; the crystal-system probabilities are always the sums of the space-group
probabilities, so the two heads cannot contradict each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from matforge.xrd.indexing import IndexingResult

UNCERTAIN = "uncertain"
#: the classifier's heads, with the words a person reads for each
HEADS = {"crystal_system": "crystal system", "spacegroup": "space group", "prototype": "prototype"}


@dataclass(frozen=True)
class Candidate:
    """One class with its calibrated probability (0–1)."""

    name: str
    probability: float


@dataclass
class Identification:
    """What the classifier says about one pattern.

    Attributes:
        candidates: per head (``crystal_system``, ``spacegroup``, ``prototype``), the top
            classes, most probable first.
        threshold: probability below which a head abstains.
        source: where the pattern came from.
        prototype_info: per prototype label, ``{"formula", "mineral", ...}`` of the dataset entry.
    """

    candidates: dict[str, list[Candidate]]
    threshold: float
    source: str = ""
    prototype_info: dict = field(default_factory=dict)
    #: what was assumed about the pattern, and what limits the answer (:func:`check_pattern`)
    warnings: list[str] = field(default_factory=list)
    #: the pattern's indexing (:class:`~matforge.xrd.indexing.IndexingResult`), None when
    #: identification ran without it
    indexing: IndexingResult | None = None

    def is_uncertain(self, head: str) -> bool:
        """True when the best class of ``head`` has a probability below the threshold."""
        c = self.candidates[head]
        return not c or c[0].probability < self.threshold

    def best(self, head: str) -> str:
        """The most probable class of ``head``, or ``"uncertain"`` below the threshold."""
        return UNCERTAIN if self.is_uncertain(head) else self.candidates[head][0].name

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "threshold": self.threshold,
            "warnings": list(self.warnings),
            **{f"best_{h}": self.best(h) for h in self.candidates},
            "candidates": {
                h: [{"name": c.name, "probability": c.probability} for c in cs]
                for h, cs in self.candidates.items()
            },
            "indexing": None if self.indexing is None else self.indexing.to_dict(),
        }

    def summary_row(self) -> dict:
        """One line of a many-pattern summary: per head its best class (or "uncertain") and
        the best probability (``<head>_probability``, 0–1), and the warnings joined by " | "."""
        row: dict = {}
        for head, cands in self.candidates.items():
            row[head] = self.best(head)
            row[f"{head}_probability"] = cands[0].probability if cands else None
        if self.indexing is not None:
            best = self.indexing.best
            row["indexed_system"] = best.system if best is not None else ""
            row["indexed_cell"] = (
                " ".join(f"{v:.4f}" for v in best.cell[:3]) if best is not None else ""
            )
            row["m20"] = round(best.m20, 1) if best is not None else None
        row["warnings"] = " | ".join(self.warnings)
        return row

    def to_frame(self):
        """The candidates as a tidy pandas DataFrame, one row per (head, rank).

        Columns: ``head``, ``rank`` (1 = most probable), ``name``, ``probability`` (0–1),
        ``uncertain`` (the probability is below the threshold; at rank 1 the head abstains),
        and, for prototypes, ``formula`` and ``mineral`` of the example compound (else None).
        """
        import pandas as pd

        rows = [
            (head, rank, c.name, c.probability, c.probability < self.threshold,
             self.prototype_info.get(c.name, {}).get("formula") if head == "prototype" else None,
             self.prototype_info.get(c.name, {}).get("mineral") if head == "prototype" else None)
            for head, cands in self.candidates.items()
            for rank, c in enumerate(cands, 1)
        ]  # fmt: skip
        columns = ["head", "rank", "name", "probability", "uncertain", "formula", "mineral"]
        return pd.DataFrame(rows, columns=columns)

    def plot(self):
        """A plotly figure: per head, a bar of each top candidate's probability (most probable
        on top) and the threshold as a dashed line; bars below the threshold are grey. One
        trace per head. Show it with ``.show()``, save it with ``.write_html(path)``."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        heads = list(self.candidates)
        titles = [f"{HEADS.get(h, h)}: {self.best(h)}" for h in heads]
        fig = make_subplots(rows=len(heads), cols=1, subplot_titles=titles, vertical_spacing=0.12)
        for row, head in enumerate(heads, 1):
            cands = self.candidates[head]
            names = [self.label(head, c.name) for c in cands]
            probs = [c.probability for c in cands]
            colours = ["#1f77b4" if p >= self.threshold else "#b0b0b0" for p in probs]
            bars = go.Bar(
                x=probs,
                y=names,
                orientation="h",
                name=HEADS.get(head, head),
                marker_color=colours,
                hovertemplate="%{y}: %{x:.3f}<extra></extra>",
            )
            fig.add_trace(bars, row=row, col=1)
            fig.add_vline(x=self.threshold, line_dash="dash", line_color="#d62728", row=row, col=1)
        fig.update_xaxes(range=[0, 1])
        fig.update_xaxes(title_text="probability", row=len(heads), col=1)
        fig.update_yaxes(autorange="reversed")
        title = Path(self.source).name if self.source else "identification"
        fig.update_layout(
            title=f"{title}<br><sup>threshold {self.threshold:.2f} (dashed): below it a head "
            "answers 'uncertain'</sup>",
            template="plotly_white",
            showlegend=False,
            height=220 * len(heads) + 80,
        )
        return fig

    def label(self, head: str, name: str) -> str:
        """A candidate's name, with the example compound for a prototype."""
        info = self.prototype_info.get(name, {}) if head == "prototype" else {}
        extra = " ".join(str(v) for v in (info.get("formula"), info.get("mineral")) if v)
        return f"{name} ({extra})" if extra else name

    def _repr_html_(self) -> str:
        from matforge.notebook import identification_html

        return identification_html(self)


def identifications_frame(results) -> pd.DataFrame:
    """A summary of many identifications as a pandas DataFrame: one row per pattern with its
    ``source``, then :meth:`Identification.summary_row` (best class and probability per head,
    warnings)."""
    import pandas as pd

    return pd.DataFrame([{"source": r.source, **r.summary_row()} for r in results])


def identify_files(files, model, *, top: int = 5, threshold: float = 0.5,
                   wavelength: float | None = None, axis: str | None = None,
                   on_done=None) -> pd.DataFrame:  # fmt: skip
    """Identify many pattern files: one row per file (``file``, then
    :meth:`Identification.summary_row`, rounded to 4 decimals), and an ``error`` (why the file
    could not be read or identified; empty when it was) and ``warnings`` column (``" | "``
    between notes). ``on_done()`` is called after each file (a progress bar)."""
    import pandas as pd

    from matforge.errors import MatforgeError
    from matforge.xrd.io import read_pattern

    rows = []
    ax = None if axis is None else axis.lower()
    for f in files:
        row: dict = {"file": str(f)}
        try:
            pat = read_pattern(f, wavelength=wavelength, axis=ax)
            result = identify(pat, model=model, top=top, threshold=threshold)
        except (MatforgeError, ValueError) as exc:  # ValueError: a pattern Pattern refuses
            rows.append({**row, "error": str(exc)})
        else:
            rows.append({**row, **result.summary_row()})
        if on_done is not None:
            on_done()
    table = pd.DataFrame(rows).round(4)
    for col in ("error", "warnings"):
        if col not in table:
            table[col] = ""
    return table.fillna({"error": "", "warnings": ""})


#: fewest points of a pattern the classifier is given (a scan, not a peak list)
MIN_POINTS = 100
#: least overlap (degrees 2θ, Cu Kα1) of a pattern with the classifier's grid
MIN_OVERLAP = 20.0
#: broadest plausible peaks: median FWHM in degrees 2θ (Cu Kα1 equivalent); see check_pattern
MAX_FWHM = 6.0
#: narrowest plausible peaks: median FWHM in steps of the scan (a single point measures 1)
MIN_FWHM_STEPS = 1.5
#: Gaussian σ (degrees 2θ) of the smoothing under which :func:`peak_fwhm` finds the peaks
PEAK_FINDING_SMOOTHING = 0.25


def peak_fwhm(two_theta, intensity, *, smoothing: float = 0.0, top: int = 10):
    """Typical peak width of a pattern: (median FWHM in degrees 2θ, the same in steps).

    The peaks are found on the pattern smoothed by a Gaussian of σ =
    :data:`PEAK_FINDING_SMOOTHING`, where counting noise makes no peaks: the ``top`` most
    prominent ones, at least 10 % of the intensity range. Each is then measured on the pattern
    itself (or smoothed by ``smoothing``, σ in degrees 2θ, against noise on a broad hump): at
    its highest point within its smoothed half width, across half its height above the base
    of its smoothed prominence (:func:`scipy.signal.peak_widths`), so a background under a
    peak does not widen it and no background model is needed. The median is weighted by that
    height. Returns (nan, nan) when no peak stands out.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks, peak_widths

    x, y = np.asarray(two_theta, dtype=float), np.asarray(intensity, dtype=float)
    if len(x) < 3:
        return math.nan, math.nan
    step = float(np.median(np.diff(x)))
    found = gaussian_filter1d(y, PEAK_FINDING_SMOOTHING / step, mode="nearest")
    idx, props = find_peaks(found, prominence=0.1 * float(np.ptp(found)))
    if not len(idx):
        return math.nan, math.nan
    strongest = np.argsort(-props["prominences"])[:top]
    left_base, right_base = props["left_bases"][strongest], props["right_bases"][strongest]
    _, _, lo, hi = peak_widths(found, idx[strongest], rel_height=0.5)
    if smoothing > 0:
        y = gaussian_filter1d(y, smoothing / step, mode="nearest")
    # the highest point within each half width: a narrow peak on a hump is measured, not the hump
    top_at = np.array([int(a) + int(np.argmax(y[int(a) : int(b) + 2]))
                       for a, b in zip(lo, hi, strict=True)])  # fmt: skip
    height = y[top_at] - np.maximum(found[left_base], found[right_base])
    keep = height > 0
    steps, _, left, right = peak_widths(
        y, top_at[keep], rel_height=0.5, prominence_data=(height[keep], left_base[keep],
                                                          right_base[keep]),
    )  # fmt: skip
    if not len(steps):
        return math.nan, math.nan
    points = np.arange(len(x))
    degrees = np.interp(right, points, x) - np.interp(left, points, x)
    weight = height[keep]

    def weighted_median(v):
        order = np.argsort(v)
        cum = np.cumsum(weight[order])
        return float(v[order][np.searchsorted(cum, cum[-1] / 2)])

    return weighted_median(degrees), weighted_median(steps)


def check_pattern(p, grid: tuple[float, float] = (10.0, 80.0)) -> list[str]:
    """Refuse a pattern the classifier cannot read, and say what was assumed about one it can.

    Raises :class:`~matforge.errors.PatternFileError` for too few points, non-finite
    intensities, no signal (all intensities equal or none above zero), or less than
    :data:`MIN_OVERLAP` degrees in common with the classifier's 2θ ``grid`` (in Cu Kα1).
    Returns warnings: an assumed wavelength or axis, a first column that looks like Q read as
    2θ, a range that covers only part of the grid, negative intensities (background
    subtracted: they are clipped), a coarse step, implausible peak widths.

    Peak widths (:func:`peak_fwhm`) warn in two cases, set by simulated patterns with the
    training augmentations (:mod:`matforge.xrd.augment`: 2 × 480 per case, random prototypes):

    * median FWHM over :data:`MAX_FWHM` (Cu Kα1 equivalent, measured under 0.05° smoothing):
      an amorphous hump, or an axis in other units. Scherrer broadening of 5 nm crystallites,
      the smallest the classifier was trained on, gives peaks of 1.2–2.1°, but overlapping
      peaks measure as one: those patterns measured 1.9° (median) and at most 5.95°, noise
      of 100 counts or not. Peaks of 8° FWHM measured over 6° in 99 % of the patterns (98 %
      at 100 counts); 3 nm crystallites, smaller than trained on, in 5 %.
    * median FWHM under :data:`MIN_FWHM_STEPS` steps of the scan: single-point spikes, as in a
      list of peak positions drawn as sticks (1 step), or a scan too coarse for its peaks.
      The simulated patterns measured 1.9 steps or more down to 100 counts in the strongest
      peak (counting noise narrows the peaks' tops; at 30 counts 2 % warn), the bundled
      example 12.
    """
    from matforge.errors import PatternFileError
    from matforge.xrd.radiation import CU_KA1

    name = p.source or "the pattern"
    x, y = p.two_theta, p.intensity
    if len(x) < MIN_POINTS:
        raise PatternFileError(
            f"{name}: {len(x)} points; identification needs a measured scan of at least "
            f"{MIN_POINTS} points (a list of peak positions is not a pattern)"
        )
    if not np.isfinite(y).all():
        raise PatternFileError(f"{name}: intensities must be finite numbers (found NaN or inf)")
    if not (y > 0).any() or float(np.ptp(y)) == 0:
        raise PatternFileError(f"{name}: no signal: no intensity is above zero or all are equal")
    warnings = []
    meta = p.meta or {}
    if meta.get("wavelength_assumed"):
        warnings.append(
            f"the file states no wavelength: Cu Kα1 ({CU_KA1} Å) assumed; give the right one "
            "(e.g. --wavelength MoKa) if it was measured with another anode"
        )
    if meta.get("axis_from") == "assumed":
        if x.max() < 15.0:
            warnings.append(
                f"the first column has no name and ends at {x.max():.3g}: read as 2θ (degrees), "
                "but that looks like Q; give --axis q if it is Q (Å⁻¹)"
            )
        else:
            warnings.append("the first column has no name: read as 2θ in degrees")
    # the pattern's range in Cu Kα1 2θ, where the classifier's grid lives
    at_cu = p.to_wavelength(CU_KA1)
    cu = at_cu.two_theta
    lo, hi = (float(cu[0]), float(cu[-1])) if len(cu) else (180.0, 180.0)
    overlap = min(hi, grid[1]) - max(lo, grid[0])
    if overlap < MIN_OVERLAP:
        raise PatternFileError(
            f"{name}: the scan covers {lo:.1f}–{hi:.1f}° 2θ (Cu Kα1 equivalent), which shares "
            f"{max(overlap, 0):.1f}° with the classifier's {grid[0]:g}–{grid[1]:g}°; at least "
            f"{MIN_OVERLAP:g}° are needed (is the wavelength or the axis right?)"
        )
    if lo > grid[0] + 1 or hi < grid[1] - 1:
        warnings.append(
            f"the scan covers {max(lo, grid[0]):.1f}–{min(hi, grid[1]):.1f}° of the classifier's "
            f"{grid[0]:g}–{grid[1]:g}° (Cu Kα1 equivalent); the rest counts as zero intensity, "
            "so peaks there cannot count"
        )
    if (y < 0).mean() > 0.01:
        warnings.append(f"{(y < 0).mean():.0%} of the intensities are negative (clipped to 0)")
    step = float(np.median(np.diff(x)))
    if step > 0.1:
        warnings.append(f"coarse step of {step:.2g}° 2θ: narrow peaks may be missed")
    return warnings + _width_warnings(p, at_cu)


def _width_warnings(p, at_cu) -> list[str]:
    """What :func:`check_pattern` says of implausible peak widths (``at_cu``: ``p`` at Cu Kα1)."""
    broad, _ = peak_fwhm(at_cu.two_theta, at_cu.intensity, smoothing=0.05)
    if broad > MAX_FWHM:
        return [
            f"the peaks are {broad:.2g}° 2θ wide (median FWHM, Cu Kα1 equivalent), broader than "
            f"crystallites of a few nm give (up to about {MAX_FWHM:g}°): an amorphous pattern, or "
            "an axis in other units? The classifier knows crystalline peaks only"
        ]
    degrees, steps = peak_fwhm(p.two_theta, p.intensity)
    if steps < MIN_FWHM_STEPS:
        return [
            f"the peaks are {degrees:.2g}° 2θ wide (median FWHM), {steps:.2g} steps of the scan: "
            "single-point spikes, as in a list of peak positions drawn as sticks, or a step too "
            "coarse for these peaks; the classifier expects measured peak profiles"
        ]
    return []


def _load_pattern(p, wavelength: float | None = None):
    from matforge.xrd.io import Pattern, read_pattern

    if isinstance(p, Pattern):
        return p
    return read_pattern(p, wavelength=wavelength)


def identify(
    patterns,
    *,
    model=None,
    top: int = 5,
    threshold: float = 0.5,
    wavelength: float | None = None,
    index: bool = True,
    jobs: int = 1,
) -> Identification | list[Identification]:
    """Crystal system, space group and prototype of measured powder patterns.

    Args:
        patterns: a :class:`~matforge.xrd.io.Pattern` or pattern file path, or a list of them.
            Any wavelength: patterns are converted to Cu Kα1 and resampled onto the model's
            2θ grid (10–80°); points outside the measured range count as zero intensity.
        model: an :class:`~matforge.xrd.cnn.XRDClassifier` or a path to weights; default
            the shipped model.
        top: how many candidates per head.
        threshold: calibrated probability (0–1) below which a head answers "uncertain".
        wavelength: wavelength in Å for files that do not state theirs (default Cu Kα1).
        index: find and index the peaks (:func:`index_identification_pattern`) and combine
            the cell with the network (:func:`coherent_proba`); False: the network alone.
        jobs: worker processes for the indexing of a list of patterns.

    Returns:
        One :class:`Identification`, or a list for a list input. Its crystal-system
        probabilities are the sums of its space-group probabilities (all of them, not only
        the ``top`` shown); ``.indexing`` holds the indexing result.
    """
    from matforge.xrd.cnn import XRDClassifier

    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top!r}")
    single = not isinstance(patterns, list | tuple)
    items = [patterns] if single else list(patterns)
    loaded = [_load_pattern(p, wavelength) for p in items]
    clf = model if isinstance(model, XRDClassifier) else XRDClassifier.load(model)
    lo, hi = clf.meta.get("grid", (10.0, 80.0))[:2]
    notes = [check_pattern(p, (float(lo), float(hi))) for p in loaded]
    indexings: list = [None] * len(loaded)
    if index:
        indexings = index_patterns(loaded, jobs=jobs)
        for i, r in enumerate(indexings):
            if isinstance(r, str):  # the peak search refused the scan
                notes[i].append(f"not indexed: {r}")
                indexings[i] = None
    proba = coherent_proba(clf.predict_proba(loaded), indexings, clf.classes)
    systems = _class_systems(clf.classes)
    info = clf.meta.get("prototypes", {})
    out = []
    for i, p in enumerate(loaded):
        cands = {}
        best_system = int(np.argmax(proba["crystal_system"][i]))
        for head, pr in proba.items():
            names = clf.classes[head]
            order = np.argsort(-pr[i], kind="stable")
            if head in systems:
                # the first candidate lies in the most probable crystal system: the heads
                # never contradict each other (a group of another system can still be the
                # single most probable one when a system's probability is spread thin)
                inside = np.flatnonzero(systems[head][order] == best_system)
                if len(inside):
                    j = inside[0]
                    order = np.r_[order[j], order[:j], order[j + 1 :]]
            cands[head] = [Candidate(names[j], float(pr[i, j])) for j in order[:top]]
        used = {c.name: info.get(c.name, {}) for c in cands.get("prototype", [])}
        out.append(Identification(cands, threshold, source=p.source, prototype_info=used,
                                  warnings=notes[i], indexing=indexings[i]))  # fmt: skip
    return out[0] if single else out


def index_identification_pattern(pattern):
    """Index one pattern for :func:`identify`: peaks (:func:`matforge.xrd.peaks.find_peaks`)
    and cell (:func:`matforge.xrd.indexing.index_peaks`, cubic to orthorhombic). Returns the
    :class:`~matforge.xrd.indexing.IndexingResult`, or the message of the error that kept
    the scan from being indexed."""
    from matforge.errors import MatforgeError
    from matforge.xrd.indexing import index_pattern

    try:
        return index_pattern(pattern)
    except MatforgeError as exc:
        return str(exc)


def index_patterns(patterns, jobs: int = 1) -> list:
    """:func:`index_identification_pattern` of each pattern, in ``jobs`` processes."""
    if jobs <= 1 or len(patterns) < 2:
        return [index_identification_pattern(p) for p in patterns]
    from concurrent.futures import ProcessPoolExecutor

    from matforge.xrd.indexing import warm_tables

    # built once here, inherited by forked workers (else every worker builds its own)
    warm_tables()
    workers = min(jobs, len(patterns))
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_blas_thread) as pool:
        return list(pool.map(index_identification_pattern, patterns,
                             chunksize=max(1, len(patterns) // (4 * jobs))))  # fmt: skip


def _one_blas_thread() -> None:
    """A worker's BLAS runs single-threaded: the workers are the parallelism, and the
    indexing's small least-squares problems only contend for the cores otherwise (600 set-A
    patterns, 2 workers on 2 cores: 20 patterns/s with the default BLAS threads, 42 with one)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


#: factor on a space group's probability for each indexed line its extinction class forbids
#: (a line can be an impurity's, or two lines can have merged: not zero)
FORBIDDEN_FACTOR = 0.05
#: factor for each allowed line, beyond the fewest of any consistent class, where no peak was
#: seen (weak lines go unseen: a mild preference for the class that explains the absences)
UNOBSERVED_FACTOR = 0.95
#: probability left to the space groups outside the lattice family of a convincing cell
OUTSIDE_FAMILY = 1e-3


def _spacegroup_numbers(names) -> np.ndarray:
    """Space-group number of each class name ("Fm-3m (225)" → 225)."""
    return np.array([int(str(n).rsplit("(", 1)[1].rstrip(")")) for n in names])


def _prototype_groups(names) -> np.ndarray:
    """Space-group number of each AFLOW prototype label (its third field), 0 if unreadable."""
    out = np.zeros(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        parts = str(n).split("_")
        if len(parts) > 2 and parts[2].isdigit():
            out[i] = int(parts[2])
    return out


def indexing_weights(result, numbers) -> np.ndarray | None:
    """Factor on each space group (``numbers``) from an indexing result: 1 for the groups of
    the most plausible extinction class of the cell's lattice family, less for classes that
    forbid indexed lines or predict unseen ones, 0 outside the family (where
    :func:`coherent_proba` leaves :data:`OUTSIDE_FAMILY` probability in all).
    None when no cell convinces (the network answers alone)."""
    from matforge.xrd.indexing import FAMILY_GROUPS

    if result is None or result.best is None:
        return None
    numbers = np.asarray(numbers)
    w = np.zeros(len(numbers))
    family = np.isin(numbers, list(FAMILY_GROUPS[result.best.system]))
    w[family] = FORBIDDEN_FACTOR  # groups of the family no class lists
    if result.classes:
        fewest = min((c.n_unobserved for c in result.classes if c.n_forbidden == 0),
                     default=min(c.n_unobserved for c in result.classes))  # fmt: skip
        for c in result.classes:
            f = FORBIDDEN_FACTOR**c.n_forbidden * UNOBSERVED_FACTOR ** max(
                0, c.n_unobserved - fewest
            )
            w[np.isin(numbers, c.space_groups) & family] = f
    return w


def _class_systems(classes: dict) -> dict[str, np.ndarray]:
    """Crystal-system index (:data:`matforge.xrd.augment.CRYSTAL_SYSTEMS`, in the model's
    ``crystal_system`` class order) of each space-group and prototype class (−1: unknown)."""
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, crystal_system_index

    names = list(classes.get("crystal_system", CRYSTAL_SYSTEMS))
    to_model = np.array([names.index(c) if c in names else -1 for c in CRYSTAL_SYSTEMS])
    out = {"spacegroup": to_model[crystal_system_index(_spacegroup_numbers(classes["spacegroup"]))]}
    if "prototype" in classes:
        groups = _prototype_groups(classes["prototype"])
        cs = np.full(len(groups), -1)
        known = groups > 0
        cs[known] = to_model[crystal_system_index(groups[known])]
        out["prototype"] = cs
    return out


def coherent_proba(proba: dict, indexings, classes: dict) -> dict[str, np.ndarray]:
    """One coherent answer from the network's probabilities and the patterns' indexing.

    For each pattern with a convincing cell, the cell's lattice family gets probability
    1 − :data:`OUTSIDE_FAMILY`, shared among its space groups as the network's probabilities
    times :func:`indexing_weights` (where the network puts no weight on the family, the
    weights alone decide); the other groups keep their network proportions. The prototype probabilities follow their space
    groups' change. The crystal-system probabilities are then the sums of the space-group
    probabilities of each system, for every pattern, indexed or not.

    Args:
        proba: per head, (n, n_classes) probabilities (``spacegroup`` required).
        indexings: n indexing results (or None).
        classes: per head, the class names (the model's ``classes``).
    """
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, crystal_system_index

    sg = np.asarray(proba["spacegroup"], dtype=float).copy()
    numbers = _spacegroup_numbers(classes["spacegroup"])
    out = {h: np.asarray(v, dtype=float).copy() for h, v in proba.items()}
    proto_col = None
    if "prototype" in out:
        proto_groups = _prototype_groups(classes["prototype"])
        lookup = {int(n): j for j, n in enumerate(numbers)}
        proto_col = np.array([lookup.get(int(g), -1) for g in proto_groups])
    for i, result in enumerate(indexings):
        w = indexing_weights(result, numbers)
        if w is None:
            continue
        # the family gets 1 − OUTSIDE_FAMILY whatever the network thought of it; inside, the
        # network's probabilities times the extinction weights (the weights alone where the
        # network gave the family nothing)
        family = w > 0
        inside = np.where(family, sg[i] * w, 0.0)
        if inside.sum() <= 1e-12:
            inside = np.where(family, w, 0.0)
        outside = np.where(family, 0.0, sg[i])
        if outside.sum() <= 1e-12:
            outside = (~family).astype(float)
        new = (1 - OUTSIDE_FAMILY) * inside / inside.sum()
        if (~family).any():
            new = new + OUTSIDE_FAMILY * outside / outside.sum()
        if proto_col is not None:
            ratio = np.where(
                proto_col >= 0, new[proto_col] / np.maximum(sg[i][proto_col], 1e-12), 1.0
            )
            pr = out["prototype"][i] * ratio
            out["prototype"][i] = pr / pr.sum() if pr.sum() > 0 else out["prototype"][i]
        sg[i] = new
    out["spacegroup"] = sg
    member = crystal_system_index(numbers)
    names = list(classes.get("crystal_system", CRYSTAL_SYSTEMS))
    cs = np.zeros((len(sg), len(names)))
    for c, name in enumerate(CRYSTAL_SYSTEMS):
        if name in names:
            cs[:, names.index(name)] = sg[:, member == c].sum(axis=1)
    out["crystal_system"] = cs
    return out


# ---------------------------------------------------------------------------------------
# matching a prototype to the measured peaks
# ---------------------------------------------------------------------------------------


@dataclass
class PrototypeMatch:
    """A prototype simulated with the lattice scale that best fits a measured pattern.

    Attributes:
        label: AFLOW prototype label.
        formula: formula of the prototype's example compound.
        scale: factor applied to the lattice lengths (d-spacings), dimensionless.
        fwhm: peak width used, degrees 2θ.
        score: cosine similarity of measured and simulated patterns on the grid (0–1).
        two_theta, intensity: the simulated profile (degrees 2θ, max = 1).
        peaks_two_theta, peaks_intensity, peaks_hkl: the reflections (max intensity 1).
    """

    label: str
    formula: str
    scale: float
    fwhm: float
    score: float
    two_theta: np.ndarray
    intensity: np.ndarray
    peaks_two_theta: np.ndarray
    peaks_intensity: np.ndarray
    peaks_hkl: list[str]


def prototype_structure(label: str):
    """(structure, formula) of the bundled example compound of an AFLOW prototype label
    (its first entry in the ``aflow_prototypes`` dataset); the structure is a fresh copy."""
    from matforge.errors import MatforgeError

    labels, formulas, structures = _prototypes()
    rows = np.flatnonzero(labels == label)
    if not len(rows):
        raise MatforgeError(f"unknown AFLOW prototype label {label!r}")
    return structures[rows[0]].copy(), str(formulas[rows[0]])


@cache
def _prototypes():
    from matforge.datasets import load_dataset, load_structures

    df = load_dataset("aflow_prototypes")
    return (
        df["aflow_label"].to_numpy(),
        df["formula"].to_numpy(),
        load_structures("aflow_prototypes"),
    )


def match_prototype(pattern, label: str, grid=None, scales=None) -> PrototypeMatch:
    """Simulate prototype ``label`` and fit its lattice scale and peak width to ``pattern``.

    The prototype's example compound has its own lattice constants; scaling the lattice by
    s multiplies every d-spacing by s (shape kept). s is searched on ``scales`` (default
    0.75–1.33), then refined; the score is the cosine similarity of the background-removed
    measured pattern and the simulation on ``grid`` (default: the measured 2θ points within
    10–80°).
    """
    from matforge.xrd.augment import render
    from matforge.xrd.radiation import CU_KA1
    from matforge.xrd.simulate import PeakList, simulate

    pattern = _load_pattern(pattern)
    if abs(pattern.wavelength - CU_KA1) > 1e-6:
        pattern = pattern.to_wavelength(CU_KA1)
    if grid is None:
        lo = max(float(pattern.two_theta.min()), 5.0)
        hi = min(float(pattern.two_theta.max()), 120.0)
        grid = np.linspace(lo, hi, max(200, min(6000, int((hi - lo) / 0.02) + 1)))
    grid = np.asarray(grid, dtype=float)
    measured = _strip_background(pattern.resample(grid))
    structure, formula = prototype_structure(label)
    peaks = simulate(structure, wavelength=CU_KA1, two_theta_range=None)[0]
    scales = (
        np.exp(np.linspace(math.log(0.75), math.log(1.33), 241))
        if scales is None
        else np.asarray(scales)
    )

    def scored(ss, fwhm):
        lists = [
            PeakList(
                peaks.two_theta,
                peaks.intensity,
                peaks.d_spacings * s,
                CU_KA1,
                peaks.family_hkl,
                peaks.family_multiplicity,
                peaks.family_offsets,
            )  # fmt: skip
            for s in ss
        ]
        sim = render(lists, grid, fwhm=np.full(len(ss), fwhm), eta=np.full(len(ss), 0.5))
        return _cosine(measured, sim), sim

    coarse, _ = scored(scales, 0.3)  # broad peaks make the coarse search smooth
    s0 = scales[int(np.argmax(coarse))]
    fine_scales = s0 * np.linspace(0.99, 1.01, 81)
    best = (-1.0, s0, 0.1, None)
    for fwhm in (0.05, 0.1, 0.2, 0.4, 0.8):
        sc, sim = scored(fine_scales, fwhm)
        j = int(np.argmax(sc))
        if sc[j] > best[0]:
            best = (float(sc[j]), float(fine_scales[j]), fwhm, sim[j])
    score, s, fwhm, sim = best
    d = peaks.d_spacings * s
    ok = CU_KA1 / (2 * d) < 1
    tt = np.degrees(2 * np.arcsin(CU_KA1 / (2 * d[ok])))
    inside = (tt >= grid[0]) & (tt <= grid[-1])
    hkl = [
        " ".join(
            "(" + "".join(str(int(v)) for v in f["hkl"]) + ")" for f in fams
        )
        for fams, keep in zip(peaks.hkls, ok, strict=True) if keep
    ]  # fmt: skip
    inten = peaks.intensity[ok][inside]
    return PrototypeMatch(
        label=label, formula=formula, scale=s, fwhm=fwhm, score=score, two_theta=grid,
        intensity=sim, peaks_two_theta=tt[inside],
        peaks_intensity=inten / max(inten.max(), 1e-12) if len(inten) else inten,
        peaks_hkl=[h for h, k in zip(hkl, inside, strict=True) if k],
    )  # fmt: skip


#: prototype candidates the overlay is chosen among (the most probable first)
OVERLAY_CANDIDATES = 3


def overlay_fits(pattern, result: Identification, n: int = OVERLAY_CANDIDATES) -> list:
    """:func:`match_prototype` fits of the ``n`` most probable prototypes of ``result``, in
    its order; None for a label with no bundled example structure (no overlay for it)."""
    from matforge.errors import MatforgeError

    fits = []
    for c in result.candidates.get("prototype", [])[:n]:
        try:
            fits.append(match_prototype(pattern, c.name))
        except MatforgeError:
            fits.append(None)
    return fits


def best_overlay(pattern, result: Identification, n: int = OVERLAY_CANDIDATES) -> PrototypeMatch:
    """The prototype to draw under a measured pattern: of the ``n`` most probable, the one whose
    simulation fits the peaks best (highest :attr:`PrototypeMatch.score`)."""
    from matforge.errors import MatforgeError

    fits = [f for f in overlay_fits(pattern, result, n) if f is not None]
    if not fits:
        raise MatforgeError("no prototype candidate has an example structure to simulate")
    return max(fits, key=lambda m: m.score)


def _strip_background(y: np.ndarray, window: int = 151) -> np.ndarray:
    """Remove a slowly varying background: subtract a running minimum smoothed by a running
    mean (window in points), clip at 0, scale to a maximum of 1."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    y = np.asarray(y, dtype=float)
    base = uniform_filter1d(minimum_filter1d(y, window, mode="nearest"), window, mode="nearest")
    out = np.clip(y - base, 0, None)
    peak = out.max()
    return out / peak if peak > 0 else out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a)
    nb = np.linalg.norm(b, axis=-1)
    return (b @ a) / np.maximum(na * nb, 1e-12)


def overlay_figure(
    pattern, identification: Identification | None = None, match: PrototypeMatch | None = None
):
    """A plotly figure: the measured pattern (scaled to 1) and, below it, the best-matching
    prototype's simulated profile with its reflections (hover shows hkl)."""
    import plotly.graph_objects as go

    pattern = _load_pattern(pattern)
    y = pattern.intensity - pattern.intensity.min()
    y = y / y.max() if y.max() > 0 else y
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=pattern.two_theta, y=y, mode="lines", name="measured",
                             line={"color": "#1f77b4", "width": 1.2}))  # fmt: skip
    title = Path(pattern.source).name if pattern.source else "pattern"
    if match is not None:
        fig.add_trace(go.Scatter(
            x=match.two_theta, y=-0.05 - match.intensity, mode="lines",
            name=f"{match.label} ({match.formula}), lattice ×{match.scale:.3f}",
            line={"color": "#d62728", "width": 1.2},
        ))  # fmt: skip
        xs, ys = [], []
        for t, i in zip(match.peaks_two_theta, match.peaks_intensity, strict=True):
            xs += [t, t, None]
            ys += [-0.05, -0.05 - float(i), None]
        fig.add_trace(go.Scatter(
            x=match.peaks_two_theta, y=np.full(len(match.peaks_two_theta), -0.05),
            mode="markers", marker={"symbol": "line-ns-open", "size": 8, "color": "#d62728"},
            name="reflections", text=match.peaks_hkl, hovertemplate="%{x:.3f}° %{text}<extra></extra>",
        ))  # fmt: skip
    if identification is not None:
        parts = []
        for head, nice in HEADS.items():
            c = identification.candidates[head][0]
            parts.append(f"{nice}: {identification.best(head)} ({c.probability:.0%})")
        title += "<br><sup>" + " · ".join(parts) + "</sup>"
    wl = getattr(pattern, "wavelength", None)
    fig.update_layout(
        title=title,
        xaxis_title=f"2θ (degrees{f', λ = {wl:.4f} Å' if wl else ''})",
        yaxis_title="intensity (scaled)",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def example_pattern(seed: int = 7):
    """A measured-like pattern of rock salt (NaCl, AFLOW ``AB_cF8_225_a_b``), Cu Kα1 + Kα2:
    2 % strain, 40 nm crystallites, mild texture, zero shift, background and counting noise,
    10–90° in 0.02° steps. The bundled ``example_pattern.xy`` is this pattern."""
    from matforge.xrd.augment import AugmentConfig, augment
    from matforge.xrd.io import Pattern
    from matforge.xrd.radiation import CU_KA1
    from matforge.xrd.training_data import symmetry_labels

    structure, _ = prototype_structure("AB_cF8_225_a_b")
    conv, _, orbits = symmetry_labels(structure)
    grid = np.round(np.arange(10.0, 90.0 + 1e-9, 0.02), 4)
    config = AugmentConfig.pristine()
    params = {
        "strain": np.array([[0.02, 0.02, 0.02]]), "size_nm": [40.0], "fwhm": [0.08],
        "eta": [0.6], "march_r": [0.85], "texture_hkl": np.array([[1.0, 0.0, 0.0]]),
        "zero_shift": [0.04], "kalpha2": [1.0], "background": [0.12], "counts": [4000.0],
    }  # fmt: skip
    x, _ = augment(
        [conv], grid, seed, config, crystal_systems=["cubic"], orbits=[orbits], params=params
    )
    counts = np.rint(x[0] * 4000.0)
    return Pattern(
        grid, counts, wavelength=CU_KA1, source="matforge example: NaCl rock salt (simulated)"
    )
