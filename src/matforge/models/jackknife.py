"""Bootstrap bookkeeping and jackknife variance of bagged ensembles.

A bagged ensemble of ``B`` members trained on bootstrap samples of ``n`` rows is described by
its in-bag count matrix ``N`` (``n × B``; ``N[i, b]`` = how many times row ``i`` is in member
``b``'s sample) and, at ``m`` query points, its per-member predictions ``T`` (``B × m``). From
these two matrices alone follow the out-of-bag predictions and the variance of the ensemble
mean, estimated as in

    S. Wager, T. Hastie, B. Efron, "Confidence Intervals for Random Forests: The Jackknife and
    the Infinitesimal Jackknife", JMLR 15 (2014) 1625-1651.

Everything here is matrix algebra in chunks of query points, so memory stays bounded
(about ``8 · n · chunk`` bytes per temporary) however many points are predicted.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["inbag_counts", "jackknife_variance", "oob_mean_std", "tree_predictions"]

# Temporaries are (n_train × chunk) float64 arrays; 2**22 elements = 32 MiB each.
_CHUNK_ELEMENTS = 2**22


def chunk_size(n_rows: int, n_members: int) -> int:
    """Number of query points to process at once so that temporaries stay ~32 MiB."""
    return max(1, _CHUNK_ELEMENTS // max(n_rows, n_members, 1))


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

    ``X`` must already be validated (float32 and C-contiguous for sklearn trees).
    """
    out = np.empty((len(estimators), X.shape[0]), dtype=np.float64)
    for b, est in enumerate(estimators):
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


def jackknife_variance(
    inbag: np.ndarray,
    T: np.ndarray,
    kind: Literal["ij", "j", "average"] = "average",
    bias_correction: bool = True,
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

    Returns
    -------
    (m,) float64 array
    """
    if kind not in ("ij", "j", "average"):
        raise ValueError(f"kind must be 'ij', 'j' or 'average', got {kind!r}")
    N = np.asarray(inbag, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    n, B = N.shape
    if T.ndim != 2 or T.shape[0] != B:
        raise ValueError(f"T must have shape ({B}, m) to match inbag {N.shape}, got {T.shape}")
    Nc = N - N.mean(axis=1, keepdims=True)
    oob = (N == 0).astype(np.float64)
    n_oob = oob.sum(axis=1)
    has_oob = n_oob > 0
    oob, n_oob = oob[has_oob], n_oob[has_oob, None]

    m = T.shape[1]
    out = np.empty(m, dtype=np.float64)
    step = chunk_size(n, B)
    for start in range(0, m, step):
        Tb = T[:, start : start + step]
        t_bar = Tb.mean(axis=0)
        Tc = Tb - t_bar
        v_members = (Tc**2).mean(axis=0)
        if kind in ("ij", "average"):
            v_ij = ((Nc @ Tc / B) ** 2).sum(axis=0)
            if bias_correction:
                v_ij -= n / B * v_members
        if kind in ("j", "average"):
            # mean over the out-of-bag members minus the full mean = (O @ Tc) / n_oob
            v_j = (n - 1) / n * (((oob @ Tc) / n_oob) ** 2).sum(axis=0)
            if bias_correction:
                v_j -= (np.e - 1) * n / B * v_members
        if kind == "ij":
            out[start : start + step] = v_ij
        elif kind == "j":
            out[start : start + step] = v_j
        else:
            out[start : start + step] = 0.5 * (v_ij + v_j)
    return out
