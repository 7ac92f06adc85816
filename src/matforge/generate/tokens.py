"""Formulas as token sequences, and the grammar that makes every sample parse.

A composition is written as its integer reduced formula with the elements in one fixed order
(ascending Pauling electronegativity, ties and elements without one by Z, noble gases last), so
that each composition has exactly one sequence::

    LiFePO4  ->  <bos> Li 1 Fe 1 P 1 O 4 <eos>

The vocabulary is ``<pad> <bos> <eos>``, the 103 elements in that order, then the counts
``1 .. max_count``. :class:`Grammar` tracks, for a batch of partial sequences, which tokens may
come next: an element only after ``<bos>`` or a count, and only later in the order than the
last one (no repeats, canonical order); a count only after an element; ``<eos>`` only after a
count; at most ``max_elements`` elements; required elements cannot be skipped and must all be
placed before ``<eos>``; forbidden elements never appear. Sampling through these masks gives a
parseable formula every time. The same tokens serve the language model, the GAN (through
:meth:`FormulaTokenizer.matrix`) and the reinforcement-learning agent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np

from matforge.chem.elements import SYMBOLS, Z, _numeric
from matforge.chem.formula import parse_amounts
from matforge.errors import GenerateError, InvalidFormula

__all__ = [
    "ELEMENT_ORDER",
    "FormulaTokenizer",
    "Grammar",
    "GenerateError",
    "canonical_formula",
    "integer_counts",
]

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3


def _element_order() -> tuple[str, ...]:
    en = _numeric("pauling_en")
    # Elements without an electronegativity (He, Ne, Ar, ...) go last, by Z.
    keys = [(math.isnan(x), 0.0 if math.isnan(x) else x, i) for i, x in enumerate(en)]
    return tuple(SYMBOLS[i] for *_, i in sorted(keys))


#: The 103 elements in token order: ascending Pauling electronegativity.
ELEMENT_ORDER: tuple[str, ...] = _element_order()
_RANK = {s: i for i, s in enumerate(ELEMENT_ORDER)}


def integer_counts(formula: str | dict, *, where: str | None = None) -> dict[str, int]:
    """``{element: count}`` of the integer reduced formula (``"Fe4O6"`` -> ``{Fe: 2, O: 3}``).

    Non-integer amounts are refused (``"Fe0.5O0.75"``): the generative models write integer
    formulas only.
    """
    amounts = parse_amounts(formula, where=where) if isinstance(formula, str) else dict(formula)
    counts = {}
    for el, v in amounts.items():
        if el not in Z:
            raise InvalidFormula(f"{formula!r}: unknown element {el!r}")
        r = round(float(v))
        if r < 1 or abs(float(v) - r) > 1e-6:
            raise InvalidFormula(
                f"{formula!r}: amount {v:g} of {el} is not a positive integer"
                + (f" ({where})" if where else "")
            )
        counts[el] = r
    g = reduce(math.gcd, counts.values())
    return {el: counts[el] // g for el in sorted(counts, key=_RANK.__getitem__)}


def canonical_formula(counts: dict[str, int]) -> str:
    """The formula string of integer counts in token order, 1s omitted: ``LiFePO4``."""
    return "".join(f"{el}{'' if n == 1 else n}" for el, n in counts.items())


@dataclass(frozen=True)
class FormulaTokenizer:
    """Integer reduced formulas <-> token id sequences.

    Parameters
    ----------
    max_count : int, default=150
        Largest count per element that has a token (the bundled Materials Project compositions
        reach 149).
    """

    max_count: int = 150

    @property
    def n_elements(self) -> int:
        return len(ELEMENT_ORDER)

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + self.n_elements + self.max_count

    @property
    def count_offset(self) -> int:
        return N_SPECIAL + self.n_elements

    def element_token(self, symbol: str) -> int:
        if symbol not in _RANK:
            raise GenerateError(f"unknown element {symbol!r}")
        return N_SPECIAL + _RANK[symbol]

    def encode(self, formula: str | dict) -> list[int]:
        """Token ids ``[<bos>, el, n, ..., <eos>]`` of a formula (reduced to integers first)."""
        counts = integer_counts(formula)
        out = [BOS]
        for el, n in counts.items():
            if n > self.max_count:
                raise GenerateError(
                    f"{formula!r}: count {n} of {el} exceeds the tokenizer's max_count "
                    f"{self.max_count}"
                )
            out += [N_SPECIAL + _RANK[el], self.count_offset + n - 1]
        out.append(EOS)
        return out

    def encode_batch(self, formulas: Sequence[str | dict]) -> np.ndarray:
        """A (n, longest) int64 array, padded with ``<pad>``."""
        seqs = [self.encode(f) for f in formulas]
        out = np.full((len(seqs), max(map(len, seqs), default=2)), PAD, dtype=np.int64)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = s
        return out

    def decode(self, tokens: Iterable[int]) -> dict[str, int]:
        """Counts of one token sequence, reduced by their GCD; raises on a malformed one."""
        counts: dict[str, int] = {}
        element = None
        started = False
        for t in (int(t) for t in tokens):
            if t == PAD:
                continue
            if t == BOS:
                started = True
                continue
            if t == EOS:
                break
            if not started:
                raise GenerateError("token sequence does not start with <bos>")
            if N_SPECIAL <= t < self.count_offset:
                if element is not None:
                    raise GenerateError("two elements in a row")
                element = ELEMENT_ORDER[t - N_SPECIAL]
                if element in counts:
                    raise GenerateError(f"element {element} repeated")
            elif self.count_offset <= t < self.vocab_size:
                if element is None:
                    raise GenerateError("a count without an element")
                counts[element] = t - self.count_offset + 1
                element = None
            else:
                raise GenerateError(f"token {t} outside the vocabulary")
        if element is not None or not counts:
            raise GenerateError("incomplete formula")
        g = reduce(math.gcd, counts.values())
        return {el: n // g for el, n in counts.items()}

    def decode_batch(self, tokens: np.ndarray) -> list[str]:
        """Canonical formula strings of a batch of sequences (vectorised over the batch)."""
        tokens = np.asarray(tokens)
        is_el = (tokens >= N_SPECIAL) & (tokens < self.count_offset)
        out = []
        for row, el_mask in zip(tokens, is_el, strict=True):
            pos = np.flatnonzero(el_mask)
            if len(pos) == 0:
                raise GenerateError("empty formula")
            els = row[pos] - N_SPECIAL
            ns = row[pos + 1] - self.count_offset + 1
            g = int(np.gcd.reduce(ns))
            out.append(
                "".join(
                    f"{ELEMENT_ORDER[e]}{'' if n // g == 1 else n // g}"
                    for e, n in zip(els.tolist(), ns.tolist(), strict=True)
                )
            )
        return out

    def matrix(self, formulas: Sequence[str | dict], max_count: int) -> np.ndarray:
        """One-hot (n, n_elements, max_count + 1) array: for each element, its count 0..max.

        The element-by-count representation of MatGAN (count 0 = absent). Formulas with a count
        above ``max_count`` are refused.
        """
        out = np.zeros((len(formulas), self.n_elements, max_count + 1), dtype=np.float32)
        out[:, :, 0] = 1.0
        for i, f in enumerate(formulas):
            for el, n in integer_counts(f).items():
                if n > max_count:
                    raise GenerateError(f"{f!r}: count {n} of {el} exceeds max_count {max_count}")
                r = _RANK[el]
                out[i, r, 0] = 0.0
                out[i, r, n] = 1.0
        return out


def _element_mask(symbols: Iterable[str] | None, n: int, what: str) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for s in symbols or ():
        s = s.strip()
        if s not in _RANK:
            raise GenerateError(f"{what}: unknown element {s!r}")
        mask[_RANK[s]] = True
    return mask


class Grammar:
    """Which tokens may come next, for a batch of partial sequences.

    Parameters
    ----------
    tokenizer : FormulaTokenizer
    batch_size : int
    max_elements : int, default=8
    max_count : int or None
        Largest count allowed (default: the tokenizer's).
    required, forbidden : iterables of element symbols
        Every sample contains all ``required`` elements and none of the ``forbidden`` ones.
    allowed_elements : iterable of symbols or None
        Restrict elements to this set (e.g. those seen in training).
    """

    def __init__(
        self,
        tokenizer: FormulaTokenizer,
        batch_size: int,
        *,
        max_elements: int = 8,
        max_count: int | None = None,
        required: Iterable[str] | None = None,
        forbidden: Iterable[str] | None = None,
        allowed_elements: Iterable[str] | None = None,
    ):
        t = tokenizer
        self.tokenizer = t
        n_el = t.n_elements
        self.max_elements = int(max_elements)
        self.max_count = t.max_count if max_count is None else int(max_count)
        if not 1 <= self.max_count <= t.max_count:
            raise GenerateError(f"max_count must be in 1..{t.max_count}, got {max_count}")
        if self.max_elements < 1:
            raise GenerateError(f"max_elements must be at least 1, got {max_elements}")
        req = _element_mask(required, n_el, "required elements")
        forb = _element_mask(forbidden, n_el, "forbidden elements")
        if allowed_elements is not None:
            forb |= ~_element_mask(allowed_elements, n_el, "allowed elements")
        if (req & forb).any():
            bad = [ELEMENT_ORDER[i] for i in np.flatnonzero(req & forb)]
            raise GenerateError(f"elements both required and forbidden or unseen: {bad}")
        if req.sum() > self.max_elements:
            raise GenerateError(
                f"{int(req.sum())} required elements exceed max_elements {self.max_elements}"
            )
        self.required = req
        self.forbidden = forb
        b = int(batch_size)
        self.last_rank = np.full(b, -1, dtype=np.int64)
        self.n_placed = np.zeros(b, dtype=np.int64)
        self.expect_count = np.zeros(b, dtype=bool)
        self.done = np.zeros(b, dtype=bool)
        self.placed_required = np.zeros((b, n_el), dtype=bool)
        self._ranks = np.arange(n_el)
        self._req_rank = np.where(req, self._ranks, n_el)  # n_el = "none"

    def allowed(self) -> np.ndarray:
        """(batch, vocab) bool: the tokens each sequence may take next."""
        t = self.tokenizer
        b = len(self.last_rank)
        out = np.zeros((b, t.vocab_size), dtype=bool)
        # the next required element not yet placed (n_el when none is left)
        unplaced = np.where(self.placed_required, t.n_elements, self._req_rank[None, :])
        next_req = unplaced.min(axis=1)
        n_unplaced = (self.required[None, :] & ~self.placed_required).sum(axis=1)
        room = self.max_elements - self.n_placed
        only_required = n_unplaced >= room
        el_ok = (
            (self._ranks[None, :] > self.last_rank[:, None])
            & (self._ranks[None, :] <= next_req[:, None])
            & ~self.forbidden[None, :]
            & (room > 0)[:, None]
        )
        el_ok &= ~only_required[:, None] | (self._ranks[None, :] == next_req[:, None])
        choose_el = ~self.expect_count & ~self.done
        out[:, N_SPECIAL : t.count_offset] = el_ok & choose_el[:, None]
        out[:, t.count_offset : t.count_offset + self.max_count] = self.expect_count[:, None]
        out[:, EOS] = choose_el & (self.n_placed > 0) & (n_unplaced == 0)
        out[self.done, PAD] = True
        return out

    def step(self, tokens: np.ndarray) -> None:
        """Advance every sequence by its chosen token."""
        t = self.tokenizer
        tokens = np.asarray(tokens)
        is_el = (tokens >= N_SPECIAL) & (tokens < t.count_offset) & ~self.done
        rows = np.flatnonzero(is_el)
        ranks = tokens[rows] - N_SPECIAL
        self.last_rank[rows] = ranks
        self.n_placed[rows] += 1
        self.placed_required[rows, ranks] = self.required[ranks]
        self.expect_count = is_el
        self.done |= tokens == EOS

    def masks_for(self, tokens: np.ndarray) -> np.ndarray:
        """(batch, length - 1, vocab) masks in force before each token after ``<bos>``."""
        tokens = np.asarray(tokens)
        out = np.zeros((tokens.shape[0], tokens.shape[1] - 1, self.tokenizer.vocab_size), bool)
        for j in range(1, tokens.shape[1]):
            out[:, j - 1] = self.allowed()
            self.step(tokens[:, j])
        return out
