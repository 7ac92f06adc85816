"""Calibration of an atomistic oracle against DFT adsorption energies.

Universal potentials (CHGNet, SevenNet-0) were trained on bulk crystals, not on adsorbates:
their CO binding energies are shifted from DFT by a large, metal-dependent amount while
keeping much of the order. :class:`OracleCalibration` learns the correction:

* a **per-metal offset** ``E_dft ≈ E_oracle + c_m`` for each adsorption-site metal ``m`` seen
  in the calibration data (the offset absorbs the potential's metal-specific error);
* a **linear Δ-model** ``E_dft ≈ a E_oracle + b`` over all metals, the fallback for a site
  metal without calibration data.

It refuses to extrapolate silently: :meth:`OracleCalibration.predict` returns, per surface,
whether its metal had an offset (``extrapolated=False``) or fell back to the linear model
(``True``), with the std of the corresponding cross-validated residuals.
:func:`evaluate_calibration` measures raw and calibrated errors honestly: leave-one-surface-
out for the per-metal offset, leave-one-metal-out for the linear fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from matforge.errors import CatalysisError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["OracleCalibration", "evaluate_calibration"]

TARGET = "binding_energy_of_adsorbed"


def _site_metals(surfaces) -> list[str]:
    from matforge.catalysis.descriptors import as_surfaces
    from matforge.catalysis.model import site_metals

    return site_metals(as_surfaces(list(surfaces)))


class OracleCalibration:
    """Per-metal offsets with a linear fallback (module docstring). Energies in eV.

    ``min_per_metal``: surfaces a metal needs for its own offset (else it uses the fallback).
    """

    def __init__(self, min_per_metal: int = 2):
        self.min_per_metal = min_per_metal

    def fit(self, surfaces, oracle, dft) -> OracleCalibration:
        oracle = np.asarray(oracle, dtype=float)
        dft = np.asarray(dft, dtype=float)
        metals = np.array(_site_metals(surfaces))
        if not (len(metals) == len(oracle) == len(dft)):
            raise CatalysisError("surfaces, oracle and DFT energies differ in length")
        if len(dft) < 3:
            raise CatalysisError(f"calibration needs at least 3 surfaces, got {len(dft)}")
        self.slope_, self.intercept_ = np.polyfit(oracle, dft, 1)
        self.offsets_ = {}
        resid = []
        for m in sorted(set(metals.tolist())):
            sel = metals == m
            if sel.sum() >= self.min_per_metal:
                self.offsets_[m] = float(np.mean(dft[sel] - oracle[sel]))
                resid.append(dft[sel] - oracle[sel] - self.offsets_[m])
        r = np.concatenate(resid) if resid else np.zeros(1)
        self.offset_std_ = float(np.sqrt(np.mean(r**2))) if len(r) > 1 else float("nan")
        lin = dft - (self.slope_ * oracle + self.intercept_)
        self.linear_std_ = float(np.sqrt(np.mean(lin**2)))
        return self

    def predict(self, surfaces, oracle) -> pd.DataFrame:
        """``calibrated`` energy (eV), ``std`` (in-sample residual std of the rule used) and
        ``extrapolated`` (True: the site metal had no offset; the linear fallback was used)."""
        import pandas as pd

        if not hasattr(self, "offsets_"):
            raise CatalysisError("this OracleCalibration is not fitted yet")
        oracle = np.asarray(oracle, dtype=float)
        metals = _site_metals(surfaces)
        known = np.array([m in self.offsets_ for m in metals])
        off = np.array([self.offsets_.get(m, np.nan) for m in metals])
        cal = np.where(known, oracle + off, self.slope_ * oracle + self.intercept_)
        std = np.where(known, self.offset_std_, self.linear_std_)
        return pd.DataFrame({"site_metal": metals, "calibrated": cal, "std": std,
                             "extrapolated": ~known})


def _stats(err) -> dict:
    err = np.asarray(err, dtype=float)
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))),
            "mean_error": float(np.mean(err)), "n": int(len(err))}


def evaluate_calibration(table: pd.DataFrame, oracle) -> dict:
    """Raw and cross-validated calibrated errors of ``oracle`` energies against the DFT
    ``binding_energy_of_adsorbed`` of ``table`` (which has a ``surface`` column).

    * raw: oracle − DFT (MAE, RMSE, mean error), Spearman rank correlation, per metal;
    * per-metal offset, leave-one-surface-out (the held-out surface's offset from the other
      surfaces of its metal);
    * linear Δ-model, leave-one-surface-out and leave-one-metal-out (the extrapolation case).
    """
    from scipy.stats import spearmanr

    oracle = np.asarray(oracle, dtype=float)
    dft = table[TARGET].to_numpy(dtype=float)
    surfaces = table["surface"].tolist()
    metals = np.array(_site_metals(surfaces))
    n = len(dft)
    loo_off = np.full(n, np.nan)
    loo_lin = np.empty(n)
    lomo_lin = np.empty(n)
    for i in range(n):
        rest = np.arange(n) != i
        same = rest & (metals == metals[i])
        if same.sum() >= 1:
            loo_off[i] = oracle[i] + np.mean(dft[same] - oracle[same])
        a, b = np.polyfit(oracle[rest], dft[rest], 1)
        loo_lin[i] = a * oracle[i] + b
    for m in sorted(set(metals.tolist())):
        out = metals == m
        a, b = np.polyfit(oracle[~out], dft[~out], 1)
        lomo_lin[out] = a * oracle[out] + b
    per_metal = {}
    for m in sorted(set(metals.tolist())):
        sel = metals == m
        per_metal[m] = {"raw_mean_error": float(np.mean(oracle[sel] - dft[sel])),
                        "n": int(sel.sum())}
    ok = np.isfinite(loo_off)
    rho = spearmanr(oracle, dft).statistic
    return {
        "n_surfaces": n,
        "raw": {**_stats(oracle - dft), "spearman": float(rho)},
        "per_metal_offset_loo": _stats(loo_off[ok] - dft[ok]),
        "linear_delta_loo": {**_stats(loo_lin - dft),
                             "fit_all_slope_intercept": [float(v) for v in np.polyfit(oracle, dft, 1)]},
        "linear_delta_leave_one_metal_out": _stats(lomo_lin - dft),
        "per_metal": per_metal,
        "per_surface": [
            {"surface": s, "dft": float(d), "oracle": float(o), "offset_loo": float(c),
             "linear_loo": float(li)}
            for s, d, o, c, li in zip(surfaces, dft, oracle, loo_off, loo_lin, strict=True)
        ],
    }
