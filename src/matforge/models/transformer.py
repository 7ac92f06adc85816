"""An attention network over the elements of a composition (CrabNet / Roost style), in PyTorch.

A composition is a set of (element, fraction) tokens. Each element enters as its mat2vec vector
(the bundled CBFV table, 200 dimensions, projected to ``d_model``) plus an encoding of its atomic
fraction (sines and cosines of the fraction and of its logarithm, so 0.001 and 0.01 differ as
much as 0.1 and 1); a few layers of self-attention let every element's representation depend on
its partners; the fraction-weighted mean of the element outputs goes through a small MLP head
that returns a location ``mu`` and a log-scale ``log b`` (Laplace likelihood, the "robust L1"
loss of CrabNet and Roost), so each network predicts its own aleatoric noise.

Uncertainty comes from a deep ensemble that is *cross-fitted*: member ``k`` of ``n_members``
trains on all rows but the k-th of ``n_members`` shuffled folds and early-stops on that fold.
Every training row is thus held out by exactly one member, which gives out-of-fold predictions
(``oof_prediction_``, ``oof_std_``) for free: :class:`~matforge.models.pipeline.CompositionModel`
calibrates on them instead of refitting the ensemble ``cv`` more times. A prediction is the
members' mean; its variance is the members' mean Laplace variance (``2 b²``) plus the variance of
their means, times ``std_scale_`` fitted on the out-of-fold residuals.

>>> from matforge.models import CompositionTransformer
>>> model = CompositionTransformer(n_members=3, random_state=0).fit(["Fe2O3", "NaCl", ...], y)
>>> mean, std = model.predict(["TiO2"], return_std=True)

Inputs are formula strings, pymatgen ``Composition`` objects, a
:class:`~matforge.chem.CompositionBatch`, or the token matrix of :class:`ElementTokens` (the
``element_tokens`` featurizer spec, which is how a :class:`CompositionModel` feeds it). Torch
weights are saved by the model registry as ``state_dict`` arrays (``torch_modules_`` /
``load_torch_state_``), never pickled.
"""

from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d

from matforge.errors import MatforgeError
from matforge.features.base import CompositionFeaturizer
from matforge.features.rowgroups import RowGroup

__all__ = ["CompositionTransformer", "CompositionTransformerClassifier", "ElementTokens"]

_N_FREQ = 8  # sine/cosine frequencies per fraction encoding
_LOG_FRACTION_FLOOR = 1e-4  # fractions below this share the log encoding of 1e-4
_INPUTS = ("composition", "features")


class ElementTokens(CompositionFeaturizer):
    """A composition as ``max_elements`` (Z, atomic fraction) pairs, most abundant first.

    Columns ``token_Z_0 … token_Z_{k-1}`` hold atomic numbers (0 = padding) and ``token_x_0 …``
    the atomic fractions (sum 1 over the kept elements). A composition with more than
    ``max_elements`` elements keeps its most abundant ones, renormalised.
    """

    def __init__(self, max_elements: int = 16):
        if int(max_elements) < 1:
            raise ValueError(f"max_elements must be >= 1, got {max_elements!r}")
        self.max_elements = int(max_elements)

    def feature_labels(self) -> list[str]:
        k = self.max_elements
        return [f"token_Z_{i}" for i in range(k)] + [f"token_x_{i}" for i in range(k)]

    def citations(self) -> list[str]:
        return [
            "@article{Wang2021crabnet, title={Compositionally restricted attention-based network "
            "for materials property predictions}, author={Wang, Anthony Yu-Tung and Kauwe, Steven "
            "K. and Murdock, Ryan J. and Sparks, Taylor D.}, journal={npj Computational "
            "Materials}, volume={7}, pages={77}, year={2021}}"
        ]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        a = group.amounts  # (k, m)
        x = a / a.sum(axis=0)
        order = np.argsort(-x, axis=0, kind="stable")[: self.max_elements]
        z = np.take_along_axis(group.elements + 1, order, axis=0).astype(np.float64)
        x = np.take_along_axis(x, order, axis=0)
        x = x / x.sum(axis=0)
        m, kept = a.shape[1], order.shape[0]
        out = np.zeros((m, 2 * self.max_elements))
        out[:, :kept] = z.T
        out[:, self.max_elements : self.max_elements + kept] = x.T
        return out


class _AttentionEnsemble(BaseEstimator):
    """What :class:`CompositionTransformer` and :class:`CompositionTransformerClassifier` share:
    parameters (documented on :class:`CompositionTransformer`), inputs, the cross-fitted
    training of the members and the torch plumbing. Subclasses set the training loss
    (:meth:`_loss`) and the early-stopping score (:meth:`_val_loss`) of the first output."""

    def __init__(
        self,
        n_members: int = 4,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.1,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        max_epochs: int = 150,
        patience: int = 25,
        validation_fraction: float = 0.15,
        max_elements: int = 16,
        inputs: str = "composition",
        recalibrate: bool = True,
        device: str | None = None,
        n_threads: int | None = None,
        random_state=None,
        pretrained=None,
    ):
        self.n_members = n_members
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.d_ff = d_ff
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_elements = max_elements
        self.inputs = inputs
        self.recalibrate = recalibrate
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.pretrained = pretrained

    # -- input ---------------------------------------------------------------------------
    def _tokens(self, X, fitting: bool) -> np.ndarray:
        """Token matrix (n, 2k): from formulas, Compositions, a CompositionBatch or tokens
        (``inputs="composition"``), or from a numeric feature matrix (``inputs="features"``)."""
        if self.inputs not in _INPUTS:
            raise ValueError(f"inputs must be one of {_INPUTS}, got {self.inputs!r}")
        if self.inputs == "features":
            return self._feature_tokens(X, fitting)
        from matforge.chem import CompositionBatch

        if isinstance(X, str):
            raise TypeError("pass a sequence of formulas, not one string")
        if isinstance(X, CompositionBatch):
            T = ElementTokens(self.max_elements).featurize_batch(X)
        else:
            arr = np.asarray(X) if not isinstance(X, list) else None
            if arr is not None and arr.ndim == 2 and np.issubdtype(arr.dtype, np.number):
                T = arr.astype(np.float64)
            else:
                T = ElementTokens(self.max_elements).featurize_many(list(X), ignore_errors=False)
        if T.ndim != 2 or T.shape[1] % 2 or T.shape[1] == 0:
            raise ValueError(f"token matrix must be (n, 2k), got shape {T.shape}")
        if fitting:
            self.n_features_in_ = T.shape[1]
        elif T.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {T.shape[1]} token columns, the model was fitted on {self.n_features_in_}"
            )
        bad = ~np.isfinite(T).all(axis=1)
        if bad.any():
            raise MatforgeError(
                f"{int(bad.sum())} composition(s) could not be encoded, first at row "
                f"{int(np.flatnonzero(bad)[0])}"
            )
        k = T.shape[1] // 2
        z = T[:, :k]
        wrong = (z < 0) | (z > 103) | (z != np.rint(z))
        if wrong.any():
            r, c = (int(i[0]) for i in np.nonzero(wrong))
            raise MatforgeError(
                f"token matrix row {r}, column {c}: {float(z[r, c]):g} is no atomic number (0-103); "
                "for a plain feature matrix use inputs='features'"
            )
        return T

    def _feature_tokens(self, X, fitting: bool) -> np.ndarray:
        """Feature matrix → token matrix: column j is token j + 1 carrying its standardised
        value (scikit-learn's validation: finite numbers, dense, at least one column)."""
        from sklearn.utils.validation import validate_data

        F = validate_data(self, X, reset=fitting, dtype=np.float64)
        if fitting:
            self.feature_mean_ = F.mean(axis=0)
            scale = F.std(axis=0)
            self.feature_scale_ = np.where(scale > 0, scale, 1.0)
        F = (F - self.feature_mean_) / self.feature_scale_
        ids = np.broadcast_to(np.arange(1, F.shape[1] + 1, dtype=np.float64), F.shape)
        return np.hstack([ids, F])

    def _fit_inputs(self, X, y, dtype=None) -> tuple[np.ndarray, np.ndarray]:
        """The token matrix of ``X`` (fitting) and ``y`` as a 1-D array of the same length."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        T = self._tokens(X, fitting=True)
        y = column_or_1d(np.asarray(y, dtype=dtype), warn=True)
        if y.shape[0] != T.shape[0]:
            raise ValueError(f"{T.shape[0]} compositions but {y.shape[0]} targets")
        return T, y

    def _check_size(self, n: int) -> None:
        n_members = int(self.n_members)
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members!r}")
        if n < max(2 * n_members, 10):
            raise ValueError(f"need at least {max(2 * n_members, 10)} samples, got n_samples={n}")

    def _held_out(self, n: int, rng, stratify=None) -> list[np.ndarray]:
        """The rows each member holds out: ``n_members`` folds, or one validation split."""
        from matforge.models.stacking import kfold_indices

        if int(self.n_members) >= 2:
            return kfold_indices(n, int(self.n_members), rng, stratify=stratify)
        n_val = max(1, int(round(self.validation_fraction * n)))
        return [rng.permutation(n)[:n_val]]

    def _train_members(self, T, ys, held_out, rng, encoder, on_fold):
        """Train one member per held-out fold on targets ``ys`` (float32-able); returns the
        held-out member's outputs ``(oof_mu, oof_b)`` and every member's first output on all
        rows ``(n_members, n)``."""
        import torch

        n = T.shape[0]
        device = self._device()
        self.members_, self.best_epochs_ = [], []
        oof_mu = np.full(n, np.nan)
        oof_b = np.full(n, np.nan)
        with self._threads():
            z_all, x_all = _to_tensors(T, device)
            y_all = torch.as_tensor(ys, dtype=torch.float32, device=device)
            for k, held in enumerate(held_out, 1):
                train = np.ones(n, dtype=bool)
                train[held] = False
                seed = int(rng.randint(np.iinfo(np.int32).max))
                net, epoch = self._fit_member(
                    z_all, x_all, y_all, np.flatnonzero(train), held, seed, encoder
                )
                self.members_.append(net)
                self.best_epochs_.append(epoch)
                mu, log_b = _predict_net(net, z_all[held], x_all[held])
                oof_mu[held], oof_b[held] = mu, np.exp(log_b)
                if on_fold is not None:
                    on_fold(k, len(held_out))
            mus, _ = self._member_outputs(z_all, x_all)
        self.train_device_ = str(device)
        return oof_mu, oof_b, mus

    def _predict_members(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Every member's two outputs on ``X``, (n_members, n) each; in float64, so that a row's
        prediction does not depend on which rows share its batch."""
        self._check_members()
        T = self._tokens(X, fitting=False)
        with self._threads():
            z, x = _to_tensors(T, next(self.members_[0].parameters()).device)
            return self._member_outputs(z, x, double=True)

    def _check_members(self) -> None:
        if not getattr(self, "members_", None):
            raise MatforgeError(
                f"{type(self).__name__} has no network weights (load them with the registry)"
            )

    def _pretrained_state(self) -> dict | None:
        """The encoder tensors of ``pretrained`` (None without), its settings checked."""
        if self.pretrained is None:
            return None
        from matforge.models.pretrain import load_pretrained, resolve

        if self.inputs != "composition":
            raise ValueError("pretrained encoders take compositions; use inputs='composition'")
        info = load_pretrained(resolve(self.pretrained))
        mine = {k: getattr(self, k) for k in ("d_model", "n_heads", "n_layers", "d_ff")}
        theirs = {k: info["config"][k] for k in mine}
        if mine != theirs:
            raise ValueError(f"pretrained encoder {info['path']} has {theirs}; this model has "
                             f"{mine}: set them to the file's")  # fmt: skip
        self.pretrained_tasks_ = list(info["tasks"])
        return info["state"]

    def check_leakage(self, X) -> None:
        """Raise :class:`~matforge.models.pretrain.LeakageError` if a composition of ``X`` (a
        test set) was in the pretraining data; nothing to check without ``pretrained``."""
        if self.pretrained is None:
            return
        from matforge.models.pretrain import check_no_leakage, resolve

        check_no_leakage(resolve(self.pretrained), list(X))

    def _fit_member(self, z_all, x_all, y_all, train, val, seed, encoder=None):
        """Train one network on rows ``train`` (from the ``encoder`` tensors when given);
        early-stop on the MAE of rows ``val``."""
        import torch

        device = z_all.device
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            net = _build_net(self).to(z_all.device)
            if encoder is not None:
                missing, unexpected = net.load_state_dict(encoder, strict=False)
                if unexpected or any(not k.startswith("head.") for k in missing):
                    raise MatforgeError(
                        f"pretrained encoder does not fit this network (missing {missing}, "
                        f"unexpected {unexpected})"
                    )
            # fused: one kernel for all parameters (the per-tensor loop dominated small steps)
            opt = torch.optim.AdamW(
                net.parameters(),
                lr=self.learning_rate,
                weight_decay=self.weight_decay,
                fused=True,
            )
            bs = int(self.batch_size)
            steps_per_epoch = max(1, math.ceil(len(train) / bs))
            total = steps_per_epoch * int(self.max_epochs)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, warmup_cosine(total, max(1, int(0.05 * total)))
            )
            order_rng = np.random.RandomState(seed)
            counts = (z_all > 0).sum(dim=1).cpu().numpy()
            zv, xv, yv = z_all[val], x_all[val], y_all[val]
            best, best_epoch, best_state, waited = math.inf, 0, None, 0
            for epoch in range(int(self.max_epochs)):
                net.train()
                for rows in _bucketed_batches(train, counts, bs, order_rng):
                    idx = torch.as_tensor(rows, device=z_all.device)
                    width = int(counts[rows].max())
                    mu, log_b = net(z_all[idx, :width], x_all[idx, :width])
                    loss = self._loss(mu, log_b, y_all[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                    opt.step()
                    sched.step()
                mu_v, _ = _predict_net(net, zv, xv, as_numpy=False)
                mae = self._val_loss(mu_v, yv)
                if mae < best - 1e-6:
                    best, best_epoch, waited = mae, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
                    if waited >= int(self.patience):
                        break
            if best_state is None:  # the validation MAE was never finite
                raise MatforgeError(
                    "CompositionTransformer: training diverged (validation MAE is not finite); "
                    "lower learning_rate"
                )
            net.load_state_dict(best_state)
            net.eval()
        return net, best_epoch

    # -- prediction ----------------------------------------------------------------------
    def _member_outputs(self, z, x, double: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(n_members, n) standardised means and Laplace scales of every member."""
        outs = [_predict_net(net, z, x, double=double) for net in self.members_]
        return np.stack([m for m, _ in outs]), np.exp(np.stack([lb for _, lb in outs]))

    # -- torch plumbing ------------------------------------------------------------------
    def _device(self):
        import torch

        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @contextlib.contextmanager
    def _threads(self):
        import torch

        if self.n_threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(int(self.n_threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def torch_modules_(self) -> dict:
        """``{"member_k": module}`` for the registry, which saves their ``state_dict``s."""
        check_is_fitted(self, "members_")
        return {f"member_{k}": net for k, net in enumerate(self.members_)}

    def load_torch_state_(self, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the members from ``{"member_k/<param>": array}`` (as the registry saved)."""
        import torch

        states: dict[int, dict] = {}
        for key, value in arrays.items():
            prefix, _, param = key.partition("/")
            if not prefix.startswith("member_") or not param:
                raise MatforgeError(f"unexpected torch state entry {key!r}")
            states.setdefault(int(prefix[7:]), {})[param] = torch.as_tensor(value)
        device = self._device()
        members = []
        for k in sorted(states):
            net = _build_net(self)
            try:
                net.load_state_dict(states[k])
            except RuntimeError as exc:
                raise MatforgeError(f"member {k}: weights do not fit the network: {exc}") from None
            members.append(net.to(device).eval())
        self.members_ = members

    def __getstate__(self):
        # torch modules travel as state_dicts (torch_modules_), never inside a pickle/skops file
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__
        state.pop("members_", None)
        return state


class CompositionTransformer(RegressorMixin, _AttentionEnsemble):
    """Deep ensemble of attention networks over element tokens; ``predict(X, return_std=True)``.

    Parameters
    ----------
    n_members : int, default=4
        Ensemble members. With ``n_members >= 2`` member ``k`` holds out the k-th of
        ``n_members`` folds (early stopping and out-of-fold predictions); with 1 it holds out
        ``validation_fraction`` of the rows.
    d_model, n_heads, n_layers, d_ff : int
        Width, attention heads, encoder layers and feed-forward width of each network.
    dropout : float, default=0.1
    learning_rate : float, default=2e-3
        Peak AdamW learning rate (linear warm-up over 5% of ``max_epochs``, cosine decay).
    weight_decay : float, default=1e-4
    batch_size : int, default=128
    max_epochs : int, default=150
    patience : int, default=25
        Epochs without improvement of the validation MAE before a member stops; it keeps the
        weights of its best epoch.
    validation_fraction : float, default=0.15
        Only used when ``n_members == 1``.
    max_elements : int, default=16
        Tokens per composition when the input is formulas (see :class:`ElementTokens`).
    inputs : {"composition", "features"}, default="composition"
        ``"composition"``: ``X`` holds compositions (or their token matrix). ``"features"``:
        ``X`` is a numeric matrix and every column is a token (a learned column embedding plus
        the column's standardised value times a learned per-column vector, as the
        FT-Transformer of Gorishniy et al. 2021 does), pooled with equal weights — e.g. the
        ingredient fractions of a formulation, or any descriptor table.
    recalibrate : bool, default=True
        Fit ``std_scale_`` (root-mean-variance) on the out-of-fold residuals.
    device : str or None, default=None
        Torch device; None = ``"cuda"`` when available, else ``"cpu"``.
    n_threads : int or None, default=None
        Torch CPU threads while fitting and predicting (None = leave torch's setting).
    random_state : int, RandomState or None
    pretrained : str, path or None, default=None
        A pretrained encoder file (:func:`matforge.models.pretrain.pretrain`; ``"bundled"``: the
        one shipped with matforge, pretrained on OQMD without the Matbench compositions): every
        member starts from its encoder and fine-tunes; ``d_model``, ``n_heads``, ``n_layers``,
        ``d_ff`` must match the file's. Before judging the model on a test set, call
        :meth:`check_leakage` on it.

    Attributes
    ----------
    members_ : list of fitted torch modules (not pickled; see ``torch_modules_``)
    y_mean_, y_scale_ : standardisation of the target
    best_epochs_ : list of int, the epoch each member kept
    oof_prediction_, oof_std_ : (n_samples,) out-of-fold mean and calibrated std
    std_scale_ : float
    n_features_in_ : int, width of the token matrix (``2 * max_elements``)
    """

    @staticmethod
    def _loss(mu, log_b, y):
        return _laplace_nll(mu, log_b, y)

    @staticmethod
    def _val_loss(mu, y) -> float:
        return float((mu - y).abs().mean())

    def fit(self, X, y, on_fold=None):
        """Fit the cross-fitted ensemble on compositions ``X`` and targets ``y`` (any unit).

        ``on_fold(done, total)`` is called after each trained member (progress reports)."""
        from sklearn.utils import check_random_state

        from matforge.models.recalibration import fit_std_scale

        T, y = self._fit_inputs(X, y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("targets must be finite")
        n = T.shape[0]
        self._check_size(n)
        rng = check_random_state(self.random_state)
        encoder = self._pretrained_state()
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        ys = (y - self.y_mean_) / self.y_scale_
        held_out = self._held_out(n, rng)
        oof_mu, oof_b, mus = self._train_members(T, ys, held_out, rng, encoder, on_fold)
        # Out-of-fold: the held-out member's own noise plus the ensemble's disagreement there
        # (its other members saw the row, so this spread is a lower bound; std_scale_ and the
        # pipeline's recalibration absorb the difference).
        spread = mus.std(axis=0, ddof=1) if len(self.members_) > 1 else np.zeros(n)
        raw = np.sqrt(2.0 * oof_b**2 + spread**2) * self.y_scale_
        self.oof_prediction_ = self.y_mean_ + self.y_scale_ * oof_mu
        ok = np.isfinite(self.oof_prediction_)
        self.std_scale_ = (
            fit_std_scale(y[ok] - self.oof_prediction_[ok], raw[ok]) if self.recalibrate else 1.0
        )
        self.oof_std_ = self.std_scale_ * raw
        return self

    def predict(self, X, return_std: bool = False):
        """Mean prediction (target units); with ``return_std=True`` the pair ``(mean, std)``."""
        check_is_fitted(self, "y_scale_")
        mus, bs = self._predict_members(X)
        mean = self.y_mean_ + self.y_scale_ * mus.mean(axis=0)
        if not return_std:
            return mean
        epistemic = mus.var(axis=0, ddof=1) if mus.shape[0] > 1 else 0.0
        var = np.mean(2.0 * bs**2, axis=0) + epistemic
        return mean, self.std_scale_ * self.y_scale_ * np.sqrt(var)


class CompositionTransformerClassifier(ClassifierMixin, _AttentionEnsemble):
    """Binary classifier from the same cross-fitted ensemble of attention networks.

    Each network's first output is a logit, trained with the binary cross-entropy and
    early-stopped on the held-out fold's cross-entropy; ``predict_proba`` averages the members'
    probabilities. ``oof_proba_`` (each row scored by the member that held it out) is what
    :class:`~matforge.models.pipeline.CompositionModel` sets its decision threshold on, so the
    ensemble is not refitted for cross-validation. Parameters as
    :class:`CompositionTransformer` (``recalibrate`` is unused).

    Attributes
    ----------
    classes_ : the two class labels
    members_, best_epochs_ : as :class:`CompositionTransformer`
    oof_proba_ : (n_samples,) out-of-fold probability of ``classes_[1]``
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary (two labels of any type)
        return tags

    @staticmethod
    def _loss(logit, log_b, y):
        import torch

        return torch.nn.functional.binary_cross_entropy_with_logits(logit, y)

    @staticmethod
    def _val_loss(logit, y) -> float:
        import torch

        return float(torch.nn.functional.binary_cross_entropy_with_logits(logit, y))

    def fit(self, X, y, on_fold=None):
        """Fit on compositions ``X`` and two-class labels ``y``; ``on_fold`` as
        :meth:`CompositionTransformer.fit`."""
        from sklearn.utils import check_random_state
        from sklearn.utils.multiclass import check_classification_targets, type_of_target

        T, y = self._fit_inputs(X, y)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type} "
                f"({np.unique(y).size} classes)."
            )
        self._check_size(T.shape[0])
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        rng = check_random_state(self.random_state)
        held_out = self._held_out(T.shape[0], rng, stratify=y_enc)
        encoder = self._pretrained_state()
        oof_logit, _, _ = self._train_members(
            T, y_enc.astype(np.float64), held_out, rng, encoder, on_fold
        )
        self.oof_proba_ = expit(oof_logit)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (n, 2) in the order of ``classes_``: the members' mean."""
        check_is_fitted(self, "classes_")
        logits, _ = self._predict_members(X)
        p = expit(logits).mean(axis=0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """The more probable class."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p > 0.5).astype(int)]


# -- network ------------------------------------------------------------------------------
def _build_net(params: CompositionTransformer):
    from matforge.features.embedding import embedding_table

    features = params.inputs == "features"
    return _network_class()(
        None if features else embedding_table("mat2vec")[0],
        n_columns=int(params.n_features_in_) if features else None,
        d_model=int(params.d_model),
        n_heads=int(params.n_heads),
        n_layers=int(params.n_layers),
        d_ff=int(params.d_ff),
        dropout=float(params.dropout),
    )


_NET_CLASS = None


def _network_class():
    """The torch module class, defined on first use so that importing this module is cheap."""
    global _NET_CLASS
    if _NET_CLASS is not None:
        return _NET_CLASS
    import torch
    from torch import nn

    class ElementAttentionNet(nn.Module):
        """mat2vec + fraction encoding → self-attention → weighted pooling → (mu, log b)."""

        def __init__(self, table, d_model, n_heads, n_layers, d_ff, dropout, n_columns=None):
            super().__init__()
            self.features = n_columns is not None
            if self.features:
                # FT-Transformer tokens: column embedding + value x per-column vector
                self.column = nn.Embedding(n_columns + 1, d_model)
                self.value = nn.Embedding(n_columns + 1, d_model)
            else:
                self._element_encoders(table, d_model)
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, d_ff, dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Sequential(
                nn.Linear(d_model, d_ff), nn.SiLU(), nn.Dropout(dropout), nn.Linear(d_ff, 2)
            )

        def _element_encoders(self, table, d_model):
            emb = torch.as_tensor(np.nan_to_num(np.asarray(table, dtype=np.float32)))
            emb = (emb - emb.mean(0)) / (emb.std(0) + 1e-6)
            # padding row 0; element Z at row Z. Not persistent: rebuilt from the bundled table
            self.register_buffer("table", torch.cat([torch.zeros(1, emb.shape[1]), emb]), False)
            self.register_buffer(
                "freqs", math.pi * 2.0 ** torch.arange(_N_FREQ, dtype=torch.float32), False
            )
            self.embed = nn.Linear(emb.shape[1], d_model)
            self.fraction = nn.Sequential(
                nn.Linear(4 * _N_FREQ + 2, d_model), nn.SiLU(), nn.Linear(d_model, d_model)
            )

        def encode_fraction(self, x):
            u = torch.clamp(
                torch.log(x.clamp_min(_LOG_FRACTION_FLOOR)) / math.log(_LOG_FRACTION_FLOOR), 0, 1
            )
            parts = [x[..., None], u[..., None]]
            for v in (x, u):
                angle = v[..., None] * self.freqs
                parts += [torch.sin(angle), torch.cos(angle)]
            return torch.cat(parts, dim=-1)

        def forward(self, z, x):
            out = self.head(self.represent(z, x))
            return out[:, 0], out[:, 1].clamp(-7.0, 3.0)

        def represent(self, z, x):
            """The pooled composition vector (d_model) the head reads; pretraining
            (:mod:`matforge.models.pretrain`) trains it with heads of its own."""
            pad = z == 0
            if self.features:
                h = self.column(z) + self.value(z) * x[..., None]
                w = (~pad).to(x.dtype)  # columns weigh equally
            else:
                # project the (104, 200) table once per batch, not once per token
                h = self.embed(self.table)[z] + self.fraction(self.encode_fraction(x))
                w = x.masked_fill(pad, 0.0)
            # batches are bucketed by element count: no padding, no mask (a faster kernel)
            h = self.encoder(h, src_key_padding_mask=pad if bool(pad.any()) else None)
            return self.norm((h * w[..., None]).sum(dim=1) / w.sum(dim=1, keepdim=True))

    _NET_CLASS = ElementAttentionNet
    return _NET_CLASS


def warmup_cosine(total: int, warm: int):
    """Learning-rate factor per step: linear warm-up over ``warm`` steps, then cosine decay
    to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return factor


def _to_tensors(T: np.ndarray, device):
    import torch

    k = T.shape[1] // 2
    z = torch.as_tensor(np.rint(T[:, :k]).astype(np.int64), device=device)
    x = torch.as_tensor(T[:, k:], dtype=torch.float32, device=device)
    return z, x


def _bucketed_batches(rows: np.ndarray, counts: np.ndarray, batch: int, rng) -> list:
    """One epoch's mini-batches of ``rows``: shuffled, then sorted by element count and cut
    into chunks of ``batch``, in random order.

    Rows of a chunk (nearly always) have the same number of elements, so a batch needs no
    padding and attention costs what the compositions need (CrabNet sorts by length likewise).
    A final chunk of one row joins the one before (batch statistics of one row are noise).
    """
    rows = rng.permutation(rows)
    rows = rows[np.argsort(counts[rows], kind="stable")]
    chunks = [rows[lo : lo + batch] for lo in range(0, len(rows), batch)]
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        chunks[-2] = np.concatenate([chunks[-2], chunks.pop()])
    return [chunks[i] for i in rng.permutation(len(chunks))]


def _predict_net(net, z, x, as_numpy: bool = True, batch: int = 4096, double: bool = False):
    """Standardised ``(mu, log b)`` of one network at token tensors ``z``, ``x``, in eval mode
    (no dropout, no draws from torch's random stream); shape ``(n,)``, or ``(n, k)`` for a
    network with ``k`` outputs (the multi-task pretraining network).

    ``double`` evaluates a float64 copy of the network: float32 matrix products round
    differently with the batch's size, so a row's prediction would change in the 7th digit
    with the rows it is predicted with.
    """
    import torch

    if double:
        net, x = copy.deepcopy(net).double(), x.double()
    net.eval()
    if z.shape[0] == 0:
        empty = np.empty(0) if as_numpy else z.new_empty(0, dtype=torch.float32)
        return empty, empty
    counts = (z > 0).sum(dim=1)
    # rows sorted by element count: chunks with (nearly) no padding
    order = torch.argsort(counts, stable=True)
    mu = log_b = None
    with torch.no_grad():
        for lo in range(0, z.shape[0], batch):
            rows = order[lo : lo + batch]
            width = max(1, int(counts[rows].max()))
            m, b = net(z[rows, :width], x[rows, :width])
            if mu is None:
                mu = m.new_empty((z.shape[0], *m.shape[1:]))
                log_b = b.new_empty((z.shape[0], *b.shape[1:]))
            mu[rows], log_b[rows] = m, b
    if as_numpy:
        return mu.cpu().numpy().astype(np.float64), log_b.cpu().numpy().astype(np.float64)
    return mu, log_b


def _laplace_nll(mu, log_b, y):
    """Negative log-likelihood of a Laplace(mu, b) (CrabNet's robust L1), up to a constant."""
    import torch

    return torch.mean(torch.abs(y - mu) * torch.exp(-log_b) + log_b)
