"""Position classes of the 230 space groups and the peak-position accuracy ceiling."""

import numpy as np
import pytest

from matforge.xrd.extinction import metric_family, position_ceiling, powder_classes


@pytest.fixture(scope="module")
def classes():
    return powder_classes()


def same(classes, a: int, b: int) -> bool:
    return bool(classes[a - 1] == classes[b - 1])


def test_indistinguishable_pairs_share_a_class(classes):
    assert same(classes, 76, 78)  # P4_1 / P4_3: enantiomorphs
    assert same(classes, 169, 170)  # P6_1 / P6_5
    assert same(classes, 47, 16)  # Pmmm / P222: no conditions
    assert same(classes, 225, 196)  # Fm-3m / F23: F centring only
    assert same(classes, 164, 191)  # P-3m1 / P6/mmm: hexagonal metric, no conditions
    assert same(classes, 14, 14)


def test_groups_with_different_absences_differ(classes):
    assert not same(classes, 225, 227)  # Fd-3m has the d-glide conditions
    assert not same(classes, 225, 229)  # F against I centring
    assert not same(classes, 13, 14)  # P2/c against P2_1/c (0k0: k = 2n)
    assert not same(classes, 76, 77)  # P4_1 (00l: l = 4n) against P4_2 (l = 2n)
    assert not same(classes, 166, 167)  # R-3m against R-3c
    assert not same(classes, 191, 166)  # P against R centring
    assert not same(classes, 2, 3)  # triclinic against monoclinic metric


def test_class_counts_per_metric_family(classes):
    assert len(np.unique(classes)) == 97
    per_family = {}
    for n in range(1, 231):
        per_family.setdefault(metric_family(n), set()).add(int(classes[n - 1]))
    # monoclinic, unique axis b: P, P2_1, Pc, P2_1/c, C, Cc
    assert len(per_family["monoclinic"]) == 6
    assert len(per_family["triclinic"]) == 1
    # no class spans two metric families
    assert sum(len(v) for v in per_family.values()) == 97


def test_position_ceiling():
    labels = np.arange(230)
    assert position_ceiling(labels) == pytest.approx(97 / 230)
    assert position_ceiling(labels, k=230) == 1.0
    # one label per class: every class guessed right
    first_of_class = np.unique(powder_classes(), return_index=True)[1]
    assert position_ceiling(first_of_class) == 1.0
    # P4_1 three times, P4_3 once: the best guess in their class is P4_1
    assert position_ceiling([75, 75, 75, 77]) == 0.75
    cs = np.array([3, 3, 5, 5])  # tetragonal, hexagonal crystal-system labels (any coding)
    assert position_ceiling(cs, groups=np.array([0, 0, 1, 1])) == 1.0
    assert position_ceiling(cs, groups=np.zeros(4, int)) == 0.5


def test_bad_input():
    with pytest.raises(ValueError, match="no labels"):
        position_ceiling([])
    with pytest.raises(ValueError, match="at least 1"):
        position_ceiling([0], k=0)
    with pytest.raises(ValueError, match="shape"):
        position_ceiling([0, 1], groups=[0])
    with pytest.raises(ValueError, match="1–230"):
        metric_family(231)
