"""A MatGAN-style generative adversarial network of compositions.

A composition is an element-by-count one-hot matrix (Dan et al., npj Comput. Mater. 6, 84
(2020)): one row per element seen in training, one column per count ``0..max_count`` of its
integer reduced formula (count 0 = absent). A generator (MLP) maps Gaussian noise to logits of
that matrix; the critic (MLP) scores one-hot matrices of training compositions against the
generator's tempered softmax ``softmax(logits / tau)`` (a low ``tau`` pushes the generator
towards one-hot rows) and is trained with the Wasserstein loss and a gradient penalty (WGAN-GP,
Gulrajani et al. 2017). Three choices, each compared in 5-minute runs on the random split
(one CPU core):

* the generator is deterministic given its noise (MatGAN's choice too). With the
  straight-through Gumbel-softmax (``gumbel=True``: a one-hot draw per element, soft gradient)
  every element is drawn independently, and in that time the generator never learnt to make
  its output depend on the noise: it stayed a product of per-element marginals
  (charge-neutral + electronegativity-balanced 74 % at sampling temperature 1, and a handful
  of distinct formulas below 0.5);
* the critic sees the spread of its batch (minibatch standard deviation, Karras et al. 2018),
  which keeps the deterministic generator from collapsing onto a few compositions (10 %
  distinct most-probable formulas without it, 46 % with it);
* the generator's output bias starts at the logarithm of the training count frequencies of
  each element, so training starts from the marginals instead of from random rows (81 %
  against 77 % CN+EB).

Sampling draws one count per element from ``softmax(logits / temperature)`` and then enforces
the request: forbidden elements get count 0, required ones at least 1 (their most probable
non-zero count), at most ``max_elements`` elements survive (those least likely to be absent),
a draw with no element is redrawn with fresh noise (up to 10 times, then it takes the single
most probable non-zero entry), and the counts are reduced by their GCD. Every sample is
therefore a formula. Single elements are allowed: the valid-only corpus holds 86 of them. Optionally conditioned on a property bin, with the same
:class:`~matforge.generate.rnn.Condition` semantics as the language model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from matforge.errors import GenerateError, InvalidFormula
from matforge.generate.rnn import Condition, ConditionedGenerator
from matforge.generate.tokens import ELEMENT_ORDER, integer_counts

__all__ = ["FormulaGAN"]

KIND = "matforge.generate.FormulaGAN"
_COND_EMBED = 16
_REDRAWS = 10  # fresh noise for draws that came out empty, before the fallback


@dataclass
class GANConfig:
    noise: int = 128
    hidden: int = 256
    layers: int = 3
    max_elements: int = 8
    max_count: int = 8
    elements: tuple[str, ...] = field(default_factory=tuple)  # seen in training, token order
    condition: dict | None = None


def _networks(config: GANConfig):
    """(generator, critic) for ``config``; the generator returns (batch, E, max_count + 1)
    logits, the critic one score per composition matrix (of a batch: it sees the batch's
    spread)."""
    import torch
    from torch import nn

    n_el, n_cls = len(config.elements), config.max_count + 1
    n_cond = Condition(**config.condition).n_bins + 1 if config.condition else 1

    def mlp(n_in: int, n_out: int) -> nn.Sequential:
        sizes = [n_in] + [config.hidden] * (config.layers - 1)
        body = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            body += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        return nn.Sequential(*body, nn.Linear(sizes[-1], n_out))

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.cond = nn.Embedding(n_cond, _COND_EMBED)
            self.body = mlp(config.noise + _COND_EMBED, n_el * n_cls)

        def forward(self, z, cond):
            x = torch.cat([z, self.cond(cond)], dim=1)
            return self.body(x).view(-1, n_el, n_cls)

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.cond = nn.Embedding(n_cond, _COND_EMBED)
            self.body = mlp(n_el * n_cls + _COND_EMBED + 1, 1)

        def forward(self, x, cond):
            x = torch.cat([x.flatten(1), self.cond(cond)], dim=1)
            # the batch's spread per input, averaged: a collapsed batch is easy to spot
            spread = (x.var(dim=0, correction=0) + 1e-8).sqrt().mean().expand(len(x), 1)
            return self.body(torch.cat([x, spread], dim=1))[:, 0]

    return Generator(), Critic()


def _relaxed(logits, tau: float, gumbel: bool):
    """The generator's differentiable composition matrix: tempered softmax, or a
    straight-through Gumbel-softmax draw."""
    import torch.nn.functional as F

    if gumbel:
        return F.gumbel_softmax(logits, tau=tau, hard=True)
    return F.softmax(logits / tau, dim=-1)


def _gradient_penalty(critic, real, fake, cond):
    """``E[(|grad critic(x_hat)| - 1)^2]`` on random interpolations of real and fake."""
    import torch

    eps = torch.rand(len(real), 1, 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x, cond).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class FormulaGAN(ConditionedGenerator):
    """Wasserstein GAN (gradient penalty) over element-by-count composition matrices.

    Parameters
    ----------
    max_count : int, default=8
        Counts ``0..max_count`` per element (MatGAN's 8); training compositions with a larger
        count in their reduced formula are left out (and counted in ``fit_report_``).
    noise : int, default=128
        Size of the generator's Gaussian input.
    hidden, layers : network size (both networks: ``layers`` linear layers of ``hidden``).
    max_elements : int, default=8
        Most elements per composition; training compositions with more are left out.
    condition : Condition or None
        Condition on bins of a property.
    """

    _kind = KIND
    _noun = "GAN"
    _config_class = GANConfig

    def __init__(
        self,
        *,
        max_count: int = 8,
        noise: int = 128,
        hidden: int = 256,
        layers: int = 3,
        max_elements: int = 8,
        condition: Condition | None = None,
    ):
        self.config = GANConfig(
            noise=noise,
            hidden=hidden,
            layers=layers,
            max_elements=max_elements,
            max_count=max_count,
            condition=asdict(condition) if condition else None,
        )
        self.net = None
        self.fit_report_: dict = {}

    # -- training -------------------------------------------------------------------------
    def _count_matrix(self, formulas: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n, 103) integer counts in token order, and which rows fit the model's limits."""
        rank = {s: i for i, s in enumerate(ELEMENT_ORDER)}
        counts = np.zeros((len(formulas), len(ELEMENT_ORDER)), dtype=np.int64)
        for i, f in enumerate(formulas):
            try:
                parsed = integer_counts(f)
            except InvalidFormula as exc:
                raise GenerateError(f"training formula {i}: {exc}") from exc
            for el, n in parsed.items():
                counts[i, rank[el]] = n
        keep = (counts.max(axis=1) <= self.config.max_count) & (
            (counts > 0).sum(axis=1) <= self.config.max_elements
        )
        return counts, keep

    def fit(
        self,
        formulas: Sequence[str],
        *,
        values: Sequence[float] | None = None,
        epochs: int = 55,
        batch_size: int = 256,
        lr: float = 2e-4,
        n_critic: int = 5,
        penalty: float = 10.0,
        tau: float = 0.3,
        gumbel: bool = False,
        seed: int = 0,
        time_limit: float | None = None,
        progress: Callable[[int, float], None] | None = None,
    ) -> FormulaGAN:
        """Adversarial training on canonical formulas.

        An epoch is one pass of the critic over the training compositions (``batch_size``
        each); the generator takes one step every ``n_critic`` critic steps (Adam, betas
        (0.5, 0.9), learning rate ``lr`` for both). ``penalty`` is the gradient-penalty weight;
        ``tau`` the temperature of the generator's softmax as the critic sees it; ``gumbel``
        trains with straight-through Gumbel-softmax draws instead. ``values``: the
        conditioning property per formula (NaN where unknown). ``time_limit`` (s) stops after
        the epoch that passes it; ``progress(epoch, critic_loss)`` is called after each epoch.

        The defaults are the best of 5-minute tuning runs on the random split (3 layers of 512
        were no better than 256 in the same time; ``n_critic=2`` or ``lr=5e-4`` traded
        validity and uniqueness for a little precision); ``benchmarks/generate_gan.py``
        measures them. 55 epochs over the 42,311 usable valid-only compositions of a split
        take about 7 minutes on one CPU core.
        """
        import torch
        import torch.nn.functional as F

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        formulas = list(formulas)
        cond_model = self.condition
        if cond_model is not None and values is None:
            raise GenerateError(f"a model conditioned on {cond_model.name} needs values")
        if values is not None and len(values) != len(formulas):
            raise GenerateError(f"{len(values)} values for {len(formulas)} formulas")
        counts, keep = self._count_matrix(formulas)
        if keep.sum() == 0:
            raise GenerateError("no training formula fits the model's limits")
        if cond_model is not None:
            cond = cond_model.bins(np.asarray(values, dtype=float))
        else:
            cond = np.zeros(len(formulas), dtype=np.int64)
        counts, cond = counts[keep], cond[keep]
        seen = np.flatnonzero(counts.any(axis=0))
        self.config.elements = tuple(ELEMENT_ORDER[i] for i in seen)
        generator, critic = _networks(self.config)
        opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.9))
        opt_c = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
        real_counts = torch.from_numpy(counts[:, seen])
        real_cond = torch.from_numpy(cond.astype(np.int64))
        n, n_cls = len(real_counts), self.config.max_count + 1
        # start from the training marginals: each element's count at its frequency
        freq = np.stack([np.bincount(col, minlength=n_cls) for col in counts[:, seen].T]) / n
        with torch.no_grad():
            generator.body[-1].bias.copy_(
                torch.log(torch.from_numpy(freq).float() + 1e-4).flatten()
            )
        start = time.perf_counter()
        history = []
        step = 0
        for epoch in range(epochs):
            perm = torch.from_numpy(rng.permutation(n))
            total, batches = 0.0, 0
            for lo in range(0, n, batch_size):
                idx = perm[lo : lo + batch_size]
                real = F.one_hot(real_counts[idx], n_cls).float()
                c = real_cond[idx]
                if cond_model is not None:
                    # 10 % of the labelled rows train the unconditional ("none") bin too
                    drop = torch.rand(len(c)) < 0.1
                    c = torch.where(drop, torch.full_like(c, cond_model.n_bins), c)
                z = torch.randn(len(idx), self.config.noise)
                with torch.no_grad():
                    fake = _relaxed(generator(z, c), tau, gumbel)
                loss_c = (
                    critic(fake, c).mean()
                    - critic(real, c).mean()
                    + penalty * _gradient_penalty(critic, real, fake, c)
                )
                opt_c.zero_grad()
                loss_c.backward()
                opt_c.step()
                total += float(loss_c.detach())
                batches += 1
                step += 1
                if step % n_critic == 0:
                    z = torch.randn(len(idx), self.config.noise)
                    fake = _relaxed(generator(z, c), tau, gumbel)
                    loss_g = -critic(fake, c).mean()
                    opt_g.zero_grad()
                    loss_g.backward()
                    opt_g.step()
            history.append(total / batches)
            if progress:
                progress(epoch + 1, history[-1])
            if time_limit and time.perf_counter() - start > time_limit:
                break
        with torch.no_grad():
            # keep the weights at the fp16 precision they are saved with, so that a saved and
            # reloaded model draws exactly the formulas of the one in memory
            for p in generator.parameters():
                p.copy_(p.half().float())
        generator.eval()
        self.net = generator
        self.fit_report_ = {
            "n_train": int(n),
            "n_left_out": int((~keep).sum()),
            "epochs": len(history),
            "critic_loss": history,
            "seconds": round(time.perf_counter() - start, 1),
        }
        return self

    # -- sampling -------------------------------------------------------------------------
    def _element_mask(self, symbols: Iterable[str] | None, what: str) -> np.ndarray:
        """Columns (elements seen in training) named in ``symbols``; unknown symbols raise."""
        symbols = [s.strip() for s in symbols or () if s.strip()]
        unknown = sorted({s for s in symbols if s not in ELEMENT_ORDER})
        if unknown:
            raise GenerateError(f"{what}: unknown elements {unknown}")
        chosen = set(symbols)
        return np.array([el in chosen for el in self.config.elements], dtype=bool)

    def sample(
        self,
        n: int,
        *,
        temperature: float = 0.5,
        required: Iterable[str] | None = None,
        forbidden: Iterable[str] | None = None,
        condition: tuple[float, float] | int | None = None,
        seed: int = 0,
        batch_size: int = 4096,
    ) -> list[str]:
        """``n`` formulas (canonical integer formulas, repeats kept).

        ``temperature`` divides the generator's logits before each element's count is drawn:
        towards 0 the most probable count, at the training ``tau`` (0.3) the distribution the
        critic saw; higher values give more distinct but less often charge-balanced formulas
        with more elements (0.5: the tuned trade-off). ``required`` elements appear in every
        sample, ``forbidden`` ones in none; ``condition`` is a property window ``(lo, hi)``
        that is one of the model's bins, or a bin index.
        """
        import torch

        self._check_fitted()
        if n < 1:
            raise GenerateError(f"n must be at least 1, got {n}")
        if not temperature > 0:
            raise GenerateError(f"temperature must be positive, got {temperature}")
        req = self._element_mask(required, "required elements")
        forb = self._element_mask(forbidden, "forbidden elements")
        unseen = {s.strip() for s in required or ()} - set(self.config.elements) - {""}
        if unseen:
            raise GenerateError(
                f"required elements {sorted(unseen)} never occur in the model's training data"
            )
        if (req & forb).any():
            both = [el for el, b in zip(self.config.elements, req & forb, strict=True) if b]
            raise GenerateError(f"elements both required and forbidden: {both}")
        if forb.all():
            raise GenerateError("every element the model knows is forbidden")
        if req.sum() > self.config.max_elements:
            raise GenerateError(
                f"{int(req.sum())} required elements exceed max_elements {self.config.max_elements}"
            )
        c = self._cond_index(condition)
        g = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        out: list[str] = []
        with torch.no_grad():
            for lo in range(0, n, batch_size):
                m = min(batch_size, n - lo)
                counts = np.zeros((m, len(self.config.elements)), dtype=np.int64)
                todo = np.arange(m)
                # a draw with no element is not a formula: redraw it with fresh noise
                for attempt in range(_REDRAWS + 1):
                    z = torch.randn(len(todo), self.config.noise, generator=g)
                    cond = torch.full((len(todo),), c, dtype=torch.long)
                    logits = self.net(z, cond).double().numpy()
                    counts[todo] = _decode(
                        logits, temperature, req, forb, self.config.max_elements, rng
                    )
                    empty = (counts[todo] == 0).all(axis=1)
                    if attempt == _REDRAWS and empty.any():
                        counts[todo[empty]] = _most_probable(logits[empty], forb)
                    todo = todo[empty]
                    if len(todo) == 0:
                        break
                out += _formulas(counts, self.config.elements)
        return out

    # -- persistence ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> FormulaGAN:
        """A model written by :meth:`save`, ready to sample."""
        self, state = cls._from_file(path)
        generator, _ = _networks(self.config)
        generator.load_state_dict(state)
        generator.eval()
        self.net = generator
        return self


def _decode(
    logits: np.ndarray,
    temperature: float,
    required: np.ndarray,
    forbidden: np.ndarray,
    max_elements: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n, E) integer counts from (n, E, K + 1) logits, under the sampling constraints."""
    logits = logits.copy()
    logits[:, forbidden, 1:] = -np.inf
    # Gumbel-max: argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T)
    # shifted by each element's maximum first, so a tiny temperature is greedy, not inf
    top = logits.max(axis=2, keepdims=True)
    scaled = (logits - top) / max(temperature, 1e-30) + rng.gumbel(size=logits.shape)
    counts = scaled.argmax(axis=2)
    best_nonzero = logits[:, :, 1:].argmax(axis=2) + 1
    counts = np.where(required[None, :] & (counts == 0), best_nonzero, counts)
    # how likely each element is to be present: the complement of its count-0 probability
    shifted = logits - logits.max(axis=2, keepdims=True)
    p = np.exp(shifted)
    present_p = 1.0 - p[:, :, 0] / p.sum(axis=2)
    score = np.where(counts > 0, present_p, -np.inf)
    score[:, required] = np.inf
    if (counts > 0).sum(axis=1).max(initial=0) > max_elements:
        order = np.argsort(-score, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
        counts = np.where(rank < max_elements, counts, 0)
    return counts


def _most_probable(logits: np.ndarray, forbidden: np.ndarray) -> np.ndarray:
    """(n, E) counts with only the single most probable (element, non-zero count) entry."""
    logp = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
    logp[:, forbidden, :] = -np.inf
    logp[:, :, 0] = -np.inf
    flat = logp.reshape(len(logp), -1).argmax(axis=1)
    el, count = np.divmod(flat, logp.shape[2])
    out = np.zeros(logp.shape[:2], dtype=np.int64)
    out[np.arange(len(out)), el] = count
    return out


def _formulas(counts: np.ndarray, elements: tuple[str, ...]) -> list[str]:
    """Canonical formulas of (n, E) counts (columns in token order), reduced by their GCD."""
    counts = counts // np.gcd.reduce(counts, axis=1, keepdims=True)
    symbols = np.asarray(elements, dtype=object)
    out = []
    for row in counts:
        nz = np.flatnonzero(row)
        out.append(
            "".join(f"{s}{'' if k == 1 else k}" for s, k in zip(symbols[nz], row[nz], strict=True))
        )
    return out
