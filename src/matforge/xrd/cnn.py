"""A 1D convolutional network that classifies powder XRD patterns.

One network, three heads: crystal system (7 classes), space group (230) and AFLOW prototype
(the unique labels of the bundled ``aflow_prototypes`` dataset; the loss is masked for
structures that derive from no prototype). Input: a pattern on a fixed 2θ grid (10–80° in
0.04° steps, Cu Kα1) scaled to [0, 1], fed as three channels, I, √I and log I over three
decades (:func:`prepare_input`; the square root and the logarithm lift the weak reflections
that carry the extinction rules, e.g. the (111) that tells rock salt from primitive cubic).

The body is five strided convolutions (×64 down-sampling, ~1.2 M parameters, ~5 MB of
float32 weights) followed by a fully connected layer that keeps the coarse peak positions
(no global pooling: where a peak sits matters, not only its shape). Temperatures fitted on a
validation set (:func:`fit_temperature`) calibrate each head's probabilities.

:class:`XRDClassifier` bundles the network with its metadata (grid, class names,
temperatures, training record): ``predict_proba``, ``top_k``, ``save``/``load``;
``XRDClassifier.load()`` without arguments loads the shipped weights
(``matforge/xrd/data/cnn_v1.pt`` + ``cnn_v1.json``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from torch import nn

HEADS = ("crystal_system", "spacegroup", "prototype")
MODEL_NAME = "cnn_v1"
DEFAULT_ARCH = {
    "in_channels": 3,
    "channels": [32, 48, 64, 96, 128],
    "kernels": [8, 5, 3, 3, 3],
    "strides": [4, 2, 2, 2, 2],
    "hidden": 256,
    "dropout": 0.3,
}


def bundled_dir() -> Path:
    """Folder of the shipped weights (``matforge/xrd/data``)."""
    return Path(str(files("matforge.xrd").joinpath("data")))


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------------------


class XRDNet(nn.Module):
    """Strided 1D CNN with one linear head per task.

    Args:
        n_points: length of the input grid.
        n_classes: classes per head, e.g. ``{"crystal_system": 7, "spacegroup": 230, ...}``.
        arch: layer sizes (:data:`DEFAULT_ARCH`).
    """

    def __init__(self, n_points: int, n_classes: Mapping[str, int], arch: Mapping | None = None):
        super().__init__()
        arch = dict(DEFAULT_ARCH if arch is None else arch)
        layers, c_in, length = [], arch["in_channels"], n_points
        dilations = arch.get("dilations") or [1] * len(arch["channels"])
        for c_out, k, s, dil in zip(
            arch["channels"], arch["kernels"], arch["strides"], dilations, strict=True
        ):
            span = dil * (k - 1) + 1
            layers += [
                nn.Conv1d(c_in, c_out, k, s, padding=span // 2, dilation=dil, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in, length = c_out, (length + 2 * (span // 2) - span) // s + 1
        self.body = nn.Sequential(*layers)
        self.neck = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * length, arch["hidden"]),
            nn.ReLU(inplace=True),
            nn.Dropout(arch["dropout"]),
        )
        self.heads = nn.ModuleDict({h: nn.Linear(arch["hidden"], n) for h, n in n_classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.neck(self.body(x))
        return {h: head(z) for h, head in self.heads.items()}


LOG_FLOOR = 1e-3  # the log channel spans 3 decades below the strongest peak


def prepare_input(x, channels: int = 2) -> np.ndarray:
    """Patterns (n, G) on the model grid → network input (n, channels, G) float32.

    Each pattern is shifted to a minimum of 0 and scaled to a maximum of 1 (I); the channels
    are I, √I and, with ``channels=3``, log10(max(I, 10⁻³)) / 3 + 1 (0–1): the square root
    and the logarithm lift the weak reflections that carry the extinction rules (the (111)
    of a rock-salt pattern is a few % of its (200)).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    x = x - x.min(axis=1, keepdims=True)
    peak = x.max(axis=1, keepdims=True)
    x = np.divide(x, peak, out=np.zeros_like(x), where=peak > 0)
    parts = [x, np.sqrt(x)]
    if channels == 3:
        parts.append(np.log10(np.maximum(x, LOG_FLOOR)) / -math.log10(LOG_FLOOR) + 1)
    elif channels != 2:
        raise ValueError(f"input channels must be 2 or 3, got {channels}")
    return np.stack(parts, axis=1)


# ---------------------------------------------------------------------------------------
# the classifier
# ---------------------------------------------------------------------------------------


@dataclass
class XRDClassifier:
    """A trained network with everything needed to use it.

    Attributes:
        net: the :class:`XRDNet`.
        meta: metadata: ``grid`` ([lo, hi, step] in degrees 2θ), ``wavelength`` (Å),
            ``classes`` (names per head), ``temperatures`` (per head), ``arch``,
            ``training`` (how the weights were made, metrics on validation).
    """

    net: XRDNet
    meta: dict = field(default_factory=dict)

    @property
    def grid(self) -> np.ndarray:
        """The 2θ grid the network reads, degrees."""
        lo, hi, step = self.meta["grid"]
        n = int(round((hi - lo) / step)) + 1
        return np.round(lo + step * np.arange(n), 6)

    @property
    def wavelength(self) -> float:
        """Wavelength of the grid, Å (Cu Kα1)."""
        return float(self.meta["wavelength"])

    @property
    def classes(self) -> dict[str, list[str]]:
        return self.meta["classes"]

    @property
    def _channels(self) -> int:
        return int(self.meta["arch"]["in_channels"])

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    # ----- inputs -----

    def patterns_to_array(self, patterns) -> np.ndarray:
        """:class:`~matforge.xrd.io.Pattern` s (any wavelength) → (n, G) on the model grid.

        Each pattern is converted to the model's wavelength (Bragg's law) and linearly
        interpolated; points outside the measured range are 0.
        """
        from matforge.xrd.io import Pattern

        if isinstance(patterns, Pattern):
            patterns = [patterns]
        grid = self.grid
        out = np.zeros((len(patterns), grid.size), dtype=np.float32)
        for i, p in enumerate(patterns):
            if abs(p.wavelength - self.wavelength) > 1e-6:
                p = p.to_wavelength(self.wavelength)
            out[i] = p.resample(grid)
        return out

    def _as_input(self, x) -> np.ndarray:
        from matforge.xrd.io import Pattern

        if isinstance(x, Pattern) or (
            isinstance(x, Sequence) and len(x) and isinstance(x[0], Pattern)
        ):
            x = self.patterns_to_array(x)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.shape[-1] != self.grid.size:
            raise ValueError(
                f"patterns must have {self.grid.size} points on the model grid "
                f"({self.meta['grid']}), got shape {x.shape}; pass Pattern objects to resample"
            )
        return x

    # ----- outputs -----

    @torch.no_grad()
    def predict_logits(self, x, batch_size: int = 512) -> dict[str, np.ndarray]:
        """Uncalibrated logits per head, each (n, n_classes)."""
        x = self._as_input(x)
        self.net.eval()
        parts: dict[str, list] = {h: [] for h in self.net.heads}
        for lo in range(0, len(x), batch_size):
            inp = torch.from_numpy(prepare_input(x[lo : lo + batch_size], self._channels))
            inp = inp.to(self.device)
            for h, v in self.net(inp).items():
                parts[h].append(v.float().cpu().numpy())
        return {h: np.concatenate(v) if v else np.zeros((0, 0)) for h, v in parts.items()}

    def predict_proba(self, x, calibrated: bool = True) -> dict[str, np.ndarray]:
        """Class probabilities per head, (n, n_classes) each, rows summing to 1.

        The crystal system can be read from its own head or from the space-group head
        (summing the probabilities of the space groups of each system, which keeps the two
        answers consistent); ``meta["crystal_system_from"]`` (``"head"``, ``"spacegroup"``
        or ``"product"`` of both, renormalised) says which, chosen on validation data.

        Args:
            x: patterns (n, G) on the model grid, or Pattern objects (resampled).
            calibrated: divide logits by the fitted temperatures first.
        """
        logits = self.predict_logits(x)
        temps = self.meta.get("temperatures", {}) if calibrated else {}
        proba = {h: _softmax(v / float(temps.get(h, 1.0))) for h, v in logits.items()}
        return _combine_crystal_system(proba, self.meta.get("crystal_system_from", "head"))

    def top_k(
        self, x, k: int = 5, calibrated: bool = True
    ) -> dict[str, list[list[tuple[str, float]]]]:
        """Per head, per pattern: the ``k`` most probable (class name, probability)."""
        proba = self.predict_proba(x, calibrated)
        out = {}
        for h, p in proba.items():
            names = self.classes[h]
            idx = np.argsort(-p, axis=1)[:, :k]
            out[h] = [
                [(names[j], float(row[j])) for j in ids] for row, ids in zip(p, idx, strict=True)
            ]
        return out

    # ----- persistence -----

    def save(self, directory, name: str = MODEL_NAME) -> tuple[Path, Path]:
        """Write ``name.pt`` (float32 state_dict) and ``name.json`` (metadata with the
        weights' SHA-256) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        pt, js = directory / f"{name}.pt", directory / f"{name}.json"
        state = {k: v.detach().float().cpu() if v.is_floating_point() else v.cpu()
                 for k, v in self.net.state_dict().items()}  # fmt: skip
        torch.save(state, pt)
        meta = dict(self.meta)
        meta["weights_sha256"] = hashlib.sha256(pt.read_bytes()).hexdigest()
        meta["n_parameters"] = int(sum(p.numel() for p in self.net.parameters()))
        js.write_text(json.dumps(meta, indent=1))
        self.meta = meta
        return pt, js

    @classmethod
    def load(cls, path=None, device=None) -> XRDClassifier:
        """Load weights and metadata.

        Args:
            path: ``.pt`` or ``.json`` file or their common stem; default the shipped model.
            device: torch device (default CUDA when present, else CPU).
        """
        from matforge.errors import MatforgeError

        stem = bundled_dir() / MODEL_NAME if path is None else Path(path).with_suffix("")
        pt, js = stem.with_suffix(".pt"), stem.with_suffix(".json")
        if not pt.exists() or not js.exists():
            raise MatforgeError(
                f"no trained XRD classifier at {stem} (.pt + .json); train one with "
                f"`matforge xrd train`"
            )
        meta = json.loads(js.read_text())
        net = XRDNet(len(_grid_of(meta)), {h: len(meta["classes"][h]) for h in HEADS}, meta["arch"])
        state = torch.load(pt, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.to(device or default_device()).eval()
        return cls(net=net, meta=meta)


def _combine_crystal_system(proba: dict[str, np.ndarray], how: str) -> dict[str, np.ndarray]:
    if how == "head" or "spacegroup" not in proba:
        return proba
    from matforge.xrd.augment import crystal_system_index

    sg = proba["spacegroup"]
    member = crystal_system_index(np.arange(1, sg.shape[1] + 1))
    marginal = np.zeros((len(sg), 7))
    for c in range(7):
        marginal[:, c] = sg[:, member == c].sum(axis=1)
    if how == "product":
        marginal = marginal * proba["crystal_system"]
        marginal /= np.maximum(marginal.sum(axis=1, keepdims=True), 1e-300)
    elif how != "spacegroup":
        raise ValueError(f"crystal_system_from must be head, spacegroup or product, got {how!r}")
    return {**proba, "crystal_system": marginal.astype(sg.dtype)}


def _grid_of(meta) -> np.ndarray:
    lo, hi, step = meta["grid"]
    return np.arange(int(round((hi - lo) / step)) + 1)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------


def _targets(labels: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {h: torch.as_tensor(np.asarray(labels[h], dtype=np.int64)) for h in HEADS}


def _loss(out, tgt, label_smoothing: float = 0.0) -> torch.Tensor:
    total = 0.0
    for h in HEADS:
        y = tgt[h]
        if h == "prototype" and not (y >= 0).any():
            continue
        total = total + nn.functional.cross_entropy(
            out[h], y, ignore_index=-1, label_smoothing=label_smoothing
        )
    return total


def train_classifier(
    x_train: np.ndarray | Sequence[np.ndarray],
    y_train: Mapping[str, np.ndarray],
    x_val: np.ndarray,
    y_val: Mapping[str, np.ndarray],
    *,
    classes: Mapping[str, Sequence[str]],
    grid: Sequence[float],
    wavelength: float,
    epochs: int = 6,
    batch_size: int = 256,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    label_smoothing: float = 0.0,
    seed: int = 0,
    arch: Mapping | None = None,
    device=None,
    progress: bool = True,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> XRDClassifier:
    """Train an :class:`XRDNet` and calibrate it on the validation patterns.

    Args:
        x_train, x_val: patterns (n, G) on ``grid`` (float16 or float32). ``x_train`` may
            also be a list of such arrays, rounds of the same training patterns augmented
            afresh (rows in the same order, labels ``y_train``): epoch e trains on round
            e mod the number of rounds.
        y_train, y_val: per head class indices (n,); prototype −1 where there is none.
        classes: class names per head.
        grid: [lo, hi, step] of the 2θ grid, degrees.
        wavelength: of the grid, Å.
        epochs, batch_size, lr, weight_decay: AdamW with a one-cycle schedule.
        label_smoothing: of the cross-entropy of every head (temperatures are fitted after).
        seed: seeds weights, shuffling and dropout (CPU runs are bit-reproducible for a
            fixed thread count).
        device: default CUDA when present, else CPU.
        threads: torch CPU threads (default: leave torch's setting).

    Returns:
        The classifier, with the weights of the epoch of best validation space-group
        accuracy, temperatures fitted on validation, and a training record in ``meta``.
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(
            x_train, y_train, x_val, y_val, classes=classes, grid=grid, wavelength=wavelength,
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            label_smoothing=label_smoothing, seed=seed, arch=arch, device=device,
            progress=progress, log=log,
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous)


def _train(
    x_train, y_train, x_val, y_val, *, classes, grid, wavelength, epochs, batch_size, lr,
    weight_decay, label_smoothing, seed, arch, device, progress, log,
) -> XRDClassifier:  # fmt: skip
    device = torch.device(device) if device else default_device()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    arch = dict(DEFAULT_ARCH if arch is None else arch)
    n_classes = {h: len(classes[h]) for h in HEADS}
    rounds = list(x_train) if isinstance(x_train, (list, tuple)) else [x_train]
    if not rounds or any(r.shape != rounds[0].shape for r in rounds):
        raise ValueError(
            "x_train: an array or a non-empty list of equally shaped arrays, got shapes "
            + str([getattr(r, "shape", None) for r in rounds])
        )
    n_train = len(rounds[0])
    net = XRDNet(rounds[0].shape[1], n_classes, arch).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n_train / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.15
    )
    ytr = _targets(y_train)
    clf = XRDClassifier(
        net=net,
        meta={
            "name": MODEL_NAME,
            "grid": [float(g) for g in grid],
            "wavelength": float(wavelength),
            "input": "pattern on grid, min-shifted, max-scaled; channels [I, sqrt(I)"
            + (", log10(max(I, 1e-3)) / 3 + 1]" if arch["in_channels"] == 3 else "]"),
            "arch": arch,
            "classes": {h: list(classes[h]) for h in HEADS},
            "temperatures": {h: 1.0 for h in HEADS},
        },
    )
    best_state, best_acc, history = None, -1.0, []
    t0, cpu0 = time.time(), time.process_time()
    from matforge.xrd.training_data import _progress

    with _progress(progress) as bar:
        task = bar.add_task("training", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            net.train()
            x_epoch = rounds[epoch % len(rounds)]
            order = rng.permutation(n_train)
            run_loss, n_seen = 0.0, 0
            for lo in range(0, len(order), batch_size):
                idx = order[lo : lo + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                xb = torch.from_numpy(prepare_input(x_epoch[idx], arch["in_channels"])).to(device)
                tb = {h: v[idx].to(device) for h, v in ytr.items()}
                opt.zero_grad(set_to_none=True)
                loss = _loss(net(xb), tb, label_smoothing)
                loss.backward()
                opt.step()
                sched.step()
                run_loss += loss.item() * len(idx)
                n_seen += len(idx)
                bar.update(
                    task,
                    advance=1,
                    description=f"epoch {epoch + 1}/{epochs} loss {run_loss / n_seen:.3f}",
                )
            metrics = evaluate(clf, x_val, y_val, calibrated=False)
            entry = {
                "epoch": epoch + 1,
                "train_loss": run_loss / max(1, n_seen),
                "val": {h: metrics[h]["top1"] for h in HEADS},
                "minutes": (time.time() - t0) / 60,
            }
            history.append(entry)
            if log:
                log(json.dumps(entry))
            if metrics["spacegroup"]["top1"] > best_acc:
                best_acc = metrics["spacegroup"]["top1"]
                best_state = copy.deepcopy(net.state_dict())
    if best_state is not None:
        net.load_state_dict(best_state)
    logits = clf.predict_logits(x_val)
    clf.meta["temperatures"] = {h: fit_temperature(logits[h], np.asarray(y_val[h])) for h in HEADS}
    choice = {}
    for how in ("head", "spacegroup", "product"):
        clf.meta["crystal_system_from"] = how
        choice[how] = evaluate(clf, x_val, y_val)["crystal_system"]["top1"]
    clf.meta["crystal_system_from"] = max(choice, key=lambda k: (choice[k], k == "head"))
    val = evaluate(clf, x_val, y_val)
    clf.meta["training"] = {
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "label_smoothing": label_smoothing,
        "n_train": int(n_train),
        "rounds": len(rounds),
        "n_val": int(len(x_val)),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "minutes": (time.time() - t0) / 60,
        # CPU time of all threads: wall time overstates the cost on a shared machine
        "cpu_minutes": (time.process_time() - cpu0) / 60,
        "history": history,
        "val": {h: {k: val[h][k] for k in ("top1", "top5", "nll", "ece")} for h in HEADS},
        "crystal_system_from": choice,
    }
    return clf


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimising the negative log-likelihood of softmax(logits / T)
    on labelled rows (labels < 0 are ignored); 1.0 when there are none."""
    keep = labels >= 0
    if not keep.any():
        return 1.0
    z = torch.as_tensor(logits[keep], dtype=torch.float64)
    y = torch.as_tensor(labels[keep], dtype=torch.int64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) and 0.05 < t < 20 else 1.0


def evaluate(
    clf: XRDClassifier, x, y: Mapping[str, np.ndarray], calibrated: bool = True, k: int = 5
) -> dict[str, dict]:
    """Top-1/top-k accuracy, NLL and expected calibration error per head.

    Rows whose label is negative (no prototype) are left out of that head. Returns
    ``{head: {"top1", "top5", "nll", "ece", "n", "pred" (argmax), "proba_max"}}``.
    """
    proba = clf.predict_proba(x, calibrated=calibrated)
    out = {}
    for h, p in proba.items():
        labels = np.asarray(y[h])
        keep = labels >= 0
        p, labels = p[keep], labels[keep]
        if not len(labels):
            out[h] = {"top1": float("nan"), "top5": float("nan"), "nll": float("nan"),
                      "ece": float("nan"), "n": 0, "pred": np.zeros(0, int), "proba_max": np.zeros(0)}  # fmt: skip
            continue
        top = np.argsort(-p, axis=1)[:, :k]
        pred = top[:, 0]
        conf = p.max(axis=1)
        correct = pred == labels
        out[h] = {
            "top1": float(correct.mean()),
            "top5": float((top == labels[:, None]).any(axis=1).mean()),
            "nll": float(-np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-12)).mean()),
            "ece": expected_calibration_error(conf, correct),
            "n": int(len(labels)),
            "pred": pred,
            "proba_max": conf,
        }
    return out


def expected_calibration_error(confidence, correct, n_bins: int = 15) -> float:
    """ECE: |accuracy − confidence| averaged over equal-width confidence bins."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(ece)
