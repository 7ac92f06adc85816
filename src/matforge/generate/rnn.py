"""A recurrent language model of formulas (GRU over formula tokens).

Trained by teacher forcing on canonical token sequences (:mod:`matforge.generate.tokens`),
sampled with temperature and nucleus (top-p) sampling through the grammar masks, so every sample
is a formula. Optionally conditioned on a property bin (an embedding added to every input
token): trained with the bin of each labelled composition and a "none" bin for the unlabelled,
it samples either unconditionally or for one bin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from matforge.errors import GenerateError
from matforge.generate.tokens import (
    ELEMENT_ORDER,
    N_SPECIAL,
    PAD,
    FormulaTokenizer,
    Grammar,
)

__all__ = ["Condition", "ConditionedGenerator", "FormulaLM"]


@dataclass(frozen=True)
class Condition:
    """Property bins a model is conditioned on: ``edges`` (ascending, in ``unit``) cut the
    property into ``len(edges) + 1`` bins; bin ``k`` is ``[edges[k-1], edges[k])``."""

    name: str
    edges: tuple[float, ...]
    unit: str = ""

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Bin index per value; NaN (unlabelled) gets ``n_bins`` (the "none" bin)."""
        values = np.asarray(values, dtype=float)
        out = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.where(np.isnan(values), self.n_bins, out)

    def bin_of_window(self, lo: float, hi: float) -> int:
        """The bin that is exactly ``[lo, hi)``; raises listing the bins otherwise."""
        lows = (-math.inf, *self.edges)
        highs = (*self.edges, math.inf)
        for k, (a, b) in enumerate(zip(lows, highs, strict=True)):
            if math.isclose(a, lo, abs_tol=1e-9) and math.isclose(b, hi, abs_tol=1e-9):
                return k
        names = ", ".join(self.describe_bins())
        raise GenerateError(
            f"condition {self.name}={lo:g}:{hi:g} is not one of the model's bins: {names}"
        )

    def describe_bins(self) -> list[str]:
        lows = (-math.inf, *self.edges)
        highs = (*self.edges, math.inf)
        return [f"{self.name}={a:g}:{b:g}" for a, b in zip(lows, highs, strict=True)]


class ConditionedGenerator:
    """What the trained formula generators share (:class:`FormulaLM`, :class:`~matforge.generate.
    gan.FormulaGAN`): a ``config`` with an optional property :class:`Condition`, a network
    ``net`` once fitted, and one file format (fp16 weights, configuration, fit report)."""

    #: the ``kind`` written into a saved file and checked on loading
    _kind: ClassVar[str] = ""
    #: what the model is called in messages ("GAN", "language model")
    _noun: ClassVar[str] = "model"
    #: the configuration dataclass
    _config_class: ClassVar[type] = object

    config: Any
    net: Any
    fit_report_: dict

    @property
    def condition(self) -> Condition | None:
        c = self.config.condition
        return Condition(c["name"], tuple(c["edges"]), c.get("unit", "")) if c else None

    def _check_fitted(self):
        if self.net is None:
            raise GenerateError(f"the {self._noun} is not trained: call fit() or load()")

    def _cond_index(self, condition: tuple[float, float] | int | None) -> int:
        cm = self.condition
        if condition is None:
            return cm.n_bins if cm else 0
        if cm is None:
            raise GenerateError("this model is not conditioned on a property")
        if isinstance(condition, int):
            if not 0 <= condition < cm.n_bins:
                raise GenerateError(f"condition bin must be in 0..{cm.n_bins - 1}")
            return condition
        return cm.bin_of_window(*condition)

    def save(self, path: str | Path) -> Path:
        """Write the network (fp16), its configuration and fit report to ``path``."""
        import torch

        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "kind": self._kind,
                "config": asdict(self.config),
                "fit_report": self.fit_report_,
                "state": {k: v.half() for k, v in self.net.state_dict().items()},
            },
            path,
        )
        return path

    @classmethod
    def _from_file(cls, path: str | Path):
        """(a model with the saved configuration and fit report, the network's float32 state
        dict) from a file written by :meth:`save`."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise GenerateError(f"no {cls._noun} file at {path}")
        doc = torch.load(path, map_location="cpu", weights_only=True)
        if doc.get("kind") != cls._kind:
            raise GenerateError(f"{path} is not a matforge {cls._noun}")
        self = cls()
        cfg = doc["config"]
        cfg["elements"] = tuple(cfg["elements"])
        self.config = cls._config_class(**cfg)
        self.fit_report_ = doc.get("fit_report", {})
        return self, {k: v.float() for k, v in doc["state"].items()}


@dataclass
class LMConfig:
    embed: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    max_elements: int = 8
    max_count: int = 32
    elements: tuple[str, ...] = field(default_factory=tuple)  # seen in training
    condition: dict | None = None


def _module(config: LMConfig, vocab_size: int):
    import torch
    from torch import nn

    class FormulaGRU(nn.Module):
        def __init__(self):
            super().__init__()
            n_cond = Condition(**config.condition).n_bins + 1 if config.condition else 1
            self.embed = nn.Embedding(vocab_size, config.embed, padding_idx=PAD)
            self.cond = nn.Embedding(n_cond, config.embed)
            self.gru = nn.GRU(
                config.embed,
                config.hidden,
                num_layers=config.layers,
                batch_first=True,
                dropout=config.dropout if config.layers > 1 else 0.0,
            )
            self.out = nn.Linear(config.hidden, vocab_size)

        def forward(self, tokens, cond, h=None):
            x = self.embed(tokens) + self.cond(cond)[:, None, :]
            y, h = self.gru(x, h)
            return self.out(y), h

    torch.manual_seed(0)
    return FormulaGRU()


class FormulaLM(ConditionedGenerator):
    """GRU language model over formula tokens.

    Parameters
    ----------
    hidden, layers, embed, dropout : network size.
    max_elements, max_count : the grammar's limits; training compositions beyond them are
        left out (and counted in ``fit_report_``).
    condition : Condition or None
        Condition on bins of a property.
    """

    _kind = "matforge.generate.FormulaLM"
    _noun = "language model"
    _config_class = LMConfig

    def __init__(
        self,
        *,
        hidden: int = 256,
        layers: int = 2,
        embed: int = 64,
        dropout: float = 0.1,
        max_elements: int = 8,
        max_count: int = 32,
        condition: Condition | None = None,
    ):
        self.tokenizer = FormulaTokenizer()
        self.config = LMConfig(
            embed=embed,
            hidden=hidden,
            layers=layers,
            dropout=dropout,
            max_elements=max_elements,
            max_count=max_count,
            condition=asdict(condition) if condition else None,
        )
        self.net = None
        self.fit_report_: dict = {}

    # -- training -------------------------------------------------------------------------
    def _usable(self, formulas: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        tokens = self.tokenizer.encode_batch(formulas)
        counts = tokens[:, 2::2]
        n_el = (counts >= self.tokenizer.count_offset).sum(axis=1)
        big = (counts - self.tokenizer.count_offset + 1 > self.config.max_count).any(axis=1)
        keep = (n_el <= self.config.max_elements) & ~big
        return tokens, keep

    def fit(
        self,
        formulas: Sequence[str],
        *,
        values: Sequence[float] | None = None,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 2e-3,
        seed: int = 0,
        time_limit: float | None = None,
        progress: Callable[[int, float], None] | None = None,
    ) -> FormulaLM:
        """Teacher-forced training on canonical formulas (``values``: the conditioning
        property per formula, NaN where unknown). ``time_limit`` (s) stops early."""
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        tokens, keep = self._usable(formulas)
        if keep.sum() == 0:
            raise GenerateError("no training formula fits the model's limits")
        cond_model = self.condition
        if cond_model is not None and values is None:
            raise GenerateError(f"a model conditioned on {cond_model.name} needs values")
        if cond_model is not None:
            cond = cond_model.bins(np.asarray(values, dtype=float))
        else:
            cond = np.zeros(len(tokens), dtype=np.int64)
        tokens, cond = tokens[keep], cond[keep]
        # odd positions hold the element tokens (or <eos>/<pad> after the last count)
        self.config.elements = tuple(
            ELEMENT_ORDER[t - N_SPECIAL]
            for t in np.unique(tokens[:, 1::2]).tolist()
            if N_SPECIAL <= t < self.tokenizer.count_offset
        )
        self.net = _module(self.config, self.tokenizer.vocab_size)
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        n = len(tokens)
        steps_per_epoch = math.ceil(n / batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=epochs * steps_per_epoch
        )
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
        T = torch.from_numpy(tokens)
        C = torch.from_numpy(cond.astype(np.int64))
        start = time.perf_counter()
        history = []
        self.net.train()
        for epoch in range(epochs):
            perm = torch.from_numpy(rng.permutation(n))
            total, count = 0.0, 0
            for lo in range(0, n, batch_size):
                idx = perm[lo : lo + batch_size]
                batch = T[idx]
                length = int((batch != PAD).sum(1).max())
                batch = batch[:, :length]
                c = C[idx]
                if cond_model is not None:
                    # 10 % of the labelled rows train the unconditional ("none") bin too
                    drop = torch.rand(len(c)) < 0.1
                    c = torch.where(drop, torch.full_like(c, cond_model.n_bins), c)
                logits, _ = self.net(batch[:, :-1], c)
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            history.append(total / count)
            if progress:
                progress(epoch + 1, history[-1])
            if time_limit and time.perf_counter() - start > time_limit:
                break
        self.net.eval()
        self.fit_report_ = {
            "n_train": int(n),
            "n_left_out": int((~keep).sum()),
            "epochs": len(history),
            "loss": history,
            "seconds": round(time.perf_counter() - start, 1),
        }
        return self

    # -- sampling -------------------------------------------------------------------------
    def grammar(self, batch_size: int, *, required=None, forbidden=None) -> Grammar:
        """The sampling grammar: the model's limits and the elements it saw in training."""
        unknown = sorted((set(required or ()) | set(forbidden or ())) - set(ELEMENT_ORDER) - {""})
        if unknown:
            raise GenerateError(f"unknown element(s): {', '.join(unknown)}")
        unseen = set(required or ()) - set(self.config.elements) - {""}
        if unseen and self.config.elements:
            raise GenerateError(
                f"required elements {sorted(unseen)} never occur in the model's training data"
            )
        return Grammar(
            self.tokenizer,
            batch_size,
            max_elements=self.config.max_elements,
            max_count=self.config.max_count,
            required=required,
            forbidden=forbidden,
            allowed_elements=self.config.elements or None,
        )

    def sample_tokens(
        self,
        n: int,
        *,
        net=None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        required=None,
        forbidden=None,
        condition=None,
        generator=None,
    ):
        """Sample ``n`` token sequences; returns (tokens (n, L) LongTensor, log-prob per
        sequence under ``net`` (default: this model), with grad if ``net`` requires it)."""
        import torch

        self._check_fitted()
        if temperature <= 0:
            raise GenerateError(f"temperature must be positive, got {temperature}")
        if not 0 < top_p <= 1:
            raise GenerateError(f"top_p must be in (0, 1], got {top_p}")
        net = net or self.net
        grammar = self.grammar(n, required=required, forbidden=forbidden)
        c = torch.full((n,), self._cond_index(condition), dtype=torch.long)
        tok = torch.full((n, 1), 1, dtype=torch.long)  # <bos>
        out = [tok]
        logps = torch.zeros(n)
        h = None
        max_len = 2 * self.config.max_elements + 1
        for _ in range(max_len):
            logits, h = net(tok, c, h)
            mask = torch.from_numpy(grammar.allowed())
            logits = logits[:, -1].masked_fill(~mask, -math.inf)
            logp = torch.log_softmax(logits, dim=-1)
            # shift by the row maximum before dividing: a tiny temperature then gives 0 for the
            # best token and -inf for the rest (greedy), never inf - inf = nan
            top = logits.detach().max(dim=-1, keepdim=True).values
            probs = torch.softmax((logits.detach() - top) / max(temperature, _T_FLOOR), dim=-1)
            if top_p < 1.0:
                probs = _nucleus(probs, top_p)
            tok = torch.multinomial(probs, 1, generator=generator)
            done = torch.from_numpy(grammar.done.copy())
            logps = logps + torch.where(done, 0.0, logp.gather(1, tok)[:, 0])
            grammar.step(tok[:, 0].numpy())
            out.append(tok)
            if grammar.done.all():
                break
        return torch.cat(out, dim=1), logps

    def log_likelihood(self, tokens, *, net=None, condition=None, required=None, forbidden=None):
        """Log-probability of each token sequence under the masked model (differentiable)."""
        import torch

        self._check_fitted()
        net = net or self.net
        n = tokens.shape[0]
        grammar = self.grammar(n, required=required, forbidden=forbidden)
        masks = torch.from_numpy(grammar.masks_for(tokens.numpy()))
        c = torch.full((n,), self._cond_index(condition), dtype=torch.long)
        logits, _ = net(tokens[:, :-1], c)
        logits = logits.masked_fill(~masks, -1e9)
        logp = torch.log_softmax(logits, dim=-1).gather(2, tokens[:, 1:, None])[..., 0]
        return (logp * (tokens[:, 1:] != PAD)).sum(1)

    def sample(
        self,
        n: int,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        required=None,
        forbidden=None,
        condition=None,
        seed: int = 0,
        batch_size: int = 4096,
    ) -> list[str]:
        """``n`` formulas (canonical integer formulas, repeats kept)."""
        import torch

        if n < 1:
            raise GenerateError(f"n must be at least 1, got {n}")
        g = torch.Generator().manual_seed(seed)
        out: list[str] = []
        with torch.no_grad():
            for lo in range(0, n, batch_size):
                tokens, _ = self.sample_tokens(
                    min(batch_size, n - lo),
                    temperature=temperature,
                    top_p=top_p,
                    required=required,
                    forbidden=forbidden,
                    condition=condition,
                    generator=g,
                )
                out += self.tokenizer.decode_batch(tokens.numpy())
        return out

    # -- persistence ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> FormulaLM:
        """A model written by :meth:`save`, ready to sample."""
        self, state = cls._from_file(path)
        self.net = _module(self.config, self.tokenizer.vocab_size)
        self.net.load_state_dict(state)
        self.net.eval()
        return self


# temperatures below this are greedy decoding; it stays a normal float32 (1e-161 would be 0)
_T_FLOOR = 1e-30


def _nucleus(probs, top_p: float):
    """Keep the smallest set of tokens whose probability reaches ``top_p``; renormalise."""
    import torch

    sorted_p, order = torch.sort(probs, descending=True, dim=-1)
    cum = torch.cumsum(sorted_p, dim=-1)
    drop = cum - sorted_p > top_p
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    out = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return out / out.sum(-1, keepdim=True)
