"""Row operations of the array index: the intersection of two rows, searched or merged."""

from __future__ import annotations

import numpy as np

from graphrec.serving.csr import MERGE_RATIO, bitset, common, in_bitset, without


def test_common_equals_a_set_intersection_on_both_paths():
    rng = np.random.default_rng(3)
    # Lengths from equal to far apart, on both sides of MERGE_RATIO, and empty rows.
    for la, lb in [(0, 0), (0, 50), (3, 3000), (50, 50 * MERGE_RATIO - 1), (50, 50 * MERGE_RATIO + 1),
                   (400, 500), (2000, 20000), (5000, 5000)]:
        for _ in range(5):
            universe = max(la, lb) * 3 + 1  # dense enough that the rows share numbers
            a = np.sort(rng.choice(universe, la, replace=False)).astype(np.int32)
            b = np.sort(rng.choice(universe, lb, replace=False)).astype(np.int32)
            want = sorted(set(a.tolist()) & set(b.tolist()))
            for x, y in ((a, b), (b, a)):
                got = common(x, y)
                assert got.tolist() == want, (la, lb)
                assert got.dtype == np.int32


def test_bitset_membership_equals_a_set_lookup():
    rng = np.random.default_rng(5)
    for size in (0, 1, 7, 8, 9, 300, 5000):
        row = np.unique(rng.integers(0, max(size, 1) * 3, size)).astype(np.int32)
        numbers = rng.integers(0, max(size, 1) * 4 + 20, 400).astype(np.int32)  # past the row's end too
        held = set(row.tolist())
        got = in_bitset(bitset(row), numbers)
        assert got.tolist() == [n in held for n in numbers.tolist()], size
        assert in_bitset(bitset(row), row).all()


def test_without_equals_a_set_difference_for_few_and_many_numbers():
    rng = np.random.default_rng(5)
    for few in (0, 1, 3, 8, 9, 40):  # up to 8: a comparison each; more: np.isin
        row = np.unique(rng.integers(0, 200, 120)).astype(np.int32)
        numbers = rng.integers(0, 220, few)
        assert without(row, numbers).tolist() == sorted(set(row.tolist()) - set(numbers.tolist()))
