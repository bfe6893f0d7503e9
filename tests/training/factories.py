"""factory_boy factories for the training records (runs, rounds, updates, node registrations, final models,
contributions, finalizations, stake allocations). Tasks and users come from tests.tasks.conftest.

`checkpoint_file(path, value)` writes a tiny safetensors checkpoint and returns (path, file sha256, weights
hash), for rounds whose checkpoint must exist.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import factory
import numpy as np
from django.core.files.base import ContentFile
from eth_account import Account
from eth_utils import keccak
from factory.django import DjangoModelFactory

from tests.tasks.factories import TaskFactory
from training.models import (
    Contribution,
    Finalization,
    FinalModel,
    NodeRegistration,
    Round,
    Run,
    StakeAllocation,
    Update,
)
from training.trail import ZERO_HASH, sha256_file


def _address(i: int) -> str:
    return Account.from_key(keccak(text=f"bcfl-factory-{i}")).address


def checkpoint_file(path: Path, value: float) -> tuple[str, str, str]:
    """A one-array safetensors checkpoint (key "w", 2x2 of `value`): (path, file sha256, weights hash)."""
    from safetensors.numpy import save_file

    from training import zoo

    arrays = [np.full((2, 2), value, dtype=np.float32)]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": arrays[0]}, str(path))
    return str(path), sha256_file(path), zoo.weights_hash(arrays)


class NodeRegistrationFactory(DjangoModelFactory):
    class Meta:
        model = NodeRegistration

    public_key_hash = factory.Sequence(lambda i: "0x" + keccak(text=f"key-{i}").hex())
    public_key = factory.Sequence(lambda i: f"ecdsa-sha2-nistp384 KEY{i}")
    wallet = factory.Sequence(_address)
    identity = factory.LazyAttribute(lambda o: _identity(o.wallet))
    node_id = factory.Sequence(lambda i: str(1000 + i))
    status = NodeRegistration.Status.REGISTERED


def _identity(wallet: str):
    from tasks.services import identity_for_wallet

    return identity_for_wallet(wallet)


class RunFactory(DjangoModelFactory):
    class Meta:
        model = Run

    task = factory.SubFactory(TaskFactory)
    attempt = 1
    status = Run.Status.COMPLETED
    flower_run_id = factory.Sequence(lambda i: str(i + 1))


class RoundFactory(DjangoModelFactory):
    class Meta:
        model = Round

    run = factory.SubFactory(RunFactory)
    task = factory.SelfAttribute("run.task")
    number = factory.Sequence(lambda i: i + 1)
    global_sha256 = factory.Sequence(lambda i: keccak(text=f"global-{i}").hex())
    accuracy = 0.9
    loss = 0.3
    updates_root = ZERO_HASH


class UpdateFactory(DjangoModelFactory):
    class Meta:
        model = Update

    round = factory.SubFactory(RoundFactory)
    node_id = factory.Sequence(lambda i: str(10 + i))
    wallet = factory.LazyAttribute(lambda o: o.participation.wallet if o.participation else "")
    participation = None
    update_sha256 = factory.Sequence(lambda i: keccak(text=f"update-{i}").hex())
    num_examples = 10
    accepted = True
    score = 0.5
    score_uint = factory.LazyAttribute(lambda o: int(round(o.score * 10**6)) if o.accepted else 0)


class FinalModelFactory(DjangoModelFactory):
    class Meta:
        model = FinalModel

    source_round = factory.SubFactory(RoundFactory)
    task = factory.SelfAttribute("source_round.task")
    file = factory.LazyFunction(lambda: ContentFile(b"weights", name="model.safetensors"))
    sha256 = hashlib.sha256(b"weights").hexdigest()
    weights_sha256 = factory.SelfAttribute("source_round.global_sha256")


class ContributionFactory(DjangoModelFactory):
    class Meta:
        model = Contribution

    task = factory.SelfAttribute("participation.task")
    participation = None  # required: pass one
    wallet = factory.SelfAttribute("participation.wallet")
    per_round = factory.Dict({"1": 0.5})
    cumulative = 0.5


class FinalizationFactory(DjangoModelFactory):
    """A task's settled finalization (`settlement="finalize"`): its stakes are open on chain."""

    class Meta:
        model = Finalization

    task = factory.SubFactory(TaskFactory)
    status = Finalization.Status.COMPLETED
    settlement = "finalize"
    stakes_root = "0x" + "ab" * 32


class StakeAllocationFactory(DjangoModelFactory):
    """One holder's leaf; the leaf and proof are placeholders (not a real tree) unless passed."""

    class Meta:
        model = StakeAllocation

    task = factory.SubFactory(TaskFactory)
    holder = factory.Sequence(lambda i: _address(5000 + i))
    shares = 2_500
    leaf_index = factory.Sequence(lambda i: i)
    leaf = factory.Sequence(lambda i: "0x" + keccak(text=f"leaf-{i}").hex())
    proof = factory.LazyFunction(lambda: ["0x" + keccak(text="sibling").hex()])
