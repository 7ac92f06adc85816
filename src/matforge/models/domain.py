"""Applicability domain and a 2-D materials map, learned from the training features.

:class:`DomainModel` answers, for any candidate, "how far is this from what the models were
trained on?" and "which family of training compounds does it sit with?":

* ``distance`` — mean Euclidean distance to the ``n_neighbors`` nearest training rows, in a
  standardised, PCA-reduced feature space (``n_components`` dimensions, for speed), divided by
  the median of the same quantity over the training rows themselves (leave-one-out). So
  ``distance ≈ 1`` is as close as training points are to each other; ``distance > 2-3`` is
  extrapolation, where predictions and their uncertainties deserve less trust.
* ``map_x, map_y`` — 2-D coordinates (the first two principal components by default; UMAP when
  ``embedding="umap"`` and ``umap-learn`` is installed);
* ``cluster`` — an HDBSCAN cluster of the training data on the 2-D map (scikit-learn's
  ``HDBSCAN``); a candidate takes the cluster of its nearest training point on the map
  (``-1``: noise);
* ``threshold_`` — the ``quantile`` (default 0.99) of the training rows' own leave-one-out
  distances: :meth:`DomainModel.in_domain` is ``distance <= threshold_``, so a candidate is out
  of domain when it is farther from the training data than 99% of the training compositions
  are from the rest of them. Every fitted model (:class:`matforge.models.CompositionModel`)
  keeps one (``embedding=None``: the distance only, no map or clusters).

Everything is fixed at ``fit``, so a candidate's values do not depend on the other candidates
(the DiSCoVeR-style novelty ranking relies on that to stay chunk-independent).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DomainModel"]

_BLOCK = 20_000  # training rows standardised and projected at a time


class DomainModel:
    """Distance-to-training, map coordinates and cluster labels (see module docstring).

    Args:
        n_neighbors: neighbours averaged for the distance.
        n_components: PCA dimensions for the distance (≤ the number of features).
        embedding: ``"pca"`` or ``"umap"`` (needs ``umap-learn``) for the 2-D map.
        min_cluster_size: HDBSCAN's; default ``max(15, n_train // 100)``.
        max_cluster_rows: HDBSCAN runs on at most this many training rows (seeded subsample);
            the others take their nearest clustered neighbour's label.
        random_state: seeds the subsamples and UMAP.
        quantile: of the training rows' leave-one-out distances, giving ``threshold_``.
        residual: measure the distance on the principal components *and* the length of the
            rest of the standardised features (what the components do not describe), so a
            candidate unlike every training row in a direction the training data never varies
            in (an element none of them has, a noble gas among oxides) is far too; without it
            such a candidate can project onto the middle of the training data.
        max_pca_rows: the PCA is fitted on at most this many training rows (seeded
            subsample; every row is still a neighbour), which bounds the memory on large sets.

    ``embedding=None`` learns the distance and the threshold only (no map, no clusters):
    :meth:`transform` is then refused, and :meth:`to_arrays` / :meth:`from_arrays` save and
    restore the model as plain arrays (the model registry stores it so, without pickles).
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        n_components: int = 10,
        embedding: str = "pca",
        min_cluster_size: int | None = None,
        max_cluster_rows: int = 20_000,
        random_state: int = 0,
        quantile: float = 0.99,
        max_pca_rows: int = 50_000,
        residual: bool = False,
    ):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.embedding = embedding
        self.min_cluster_size = min_cluster_size
        self.max_cluster_rows = max_cluster_rows
        self.random_state = random_state
        self.quantile = quantile
        self.max_pca_rows = max_pca_rows
        self.residual = residual

    def fit(self, X: np.ndarray) -> DomainModel:
        """Learn from the (n, d) training feature matrix (NaN entries become column medians)."""
        import warnings

        from sklearn.decomposition import PCA

        if not 0.0 < self.quantile <= 1.0:
            from matforge.errors import ScreenError

            raise ScreenError(f"quantile must be in (0, 1], got {self.quantile!r}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) < 2:
            from matforge.errors import ScreenError

            raise ScreenError(f"a domain needs at least 2 training rows, got {len(X)}")
        with warnings.catch_warnings():  # a feature missing for every row: its median is 0
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median_ = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
        self.median_ = np.where(np.isfinite(self.median_), self.median_, 0.0)
        X = self._impute(X)
        self.mean_ = X.mean(axis=0)
        self.std_ = X.std(axis=0)
        # constant columns, and columns whose spread is float round-off (a fraction that is
        # 0.7 in every row, computed 0.7000000000000001 in some), are not scaled up
        self.std_[self.std_ <= 1e-9 * np.abs(X).max(axis=0)] = 1.0
        fit_rows = np.arange(len(X))
        if len(X) > self.max_pca_rows:
            pick = np.random.default_rng([self.random_state, 1])
            fit_rows = np.sort(pick.choice(fit_rows, self.max_pca_rows, replace=False))
        k = int(min(self.n_components, X.shape[1], len(fit_rows)))
        pca = PCA(n_components=k, random_state=self.random_state)
        pca.fit((X[fit_rows] - self.mean_) / self.std_)
        self.center_ = pca.mean_
        self.components_ = pca.components_
        Z = np.concatenate(  # in blocks: the standardised copy of X is never whole
            [self._reduce(X[a : a + _BLOCK]) for a in range(0, len(X), _BLOCK)]
        )
        self._fit_distance(Z)
        if self.embedding is None:
            return self
        from sklearn.cluster import HDBSCAN
        from sklearn.neighbors import NearestNeighbors

        self.train_map_ = self._embed_fit(Z)
        rng = np.random.default_rng(self.random_state)
        rows = np.arange(len(Z))
        if len(rows) > self.max_cluster_rows:
            rows = np.sort(rng.choice(rows, self.max_cluster_rows, replace=False))
        mcs = self.min_cluster_size or max(15, len(rows) // 100)
        if len(rows) <= mcs:  # too few compositions to split: one cluster
            labels_sub = np.zeros(len(rows), dtype=int)
        else:
            labels_sub = HDBSCAN(min_cluster_size=mcs, copy=True).fit_predict(self.train_map_[rows])
        self.map_nn_ = NearestNeighbors(n_neighbors=1).fit(self.train_map_[rows])
        self._map_labels = labels_sub
        self.train_cluster_ = self._nearest_label(self.train_map_)
        self.n_clusters_ = int(labels_sub.max() + 1) if len(labels_sub) else 0
        return self

    def _fit_distance(self, Z: np.ndarray) -> None:
        """Neighbour index on the reduced training rows, their LOO distances and the threshold."""
        from sklearn.neighbors import NearestNeighbors

        n_nb = int(min(self.n_neighbors, len(Z) - 1))
        self.train_z_ = Z
        self.nn_ = NearestNeighbors(n_neighbors=n_nb + 1).fit(Z)
        dist, _ = self.nn_.kneighbors(Z)
        loo = dist[:, 1:].mean(axis=1)  # the first neighbour is the row itself
        self.n_neighbors_ = n_nb
        self.scale_ = float(np.median(loo)) or 1.0
        self.train_distance_ = loo / self.scale_
        self.threshold_ = float(np.quantile(self.train_distance_, self.quantile))

    def _impute(self, X: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(X)
        if bad.any():
            X = np.where(bad, self.median_[None, :], X)
        return X

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        """Standardised, PCA-reduced rows (the projection ``PCA.transform`` makes), and with
        ``residual`` the length of what the components leave out as one more coordinate."""
        C = (self._impute(np.asarray(X, dtype=np.float64)) - self.mean_) / self.std_ - self.center_
        Z = C @ self.components_.T
        if not self.residual:
            return Z
        rest = np.einsum("ij,ij->i", C, C) - np.einsum("ij,ij->i", Z, Z)  # orthonormal rows
        return np.column_stack([Z, np.sqrt(np.maximum(rest, 0.0))])

    def _embed_fit(self, Z: np.ndarray) -> np.ndarray:
        if self.embedding == "umap":
            try:
                import umap
            except ImportError as exc:  # pragma: no cover - optional dependency
                from matforge.errors import ScreenError

                raise ScreenError(
                    "embedding='umap' needs umap-learn: pip install umap-learn"
                ) from exc
            self.umap_ = umap.UMAP(n_components=2, random_state=self.random_state).fit(Z)
            return self.umap_.embedding_
        if self.embedding != "pca":
            from matforge.errors import ScreenError

            raise ScreenError(f"embedding must be 'pca' or 'umap', got {self.embedding!r}")
        return Z[:, :2].copy()

    def _embed(self, Z: np.ndarray) -> np.ndarray:
        if self.embedding == "umap":  # pragma: no cover - optional dependency
            return self.umap_.transform(Z)
        return Z[:, :2]

    def _nearest_label(self, coords: np.ndarray) -> np.ndarray:
        _, idx = self.map_nn_.kneighbors(coords)
        return self._map_labels[idx[:, 0]].astype(np.int64)

    def transform(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``distance``, ``map_x``, ``map_y``, ``cluster`` for candidate features (n, d)."""
        if self.embedding is None:
            from matforge.errors import ScreenError

            raise ScreenError("this DomainModel has no map (embedding=None): use distance()")
        if len(X) == 0:
            empty = np.zeros(0)
            return {"distance": empty, "map_x": empty, "map_y": empty,
                    "cluster": np.zeros(0, dtype=np.int64)}  # fmt: skip
        Z = self._reduce(X)
        dist, _ = self.nn_.kneighbors(Z, n_neighbors=self.n_neighbors_)
        coords = self._embed(Z)
        return {
            "distance": dist.mean(axis=1) / self.scale_,
            "map_x": coords[:, 0].copy(),
            "map_y": coords[:, 1].copy(),
            "cluster": self._nearest_label(coords),
        }

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Only the normalised distance to the training data."""
        if len(X) == 0:
            return np.zeros(0)
        Z = self._reduce(X)
        dist, _ = self.nn_.kneighbors(Z, n_neighbors=self.n_neighbors_)
        return dist.mean(axis=1) / self.scale_

    def in_domain(self, distance: np.ndarray) -> np.ndarray:
        """``distance <= threshold_`` (False for NaN), for distances from :meth:`distance`."""
        distance = np.asarray(distance, dtype=np.float64)
        return np.isfinite(distance) & (distance <= self.threshold_)

    # -- portable state (the model registry stores these arrays, not a pickle) ----------------
    _ARRAYS = ("median_", "mean_", "std_", "center_", "components_", "train_z_")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted distance model as named float arrays (``embedding=None`` models only)."""
        if self.embedding is not None:
            from matforge.errors import ScreenError

            raise ScreenError("only a distance-only DomainModel (embedding=None) saves as arrays")
        out = {n.rstrip("_"): np.asarray(getattr(self, n), np.float64) for n in self._ARRAYS}
        out["settings"] = np.array(
            [self.n_neighbors, self.n_components, self.quantile, self.random_state, self.residual],
            np.float64,
        )
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DomainModel:
        """The distance-only model :meth:`to_arrays` wrote (neighbour index, training distances
        and threshold are rebuilt from the stored reduced training rows, as ``fit`` built them)."""
        n_neighbors, n_components, quantile, seed, residual = (float(v) for v in arrays["settings"])
        model = cls(n_neighbors=int(n_neighbors), n_components=int(n_components), embedding=None,
                    random_state=int(seed), quantile=quantile, residual=bool(residual))  # fmt: skip
        for name in cls._ARRAYS:
            setattr(model, name, np.asarray(arrays[name.rstrip("_")], np.float64))
        model._fit_distance(model.train_z_)
        return model
