"""Stateful property test of StakeToken against the real contract on anvil (hypothesis RuleBasedStateMachine).

Random sequences of share claims (single, by proof, and batched), deposits, plain-ETH receipts + allocations,
share transfers, revenue claims and pushed payouts over two stake ids, with two hostile holders (a contract whose
receive() reverts, one that burns all its gas). A Python model keeps each account's exact numerator
N = deposited x balance + correction (wei x shares); after every step the transaction's own effects are checked
against the model (amounts paid, events, who was skipped), and at the end of every sequence, for every account:

    accumulated == N // 10,000,   paid (withdrawn) + claimable == accumulated,
    deposited == sum(accumulated) + floor(deposited x unclaimed shares / 10,000) + dust,
    0 <= dust <= number of accounts that ever held shares of the id (the bound proved in StakeToken's @dev:
    each floor loses < 1 wei and there is one floor per account plus one for the unclaimed shares; it does
    not grow with the number of deposits),
    and the pool's ETH balance == sum(deposited) - sum(paid) + unallocated, to the wei.

Each sequence runs from an `evm_snapshot` and is reverted afterwards. CI runs STAKE_FUZZ_EXAMPLES (default 200)
sequences; `make fuzz` runs 10,000.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.contracts.solidity.helpers import ETH, TOTAL_SHARES, StakeTree

IDS = (1, 2)
EXAMPLES = int(os.environ.get("STAKE_FUZZ_EXAMPLES", "200"))
STEPS = int(os.environ.get("STAKE_FUZZ_STEPS", "12"))

amounts = st.one_of(st.integers(1, 10_000), st.integers(1, 50 * ETH))
splits = st.lists(st.integers(0, TOTAL_SHARES), min_size=5, max_size=5).map(
    lambda cuts: [b - a for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), TOTAL_SHARES], strict=True)]
)


class StakeMachine(RuleBasedStateMachine):
    env = None  # set by the test: Env, anvil node, hostile holder contracts
    node = None
    bad = None
    burner = None
    lens = None

    def __init__(self):
        super().__init__()
        self.snap = self.node.snapshot()
        env = self.env
        self.st = env.stake.functions
        self.eoas = env.accounts[1:5]
        self.hostile = [self.bad.address, self.burner.address]
        self.holders = self.eoas + self.hostile  # leaf candidates; index 0..5
        self.payer = env.accounts[6]
        self.trees: dict[int, StakeTree] = {}
        self.deposited = dict.fromkeys(IDS, 0)
        self.unallocated = self.start_unallocated = self.st.unallocatedRevenue().call()
        self.start_balance = env.balance(env.stake.address)
        self.balance: dict[tuple[int, str], int] = {}
        self.correction: dict[tuple[int, str], int] = {}
        self.withdrawn: dict[tuple[int, str], int] = {}
        self.claimed: set[tuple[int, str]] = set()
        self.ever_held: dict[int, set[str]] = {i: set() for i in IDS}

    # --- model ------------------------------------------------------------------------------------
    def _acc(self, id_: int, who: str) -> int:
        n = self.deposited[id_] * self.balance.get((id_, who), 0) + self.correction.get((id_, who), 0)
        return n // TOTAL_SHARES

    def _due(self, id_: int, who: str) -> int:
        return self._acc(id_, who) - self.withdrawn.get((id_, who), 0)

    def _mint(self, id_: int, who: str, shares: int) -> None:
        self.balance[(id_, who)] = self.balance.get((id_, who), 0) + shares
        self.claimed.add((id_, who))
        if shares:
            self.ever_held[id_].add(who)

    # --- rules ------------------------------------------------------------------------------------
    @initialize(split1=splits, split2=splits, reward=st.integers(0, 10 * ETH))
    def open_pools(self, split1, split2, reward):
        for id_, split in zip(IDS, (split1, split2), strict=True):
            split = list(split)
            if id_ == 2:  # the gas burner has no leaf in id 2 (like a malicious participant)
                split[0], split[5] = split[0] + split[5], 0
            pairs = [(h, s) for h, s in zip(self.holders, split, strict=True) if s]
            shares = [s for _, s in pairs]
            tree = StakeTree([h for h, _ in pairs], shares)
            self.env.send(self.st.openStakes(id_, tree.root), value=reward, fast=True)
            self.trees[id_] = tree
            self.deposited[id_] += reward

    @rule(id_=st.sampled_from(IDS), index=st.integers(0, 5), by=st.integers(1, 8))
    def claim_shares(self, id_, index, by):
        tree = self.trees[id_]
        if index >= len(tree.holders):
            return
        who = tree.holders[index]
        if (id_, who) in self.claimed:
            return
        receipt = self.env.send(
            self.st.claimShares(*tree.claim_args(id_, index)), self.env.accounts[by], fast=True
        )
        (ev,) = self.env.event(self.env.stake, "SharesClaimed", receipt)
        assert (ev["args"]["holder"], ev["args"]["shares"]) == (who, tree.shares[index])
        self._mint(id_, who, tree.shares[index])

    @rule(id_=st.sampled_from(IDS), picks=st.lists(st.integers(0, 5), max_size=6))
    def claim_shares_batch(self, id_, picks):
        tree = self.trees[id_]
        idx = [i for i in picks if i < len(tree.holders)]
        fn = self.st.claimSharesBatch(
            id_, [tree.holders[i] for i in idx], [tree.shares[i] for i in idx], [tree.proof(i) for i in idx]
        )
        receipt = self.env.send(fn, fast=True, gas=3_000_000)
        expect = []
        for i in idx:
            if (id_, tree.holders[i]) not in self.claimed:
                self._mint(id_, tree.holders[i], tree.shares[i])
                expect.append(tree.holders[i])
        assert [
            e["args"]["holder"] for e in self.env.event(self.env.stake, "SharesClaimed", receipt)
        ] == expect

    @rule(id_=st.sampled_from(IDS), amount=amounts)
    def deposit(self, id_, amount):
        self.env.send(self.st.depositRevenue(id_), self.payer, value=amount, fast=True)
        self.deposited[id_] += amount

    @rule(id_=st.sampled_from(IDS), amount=amounts, part=st.integers(0, 100))
    def receive_and_allocate(self, id_, amount, part):
        self.env.send_eth(self.payer, self.env.stake.address, amount)
        self.unallocated += amount
        share = self.unallocated * part // 100
        if share:
            self.env.send(self.st.allocateRevenue(id_, share), fast=True)
            self.unallocated -= share
            self.deposited[id_] += share

    @rule(
        id_=st.sampled_from(IDS), src=st.integers(0, 3), dst=st.integers(0, 4), fraction=st.integers(0, 100)
    )
    def transfer(self, id_, src, dst, fraction):
        sender = self.eoas[src]
        receiver = (self.eoas + [self.bad.address])[dst]
        value = self.balance.get((id_, sender), 0) * fraction // 100
        batch = fraction % 2 == 1
        fn = (
            self.st.safeBatchTransferFrom(sender, receiver, [id_], [value], b"")
            if batch
            else self.st.safeTransferFrom(sender, receiver, id_, value, b"")
        )
        self.env.send(fn, sender, fast=True)
        delta = self.deposited[id_] * value
        if sender != receiver:
            self.balance[(id_, sender)] = self.balance.get((id_, sender), 0) - value
            self.balance[(id_, receiver)] = self.balance.get((id_, receiver), 0) + value
            self.correction[(id_, sender)] = self.correction.get((id_, sender), 0) + delta
            self.correction[(id_, receiver)] = self.correction.get((id_, receiver), 0) - delta
            if value:
                self.ever_held[id_].add(receiver)

    @rule(id_=st.sampled_from(IDS), who=st.integers(0, 3))
    def claim(self, id_, who):
        account = self.eoas[who]
        due = self._due(id_, account)
        before = self.env.balance(account)
        receipt = self.env.send(self.st.claim(id_), account, fast=True)
        assert self.env.balance(account) - before + self.env.fee(receipt) == due
        events = self.env.event(self.env.stake, "DividendClaimed", receipt)
        assert [e["args"]["amount"] for e in events] == ([due] if due else [])
        self.withdrawn[(id_, account)] = self.withdrawn.get((id_, account), 0) + due

    @precondition(lambda self: bool(self.trees))
    @rule(id_=st.sampled_from(IDS), picks=st.lists(st.integers(0, 6), min_size=1, max_size=8))
    def push(self, id_, picks):
        targets = [(self.holders + [self.payer])[i] for i in picks]
        receipt = self.env.send(self.st.pushPayouts(id_, targets), fast=True, gas=5_000_000)
        pushed, failed = [], []
        for who in targets:
            due = self._due(id_, who)
            if not due:
                continue
            if who in self.hostile:
                failed.append((who, due))  # reverting / gas-burning receive: skipped, keeps its claim
            else:
                pushed.append((who, due))
                self.withdrawn[(id_, who)] = self.withdrawn.get((id_, who), 0) + due
        got = [
            (e["args"]["account"], e["args"]["amount"])
            for e in self.env.event(self.env.stake, "PayoutPushed", receipt)
        ]
        bad = [
            (e["args"]["account"], e["args"]["amount"])
            for e in self.env.event(self.env.stake, "PayoutFailed", receipt)
        ]
        assert (got, bad) == (pushed, failed)

    # --- end of a sequence --------------------------------------------------------------------------
    def check_accounting(self):
        everyone = self.holders + [self.payer]
        paid_total = 0
        for id_ in IDS:
            views, deposited, unallocated = self.lens.functions.accounts(
                self.env.stake.address, id_, everyone
            ).call()
            assert deposited == self.deposited[id_] and unallocated == self.unallocated
            numerators, accumulated = 0, 0
            for who, (balance, acc, paid, claimable, claimed) in zip(everyone, views, strict=True):
                assert balance == self.balance.get((id_, who), 0), who
                assert acc == self._acc(id_, who), who
                assert paid == self.withdrawn.get((id_, who), 0), who
                assert claimable == acc - paid >= 0, who
                assert claimed == ((id_, who) in self.claimed), who
                numerators += deposited * balance + self.correction.get((id_, who), 0)
                accumulated += acc
                paid_total += paid
            tree = self.trees[id_]
            unclaimed = sum(
                s for h, s in zip(tree.holders, tree.shares, strict=True) if (id_, h) not in self.claimed
            )
            # conservation of numerators (no rounding anywhere but the final floors) ...
            assert numerators + deposited * unclaimed == deposited * TOTAL_SHARES
            # ... so paid + claimable + owed to unclaimed shares + dust = deposited, with the dust bounded
            owed = deposited * unclaimed // TOTAL_SHARES
            dust = deposited - accumulated - owed
            assert 0 <= dust <= len(self.ever_held[id_]), (dust, self.ever_held[id_])
        pool = self.env.balance(self.env.stake.address) - self.start_balance
        assert pool == sum(self.deposited.values()) - paid_total + self.unallocated - self.start_unallocated

    def teardown(self):
        try:
            if self.trees:
                self.check_accounting()
        finally:
            assert self.node.revert(self.snap)


@pytest.mark.anvil
def test_stake_accounting_state_machine(anvil, env):
    base = anvil.snapshot()
    try:
        StakeMachine.env, StakeMachine.node = env, anvil
        StakeMachine.bad, StakeMachine.burner = env.deploy("RevertingReceiver"), env.deploy("GasBurner")
        StakeMachine.lens = env.deploy("StakeLens")
        run_state_machine_as_test(
            StakeMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
    finally:
        assert anvil.revert(base)
