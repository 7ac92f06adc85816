"""Bootstrap bookkeeping and jackknife variance of bagged ensembles.

A bagged ensemble of ``B`` members trained on bootstrap samples of ``n`` rows is described by
its in-bag count matrix ``N`` (``n × B``; ``N[i, b]`` = how many times row ``i`` is in member
``b``'s sample) and, at ``m`` query points, its per-member predictions ``T`` (``B × m``). From
these two matrices alone follow the out-of-bag predictions and the variance of the ensemble
mean, estimated as in

    S. Wager, T. Hastie, B. Efron, "Confidence Intervals for Random Forests: The Jackknife and
    the Infinitesimal Jackknife", JMLR 15 (2014) 1625-1651.

Everything here is matrix algebra in chunks of query points, so memory stays bounded
(about 32 MiB per temporary) however many points are predicted.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "inbag_counts",
    "jackknife_matrix",
    "jackknife_variance",
    "oob_mean_std",
    "tree_predictions",
]

# Temporaries are (B × chunk) float64 arrays; 2**22 elements = 32 MiB each.
_CHUNK_ELEMENTS = 2**22


def chunk_size(n_members: int) -> int:
    """Query points to process at once so that ``n_members × chunk`` temporaries stay ~32 MiB."""
    return max(1, _CHUNK_ELEMENTS // max(n_members, 1))


def inbag_counts(forest, n_samples: int) -> np.ndarray:
    """In-bag count matrix (``n_samples × n_estimators``, uint16) of a fitted sklearn forest.

    Uses the public ``estimators_samples_`` (sklearn >= 1.4), which lists each tree's bootstrap
    indices with repetition.
    """
    samples = forest.estimators_samples_
    counts = np.empty((n_samples, len(samples)), dtype=np.uint16)
    for b, idx in enumerate(samples):
        counts[:, b] = np.bincount(idx, minlength=n_samples)
    return counts


def tree_predictions(estimators, X: np.ndarray) -> np.ndarray:
    """Per-member predictions, ``len(estimators) × n_rows`` (float64).

    ``X`` must already be validated (float32 and C-contiguous for sklearn trees). Single-output
    sklearn trees are asked through their ``tree_`` directly, which is what their ``predict``
    returns without its per-call checks (they dominate a small request: 200 trees × ~10 µs).
    """
    out = np.empty((len(estimators), X.shape[0]), dtype=np.float64)
    for b, est in enumerate(estimators):
        tree = getattr(est, "tree_", None)
        if tree is not None and getattr(est, "n_outputs_", 0) == 1:
            out[b] = tree.predict(X)[:, 0]
        else:
            out[b] = est.predict(X, check_input=False)
    return out


def oob_mean_std(inbag: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-bag mean and standard deviation of the members at the training rows.

    ``T`` holds the members' predictions at the *training* rows (``B × n``). Returns
    ``(mean, std, count)``: the mean and the standard deviation (ddof=1) over the members whose
    sample left the row out, and how many such members there were. ``mean`` is NaN where the
    count is 0, ``std`` where it is below 2.
    """
    oob = (inbag == 0).T  # B × n
    count = oob.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(oob, T, 0.0).sum(axis=0) / count
        dev = np.where(oob, T - mean, 0.0)
        std = np.sqrt((dev**2).sum(axis=0) / (count - 1))
    mean[count == 0] = np.nan
    std[count < 2] = np.nan
    return mean, std, count


def jackknife_matrix(inbag: np.ndarray, kind: Literal["ij", "j", "average"] = "average"):
    """The ``B × B`` matrix ``M`` with uncorrected ``V(x) = t_c(x)ᵀ M t_c(x)``.

    ``t_c(x)`` are the members' predictions at ``x`` minus their mean. Both estimators are sums
    over training rows of squared linear forms in ``t_c``, so they collapse to one quadratic
    form: ``M_IJ = N_cᵀ N_c / B²`` (``N_c``: in-bag counts centred per row) and
    ``M_J = (n-1)/n · Õᵀ Õ`` (``Õ``: out-of-bag indicators divided by each row's out-of-bag
    count). Computing ``M`` once costs ``O(n B²)``; each query point then costs ``O(B²)``
    instead of ``O(n B)``. Fitted ensembles keep it.
    """
    if kind not in ("ij", "j", "average"):
        raise ValueError(f"kind must be 'ij', 'j' or 'average', got {kind!r}")
    N = np.asarray(inbag, dtype=np.float64)
    n, B = N.shape
    M = np.zeros((B, B))
    if kind in ("ij", "average"):
        Nc = N - N.mean(axis=1, keepdims=True)
        M += (Nc.T @ Nc) / B**2
    if kind in ("j", "average"):
        oob = N == 0
        n_oob = oob.sum(axis=1)
        keep = n_oob > 0  # rows inside every member's sample have no jackknife term
        oob_w = oob[keep] / n_oob[keep, None]
        M_j = (n - 1) / n * (oob_w.T @ oob_w)
        M = 0.5 * (M + M_j) if kind == "average" else M_j
    return M


def jackknife_variance(
    inbag: np.ndarray,
    T: np.ndarray,
    kind: Literal["ij", "j", "average"] = "average",
    bias_correction: bool = True,
    matrix: np.ndarray | None = None,
) -> np.ndarray:
    """Variance of a bagged ensemble's mean prediction at each query point (target units²).

    Parameters
    ----------
    inbag : (n, B) array
        In-bag counts of the ``n`` training rows in each of the ``B`` members.
    T : (B, m) array
        The members' predictions at ``m`` query points.
    kind : {"ij", "j", "average"}
        ``"ij"``: infinitesimal jackknife, ``V_IJ = Σ_i Cov_b(N_bi, t_b(x))²``;
        ``"j"``: jackknife-after-bootstrap, ``V_J = (n-1)/n Σ_i (t̄_(-i)(x) − t̄(x))²`` where
        ``t̄_(-i)`` averages the members that left row ``i`` out (rows in every member's sample
        are skipped); ``"average"``: their mean, as Citrine's Lolo reports (the two estimators'
        Monte-Carlo biases have opposite signs, Wager et al. §4).
    bias_correction : bool
        Subtract the Monte-Carlo bias of a finite ensemble (Wager et al. eqs. 12-13):
        ``n/B · v̂`` for IJ and ``(e-1)·n/B · v̂`` for J, with ``v̂`` the (ddof=0) variance of the
        members' predictions. The corrected estimate can be negative when ``B`` is small
        compared with ``n``; clip it where a variance is needed.
    matrix : (B, B) array, optional
        ``jackknife_matrix(inbag, kind)``, precomputed to save ``O(n B²)`` per call.

    Returns
    -------
    (m,) float64 array
    """
    if kind not in ("ij", "j", "average"):
        raise ValueError(f"kind must be 'ij', 'j' or 'average', got {kind!r}")
    n, B = np.shape(inbag)
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] != B:
        raise ValueError(f"T must have shape ({B}, m) to match inbag ({n}, {B}), got {T.shape}")
    M = jackknife_matrix(inbag, kind) if matrix is None else matrix
    correction = {"ij": 1.0, "j": np.e - 1, "average": np.e / 2}[kind] * n / B

    m = T.shape[1]
    out = np.empty(m, dtype=np.float64)
    step = chunk_size(B)
    for start in range(0, m, step):
        Tc = T[:, start : start + step]
        Tc = Tc - Tc.mean(axis=0)
        v = np.einsum("bm,bm->m", M @ Tc, Tc)
        if bias_correction:
            v -= correction * (Tc**2).mean(axis=0)
        out[start : start + step] = v
    return out
