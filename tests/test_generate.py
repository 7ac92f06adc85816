"""matforge.generate: tokens, grammar, corpus splits, metrics and the language model."""

from __future__ import annotations

import numpy as np
import pytest

from matforge.errors import InvalidFormula
from matforge.generate.corpus import chemical_system, load_corpus, split_corpus
from matforge.generate.metrics import annotate, generation_metrics, validity
from matforge.generate.tokens import (
    BOS,
    ELEMENT_ORDER,
    EOS,
    FormulaTokenizer,
    GenerateError,
    Grammar,
    canonical_formula,
    integer_counts,
)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def _tokens_allowed(grammar: Grammar, tokens: np.ndarray) -> np.ndarray:
    masks = grammar.masks_for(tokens)
    rows = np.arange(len(tokens))[:, None]
    cols = np.arange(tokens.shape[1] - 1)[None, :]
    return masks[rows, cols, tokens[:, 1:]].all(axis=1)


def test_element_order_is_by_electronegativity():
    assert len(ELEMENT_ORDER) == 103 and len(set(ELEMENT_ORDER)) == 103
    assert ELEMENT_ORDER.index("Li") < ELEMENT_ORDER.index("Fe") < ELEMENT_ORDER.index("O")
    assert ELEMENT_ORDER.index("O") < ELEMENT_ORDER.index("F")
    assert ELEMENT_ORDER[-3:] == ("He", "Ne", "Ar")  # no Pauling electronegativity: last


def test_integer_counts_reduce_and_order():
    assert integer_counts("Fe4O6") == {"Fe": 2, "O": 3}
    assert canonical_formula(integer_counts("O4PFeLi")) == "LiFePO4"
    with pytest.raises(InvalidFormula, match="not a positive integer"):
        integer_counts("Fe0.5O0.75")
    with pytest.raises(InvalidFormula):
        integer_counts("Xx2O")


def test_tokenizer_round_trips_every_corpus_composition(corpus):
    assert 90_000 < len(corpus) < 100_000
    tok = FormulaTokenizer()
    tokens = tok.encode_batch(corpus)
    assert (tokens[:, 0] == BOS).all()
    assert tok.decode_batch(tokens) == corpus
    # the per-sequence decoder agrees on a sample
    for i in range(0, len(corpus), 997):
        assert canonical_formula(tok.decode(tokens[i])) == corpus[i]


def test_grammar_accepts_the_corpus_within_its_limits(corpus):
    tok = FormulaTokenizer()
    tokens = tok.encode_batch(corpus)
    ok = _tokens_allowed(Grammar(tok, len(tokens)), tokens)
    n_el = np.array([len(integer_counts(f)) for f in corpus])
    # exactly the compositions with more than 8 elements are refused
    assert (ok == (n_el <= 8)).all()
    assert (~ok).sum() == 2


def test_grammar_masks_make_random_walks_parse():
    tok = FormulaTokenizer()
    rng = np.random.default_rng(0)
    n = 500
    g = Grammar(tok, n, max_elements=4, max_count=6, required=["O"], forbidden=["Fe"])
    seqs = [np.full(n, BOS)]
    for _ in range(2 * 4 + 1):
        allowed = g.allowed()
        assert allowed.any(axis=1).all()  # never a dead end
        choice = np.array([rng.choice(np.flatnonzero(a)) for a in allowed])
        g.step(choice)
        seqs.append(choice)
    assert g.done.all()
    for f in tok.decode_batch(np.stack(seqs, axis=1)):
        counts = integer_counts(f)
        assert "O" in counts and "Fe" not in counts
        assert len(counts) <= 4 and max(counts.values()) <= 6


def test_grammar_bad_arguments():
    tok = FormulaTokenizer()
    with pytest.raises(GenerateError, match="unknown element 'Xq'"):
        Grammar(tok, 1, required=["Xq"])
    with pytest.raises(GenerateError, match="both required and forbidden"):
        Grammar(tok, 1, required=["O"], forbidden=["O"])
    with pytest.raises(GenerateError, match="exceed max_elements"):
        Grammar(tok, 1, max_elements=2, required=["Li", "Fe", "O"])
    with pytest.raises(GenerateError, match="exceeds the tokenizer's max_count"):
        FormulaTokenizer(max_count=4).encode("Fe2O5")
    with pytest.raises(GenerateError, match="repeated"):
        tok.decode(
            [
                BOS,
                tok.element_token("O"),
                tok.count_offset,
                tok.element_token("O"),
                tok.count_offset,
                EOS,
            ]
        )


def test_splits_are_disjoint_and_chemsys_whole(corpus):
    r = split_corpus(corpus, "random")
    assert not set(r.train) & set(r.held_out)
    assert len(r.train) + len(r.held_out) == len(corpus)
    assert 0.08 < len(r.held_out) / len(corpus) < 0.12
    c = split_corpus(corpus, "chemsys")
    held_systems = {chemical_system(f) for f in c.held_out}
    assert not held_systems & {chemical_system(f) for f in c.train}
    assert split_corpus(corpus, "chemsys").held_out == c.held_out  # fixed seed
    with pytest.raises(GenerateError):
        split_corpus(corpus, "by-colour")


def test_validity_matches_smact_on_hand_checked_cases():
    v = validity(["Fe2O3", "NaCl", "NaCl2", "OFe", "Cu3Au", "Li2O2"])
    # NaCl2 cannot be balanced; FeO balanced; Cu3Au is an alloy (smact_valid only)
    assert v["cn"].tolist() == [True, True, False, True, False, True]
    assert v["smact_valid"].tolist()[:4] == [True, True, False, True]
    assert v["smact_valid"][4]  # all metals: SMACT's alloy rule
    smact = pytest.importorskip("smact.screening")
    from pymatgen.core import Composition

    for f in ["Fe2O3", "NaCl2", "Cu3Au", "Li2O2", "KMnO4", "BaTiS3"]:
        ours = validity([f])["smact_valid"][0]
        assert ours == smact.smact_validity(Composition(f)), f


def test_generation_metrics_set_arithmetic():
    train = ["NaCl", "KCl"]
    held = ["LiF", "CsI"]
    samples = ["NaCl", "Na2Cl2", "LiF", "LiF", "MgO", "NaCl2"]
    m = generation_metrics(samples, train, held)
    assert m["n"] == 6
    assert m["uniqueness"] == pytest.approx(4 / 6)  # NaCl, LiF, MgO, NaCl2
    assert m["novelty"] == pytest.approx(3 / 4)
    assert m["rediscovered"] == 1
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["cn"] == pytest.approx(5 / 6)


def test_annotate_gives_nearest_known():
    out = annotate(["Fe2O3", "Fe3O4"], ["Fe2O3", "NaCl"])
    assert out["novel"].tolist() == [False, True]
    assert out["nearest_known"].tolist() == ["Fe2O3", "Fe2O3"]
    assert out["nearest_distance"][0] == 0.0 and 0 < out["nearest_distance"][1] < 0.1


def test_tiny_language_model_trains_samples_and_reloads(corpus, tmp_path):
    pytest.importorskip("torch")
    from matforge.generate.rnn import Condition, FormulaLM

    train = [f for f in corpus if set(integer_counts(f)) <= {"Li", "Na", "K", "O", "S", "Cl"}]
    lm = FormulaLM(hidden=32, layers=1, embed=16, max_count=8)
    lm.fit(train, epochs=30, batch_size=64, lr=1e-2)
    assert lm.fit_report_["loss"][-1] < lm.fit_report_["loss"][0]
    samples = lm.sample(300, seed=1)
    assert len(samples) == 300
    for f in samples:  # every sample parses and stays in the training elements
        assert set(integer_counts(f)) <= {"Li", "Na", "K", "O", "S", "Cl"}
    # a trained model writes mostly neutral formulas; uniform random choices would not
    assert validity(samples)["cn"].mean() > 0.5
    with_o = lm.sample(50, required=["O"], forbidden=["Li"], seed=2)
    assert all("O" in integer_counts(f) and "Li" not in integer_counts(f) for f in with_o)
    path = lm.save(tmp_path / "lm.pt")
    again = FormulaLM.load(path)
    assert again.sample(20, seed=3) == lm.sample(20, seed=3)
    with pytest.raises(GenerateError, match="never occur"):
        lm.sample(5, required=["Fe"])
    with pytest.raises(GenerateError, match="not conditioned"):
        lm.sample(5, condition=(1.0, 1.8))
    with pytest.raises(GenerateError, match="temperature"):
        lm.sample(5, temperature=0)
    # a vanishing temperature is greedy decoding: every draw is the same formula, no nan
    greedy = lm.sample(20, temperature=1e-161, seed=5)
    assert len(greedy) == 20 and len(set(greedy)) == 1
    assert greedy == lm.sample(20, temperature=1e-30, seed=6)
    cond = Condition("band_gap", (0.0, 1.0, 1.8), "eV")
    assert cond.bins(np.array([-1, 0.5, 1.2, 5.0, np.nan])).tolist() == [0, 1, 2, 3, 4]
    assert cond.bin_of_window(1.0, 1.8) == 2
    with pytest.raises(GenerateError, match="not one of the model's bins"):
        cond.bin_of_window(1.0, 2.0)


def test_conditioned_language_model_is_steered_by_its_bin(corpus):
    pytest.importorskip("torch")
    from matforge.generate.optimize import optimize
    from matforge.generate.reward import Reward
    from matforge.generate.rnn import Condition, FormulaLM

    elements = {"Li", "Na", "K", "O", "S", "Cl"}
    train = [f for f in corpus if set(integer_counts(f)) <= elements]
    # the property: 1 for oxides, 0 otherwise, a quarter unlabelled (the "none" bin)
    has_o = np.array(["O" in integer_counts(f) for f in train], dtype=float)
    values = np.where(np.arange(len(train)) % 4 == 0, np.nan, has_o)
    lm = FormulaLM(hidden=32, layers=1, embed=16, max_count=8, condition=Condition("oxide", (0.5,)))
    lm.fit(train, values=values, epochs=60, batch_size=64, lr=1e-2, seed=0)
    share = [np.mean(["O" in integer_counts(f) for f in lm.sample(400, condition=k, seed=5)])
             for k in (0, 1)]  # fmt: skip
    assert share[1] > share[0] + 0.5, share  # measured: 0.05 and 0.9
    with pytest.raises(GenerateError, match="needs values"):
        FormulaLM(hidden=8, layers=1, embed=4, condition=Condition("oxide", (0.5,))).fit(train)

    class IsOxide:  # a "model" of the property: 1 ± 0.1 for oxides, 0 ± 0.1 otherwise
        def predict(self, formulas, return_std=False):
            mean = np.array([float("O" in integer_counts(f)) for f in formulas])
            return (mean, np.full(len(mean), 0.1)) if return_std else mean

    def best_of_n(condition):
        reward = Reward(
            "oxide >= 0.5", {"oxide": IsOxide()}, require_valid=False, max_distance=None
        )
        res = optimize(reward, "best-of-n", budget=150, prior=lm, seed=0, condition=condition)
        return res.table["oxide"].dropna().mean()

    # conditioned generation: the oxide bin spends the budget on oxides
    assert best_of_n((0.5, float("inf"))) > best_of_n((-float("inf"), 0.5)) + 0.3


def test_baselines_reproduce_their_definitions(corpus):
    from matforge.generate.baselines import element_substitution, frequency_random, uniform_random

    split = split_corpus(corpus, "random")
    train = list(split.train)
    freq = frequency_random(train, 3000, seed=0)
    assert freq == frequency_random(train, 3000, seed=0)
    n_el_train = np.mean([len(integer_counts(f)) for f in train])
    n_el_freq = np.mean([len(integer_counts(f)) for f in freq])
    assert abs(n_el_train - n_el_freq) < 0.15  # element counts at the training frequency
    # oxygen is the commonest element of MP: it shows up far more often than uniform picks
    share_o = np.mean(["O" in integer_counts(f) for f in freq])
    share_o_uniform = np.mean(["O" in integer_counts(f) for f in uniform_random(train, 3000)])
    assert share_o > 2 * share_o_uniform
    subs = element_substitution(train, 500, seed=1)
    train_set = set(train)
    # a substitution keeps the stoichiometry pattern of some training composition
    patterns = {tuple(sorted(integer_counts(f).values())) for f in train}
    assert all(tuple(sorted(integer_counts(f).values())) in patterns for f in subs)
    m_sub = generation_metrics(subs, train)
    m_freq = generation_metrics(freq[:500], train)
    assert m_sub["cn_eb"] > m_freq["cn_eb"]  # substitution keeps charge balance more often
    assert sum(f in train_set for f in subs) < 500
