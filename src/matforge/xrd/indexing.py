"""Lattice indexing of a powder pattern: the cell whose reflections fall on the observed peaks.

A powder line at d-spacing d has Q = 1/d² = φ(hkl)·p, a form linear in the reciprocal-metric
parameters p of the cell: Q = A(h² + k² + l²) for a cubic cell, A(h² + k²) + Cl² tetragonal,
A(h² + hk + k²) + Cl² hexagonal, Ah² + Bk² + Cl² orthorhombic, Ah² + Bk² + Cl² + Dhl
monoclinic (unique axis b). Indexing finds p (and the hkl of every line) from the observed Q.

How established programs do it, and what is taken from each:

* **TREOR** (Werner 1985) assigns low Miller indices to a few *base lines* and solves the
  linear equations for p, then tests each trial cell against all lines. Here every pair (two
  parameters) or triple (three) of the first lines is solved for every assignment from a table
  of low-index φ — tens of thousands of trial cells in a few vectorised numpy operations.
* **ITO** (Visser 1969) finds the cell by *where many line combinations agree*; DICVOL
  (Boultif & Louër 2004) searches *exhaustively* by successive dichotomy. Here the trial cells
  vote: they are binned on a logarithmic grid (1 % wide, each bin counted with its neighbours),
  and the cells that many independent base-line sets agree on are refined. The true cell is
  found by every base set whose lines it indexes with low indices, a chance cell by few.
* **Zero-point error** (DICVOL04, N-TREOR) — 2θ_obs = 2θ_calc + z; z is estimated from the
  residuals of a trial cell (the shift most lines agree on, within ±0.3°) and refined with the
  cell by weighted least squares (Q is linear in p and, to first order, in z).
* **Figures of merit** — de Wolff's M(20) = Q₂₀ / (2 ε̄ N₂₀) (Q₂₀ of the 20th indexed line, ε̄
  the mean |Q_obs − Q_calc|, N₂₀ the distinct Q a primitive cell of the lattice predicts up to
  Q₂₀) and Smith & Snyder's F(N) = N / (|Δ2θ|‾ · N_poss). Cells are ranked by M weighted by
  the share of the peak intensity they index (impurity lines are weak, a sub-cell that leaves
  a strong line unindexed is wrong); the most symmetric convincing cell wins, because a cell of
  higher symmetry indexes the same lines with fewer calculated ones.
* **Extinction classes** — with the cell fixed, each space group of the lattice family
  (standard setting; every axis permutation for orthorhombic groups, both rhombohedral
  settings through the hexagonal index pairs) either allows a reflection at each indexed line
  or not; groups that forbid an observed line are inconsistent, the consistent ones are ranked
  by how few allowed lines they predict where none was seen (:func:`extinction_classes`).
  Groups are reported per powder class of :mod:`matforge.xrd.extinction`.

McMaille's (Le Bail 2004) whole-profile Monte Carlo is not used: a peak list is enough for the
systems searched here, and far faster. Triclinic cells are not searched; monoclinic cells only
from the first lines' low-index assignments (:data:`SYSTEMS`).

Angles are degrees 2θ, lengths Å, Q = 1/d² in Å⁻².
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from matforge.xrd.radiation import CU_KA1

__all__ = [
    "SYSTEMS",
    "ExtinctionClass",
    "IndexingResult",
    "IndexingSolution",
    "extinction_classes",
    "index_pattern",
    "index_peaks",
]

#: lattice families searched, most symmetric first (trigonal cells are indexed on hexagonal
#: axes: rhombohedral ones show as the hexagonal family with R-centring absences)
SYSTEMS = ("cubic", "hexagonal", "tetragonal", "orthorhombic", "monoclinic")
#: families searched by default: a monoclinic search from base lines takes seconds
DEFAULT_SYSTEMS = SYSTEMS[:4]
#: number of free reciprocal-metric parameters of each family
N_PARAMS = {"cubic": 1, "hexagonal": 2, "tetragonal": 2, "orthorhombic": 3, "monoclinic": 4}
#: space-group numbers of each lattice family
FAMILY_GROUPS = {
    "cubic": range(195, 231),
    "hexagonal": range(143, 195),
    "tetragonal": range(75, 143),
    "orthorhombic": range(16, 75),
    "monoclinic": range(3, 16),
}
#: shortest and longest cell edge searched, Å
MIN_LENGTH, MAX_LENGTH = 2.0, 30.0
#: largest |zero-point error| accepted, degrees 2θ
MAX_ZERO_SHIFT = 0.3
#: zero-point errors (degrees 2θ) tried, in turn, when no cell convinces at the measured
#: positions: trial cells are solved from the first lines, whose Q a zero error of 0.2° puts
#: 1–2 % off (low angles most), beyond the votes' 1 % bins, before the refinement could find
#: it. A cell found on moved lines must reach ZERO_SHIFT_M20: three searches give a chance
#: cell three chances. Both set on the validation side (500 patterns of set A's generator,
#: |z| ≤ 0.2°; network + indexing, crystal system: 61.2 % without, 64.2 % with M(20) ≥ 10,
#: 65.8 % with ≥ 20; ±0.1° and ±0.2° together: 65.0 % with ≥ 10, at 1.25 times the time)
ZERO_SHIFT_TRIALS = (0.12, -0.12)
ZERO_SHIFT_M20 = 20.0
#: M(20) from which a cell is taken as a convincing indexing (de Wolff: above 10 a cell is
#: very probably right, provided few lines are unindexed)
CONVINCING_M20 = 10.0
#: indexed lines beyond the free parameters a convincing cell needs (with fewer lines, cells of
#: several families index them all; set on the validation side of the classifier's
#: chemical-system split, benchmarks/xrd_indexing.py)
EXTRA_LINES = {"cubic": 3, "hexagonal": 5, "tetragonal": 5, "orthorhombic": 5, "monoclinic": 5}
#: a family whose metric does not contain the chosen cell's, indexing as many lines with at
#: least this share of its M(20), makes the indexing ambiguous (no cell is chosen)
AMBIGUOUS_M20_SHARE = 0.5
#: families whose cells can describe every lattice of a family (a cubic lattice is also
#: tetragonal, orthorhombic and rhombohedral): agreeing with them is no ambiguity
CONTAINS = {
    "cubic": {"tetragonal", "orthorhombic", "hexagonal", "monoclinic"},
    "tetragonal": {"orthorhombic", "monoclinic"},
    "hexagonal": {"orthorhombic", "monoclinic"},
    "orthorhombic": {"monoclinic"},
    "monoclinic": set(),
}
#: a cell of lower symmetry (a family the chosen one's metric is contained in) indexing as
#: many lines with this multiple of its M(20) predicts fewer lines for the same fit: the
#: more symmetric cell is a false, too large cell
LOWER_M20_RATIO = 1.5
#: factor on a cell's score for each line it leaves unindexed: a sub-cell that misses the
#: weak lines of the true cell must lose to it, an impurity line may stay unindexed
UNINDEXED_PENALTY = 0.3
#: least mean |Δ2θ| the figures of merit assume, degrees: peak positions are rarely better
EPS_FLOOR = 0.004
#: largest |h|, |k|, |l| of the calculated lines
_H_TABLE = {"cubic": 24, "hexagonal": 24, "tetragonal": 24, "orthorhombic": 14, "monoclinic": 12}
_LINES_SEARCH = 20  # lines used in the search and the figures of merit (as DICVOL, M(20))
_LINES_BASE = 8  # first lines that base-line sets are drawn from
_LINES_BASE_OF = {"orthorhombic": 7}  # (56 → 35 triples: the orthorhombic search is the slowest)
_BIN = 0.01  # vote bin width in ln p (1 %)
_TOP = 150  # voted trial cells screened per family
_TOP_OF = {"orthorhombic": 60}  # (the orthorhombic quick merit is the costliest)
# screened trial cells refined per family, and the sub-cells of the best one refined when
# their quick merit is at least its own minus _SUBCELL_MARGIN (validation side: refining 5
# and every sub-cell took twice the time for no better answer)
_REFINE = 2
_REFINE_OF = {"cubic": 5}  # (one parameter: cheap, and a supercell must be tried)
_SUBCELL_MARGIN = 0.0
_STOP_M20 = 2 * CONVINCING_M20  # a cell this good ends the search of contained families...
_STOP_UNINDEXED = 0  # ... when it leaves no line unindexed
#: a convincing cell ends the search of the families containing its metric only when it
#: predicts at most this many calculated lines per indexed one: a large cell indexes any
#: lines by their sheer number, and must face the smaller cells of lower symmetry
STOP_CALC_RATIO = 3.0


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------


@dataclass
class IndexingSolution:
    """One indexed cell.

    Attributes:
        system: lattice family (:data:`SYSTEMS`).
        cell: (a, b, c, α, β, γ) in Å and degrees (hexagonal axes for the hexagonal family).
        params: the refined reciprocal-metric parameters p (Å⁻²).
        zero_shift: refined zero-point error z, degrees 2θ (2θ_obs = 2θ_calc + z).
        m20: de Wolff's M(N), N = the indexed lines among the first 20 (at most 20).
        f_n: Smith & Snyder's F(N) over the same lines.
        n_lines: lines considered; n_indexed of them indexed.
        intensity_indexed: share of their peak height that is indexed (0–1).
        hkl: Miller indices of each line, (n_lines, 3); rows of unindexed lines are 0.
        indexed: which lines are indexed.
        two_theta_obs, two_theta_calc: the lines' observed and calculated positions (calc
            includes the zero shift), degrees.
        centring: the lattice centring (P, I, F, A, B, C, R) whose lines N₂₀ counts.
        n_calc: N₂₀, the distinct calculated lines up to the last indexed one of the first 20.
        score: log-evidence (:func:`_score`), what solutions are ranked by.
    """

    system: str
    cell: tuple[float, ...]
    params: np.ndarray
    zero_shift: float
    m20: float
    f_n: float
    n_lines: int
    n_indexed: int
    intensity_indexed: float
    hkl: np.ndarray
    indexed: np.ndarray
    two_theta_obs: np.ndarray
    two_theta_calc: np.ndarray
    score: float
    wavelength: float = CU_KA1
    centring: str = "P"
    n_calc: int = 0

    @property
    def volume(self) -> float:
        """Cell volume in Å³."""
        a, b, c, al, be, ga = self.cell
        ca, cb, cg = (math.cos(math.radians(x)) for x in (al, be, ga))
        return a * b * c * math.sqrt(max(0.0, 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg))

    @property
    def convincing(self) -> bool:
        """M(20) ≥ :data:`CONVINCING_M20`, at least :data:`EXTRA_LINES` lines more than the
        cell has free parameters indexed, and 90 % of the peak height."""
        return (
            self.m20 >= CONVINCING_M20
            and self.n_indexed >= N_PARAMS[self.system] + EXTRA_LINES.get(self.system, 5)
            and self.intensity_indexed >= 0.9
        )

    def __repr__(self) -> str:
        a, b, c, al, be, ga = self.cell
        return (
            f"IndexingSolution({self.system} {self.centring}, a={a:.4f} b={b:.4f} c={c:.4f} Å, "
            f"α={al:.2f} β={be:.2f} γ={ga:.2f}°, M20={self.m20:.1f}, "
            f"{self.n_indexed}/{self.n_lines} lines, zero {self.zero_shift:+.3f}°)"
        )

    def to_dict(self) -> dict:
        return {
            "system": self.system,
            "centring": self.centring,
            "cell": [round(float(v), 5) for v in self.cell],
            "volume": round(self.volume, 3),
            "zero_shift": round(self.zero_shift, 4),
            "m20": round(float(self.m20), 2),
            "f_n": round(float(self.f_n), 2),
            "n_lines": self.n_lines,
            "n_indexed": self.n_indexed,
            "intensity_indexed": round(float(self.intensity_indexed), 4),
            "convincing": self.convincing,
        }


@dataclass(frozen=True)
class ExtinctionClass:
    """Space groups of one powder class (:func:`matforge.xrd.extinction.powder_classes`) that
    are consistent with the indexed lines.

    Attributes:
        space_groups: the numbers (1–230) of the class's groups.
        n_forbidden: indexed lines the class forbids (0 for a consistent class).
        n_unobserved: allowed lines in the observed range where no peak was seen (fewer is
            a better explanation of the absences).
    """

    space_groups: tuple[int, ...]
    n_forbidden: int
    n_unobserved: int


@dataclass
class IndexingResult:
    """What indexing says about one pattern.

    Attributes:
        solutions: the best cell of each family searched, best score first.
        best: the chosen cell: the most symmetric convincing one (None when none is).
        classes: extinction classes of ``best``, most plausible first (empty without one).
        n_peaks: peaks found; seconds: time taken.
    """

    solutions: list[IndexingSolution]
    best: IndexingSolution | None
    classes: list[ExtinctionClass] = field(default_factory=list)
    n_peaks: int = 0
    seconds: float = 0.0
    source: str = ""

    @property
    def system(self) -> str | None:
        """The chosen cell's lattice family, or None."""
        return self.best.system if self.best is not None else None

    def consistent_groups(self) -> list[int]:
        """Space-group numbers of the consistent classes (``n_forbidden == 0``), most
        plausible class first."""
        return [g for c in self.classes if c.n_forbidden == 0 for g in c.space_groups]

    def to_dict(self) -> dict:
        return {
            "system": self.system,
            "best": self.best.to_dict() if self.best is not None else None,
            "solutions": [s.to_dict() for s in self.solutions],
            "classes": [
                {
                    "space_groups": list(c.space_groups),
                    "n_forbidden": c.n_forbidden,
                    "n_unobserved": c.n_unobserved,
                }
                for c in self.classes[:10]
            ],  # fmt: skip
            "n_peaks": self.n_peaks,
            "seconds": round(self.seconds, 4),
        }


# ---------------------------------------------------------------------------------------
# quadratic forms of the lattice families
# ---------------------------------------------------------------------------------------


def _hkl_box(hmax: int, half: bool = True) -> np.ndarray:
    r = np.arange(-hmax, hmax + 1)
    g = np.array(list(itertools.product(r, r, r)), dtype=np.int64)
    g = g[np.any(g != 0, axis=1)]
    if half:  # Friedel: hkl and -h-k-l share Q
        first = np.where(g[:, 0] != 0, g[:, 0], np.where(g[:, 1] != 0, g[:, 1], g[:, 2]))
        g = g[first > 0]
    return g


def phi(system: str, hkl: np.ndarray) -> np.ndarray:
    """The quadratic-form terms φ(hkl) of ``system``: Q = φ · p. ``hkl`` (n, 3) → (n, k)."""
    h, k, l = (hkl[:, i].astype(float) for i in range(3))  # noqa: E741
    if system == "cubic":
        return (h * h + k * k + l * l)[:, None]
    if system == "tetragonal":
        return np.stack([h * h + k * k, l * l], axis=1)
    if system == "hexagonal":
        return np.stack([h * h + h * k + k * k, l * l], axis=1)
    if system == "orthorhombic":
        return np.stack([h * h, k * k, l * l], axis=1)
    if system == "monoclinic":
        return np.stack([h * h, k * k, l * l, h * l], axis=1)
    raise ValueError(f"unknown lattice family {system!r}; choose from {', '.join(SYSTEMS)}")


@cache
def _forms(system: str, hmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct φ rows of ``system`` for |h|, |k|, |l| ≤ ``hmax`` and one hkl for each."""
    f, hkl, _ = _forms_centred(system, hmax)
    return f, hkl


#: lattice centrings tried for each family; a centred cell predicts fewer lines, which is
#: what de Wolff's N₂₀ should count (DICVOL14's centring tests)
CENTRINGS = {
    "cubic": ("P", "I", "F"),
    "tetragonal": ("P", "I"),
    "hexagonal": ("P", "R"),
    "orthorhombic": ("P", "C", "A", "B", "I", "F"),
    "monoclinic": ("P", "C"),
}


def _centring_allows(centring: str, hkl: np.ndarray) -> np.ndarray:
    h, k, l = hkl[:, 0], hkl[:, 1], hkl[:, 2]  # noqa: E741
    if centring == "P":
        return np.ones(len(hkl), dtype=bool)
    if centring == "I":
        return (h + k + l) % 2 == 0
    if centring == "F":
        return ((h + k) % 2 == 0) & ((k + l) % 2 == 0)
    if centring == "C":
        return (h + k) % 2 == 0
    if centring == "A":
        return (k + l) % 2 == 0
    if centring == "B":
        return (h + l) % 2 == 0
    if centring == "R":  # obverse, hexagonal axes; (h, k) ↔ (k, h) gives the reverse setting
        return (-h + k + l) % 3 == 0
    raise ValueError(centring)


@cache
def _forms_centred(system: str, hmax: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Distinct φ rows, a representative hkl of each (smallest indices), and per centring
    of the family whether any reflection with that φ is allowed by it."""
    box = _hkl_box(hmax, half=False)
    f = phi(system, box)
    uniq, first, inverse = np.unique(f, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    # representative: smallest total index, then non-negative, largest first
    rank = np.lexsort((-box[:, 2], -box[:, 1], -box[:, 0], np.abs(box).sum(axis=1)))
    rep = np.full(len(uniq), -1)
    pos = np.empty(len(box), dtype=np.int64)
    pos[rank] = np.arange(len(box))
    best = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(best, inverse, pos)
    rep = rank[best]
    masks = {}
    for c in CENTRINGS[system]:
        m = np.zeros(len(uniq), dtype=bool)
        np.logical_or.at(m, inverse, _centring_allows(c, box))
        masks[c] = m
    # rows in order of first appearance by index size (stable, small indices first)
    order = np.argsort(np.abs(box[rep]).sum(axis=1), kind="stable")
    return uniq[order], box[rep][order], {c: m[order] for c, m in masks.items()}


def _cell(system: str, p: np.ndarray) -> tuple[float, ...]:
    p = np.asarray(p, dtype=float)
    if system == "cubic":
        a = 1 / math.sqrt(p[0])
        return (a, a, a, 90.0, 90.0, 90.0)
    if system == "tetragonal":
        a, c = 1 / math.sqrt(p[0]), 1 / math.sqrt(p[1])
        return (a, a, c, 90.0, 90.0, 90.0)
    if system == "hexagonal":
        a, c = math.sqrt(4 / (3 * p[0])), 1 / math.sqrt(p[1])
        return (a, a, c, 90.0, 90.0, 120.0)
    if system == "orthorhombic":
        return (*(1 / math.sqrt(v) for v in p), 90.0, 90.0, 90.0)
    if system == "monoclinic":
        astar, bstar, cstar = math.sqrt(p[0]), math.sqrt(p[1]), math.sqrt(p[2])
        cos_bs = float(np.clip(p[3] / (2 * astar * cstar), -1, 1))
        sin_bs = math.sqrt(1 - cos_bs * cos_bs)
        beta = 180.0 - math.degrees(math.acos(cos_bs))
        return (1 / (astar * sin_bs), 1 / bstar, 1 / (cstar * sin_bs), 90.0, beta, 90.0)
    raise ValueError(system)


#: range of each reciprocal-metric parameter of a cell with edges in [MIN, MAX] Å (the
#: families whose parameters are bounded one by one)
_BOUNDS = {
    "tetragonal": ((MAX_LENGTH**-2, MIN_LENGTH**-2),) * 2,
    "hexagonal": ((MAX_LENGTH**-2 / 0.75, MIN_LENGTH**-2 / 0.75), (MAX_LENGTH**-2, MIN_LENGTH**-2)),
    "orthorhombic": ((MAX_LENGTH**-2, MIN_LENGTH**-2),) * 3,
}


def _valid(system: str, p: np.ndarray) -> np.ndarray:
    """Which parameter rows (m, k) describe a real cell with edges in [MIN, MAX] Å."""
    lo, hi = 1 / MAX_LENGTH**2, 1 / MIN_LENGTH**2
    if system == "hexagonal":
        ok = (p[:, 0] * 0.75 >= lo) & (p[:, 0] * 0.75 <= hi) & (p[:, 1] >= lo) & (p[:, 1] <= hi)
    elif system == "monoclinic":
        ok = np.all((p[:, :3] >= lo) & (p[:, :3] <= hi * 1.5), axis=1)
        cos_bs = p[:, 3] / (2 * np.sqrt(np.abs(p[:, 0] * p[:, 2])) + 1e-300)
        ok &= np.abs(cos_bs) <= math.cos(math.radians(60))  # β within 90–150°
    else:
        ok = np.all((p >= lo) & (p <= hi), axis=1)
    return ok


def _base_table(system: str) -> np.ndarray:
    """φ rows of the low-index reflections base lines are assigned."""
    f, hkl = _forms(system, 4)
    size = np.abs(hkl).max(axis=1)
    total = np.abs(hkl).sum(axis=1)
    if system == "cubic":
        keep = f[:, 0] <= 40
    elif system in ("tetragonal", "hexagonal"):
        keep = (f[:, 0] <= 12) & (np.abs(hkl[:, 2]) <= 4)
    elif system == "orthorhombic":
        keep = (size <= 2) | ((size <= 3) & (total <= 3))
    else:
        keep = (size <= 2) & (total <= 3)
    return f[keep]


# ---------------------------------------------------------------------------------------
# lines
# ---------------------------------------------------------------------------------------


@dataclass
class _Lines:
    two_theta: np.ndarray
    sigma: np.ndarray
    height: np.ndarray
    wavelength: float

    @property
    def q(self) -> np.ndarray:
        return (2 * np.sin(np.radians(self.two_theta) / 2) / self.wavelength) ** 2

    @property
    def dq(self) -> np.ndarray:
        """dQ/d(2θ) per degree."""
        t = np.radians(self.two_theta)
        return 2 * np.sin(t) / self.wavelength**2 * (math.pi / 180)

    @property
    def tol(self) -> np.ndarray:
        """Accepted |2θ_obs − 2θ_calc| of each line, degrees."""
        return np.clip(3 * self.sigma, 0.02, 0.12)


def _select_lines(peaks, min_relative: float = 0.01, max_lines: int = 40) -> _Lines:
    """The lines indexing reads: peaks of at least ``min_relative`` of the strongest, the
    first ``max_lines`` of them in 2θ."""
    h = np.asarray(peaks.height, dtype=float)
    keep = h >= min_relative * (h.max() if len(h) else 1.0)
    idx = np.flatnonzero(keep)[:max_lines]
    return _Lines(peaks.two_theta[idx], peaks.sigma[idx], h[idx], float(peaks.wavelength))


def _q_of(two_theta, wavelength):
    return (2 * np.sin(np.radians(two_theta) / 2) / wavelength) ** 2


def _two_theta_of(q, wavelength):
    s = np.sqrt(np.maximum(q, 0)) * wavelength / 2
    return np.where(s < 1, 2 * np.degrees(np.arcsin(np.minimum(s, 1))), np.nan)


# ---------------------------------------------------------------------------------------
# trial cells: base lines solved for every low-index assignment, then voted on
# ---------------------------------------------------------------------------------------


def _trial_cells(system: str, lines: _Lines) -> np.ndarray:
    """Trial parameter vectors (m, k), the most voted for first."""
    n_par = N_PARAMS[system]
    q = lines.q[: _LINES_BASE_OF.get(system, _LINES_BASE)]
    if len(q) < n_par:
        return np.zeros((0, n_par))
    table = _base_table(system)
    sets = np.array(list(itertools.combinations(range(len(q)), n_par)), dtype=np.int64)
    if n_par == 1:
        p = (q[:, None] / table[None, :, 0]).reshape(-1, 1)
        support = np.repeat(np.arange(len(q)), len(table))
    elif system in _BOUNDS:
        # one (sets, assignments) matrix product per parameter, out-of-range cells dropped
        # before they are gathered: most trial cells are not real cells
        inv, _ = _base_inverses(system)
        q_sets = q[sets]
        cols = [q_sets @ inv[:, j, :].T for j in range(n_par)]
        good = np.ones(cols[0].shape, dtype=bool)
        for c, (lo, hi) in zip(cols, _BOUNDS[system], strict=True):
            good &= (c >= lo) & (c <= hi)
        p = np.stack([c[good] for c in cols], axis=1)
        support = np.nonzero(good)[0]
    else:
        inv, rows_ok = _base_inverses(system)
        p = np.einsum("rij,sj->sri", inv, q[sets]).reshape(-1, n_par)
        support = np.repeat(np.arange(len(sets)), len(rows_ok))
    if system not in _BOUNDS:
        good = _valid(system, p)
        p, support = p[good], support[good]
    if system == "orthorhombic":  # the same lattice for every order of the axes
        a, b, c = p[:, 0], p[:, 1], p[:, 2]
        hi, lo = np.maximum(np.maximum(a, b), c), np.minimum(np.minimum(a, b), c)
        mid = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
        p = np.stack([hi, mid, lo], axis=1)
    if not len(p):
        return np.zeros((0, n_par))
    return _vote(p, support, n_par, _TOP_OF.get(system, _TOP))


@cache
def _base_inverses(system: str) -> tuple[np.ndarray, np.ndarray]:
    """Inverses of the φ matrices of every assignment of base-table rows to the base lines
    (the invertible ones) and their assignment numbers: the same for every pattern."""
    table = _base_table(system)
    n_par = N_PARAMS[system]
    rows = _assignments(len(table), n_par)
    if system == "orthorhombic":
        # a permutation of the axes permutes every row alike and gives the same lattice:
        # the first base line's indices are taken in non-increasing order
        first = table[rows[:, 0]]
        rows = rows[(first[:, 0] >= first[:, 1]) & (first[:, 1] >= first[:, 2])]
    inv, ok = _batched_inverse(table[rows])  # (R, n, n): rows of φ for the n base lines
    return inv[ok], np.flatnonzero(ok)


@cache
def _assignments(n_rows: int, n_par: int) -> np.ndarray:
    """Ordered n_par-tuples of distinct table rows."""
    return np.array(list(itertools.permutations(range(n_rows), n_par)), dtype=np.int64)


def _batched_inverse(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    det = np.linalg.det(m)
    ok = np.abs(det) > 1e-9
    inv = np.zeros_like(m)
    inv[ok] = np.linalg.inv(m[ok])
    return inv, ok


def _vote(p: np.ndarray, support: np.ndarray, n_par: int, n_top: int = _TOP) -> np.ndarray:
    """Bin trial cells on a logarithmic grid; a bin's votes are the distinct base-line sets
    in it and its neighbours. Returns the mean cell of the :data:`_TOP` best bins."""
    keys = np.floor(np.log(np.abs(p)) / _BIN).astype(np.int64)
    if n_par == 4:  # the hl coefficient may be negative: bin it on its own linear scale
        keys[:, 3] = np.floor(p[:, 3] / (np.abs(p[:, 0]) * 0.02 + 1e-12)).astype(np.int64)
    off = keys.min(axis=0) - 1
    span = keys.max(axis=0) - off + 2
    code = np.zeros(len(p), dtype=np.int64)
    for j in range(n_par):
        code = code * span[j] + (keys[:, j] - off[j])
    # one vote per base-line set and bin
    pair = np.unique(code * (int(support.max()) + 1) + support)
    bins, votes = np.unique(pair // (int(support.max()) + 1), return_counts=True)
    # add the neighbours' votes (a cluster split by a bin edge counts whole), for the bins
    # with the most votes of their own
    top = np.argsort(-votes, kind="stable")[: 8 * n_top]
    bins_top, total = bins[top], votes[top].astype(float)
    strides = np.cumprod(np.r_[1, span[::-1][:-1]])[::-1]
    for delta in itertools.product((-1, 0, 1), repeat=n_par):
        if not any(delta):
            continue
        shifted = bins_top + int(np.dot(delta, strides))
        pos = np.minimum(np.searchsorted(bins, shifted), len(bins) - 1)
        hit = bins[pos] == shifted
        total[hit] += votes[pos[hit]]
    bins = bins_top
    best = bins[np.argsort(-total, kind="stable")[:n_top]]
    # the mean trial cell of each chosen bin
    which = np.searchsorted(best, code, sorter=np.argsort(best))
    order = np.argsort(best)
    which = np.minimum(which, len(best) - 1)
    inbin = best[order][which] == code
    out = np.zeros((len(best), n_par))
    counts = np.zeros(len(best))
    np.add.at(out, order[which[inbin]], p[inbin])
    np.add.at(counts, order[which[inbin]], 1)
    return out / np.maximum(counts, 1)[:, None]


# ---------------------------------------------------------------------------------------
# a quick figure of merit for many trial cells at once
# ---------------------------------------------------------------------------------------

_M_MAX = 4096  # largest h² + k² (+ l²) the lookup tables hold


@cache
def _allowed_sums(system: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the one-index forms (cubic N = h²+k²+l², tetragonal m = h²+k², hexagonal
    m = h²+hk+k²): per integer n, the largest allowed value ≤ n (−1 if none), the smallest
    ≥ n (−1 if none), and the count of allowed values ≤ n (0 included for the 2-D forms)."""
    r = np.arange(0, int(math.isqrt(_M_MAX)) + 2)
    if system == "cubic":
        h, k, l = np.meshgrid(r, r, r, indexing="ij")  # noqa: E741
        vals = (h * h + k * k + l * l).ravel()
        vals = vals[vals > 0]
    elif system == "tetragonal":
        h, k = np.meshgrid(r, r, indexing="ij")
        vals = (h * h + k * k).ravel()
    else:
        h, k = np.meshgrid(r, r, indexing="ij")
        vals = (h * h + h * k + k * k).ravel()
    ok = np.zeros(_M_MAX + 1, dtype=bool)
    ok[vals[vals <= _M_MAX]] = True
    n = np.arange(_M_MAX + 1)
    prev = np.maximum.accumulate(np.where(ok, n, -1))
    nxt = np.where(ok, n, _M_MAX + 10)[::-1]
    nxt = np.minimum.accumulate(nxt)[::-1]
    nxt = np.where(nxt > _M_MAX, -1, nxt)
    return prev, nxt, np.cumsum(ok)


def _nearest_allowed(system: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The allowed values just below and just above the reals ``x`` (−1 where none)."""
    prev, nxt, _ = _allowed_sums(system)
    lo = prev[np.clip(np.floor(x), 0, _M_MAX).astype(np.int64)]
    hi = nxt[np.clip(np.ceil(x), 0, _M_MAX).astype(np.int64)]
    lo = np.where(x < 0, -1, lo)
    return lo, hi


def _quick_merit(system: str, trials: np.ndarray, lines: _Lines) -> np.ndarray:
    """A de Wolff-like merit of each trial cell (K, m) on the first 20 lines, vectorised:
    every line matched to its nearest calculated line (analytically: for each l, or each
    (k, l), the nearest allowed remaining index), the zero shift most lines agree on,
    M = Q_N / (2 ε̄ N_calc) × (matched share)², N_calc from counting lattice points."""
    n_use = min(_LINES_SEARCH, len(lines.two_theta))
    q = lines.q[:n_use]
    dq, tol = lines.dq[:n_use], lines.tol[:n_use]
    q_max = float(q[-1]) * 1.03 + 1e-4
    p = np.asarray(trials, dtype=float)
    n_cand = len(p)
    if system == "cubic":
        x = q[None, :] / p[:, :1]
        lo, hi = _nearest_allowed(system, x)
        cand = np.stack([lo, hi], axis=2).astype(float)
        cand[cand < 1] = np.nan
        q_calc = cand * p[:, :1, None]
        n_calc = _allowed_sums(system)[2][np.clip(np.floor(q_max / p[:, 0]), 0, _M_MAX).astype(int)]
    elif system in ("tetragonal", "hexagonal"):
        a_, c_ = p[:, 0][:, None, None], p[:, 1][:, None, None]
        l_max = int(min(40, math.floor(math.sqrt(q_max / float(p[:, 1].min())))))
        l2 = (np.arange(l_max + 1) ** 2)[None, None, :].astype(float)
        x = (q[None, :, None] - c_ * l2) / a_
        lo, hi = _nearest_allowed(system, x)
        cand = np.stack([lo, hi], axis=3).astype(float)  # (K, n, L, 2)
        cand[cand < 0] = np.nan
        cand[:, :, 0, :][cand[:, :, 0, :] == 0] = np.nan  # (0, 0) is no reflection
        q_calc = (a_[..., None] * cand + (c_ * l2)[..., None]).reshape(n_cand, n_use, -1)
        cum = _allowed_sums(system)[2]
        rest = (q_max - p[:, 1][:, None] * l2[0]) / p[:, 0][:, None]  # (K, L)
        counts = np.where(rest >= 0, cum[np.clip(np.floor(rest), 0, _M_MAX).astype(int)], 0)
        n_calc = counts.sum(axis=1) - 1
    elif system == "orthorhombic":
        a_, b_, c_ = (p[:, i][:, None, None] for i in range(3))
        k_max = int(min(30, math.floor(math.sqrt(q_max / float(p[:, 1].min())))))
        l_max = int(min(30, math.floor(math.sqrt(q_max / float(p[:, 2].min())))))
        kk, ll = np.meshgrid(np.arange(k_max + 1), np.arange(l_max + 1), indexing="ij")
        k2, l2 = (kk.ravel() ** 2).astype(float), (ll.ravel() ** 2).astype(float)
        base = b_ * k2[None, None, :] + c_ * l2[None, None, :]  # (K, 1, P)
        x = np.sqrt(np.maximum(q[None, :, None] - base, 0) / a_)
        h = np.stack([np.floor(x), np.ceil(x)], axis=3)
        q_calc = a_[..., None] * h * h + base[..., None]
        q_calc[q_calc <= 0] = np.nan
        q_calc = q_calc.reshape(n_cand, n_use, -1)
        rest = (q_max - base[:, 0, :]) / p[:, 0][:, None]
        n_calc = np.where(rest >= 0, np.floor(np.sqrt(np.maximum(rest, 0))) + 1, 0).sum(axis=1) - 1
    else:  # monoclinic: no quick merit, all voted cells are refined in vote order
        return np.linspace(1.0, 0.5, n_cand)  # (higher is better)
    with np.errstate(invalid="ignore"):
        diff = q[None, :, None] - q_calc.reshape(n_cand, n_use, -1)
        j = np.nanargmin(np.where(np.isnan(diff), np.inf, np.abs(diff)), axis=2)
    resid = np.take_along_axis(diff, j[..., None], axis=2)[..., 0] / dq[None, :]  # degrees
    resid = np.where(np.isfinite(resid), resid, 99.0)
    # zero shift: the candidate residual (or 0) most lines agree with
    cand_z = np.concatenate([np.zeros((n_cand, 1)), np.clip(resid, -9, 9)], axis=1)
    agree = np.abs(resid[:, None, :] - cand_z[:, :, None]) <= tol[None, None, :]
    hits = agree.sum(axis=2) - 1e-3 * np.abs(cand_z)  # ties: the smaller shift
    hits[np.abs(cand_z) > MAX_ZERO_SHIFT] = -1
    z = np.take_along_axis(cand_z, np.argmax(hits, axis=1)[:, None], axis=1)
    err = np.abs(resid - z)
    matched = err <= tol[None, :]
    n_match = matched.sum(axis=1)
    eps = np.where(matched, np.maximum(err, EPS_FLOOR) * dq[None, :], 0).sum(axis=1)
    eps = eps / np.maximum(n_match, 1)
    merit = q_max / (2 * np.maximum(eps, 1e-12) * np.maximum(n_calc, 1))
    n_par = N_PARAMS[system]
    score = (n_match - n_par) * np.log(np.maximum(merit, 1.0)) + (n_use - n_match) * math.log(
        UNINDEXED_PENALTY
    )
    return np.where((n_match > n_par) & (merit > 1), score, -np.inf)


# ---------------------------------------------------------------------------------------
# refinement and figures of merit
# ---------------------------------------------------------------------------------------


def _calc_lines(
    system: str, p: np.ndarray, q_max: float, centring: str = "P"
) -> tuple[np.ndarray, np.ndarray]:
    """Calculated Q ≤ q_max of cell p with ``centring``, sorted, and their φ-table rows."""
    f, _, masks = _forms_centred(system, _H_TABLE[system])
    q = f @ p
    keep = np.flatnonzero((q > 0) & (q <= q_max) & masks[centring])
    order = np.argsort(q[keep])
    return q[keep][order], keep[order]


def _refine(
    system: str, p0: np.ndarray, lines: _Lines, centred: bool = True
) -> IndexingSolution | None:
    """Assign, estimate the zero shift, refine (p, z) by weighted least squares, repeat.
    The solution in its best centring, or primitive (``centred=False``: faster)."""
    q_obs, dq, tol = lines.q, lines.dq, lines.tol
    lam = lines.wavelength
    two_theta = lines.two_theta
    q_max = float(q_obs.max()) * 1.05 + 1e-3
    p = np.asarray(p0, dtype=float)
    z = 0.0
    previous = None
    for it in range(4):
        q_calc, rows = _calc_lines(system, p, q_max)
        if not len(q_calc):
            return None
        f = _forms(system, _H_TABLE[system])[0][rows]
        tt_calc = _two_theta_of(q_calc, lam)
        # nearest calculated line of each observed one, after the zero shift
        target = two_theta - z
        j = np.clip(np.searchsorted(tt_calc, target), 1, len(tt_calc) - 1)
        j = np.where(np.abs(tt_calc[j - 1] - target) < np.abs(tt_calc[j] - target), j - 1, j)
        resid = target - tt_calc[j]
        if it == 0:  # the shift most lines agree on
            z = _mode_shift(two_theta - tt_calc[j], tol)
            resid = resid - z
        slack = 2.0 if it == 0 else 1.0
        ok = np.abs(resid) <= tol * slack
        if ok.sum() < N_PARAMS[system] + 2:
            return None
        assigned = np.where(ok, rows[j], -1)
        if previous is not None and np.array_equal(assigned, previous):
            break  # the same assignment fits to the same (p, z): converged
        previous = assigned
        w = 1 / (tol[ok] * dq[ok]) ** 2
        design = np.column_stack([f[j[ok]], dq[ok]])
        rhs = q_obs[ok]
        sw = np.sqrt(w)
        sol, *_ = np.linalg.lstsq(design * sw[:, None], rhs * sw, rcond=None)
        p_new, z_new = sol[:-1], float(sol[-1])
        if not _valid(system, p_new[None])[0] or abs(z_new) > MAX_ZERO_SHIFT:
            # refine the cell alone, keeping the shift
            sol, *_ = np.linalg.lstsq(f[j[ok]] * sw[:, None], (rhs - z * dq[ok]) * sw, rcond=None)
            p_new, z_new = sol, z
            if not _valid(system, p_new[None])[0]:
                return None
        p, z = p_new, z_new
    if not centred:
        return _solution_centred(system, p, z, lines, "P")
    return _solution(system, p, z, lines)


def _mode_shift(delta: np.ndarray, tol: np.ndarray) -> float:
    """The zero shift (|z| ≤ MAX_ZERO_SHIFT) that the most residuals ``delta`` agree on
    within their tolerance; ties go to the smallest |z|."""
    cand = delta[np.abs(delta) <= MAX_ZERO_SHIFT]
    if not len(cand):
        return 0.0
    cand = np.r_[0.0, cand]
    hits = (np.abs(delta[None, :] - cand[:, None]) <= tol[None, :]).sum(axis=1)
    best = hits == hits.max()
    c = cand[best]
    # centre of the agreeing residuals
    pick = c[np.argmin(np.abs(c))]
    agree = np.abs(delta - pick) <= tol
    return float(np.clip(np.median(delta[agree]) if agree.any() else pick,
                         -MAX_ZERO_SHIFT, MAX_ZERO_SHIFT))  # fmt: skip


def _solution(system: str, p: np.ndarray, z: float, lines: _Lines) -> IndexingSolution:
    """The figures of merit of cell (p, z) in the centring that scores best."""
    primitive = _solution_centred(system, p, z, lines, "P")
    best = primitive
    for centring in CENTRINGS[system][1:]:
        s = _solution_centred(system, p, z, lines, centring)
        # a centring must index every line the primitive cell indexes (its absences may
        # not forbid an observed line, as in DICVOL); then it predicts fewer lines, and its
        # higher M(20) decides
        if (
            s.n_indexed < primitive.n_indexed
            or s.intensity_indexed < primitive.intensity_indexed - 1e-9
        ):
            continue
        if s.score > best.score + 1e-6:
            best = s
    return best


def _score(m20: float, n_indexed: int, n_unindexed: int, share: float, n_par: int) -> float:
    """Log-evidence of a cell. 1/M(20) is about the chance that a random line falls on a
    calculated one within the mean error, so n lines matched by chance have odds ~ M20⁻ⁿ;
    a cell with k free parameters can be fitted to k lines whatever they are, so they do not
    count. Each unindexed line costs ln :data:`UNINDEXED_PENALTY`, a share of the peak
    height left unindexed 10 ln(share)."""
    if m20 <= 1 or n_indexed <= n_par:
        return -math.inf
    return (
        (n_indexed - n_par) * math.log(m20)
        + n_unindexed * math.log(UNINDEXED_PENALTY)
        + 10 * math.log(max(share, 1e-6))
    )


def _distinct(q: np.ndarray, dq_rel: float) -> np.ndarray:
    """Whether each of the sorted Q values starts a new resolvable line."""
    new = np.ones(len(q), dtype=bool)
    new[1:] = np.diff(q) > dq_rel * q[1:]
    return new


def _solution_centred(
    system: str, p: np.ndarray, z: float, lines: _Lines, centring: str
) -> IndexingSolution:
    lam = lines.wavelength
    two_theta, tol, height = lines.two_theta, lines.tol, lines.height
    q_max = float(_q_of(two_theta.max() - z, lam)) * 1.05 + 1e-3
    q_calc, rows = _calc_lines(system, p, q_max, centring)
    if not len(q_calc):
        q_calc, rows = np.array([1e9]), np.array([0])
    tt_calc = _two_theta_of(q_calc, lam) + z
    j = np.clip(np.searchsorted(tt_calc, two_theta), 1, max(1, len(tt_calc) - 1))
    j = np.minimum(j, len(tt_calc) - 1)
    j = np.where(np.abs(tt_calc[j - 1] - two_theta) < np.abs(tt_calc[j] - two_theta), j - 1, j)
    resid = two_theta - tt_calc[j]
    indexed = np.abs(resid) <= tol
    hkl = np.zeros((len(two_theta), 3), dtype=np.int64)
    hkl[indexed] = _forms(system, _H_TABLE[system])[1][rows[j[indexed]]]
    # figures of merit over the first 20 indexed lines
    first = np.flatnonzero(indexed)[:_LINES_SEARCH]
    n = len(first)
    if n:
        q_obs = _q_of(two_theta[first] - z, lam)
        eps = np.abs(q_obs - q_calc[j[first]])
        # measurement floor: positions are rarely better than 0.01° 2θ, and noise-free
        # data must not give infinite merit
        floor = EPS_FLOOR * lines.dq[first]
        eps_mean = float(np.mean(np.maximum(eps, floor)))
        q_n = float(q_obs.max())
        upto = q_calc[q_calc <= q_n * (1 + 1e-9)]
        # lines closer than ~0.003° 2θ are one line
        n_calc = int(_distinct(upto, 1e-4 * 0.5).sum()) if len(upto) else 1
        m20 = q_n / (2 * eps_mean * max(n_calc, 1))
        d2t = float(np.mean(np.maximum(np.abs(resid[first]), EPS_FLOOR)))
        f_n = n / (d2t * max(n_calc, 1))
    else:
        m20 = f_n = 0.0
        n_calc = 0
    considered = min(len(two_theta), max(_LINES_SEARCH, int(first[-1]) + 1 if n else 0))
    share = float(height[:considered][indexed[:considered]].sum() / height[:considered].sum())
    n_ind = int(indexed[:considered].sum())
    score = _score(m20, n_ind, int(considered) - n_ind, share, N_PARAMS[system])
    return IndexingSolution(
        system=system, cell=_cell(system, p), params=np.asarray(p, dtype=float),
        zero_shift=float(z), m20=float(m20), f_n=float(f_n), n_lines=int(considered),
        n_indexed=n_ind, intensity_indexed=share, hkl=hkl[:considered],
        indexed=indexed[:considered], two_theta_obs=two_theta[:considered],
        two_theta_calc=tt_calc[j][:considered], score=score, wavelength=lam,
        centring=centring, n_calc=int(n_calc),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------


def _search(system: str, lines: _Lines) -> list[IndexingSolution]:
    """Refined solutions of one family, best score first, duplicates removed: the voted trial
    cells are screened by a vectorised figure of merit (:func:`_quick_merit`), the best few
    refined."""
    trials = _trial_cells(system, lines)
    if not len(trials):
        return []
    merit = _quick_merit(system, trials, lines)
    out: list[IndexingSolution] = []
    for k in np.argsort(-merit, kind="stable")[: _REFINE_OF.get(system, _REFINE)]:
        if not np.isfinite(merit[k]):
            break
        s = _refine(system, trials[k], lines, centred=False)
        if s is None:
            continue
        if any(float(np.max(np.abs(s.params / o.params - 1))) < 2e-3 for o in out):
            continue
        out.append(s)
    out.sort(key=lambda s: -s.score)
    if out:
        # DICVOL's last step: the best cell is refined once more from its own parameters
        # (a first assignment made with a rough cell can settle on a wrong line), and its
        # sub-cells are tried: a supercell indexes every line of its sub-cell, and the
        # trial cells need not contain the sub-cell itself
        best = out[0]
        subcells = _subcell_params(system, best.params)
        if subcells:  # screened like the trial cells: only those about as good are refined
            quick = _quick_merit(system, np.array([best.params, *subcells]), lines)
            subcells = [c for c, m in zip(subcells, quick[1:], strict=True)
                        if m >= quick[0] - _SUBCELL_MARGIN]  # fmt: skip
        for p in [best.params, *subcells]:
            s = _refine(system, p, lines, centred=False)
            if s is not None and s.score > out[0].score:
                out.insert(0, s)
        # cells are compared primitive; the two best are given their best centring
        out[:2] = [_solution(system, s.params, s.zero_shift, lines) for s in out[:2]]
        out[:2] = sorted(out[:2], key=lambda s: -s.score)
    return out


#: factors on the reciprocal-metric parameters that turn a cell into one of its sub-cells
#: (an edge divided by √2, 2, √3 or 3 multiplies its parameter by 2, 4, 3 or 9)
_SUBCELL_FACTORS = {
    "cubic": ((2.0,), (3.0,), (4.0,)),
    "tetragonal": ((2.0, 1.0), (4.0, 1.0), (1.0, 4.0), (1.0, 9.0), (2.0, 4.0)),
    "hexagonal": ((3.0, 1.0), (4.0, 1.0), (1.0, 4.0), (1.0, 9.0), (3.0, 4.0)),
    "orthorhombic": ((4.0, 1.0, 1.0), (1.0, 4.0, 1.0), (1.0, 1.0, 4.0)),
    "monoclinic": (),
}


def _subcell_params(system: str, p: np.ndarray) -> list[np.ndarray]:
    """Reciprocal-metric parameters of the simple sub-cells of cell ``p`` with edges
    within the searched range."""
    cand = [np.asarray(p, dtype=float) * np.asarray(f) for f in _SUBCELL_FACTORS[system]]
    return [c for c in cand if _valid(system, c[None])[0]]


#: metric-symmetry check (Le Page): two orthorhombic edges whose ratio is 1 (tetragonal) or
#: √3 or 2/√3 (orthohexagonal) within this relative tolerance make the cell a candidate for
#: the higher symmetry; set on the validation side (benchmarks/xrd_indexing.py)
METRIC_TOL = 0.005
#: the higher-symmetry cell refined on the same lines replaces the orthorhombic one when it
#: indexes all but at most one of its lines with at least this share of its M(20): the extra
#: free parameter of the orthorhombic cell fits noise and the zero shift a little better
METRIC_M20_SHARE = 0.7
_SQRT3 = math.sqrt(3.0)


def _higher_metric_cells(cell: tuple[float, ...]) -> list[tuple[str, np.ndarray]]:
    """(family, reciprocal-metric parameters) of the tetragonal and hexagonal cells whose
    metric the orthorhombic ``cell`` (a, b, c in Å) matches within :data:`METRIC_TOL`: two
    equal edges (tetragonal, a = their mean, c = the third edge); edges in the ratio √3 (the
    C-centred orthohexagonal cell, a_h = the shorter edge) or 2/√3 (its primitive half,
    b/2 = a_h √3/2 against a_h: a_h = the longer edge)."""
    edges = [float(x) for x in cell[:3]]
    out: list[tuple[str, np.ndarray]] = []
    for i, j in itertools.combinations(range(3), 2):
        short, long = sorted((edges[i], edges[j]))
        third = edges[3 - i - j]
        ratio = long / short
        if abs(ratio - 1) <= METRIC_TOL:
            a = 0.5 * (short + long)
            out.append(("tetragonal", np.array([a**-2, third**-2])))
        for r, a in ((_SQRT3, short), (2 / _SQRT3, long)):
            if abs(ratio / r - 1) <= METRIC_TOL:
                out.append(("hexagonal", np.array([4 / (3 * a * a), third**-2])))
    return out


def _metric_symmetry(solution: IndexingSolution, lines: _Lines) -> IndexingSolution | None:
    """The tetragonal or hexagonal cell an orthorhombic ``solution`` is a pseudo-symmetric
    description of, refined on the same ``lines`` (:func:`_refine`), when it indexes all but
    at most one of the orthorhombic cell's lines with :data:`METRIC_M20_SHARE` of its M(20);
    else None. A genuinely orthorhombic cell with two near-equal edges (α-Ga, 0.13 % apart)
    splits lines the tetragonal cell cannot index, and keeps its symmetry."""
    if solution.system != "orthorhombic":
        return None
    best = None
    for system, p0 in _higher_metric_cells(solution.cell):
        s = _refine(system, p0, lines)
        if (s is None or s.n_indexed < solution.n_indexed - 1
                or s.m20 < METRIC_M20_SHARE * solution.m20):  # fmt: skip
            continue
        if best is None or s.score > best.score:
            best = s
    return best


#: how much higher (log-evidence) a lower-symmetry cell's score must be to displace a
#: convincing cell of higher symmetry
DISPLACE = 1.0


def choose(solutions: dict[str, IndexingSolution]) -> IndexingSolution | None:
    """The convincing solution of highest score; on a tie (within :data:`DISPLACE`, in log
    units) the more symmetric one; None when a family whose metric does not contain the
    chosen one's indexes as many lines about as well (:data:`AMBIGUOUS_M20_SHARE`), or a
    family of lower symmetry indexes as many with :data:`LOWER_M20_RATIO` times its M(20)
    (fewer calculated lines for the same fit: the symmetric cell is a too-large one)."""
    ranked = [s for name in SYSTEMS if (s := solutions.get(name)) is not None and s.convincing]
    if not ranked:
        return None
    best = ranked[0]
    for s in ranked[1:]:
        if s.score > best.score + DISPLACE:
            best = s
    for s in solutions.values():
        if (s.system in CONTAINS[best.system] and s.n_indexed >= best.n_indexed
                and s.m20 >= LOWER_M20_RATIO * best.m20):  # fmt: skip
            return None
    for s in solutions.values():
        if s is best or s.system in CONTAINS[best.system]:
            continue
        if s.n_indexed >= best.n_indexed and s.m20 >= AMBIGUOUS_M20_SHARE * best.m20:
            return None  # another, unrelated metric explains the lines as well
    return best


def index_peaks(
    peaks,
    *,
    systems=DEFAULT_SYSTEMS,
    wavelength: float | None = None,
    stop_when_convincing: bool = True,
) -> IndexingResult:
    """Index a peak list.

    Args:
        peaks: a :class:`~matforge.xrd.peaks.PeakTable`, or peak positions in degrees 2θ
            (then all of equal height, with 0.01° uncertainty).
        systems: lattice families to search (:data:`SYSTEMS`), searched in that order.
        wavelength: Å, for plain positions (default Cu Kα1).
        stop_when_convincing: skip the families whose metric contains that of a convincing
            cell with M(20) ≥ 2 × :data:`CONVINCING_M20` indexing every line (orthorhombic
            after a tetragonal cell, say: they could only add parameters); families of an
            unrelated metric are still searched, for :func:`choose`'s ambiguity test.

    When no cell convinces at the measured positions, the search is repeated with the lines
    moved by each zero-point error of :data:`ZERO_SHIFT_TRIALS` in turn; the first cell
    that convinces with M(20) ≥ :data:`ZERO_SHIFT_M20` is taken, its zero shift given at the
    measured positions.

    Returns:
        An :class:`IndexingResult`; ``best`` is None when no cell convinces. An orthorhombic
        cell with a tetragonal or hexagonal metric (:func:`_metric_symmetry`) is not chosen:
        the higher-symmetry cell refined on the same lines takes its place, even when that
        family was not among ``systems``.
    """
    from matforge.errors import MatforgeError

    t0 = time.perf_counter()
    peaks = _as_peaks(peaks, wavelength)
    bad = [s for s in systems if s not in SYSTEMS]
    if bad:
        raise MatforgeError(f"unknown lattice family {bad[0]!r}; choose from {', '.join(SYSTEMS)}")
    measured = _select_lines(peaks)
    first = None
    for z in (0.0, *ZERO_SHIFT_TRIALS):
        lines = _shifted(measured, -z)
        best_of, best = _index_lines(lines, systems, stop_when_convincing)
        shifted_ok = best is None or z == 0 or (
            best.m20 >= ZERO_SHIFT_M20 and abs(best.zero_shift + z) <= MAX_ZERO_SHIFT)  # fmt: skip
        best = best if shifted_ok else None
        first = first or (best_of, best, lines)
        if best is not None or len(lines.two_theta) < 3:
            break
    else:  # no shift convinced: the solutions at the measured positions
        z, (best_of, best, lines) = 0.0, first
    classes = extinction_classes(best, lines) if best is not None else []
    back = {id(s): _unshifted(s, z) for s in best_of.values()}
    ranked = sorted(back.values(), key=lambda s: -s.score)
    best = None if best is None else back[id(best)]
    return IndexingResult(
        solutions=ranked, best=best, classes=classes, n_peaks=len(peaks),
        seconds=time.perf_counter() - t0, source=getattr(peaks, "source", ""),
    )  # fmt: skip


def _index_lines(lines: _Lines, systems, stop_when_convincing: bool):
    """(the best cell of each family searched, the chosen one or None) for ``lines``; the
    chosen cell is one of the first's values."""
    best_of: dict[str, IndexingSolution] = {}
    if len(lines.two_theta) < 3:
        return best_of, None
    skip: set[str] = set()
    for system in [s for s in SYSTEMS if s in systems]:
        if system in skip:
            continue
        found = _search(system, lines)
        if found:
            best_of[system] = s = found[0]
            if (stop_when_convincing and s.convincing and s.m20 >= _STOP_M20
                    and s.n_lines - s.n_indexed <= _STOP_UNINDEXED
                    and s.n_calc <= STOP_CALC_RATIO * s.n_indexed):  # fmt: skip
                skip |= CONTAINS[system]
    candidates = dict(best_of)
    ortho = best_of.get("orthorhombic")
    higher = _metric_symmetry(ortho, lines) if ortho is not None else None
    if higher is not None:
        # the orthorhombic cell is a pseudo-symmetric description of a tetragonal or
        # hexagonal metric: it stays among the solutions, but is not chosen
        del candidates["orthorhombic"]
        other = candidates.get(higher.system)
        if other is None or higher.score > other.score:
            candidates[higher.system] = best_of[higher.system] = higher
    return best_of, choose(candidates)


def _shifted(lines: _Lines, dz: float) -> _Lines:
    """``lines`` moved by ``dz`` degrees 2θ."""
    if dz == 0:
        return lines
    return _Lines(lines.two_theta + dz, lines.sigma, lines.height, lines.wavelength)


def _unshifted(s: IndexingSolution, z: float) -> IndexingSolution:
    """A solution found on lines moved by −``z``, given at the measured positions (its zero
    shift includes ``z``)."""
    if z == 0:
        return s
    return replace(s, zero_shift=s.zero_shift + z, two_theta_obs=s.two_theta_obs + z,
                   two_theta_calc=s.two_theta_calc + z)  # fmt: skip


def warm_tables(systems=DEFAULT_SYSTEMS) -> None:
    """Build the per-process tables of ``systems`` (reflection forms, base-line inverses,
    extinction tables: about a second, once per process). Worker processes forked after
    this call share them instead of each building its own."""
    for system in systems:
        _forms_centred(system, _H_TABLE[system])
        if N_PARAMS[system] > 1:
            _base_inverses(system)
        if system in ("cubic", "tetragonal", "hexagonal"):
            _allowed_sums(system)
        if system != "monoclinic":
            family_classes(system)


def index_pattern(
    pattern, *, wavelength: float | None = None, systems=DEFAULT_SYSTEMS, **peak_options
):
    """Find the peaks of a pattern (:func:`matforge.xrd.peaks.find_peaks`, which takes
    ``peak_options``) and index them (:func:`index_peaks`). ``pattern`` is a
    :class:`~matforge.xrd.io.Pattern` or a pattern file path."""
    from matforge.xrd.io import Pattern, read_pattern
    from matforge.xrd.peaks import find_peaks

    if not isinstance(pattern, Pattern):
        pattern = read_pattern(pattern, wavelength=wavelength)
    peaks = find_peaks(pattern, **peak_options)
    return index_peaks(peaks, systems=systems)


def _as_peaks(peaks, wavelength):
    from matforge.errors import MatforgeError
    from matforge.xrd.peaks import PeakTable

    if isinstance(peaks, PeakTable):
        return peaks
    tt = np.asarray(peaks, dtype=float).ravel()
    if not np.isfinite(tt).all() or ((tt <= 0) | (tt >= 180)).any():
        raise MatforgeError(f"peak positions must be finite degrees 2θ in (0, 180), got {tt}")
    tt = np.sort(tt)
    return PeakTable(tt, np.full(len(tt), 0.01), np.ones(len(tt)), np.full(len(tt), 0.1),
                     CU_KA1 if wavelength is None else float(wavelength))  # fmt: skip


# ---------------------------------------------------------------------------------------
# extinction classes
# ---------------------------------------------------------------------------------------


@cache
def _standard_hall() -> dict[int, int]:
    """spglib's first Hall number of each space group: the standard setting (unique axis b,
    hexagonal axes for rhombohedral groups)."""
    import warnings

    import spglib

    out: dict[int, int] = {}
    with warnings.catch_warnings():  # spglib 2.x asks every caller to opt into exceptions
        warnings.simplefilter("ignore", DeprecationWarning)
        for hall in range(1, 531):
            out.setdefault(int(spglib.get_spacegroup_type(hall).number), hall)
    return out


@cache
def _group_ops(number: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (m, 3, 3) and translations (m, 3) of the operations of space group
    ``number`` (standard setting) whose translation is not a lattice vector: the only ones
    that make reflections systematically absent."""
    import warnings

    import spglib

    hall = _standard_hall()[number]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sym = spglib.get_symmetry_from_database(hall)
    rot = np.asarray(sym["rotations"], dtype=np.int64)
    tr = np.asarray(sym["translations"], dtype=float)
    frac = np.abs(tr - np.rint(tr)).max(axis=1) > 1e-6
    return rot[frac], tr[frac]


def allowed(number: int, hkl: np.ndarray) -> np.ndarray:
    """Which reflections ``hkl`` (n, 3) space group ``number`` allows: absent when an
    operation (R, t) maps hkl onto itself (hR = h) with a phase h·t that is not whole."""
    rot, tr = _group_ops(number)
    hkl = np.asarray(hkl, dtype=np.int64)
    out = np.ones(len(hkl), dtype=bool)
    if not len(rot):
        return out
    h = hkl.astype(float)
    rots, which = np.unique(rot.reshape(len(rot), 9), axis=0, return_inverse=True)
    rots = rots.reshape(-1, 3, 3).astype(float)
    fixed = np.abs(np.matmul(h[None], rots) - h[None]).sum(axis=2) < 0.5  # (u, n)
    phase = h @ tr.T  # (n, m)
    off = np.abs(phase - np.rint(phase)) > 1e-6
    return ~(fixed[which.ravel()].T & off).any(axis=1)


_AXIS_ORDERS = tuple(itertools.permutations(range(3)))
#: largest |h|, |k|, |l| of the reflections the extinction test knows; lines beyond count
#: as allowed by every group
_H_EXTINCTION = 10


@cache
def _allowed_rows(system: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(φ rows (R, k), allowed (n_groups, n_orders, R), group numbers) of the family: whether
    each group, with its axes in each order (orthorhombic: all six), allows any reflection
    of each φ row. A few hundred ms per family, once."""
    box = _hkl_box(_H_EXTINCTION, half=False)
    f = phi(system, box)
    rows, inverse = np.unique(f, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    groups = np.array(list(FAMILY_GROUPS[system]))
    orders = _AXIS_ORDERS if system == "orthorhombic" else ((0, 1, 2),)
    out = np.zeros((len(groups), len(orders), len(rows)), dtype=bool)
    # the box is closed under axis permutations: a permuted test is a re-indexing
    span = 2 * _H_EXTINCTION + 1
    code = ((box[:, 0] + _H_EXTINCTION) * span + box[:, 1] + _H_EXTINCTION) * span + (
        box[:, 2] + _H_EXTINCTION
    )
    lookup = np.full(span**3, -1, dtype=np.int64)
    lookup[code] = np.arange(len(box))
    where = []
    for order in orders:
        pb = box[:, list(order)]
        where.append(lookup[((pb[:, 0] + _H_EXTINCTION) * span + pb[:, 1] + _H_EXTINCTION) * span
                            + pb[:, 2] + _H_EXTINCTION])  # fmt: skip
    for gi, number in enumerate(groups):
        ok = allowed(int(number), box)
        for oi in range(len(orders)):
            np.logical_or.at(out[gi, oi], inverse, ok[where[oi]])
    return rows, out, groups


@cache
def family_classes(system: str) -> dict[int, int]:
    """Powder class of each space group of lattice family ``system``: groups whose allowed
    reflections (|h|, |k|, |l| ≤ 10, orthorhombic axes in any order) put lines at the same
    places share a class — :func:`matforge.xrd.extinction.powder_classes` within one family,
    from the same spglib operations as :func:`allowed` (a fraction of a second, not seconds)."""
    _, table, groups = _allowed_rows(system)
    signature: dict[bytes, int] = {}
    out = {}
    for gi, number in enumerate(groups.tolist()):
        key = min(np.packbits(table[gi, o]).tobytes() for o in range(table.shape[1]))
        out[int(number)] = signature.setdefault(key, len(signature))
    return out


def _row_lookup(system: str, f: np.ndarray) -> np.ndarray:
    """Index of each φ row of ``f`` in :func:`_allowed_rows` (−1 if beyond its range)."""
    rows = _allowed_rows(system)[0]
    base = int(rows.max()) + 2
    code_rows = np.zeros(len(rows), dtype=np.int64)
    code_f = np.zeros(len(f), dtype=np.int64)
    for j in range(rows.shape[1]):
        code_rows = code_rows * base + rows[:, j].astype(np.int64)
        code_f = code_f * base + np.clip(f[:, j], 0, base - 1).astype(np.int64)
    order = np.argsort(code_rows)
    pos = np.clip(np.searchsorted(code_rows[order], code_f), 0, len(rows) - 1)
    found = code_rows[order][pos] == code_f
    return np.where(found, order[pos], -1)


def extinction_classes(solution: IndexingSolution, lines=None) -> list[ExtinctionClass]:
    """The powder classes of ``solution``'s lattice family ranked by how well their
    systematic absences explain the indexed lines: consistent classes (no indexed line
    forbidden) first, fewest allowed-but-unseen lines first; then the inconsistent ones.

    Every reflection whose calculated position lies within an indexed line's tolerance
    counts for that line (overlaps: a line is allowed when any of them is). Orthorhombic
    groups are tried in every assignment of their axes to the cell's, the best one counts;
    the hexagonal index form h² + hk + k² covers both rhombohedral settings.
    """
    system = solution.system
    lam = solution.wavelength
    tt = solution.two_theta_obs
    idx = solution.indexed
    tol = 0.03 if lines is None else lines.tol[: len(tt)]
    tol = np.broadcast_to(np.asarray(tol, dtype=float), tt.shape)
    z = solution.zero_shift
    q_lo = _q_of(tt - z - tol, lam)
    q_hi = _q_of(tt - z + tol, lam)
    q_top = float(q_hi.max())
    f_all, _, _ = _forms_centred(system, _H_TABLE[system])
    q = f_all @ solution.params
    keep = np.flatnonzero((q > 0) & (q <= q_top))
    q, f = q[keep], f_all[keep]
    row = _row_lookup(system, f)
    _, table, groups = _allowed_rows(system)
    # (groups, orders, reflections): allowed, unknown rows allowed
    ok = np.where(row >= 0, table[:, :, np.maximum(row, 0)], True)
    on_line = (q[None, :] >= q_lo[idx, None]) & (q[None, :] <= q_hi[idx, None])  # (L, R)
    seen = ((q[None, :] >= q_lo[:, None]) & (q[None, :] <= q_hi[:, None])).any(axis=0)
    # a line is forbidden when no reflection on it is allowed
    forbidden = (~((ok[:, :, None, :] & on_line[None, None]).any(axis=3))).sum(axis=2)
    # predicted lines (reflections merged within 2e-4 of Q) allowed but not seen
    key = np.round(q / (q_top * 2e-4)).astype(np.int64)
    _, pred_of = np.unique(key, return_inverse=True)
    n_pred = int(pred_of.max()) + 1 if len(pred_of) else 0
    unseen_allowed = np.zeros(ok.shape[:2] + (n_pred,), dtype=bool)
    for r in np.flatnonzero(~seen):
        unseen_allowed[:, :, pred_of[r]] |= ok[:, :, r]
    unobserved = unseen_allowed.sum(axis=2)
    rank = forbidden * 10_000 + unobserved  # (groups, orders)
    best_order = rank.argmin(axis=1)
    g_forb = forbidden[np.arange(len(groups)), best_order]
    g_unobs = unobserved[np.arange(len(groups)), best_order]
    classes = family_classes(system)
    results: dict[int, list] = {}
    for number, fb, un in zip(groups.tolist(), g_forb.tolist(), g_unobs.tolist(), strict=True):
        cls = classes[number]
        entry = results.setdefault(cls, [fb, un, []])
        entry[0], entry[1] = min(entry[0], fb), min(entry[1], un)
        entry[2].append(number)
    out = [ExtinctionClass(tuple(sorted(m)), f_, u) for f_, u, m in results.values()]
    out.sort(key=lambda c: (c.n_forbidden, c.n_unobserved, c.space_groups[0]))
    return out
