"""Bounded convex polytopes ``{x : A_eq x = b_eq, A_ub x ≤ b_ub}``: feasibility, a uniform
hit-and-run sampler, Euclidean projection and exact repair of nearly-feasible points.

:class:`~matforge.design.spaces.FormulationSpace` builds one polytope per set of active
ingredients (a face of the constrained simplex) and falls back to this sampler when rejection
sampling from a Dirichlet distribution accepts too few draws.

Degenerate polytopes are handled: inequalities that hold with equality everywhere (a group
whose min equals its max, an ingredient pinned by the others' bounds) are detected with linear
programs and moved to the equality set, so the sampler walks in the polytope's affine hull.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Polytope", "project_box_simplex"]

# HiGHS' default feasibility tolerance (1e-7) is too loose for "exact within 1e-9".
_LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _linprog(c, A_ub, b_ub, bounds):
    """HiGHS with tight tolerances; on numerical trouble (degenerate faces), retry with the
    dual simplex and then the interior-point method at default tolerances."""
    from scipy.optimize import linprog

    res = None
    for method, options in (("highs", _LP_OPTIONS), ("highs-ds", {}), ("highs-ipm", {})):
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method=method, options=options)
        if res.status in (0, 2):
            break
    return res


class Polytope:
    """The bounded polytope ``{x ∈ R^m : A_eq x = b_eq, A_ub x ≤ b_ub}``.

    Parameters
    ----------
    A_eq, b_eq : (k, m) and (k,) arrays (k may be 0)
    A_ub, b_ub : (r, m) and (r,) arrays; together with the equalities they must bound the set.
    scale : float
        Typical size of the coordinates (the total of a formulation); tolerances are relative to it.

    Attributes
    ----------
    feasible : bool
    dim : int
        Dimension of the affine hull (0 for a single point).
    center : (m,) array
        Chebyshev centre within the affine hull: the point farthest from every non-tight facet.
    radius : float
        Distance from ``center`` to the nearest non-tight facet.
    """

    def __init__(self, A_eq, b_eq, A_ub, b_ub, scale: float = 1.0):
        self.A_ub = np.atleast_2d(np.asarray(A_ub, dtype=float))
        m = self.A_ub.shape[1]
        self.m = m
        self.b_ub = np.asarray(b_ub, dtype=float).reshape(-1)
        self.A_eq = np.asarray(A_eq, dtype=float).reshape(-1, m)
        self.b_eq = np.asarray(b_eq, dtype=float).reshape(-1)
        self.scale = float(scale)
        self.feasible = False
        self.dim = 0
        self.center = np.full(m, np.nan)
        self.radius = 0.0
        self._setup()

    # -- construction --------------------------------------------------------------------------

    def _setup(self) -> None:
        from scipy.linalg import null_space

        m, tol = self.m, 1e-9 * self.scale
        implicit = np.zeros(len(self.b_ub), dtype=bool)
        while True:
            A_eq = np.vstack([self.A_eq, self.A_ub[implicit]])
            b_eq = np.concatenate([self.b_eq, self.b_ub[implicit]])
            if len(b_eq):
                x0 = np.linalg.lstsq(A_eq, b_eq, rcond=None)[0]
                if np.abs(A_eq @ x0 - b_eq).max() > tol:
                    return  # inconsistent equalities
                N = null_space(A_eq)
            else:
                x0, N = np.zeros(m), np.eye(m)
            G = self.A_ub @ N
            h = self.b_ub - self.A_ub @ x0
            norms = np.linalg.norm(G, axis=1)
            active = (norms > 1e-12) & ~implicit
            flat = ~active & ~implicit
            if (h[flat] < -tol).any():
                return  # a constraint that no point of the affine hull satisfies
            d = N.shape[1]
            self._active, self._A_eq_all, self._b_eq_all = active, A_eq, b_eq
            self._pinv_eq = np.linalg.pinv(A_eq) if len(b_eq) else None
            self.x0, self.N, self.dim = x0, N, d
            if d == 0 or not active.any():
                if (self.A_ub[~implicit] @ x0 - self.b_ub[~implicit] > tol).any():
                    return
                self.feasible, self.center, self.radius = True, x0, 0.0
                self.dim = d if active.any() else 0
                self._G, self._h, self._y_center = G[active], h[active], np.zeros(d)
                return
            Gs, hs, ns = G[active], h[active], norms[active]
            # Chebyshev centre in the hull's coordinates y: maximise r with G y + r‖G_i‖ ≤ h.
            c = np.zeros(d + 1)
            c[-1] = -1.0
            res = _linprog(c, np.hstack([Gs, ns[:, None]]), hs,
                           [(None, None)] * d + [(0, self.scale)])
            if res.status == 2:
                return
            if res.status != 0:
                raise RuntimeError(f"Chebyshev-centre LP failed: {res.message}")
            y = res.x[:d]
            r = float(((hs - Gs @ y) / ns).min())
            if r > 1e-10 * self.scale:
                break
            # Flat polytope: find the inequalities that hold with equality everywhere.
            found = False
            for i in np.flatnonzero(active):
                res_i = _linprog(G[i], Gs, hs, [(None, None)] * d)
                if res_i.status == 0 and h[i] - res_i.fun <= tol:
                    implicit[i] = found = True
            if not found:
                if r < -tol:
                    return
                break  # thin but not provably flat: sample it as it is
        self.feasible = True
        self._G, self._h, self._y_center = Gs, hs, y
        self.center, self.radius = x0 + N @ y, max(r, 0.0)

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points, approximately uniform, by hit-and-run from the Chebyshev centre.

        Between 32 and 256 chains run in parallel. Burn-in is three phases of ``10 + 5·dim``
        steps; after each phase the direction distribution is re-shaped by the chains'
        covariance, which rounds elongated polytopes (any fixed, symmetric direction law keeps
        the uniform distribution stationary). Then each chain contributes one point every
        ``max(2, dim)`` steps, so points from one chain are weakly correlated. Mixing is
        heuristic, not certified.
        """
        if not self.feasible:
            raise ValueError("cannot sample an empty polytope")
        if self.dim == 0 or len(self._h) == 0:
            return np.tile(self.center, (n, 1))
        d = self.dim
        chains = min(max(n, 32), 256)
        Y = np.tile(self._y_center, (chains, 1))
        S = np.tile(self._h - self._G @ self._y_center, (chains, 1))
        L = np.eye(d)

        def walk(steps: int) -> None:
            nonlocal Y, S
            for _ in range(steps):
                D = rng.standard_normal((chains, d)) @ L.T
                GD = D @ self._G.T
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = S / GD
                t_hi = np.where(GD > 1e-14, ratio, np.inf).min(axis=1)
                t_lo = np.where(GD < -1e-14, ratio, -np.inf).max(axis=1)
                t = t_lo + (t_hi - t_lo) * rng.random(chains)
                t = np.where(np.isfinite(t), t, 0.0)
                Y = Y + t[:, None] * D
                S = np.maximum(S - t[:, None] * GD, 0.0)

        for phase in range(3):
            walk(10 + 5 * d)
            if phase < 2:
                cov = np.cov(Y, rowvar=False).reshape(d, d)
                cov += (1e-12 * np.trace(cov) / d + 1e-300) * np.eye(d)
                try:
                    L = np.linalg.cholesky(cov)
                except np.linalg.LinAlgError:
                    L = np.eye(d)
        draws = [Y]
        while len(draws) * chains < n:
            walk(max(2, d))
            draws.append(Y)
        X = self.x0 + np.vstack(draws)[:n] @ self.N.T
        return self.polish(X)

    # -- repair and projection -----------------------------------------------------------------

    def polish(self, X: np.ndarray) -> np.ndarray:
        """Make nearly-feasible points exactly feasible (to rounding) with the smallest change.

        Equalities are restored by an orthogonal correction onto the affine hull; points still
        outside an inequality are pulled towards the Chebyshev centre just far enough.
        """
        X = np.array(X, dtype=float, ndmin=2)
        if self._pinv_eq is not None:
            X = X - (X @ self._A_eq_all.T - self._b_eq_all) @ self._pinv_eq.T
        if self.radius <= 0:
            return X
        # Rows tight everywhere (moved to the equalities) or constant on the hull are left out.
        A, b = self.A_ub[self._active], self.b_ub[self._active]
        viol = X @ A.T - b
        bad = (viol > 0).any(axis=1)
        if bad.any():
            ac = A @ self.center - b  # < 0 on every non-tight row
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.where(viol[bad] > 0, -ac / (viol[bad] - ac), np.inf)
            s = np.clip(s.min(axis=1), 0.0, 1.0) * (1 - 1e-12)
            X[bad] = self.center + s[:, None] * (X[bad] - self.center)
        return X

    def project(self, p: np.ndarray) -> np.ndarray:
        """The point of the polytope nearest to ``p`` in Euclidean distance (SLSQP, then polish)."""
        from scipy.optimize import minimize

        if not self.feasible:
            raise ValueError("cannot project onto an empty polytope")
        p = np.asarray(p, dtype=float)
        start = self.polish(p[None])[0]
        if self.dim == 0:
            return start
        constraints = [{"type": "ineq", "fun": lambda x: self.b_ub - self.A_ub @ x,
                        "jac": lambda x: -self.A_ub}]
        if len(self._b_eq_all):
            constraints.append({"type": "eq", "fun": lambda x: self._A_eq_all @ x - self._b_eq_all,
                                "jac": lambda x: self._A_eq_all})
        res = minimize(lambda x: 0.5 * np.sum((x - p) ** 2), start, jac=lambda x: x - p,
                       method="SLSQP", constraints=constraints,
                       options={"ftol": 1e-15, "maxiter": 300})
        x = self.polish(res.x[None])[0]
        return x if np.sum((x - p) ** 2) <= np.sum((start - p) ** 2) else start


def project_box_simplex(p: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of ``p`` onto ``{x : lo ≤ x ≤ hi, Σx = total}`` (assumed non-empty).

    The solution is ``clip(p − λ, lo, hi)`` with ``λ`` the root of a decreasing piecewise-linear
    function, found exactly by interpolating between its breakpoints.
    """
    p, lo, hi = (np.asarray(a, dtype=float) for a in (p, lo, hi))
    bps = np.sort(np.concatenate([p - lo, p - hi]))
    f = np.clip(p[None, :] - bps[:, None], lo, hi).sum(axis=1)  # decreasing in bps
    lam = np.interp(total, f[::-1], bps[::-1])
    return np.clip(p - lam, lo, hi)
