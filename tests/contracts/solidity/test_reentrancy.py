"""Re-entrancy attacks from a receive() hook fail: the guard reverts, and the attacker gets only what it is owed."""

from __future__ import annotations

from eth_utils import keccak

from tests.contracts.solidity.helpers import ETH, reverts


def _attacker_with_credit(env, accounts):
    attacker = env.deploy("MarketplaceWithdrawAttacker", env.market.address)
    token_id = env.mint_model(attacker.address, keccak(text="a"), royalty_bps=0)
    env.give_shares(token_id, [accounts[2]], [10_000])
    env.send(attacker.functions.list(token_id, ETH))
    env.send(env.market.functions.buyNFT(token_id), accounts[4], value=ETH)
    # an honest seller's credit also sits in the marketplace
    honest = env.mint_model(accounts[1], keccak(text="b"), task_id=2, royalty_bps=0)
    env.give_shares(honest, [accounts[2]], [10_000])
    env.send(env.nft.functions.approve(env.market.address, honest), accounts[1])
    env.send(env.market.functions.listNFT(honest, ETH), accounts[1])
    env.send(env.market.functions.buyNFT(honest), accounts[4], value=ETH)
    assert env.market.functions.creditOf(attacker.address).call() == ETH
    return attacker


def test_marketplace_withdraw_reentry_reverts(env, accounts):
    attacker = _attacker_with_credit(env, accounts)
    with reverts("ReentrancyGuardReentrantCall"):
        attacker.functions.attack(False).transact({"from": accounts[0]})
    assert env.balance(attacker.address) == 0
    assert env.balance(env.market.address) == 2 * ETH


def test_marketplace_withdraw_reentry_gains_nothing(env, accounts):
    attacker = _attacker_with_credit(env, accounts)
    env.send(attacker.functions.attack(True))
    assert attacker.functions.reentryFailed().call() is True
    assert attacker.functions.reentries().call() == 1
    assert env.balance(attacker.address) == ETH
    assert env.market.functions.creditOf(attacker.address).call() == 0
    assert env.balance(env.market.address) == ETH  # the honest seller's credit is untouched
    assert env.market.functions.creditOf(accounts[1]).call() == ETH


def _attacker_with_shares(env, accounts):
    attacker = env.deploy("StakeClaimAttacker", env.stake.address)
    env.give_shares(1, [attacker.address, accounts[2]], [5000, 5000])
    env.send(env.stake.functions.depositRevenue(1), accounts[5], value=2 * ETH)
    return attacker


def test_stake_claim_reentry_reverts(env, accounts):
    attacker = _attacker_with_shares(env, accounts)
    with reverts("ReentrancyGuardReentrantCall"):
        attacker.functions.attack(1, False).transact({"from": accounts[0]})
    assert env.balance(attacker.address) == 0
    assert env.stake.functions.claimable(1, attacker.address).call() == ETH


def test_stake_claim_reentry_gains_nothing(env, accounts):
    attacker = _attacker_with_shares(env, accounts)
    env.send(attacker.functions.attack(1, True))
    assert attacker.functions.reentryFailed().call() is True
    assert env.balance(attacker.address) == ETH
    assert env.stake.functions.claimable(1, attacker.address).call() == 0
    assert env.stake.functions.claimable(1, accounts[2]).call() == ETH
    assert env.balance(env.stake.address) == ETH


def test_push_payout_reentry_is_blocked(env, accounts):
    attacker = _attacker_with_shares(env, accounts)
    stake = env.stake.functions
    # swallowing attacker: its re-entrant claim() trips the guard, it keeps just its own payout
    env.send(attacker.functions.arm(1, True))
    receipt = env.send(stake.pushPayouts(1, [attacker.address, accounts[2]]))
    paid = {e["args"]["account"]: e["args"]["amount"] for e in env.event(env.stake, "PayoutPushed", receipt)}
    assert paid == {attacker.address: ETH, accounts[2]: ETH}
    assert attacker.functions.reentryFailed().call() is True
    assert env.balance(attacker.address) == ETH and env.balance(env.stake.address) == 0
    # bubbling attacker: its receive() reverts, so the push skips it and its revenue stays claimable
    env.send(stake.depositRevenue(1), accounts[5], value=2 * ETH)
    env.send(attacker.functions.arm(1, False))
    receipt = env.send(stake.pushPayouts(1, [attacker.address, accounts[2]]))
    failed = [dict(e["args"]) for e in env.event(env.stake, "PayoutFailed", receipt)]
    assert failed == [{"id": 1, "account": attacker.address, "amount": ETH}]
    assert stake.claimable(1, attacker.address).call() == ETH
    assert stake.claimable(1, accounts[2]).call() == 0
    assert env.balance(env.stake.address) == ETH
