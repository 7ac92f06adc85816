"""Multi-task pretraining of the composition attention network on the big bundled databases,
and the leakage guard that keeps it honest.

:func:`pretrain` fits the encoder of :class:`~matforge.models.transformer.CompositionTransformer`
(element embeddings, fraction encoding, self-attention, pooling) on several properties at once —
by default OQMD's formation enthalpy, volume per atom and band gap (:data:`SOURCES`) — with one
small head per property and a masked Laplace likelihood (a composition need not have every
property). The encoder's weights, with the settings and a record of exactly which compositions
it saw, go to one file; ``CompositionTransformer(pretrained=path)`` starts every ensemble member
from them and fine-tunes on the task.

**Leakage.** A composition a model was pretrained on is not unseen when it later turns up in a
test fold, even if the fine-tuning never saw it: its representation was shaped by its label in
a neighbouring property. So pretraining drops every composition of the tasks it may later be
judged on — by default all eight composition tasks of Matbench (:data:`EXCLUDE`), every fold,
so one file serves all of them — and the file keeps the 64-bit composition keys
(:func:`matforge.chem.identity.composition_keys`) of what it did see. :func:`check_no_leakage`
refuses a test set that shares a composition with them; the benchmark calls it on every fold.

>>> from matforge.models.pretrain import pretraining_table
>>> table = pretraining_table(max_rows=2000, seed=0)        # doctest: +SKIP
>>> list(table.columns)                                     # doctest: +SKIP
['formula', 'formation_enthalpy', 'volume_per_atom', 'band_gap']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matforge.errors import MatforgeError

__all__ = [
    "EXCLUDE",
    "SOURCES",
    "LeakageError",
    "check_no_leakage",
    "composition_key_array",
    "load_pretrained",
    "pretrain",
    "pretraining_table",
    "resolve",
]

#: bundled dataset -> (its value column, the task name in the pretrained file)
SOURCES: dict[str, tuple[str, str]] = {
    "oqmd_formation_enthalpy": ("formation_enthalpy", "formation_enthalpy"),
    "oqmd_volume_per_atom": ("volume_per_atom", "volume_per_atom"),
    "oqmd_band_gap": ("band_gap", "band_gap"),
}

#: datasets whose compositions pretraining never sees: the composition tasks of Matbench, all
#: folds (a fine-tuned model is judged on their test folds)
EXCLUDE: tuple[str, ...] = (
    "matbench_expt_gap",
    "matbench_expt_is_metal",
    "matbench_glass",
    "matbench_steels",
    "matbench_log_kvrh",
    "matbench_log_gvrh",
    "matbench_mp_e_form",
    "matbench_mp_gap",
)

FORMAT = "matforge-pretrained-encoder/1"


class LeakageError(MatforgeError, ValueError):
    """A test composition was seen in pretraining."""


def composition_key_array(formulas: Sequence[str], source: str | None = None) -> np.ndarray:
    """uint64 composition key of each formula (``Fe2O3`` and ``Fe4O6`` share one)."""
    from matforge.chem.batch import CompositionBatch
    from matforge.chem.identity import composition_keys

    batch = CompositionBatch.from_formulas([str(f) for f in formulas], errors="raise",
                                           source=source)  # fmt: skip
    return composition_keys(batch.fractions)


def pretraining_table(
    sources: dict[str, tuple[str, str]] | None = None,
    exclude: Iterable[str] = EXCLUDE,
    exclude_formulas: Iterable[str] = (),
    *,
    max_rows: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per composition of the ``sources`` (clean rows only; duplicates averaged per
    property), a column per task (NaN where a source lacks the composition), without any
    composition of the ``exclude`` datasets or of ``exclude_formulas``. ``max_rows``: a random
    subset of that size (for quick runs). Columns: ``formula``, ``key`` (uint64), the tasks."""
    from matforge.datasets import load_dataset

    sources = dict(SOURCES if sources is None else sources)
    if not sources:
        raise MatforgeError("pretraining needs at least one source dataset")
    frames = []
    for name, (column, task) in sources.items():
        df = load_dataset(name)
        if column not in df.columns:
            raise MatforgeError(f"dataset {name!r} has no column {column!r}")
        df = df[(df["flag"] == "") & np.isfinite(df[column].astype(float))]
        df = pd.DataFrame({"formula": df["formula"].astype(str).to_numpy(),
                           "key": composition_key_array(df["formula"].tolist(), name),
                           task: df[column].astype(float).to_numpy()})  # fmt: skip
        frames.append(df.groupby("key", sort=False).agg(formula=("formula", "first"),
                                                        **{task: (task, "mean")}))
    table = frames[0]
    for f in frames[1:]:
        table = table.join(f, how="outer", rsuffix="_r")
        table["formula"] = table["formula"].fillna(table.pop("formula_r"))
    banned = excluded_keys(exclude, exclude_formulas)
    table = table[~table.index.isin(banned)]
    table = table.reset_index()
    if max_rows is not None and len(table) > max_rows:
        rows = np.random.default_rng(seed).choice(len(table), size=int(max_rows), replace=False)
        table = table.iloc[np.sort(rows)].reset_index(drop=True)
    tasks = [task for _, task in sources.values()]
    return table[["formula", "key", *tasks]]


def excluded_keys(exclude: Iterable[str] = EXCLUDE, formulas: Iterable[str] = ()) -> np.ndarray:
    """Sorted unique composition keys of the ``exclude`` datasets and extra ``formulas``."""
    from matforge.datasets import load_dataset

    keys = [composition_key_array(load_dataset(name)["formula"].tolist(), name)
            for name in exclude]  # fmt: skip
    extra = [str(f) for f in formulas]
    if extra:
        keys.append(composition_key_array(extra))
    return np.unique(np.concatenate(keys)) if keys else np.empty(0, dtype=np.uint64)


def check_no_leakage(pretrained: dict | str | Path, formulas: Sequence[str]) -> None:
    """Raise :class:`LeakageError` if any of ``formulas`` (a test set) has a composition the
    ``pretrained`` encoder (a file or :func:`load_pretrained`'s dict) was trained on."""
    info = pretrained if isinstance(pretrained, dict) else load_pretrained(resolve(pretrained))
    seen = info["keys"]
    formulas = [str(f) for f in formulas]
    keys = composition_key_array(formulas)
    hit = np.isin(keys, seen)
    if hit.any():
        first = [formulas[i] for i in np.flatnonzero(hit)[:5]]
        raise LeakageError(
            f"{int(hit.sum())} of {len(formulas)} test composition(s) were in the pretraining "
            f"data (first: {', '.join(first)}); pretrain without them (exclude_formulas=... or "
            f"a dataset in exclude=...) before judging the fine-tuned model on them"
        )


#: the encoder shipped with matforge (``matforge pretrain -o <this path> --epochs 8 --seed 0``
#: rebuilds it)
BUNDLED = Path(__file__).parent / "data" / "pretrained_oqmd.pt"


def resolve(pretrained: str | Path) -> Path:
    """``"bundled"`` → :data:`BUNDLED`; anything else is a path."""
    return BUNDLED if str(pretrained) == "bundled" else Path(pretrained)


def load_pretrained(path: str | Path) -> dict:
    """A pretrained encoder file as a dict: ``state`` (the encoder's tensors), ``config``
    (d_model, n_heads, n_layers, d_ff, dropout), ``tasks``, ``keys`` (sorted uint64 keys of the
    compositions seen), ``exclude``, ``seed``, ``epochs``, ``rows``, ``seconds``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MatforgeError(f"pretrained encoder file {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise MatforgeError(f"{path} is not a pretrained encoder file: {e}") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise MatforgeError(f"{path} is not a pretrained encoder file ({FORMAT})")
    out = dict(raw)
    out["keys"] = raw["keys"].numpy().view(np.uint64)
    out["path"] = str(path)
    return out


def _masked_laplace_nll(mu, log_b, y, mask):
    import torch

    err = torch.abs(torch.nan_to_num(y) - mu) * torch.exp(-log_b) + log_b
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def pretrain(
    out: str | Path,
    *,
    sources: dict[str, tuple[str, str]] | None = None,
    exclude: Iterable[str] = EXCLUDE,
    exclude_formulas: Iterable[str] = (),
    max_rows: int | None = None,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    d_ff: int = 128,
    dropout: float = 0.1,
    epochs: int = 10,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    validation_fraction: float = 0.02,
    seed: int = 0,
    device: str | None = None,
    n_threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Pretrain the encoder on ``sources`` (multi-task) and write it to ``out``.

    The same ``seed`` and settings give the same file on the same machine and torch build
    (CPU). Returns a summary: rows, tasks, per-task validation MAE (in the task's unit) after
    each epoch, seconds."""
    import torch
    from torch import nn

    from matforge.features.embedding import embedding_table
    from matforge.models.transformer import (
        ElementTokens,
        _bucketed_batches,
        _network_class,
        _to_tensors,
        warmup_cosine,
    )

    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    exclude = list(exclude)
    table = pretraining_table(sources, exclude, exclude_formulas, max_rows=max_rows, seed=seed)
    tasks = [c for c in table.columns if c not in ("formula", "key")]
    say(f"pretraining on {len(table):,} compositions, tasks {', '.join(tasks)} "
        f"(excluded: {', '.join(exclude) or 'nothing'})")  # fmt: skip
    Y = table[tasks].to_numpy(dtype=np.float64)
    mean, scale = np.nanmean(Y, axis=0), np.nanstd(Y, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Ys = (Y - mean) / scale
    T = ElementTokens(16).featurize_many(table["formula"].tolist(), ignore_errors=False)
    rng = np.random.RandomState(seed)
    n = len(table)
    perm = rng.permutation(n)
    n_val = max(1, int(round(validation_fraction * n)))
    val, train = perm[:n_val], np.sort(perm[n_val:])
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    old_threads = torch.get_num_threads()
    if n_threads:
        torch.set_num_threads(int(n_threads))
    history = []
    try:
        torch.manual_seed(seed)
        net = _network_class()(embedding_table("mat2vec")[0], d_model=d_model, n_heads=n_heads,
                               n_layers=n_layers, d_ff=d_ff, dropout=dropout).to(dev)  # fmt: skip
        heads = nn.Sequential(nn.Linear(d_model, d_ff), nn.SiLU(), nn.Dropout(dropout),
                              nn.Linear(d_ff, 2 * len(tasks))).to(dev)  # fmt: skip
        model = _multitask_network(net, heads)
        params = [p for name, p in net.named_parameters() if not name.startswith("head.")]
        params += list(heads.parameters())
        opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
        steps_per_epoch = max(1, math.ceil(len(train) / batch_size))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, warmup_cosine(steps_per_epoch * epochs, max(1, steps_per_epoch // 2))
        )
        z_all, x_all = _to_tensors(T, dev)
        y_all = torch.as_tensor(Ys, dtype=torch.float32, device=dev)
        m_all = torch.isfinite(y_all).to(torch.float32)
        counts = (z_all > 0).sum(dim=1).cpu().numpy()

        for epoch in range(epochs):
            model.train()
            for rows in _bucketed_batches(train, counts, batch_size, rng):
                idx = torch.as_tensor(rows, device=dev)
                width = int(counts[rows].max())
                mu, log_b = model(z_all[idx, :width], x_all[idx, :width])
                loss = _masked_laplace_nll(mu, log_b, y_all[idx], m_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
            mae = _validation_mae(model, z_all[val], x_all[val], Ys[val], scale)
            history.append(dict(zip(tasks, mae, strict=True)))
            say(f"epoch {epoch + 1}/{epochs}: validation MAE "
                + ", ".join(f"{t} {v:.4g}" for t, v in zip(tasks, mae, strict=True))
                + f" ({time.perf_counter() - t0:.0f} s)")
    finally:
        torch.set_num_threads(old_threads)
    state = {name: v.detach().cpu().clone() for name, v in net.state_dict().items()
             if not name.startswith("head.")}  # fmt: skip
    seconds = time.perf_counter() - t0
    keys = np.sort(table["key"].to_numpy(dtype=np.uint64))
    record = {
        "format": FORMAT,
        "state": state,
        "config": {"d_model": int(d_model), "n_heads": int(n_heads), "n_layers": int(n_layers),
                   "d_ff": int(d_ff), "dropout": float(dropout)},  # fmt: skip
        "tasks": tasks,
        "sources": {k: list(v) for k, v in (sources or SOURCES).items()},
        "exclude": exclude,
        "keys": torch.from_numpy(keys.view(np.int64).copy()),
        "seed": int(seed),
        "epochs": int(epochs),
        "rows": int(n),
        "max_rows": None if max_rows is None else int(max_rows),
        "validation_mae": history,
        "seconds": float(seconds),
        "device": str(dev),
        "torch": str(torch.__version__),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(record, tmp)
    tmp.replace(out)
    return {"path": str(out), "rows": int(n), "tasks": tasks, "validation_mae": history,
            "seconds": seconds, "bytes": out.stat().st_size}  # fmt: skip


def _multitask_network(net, heads):
    """``net``'s encoder with ``heads`` (one (mu, log b) pair per task) as one module:
    ``module(z, x)`` gives ``(mu, log_b)``, each ``(n, tasks)``."""
    from torch import nn

    class MultiTaskNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.heads = net, heads

        def forward(self, z, x):
            out = self.heads(self.net.represent(z, x))
            k = out.shape[1] // 2
            return out[:, :k], out[:, k:].clamp(-7.0, 3.0)

    return MultiTaskNet()


def _validation_mae(model, z, x, Ys, scale) -> list[float]:
    """Per-task MAE of ``model`` (:func:`_multitask_network`) at tokens ``z``, ``x`` against
    standardised ``Ys``, in the tasks' units; evaluated in eval mode (no dropout in the encoder
    or the heads), so the figure is exact and draws nothing from torch's random stream."""
    from matforge.models.transformer import _predict_net

    mu, _ = _predict_net(model, z, x)
    err = np.abs(mu - Ys) * scale
    return [float(np.nanmean(err[:, j])) for j in range(Ys.shape[1])]
