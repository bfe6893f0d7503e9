"""The stakes tree: holders merged and checked, proofs verify, the root is order-independent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bcfl_core import merkle
from training.contribution import shares_bps
from training.stakes import TOTAL_SHARES, holders, stakes_tree

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20


def test_spellings_of_one_address_merge_and_zero_holders_have_no_leaf():
    got = holders({A: 500, A.upper().replace("0X", "0x"): 1500, B: 8000, "0x" + "11" * 20: 0})
    assert list(got.values()) == [2000, 8000] and len(got) == 2


def test_shares_must_sum_to_the_total():
    with pytest.raises(ValueError, match="sum to 9999"):
        holders({A: 9999})
    with pytest.raises(ValueError, match="negative"):
        holders({A: -1, B: 10001})


def test_every_proof_verifies_and_a_changed_share_does_not():
    tree = stakes_tree({A: 1234, B: 8766})
    for leaf in tree.leaves:
        assert merkle.verify(
            [bytes.fromhex(p[2:]) for p in leaf.proof],
            bytes.fromhex(tree.root[2:]),
            merkle.stake_leaf_hash(leaf.holder, leaf.shares),
        )
    forged = merkle.stake_leaf_hash(tree.leaves[0].holder, tree.leaves[0].shares + 1)
    assert not merkle.verify(
        [bytes.fromhex(p[2:]) for p in tree.leaves[0].proof], bytes.fromhex(tree.root[2:]), forged
    )


@given(
    st.dictionaries(st.integers(1, 2**160 - 1), st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40),
    st.integers(0, TOTAL_SHARES),
)
def test_random_contributions_give_a_tree_whose_leaves_sum_to_the_total(values, creator_bps):
    wallets = {"0x" + f"{k:040x}": v for k, v in values.items()}
    creator = "0x" + "ee" * 20
    tree = stakes_tree(shares_bps(wallets, creator=creator, creator_share_bps=creator_bps))
    assert sum(leaf.shares for leaf in tree.leaves) == TOTAL_SHARES
    assert all(leaf.shares > 0 for leaf in tree.leaves)
    assert (
        stakes_tree(
            dict(reversed(list(shares_bps(wallets, creator=creator, creator_share_bps=creator_bps).items())))
        ).root
        == tree.root
    )
