"""Stake shares: basis points that always sum to the total, largest remainder, attackers at zero."""

from hypothesis import given
from hypothesis import strategies as st

from training.contribution import TOTAL_SHARES, shares_bps

wallets = st.text("0123456789abcdef", min_size=4, max_size=6)


@given(
    st.dictionaries(wallets, st.floats(-5, 5, allow_nan=False), max_size=30),
    st.integers(0, TOTAL_SHARES),
    st.sets(wallets, max_size=5),
)
def test_shares_always_sum_to_the_total(contributions, creator_bps, excluded):
    shares = shares_bps(contributions, creator="creator", creator_share_bps=creator_bps, excluded=excluded)
    assert sum(shares.values()) == TOTAL_SHARES
    assert all(v >= 0 for v in shares.values())
    assert all(shares[w] == 0 for w in excluded if w in contributions)
    assert shares["creator"] >= creator_bps


def test_largest_remainder_with_known_values():
    # 9000 bps among contributions 1:1:1 → 3000 each; 2:1 with 10000 → 6667 / 3333
    assert shares_bps({"a": 1, "b": 1, "c": 1}, creator="z", creator_share_bps=1000) == {
        "a": 3000,
        "b": 3000,
        "c": 3000,
        "z": 1000,
    }
    assert shares_bps({"a": 2, "b": 1}, creator="z", creator_share_bps=0) == {"a": 6667, "b": 3333, "z": 0}


def test_negative_and_excluded_contributors_get_nothing():
    shares = shares_bps({"a": 3, "b": -2, "m": 10}, creator="z", creator_share_bps=500, excluded={"m"})
    assert shares == {"a": 9500, "b": 0, "m": 0, "z": 500}


def test_nobody_positive_gives_everything_to_the_creator():
    assert shares_bps({"a": -1}, creator="z", creator_share_bps=2000) == {"a": 0, "z": 10000}
