"""Fixtures for the task domain: wallets (eth_account keys), users named by wallet, tasks, a fake deployment."""

from __future__ import annotations

import io
from decimal import Decimal

import factory
import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from eth_account import Account
from eth_utils import keccak
from factory.django import DjangoModelFactory

from bcfl_core import eip712
from tasks.models import Task

User = get_user_model()
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
IDENTITY_REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
NODE_KEY = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEtest\n-----END PUBLIC KEY-----"


def wallet(i: int):
    """A deterministic test wallet (not an anvil key unless asked)."""
    return Account.from_key(keccak(text=f"bcfl-tasks-test-{i}"))


def npz_bytes(n: int = 40, shape=(4,), labels=(0, 1, 2), seed: int = 0, **extra) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = np.array([labels[i % len(labels)] for i in range(n)], dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y, **extra)
    return buf.getvalue()


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda i: wallet(1000 + i).address)


class TaskFactory(DjangoModelFactory):
    class Meta:
        model = Task

    creator = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda i: f"Digits task {i}")
    model_kind = "mlp"
    learning_rate = 0.05
    local_epochs = 1
    batch_size = 16
    feature_shape = [4]
    label_set = [0, 1, 2]
    min_samples_per_participant = 10
    rounds = 3
    min_participants = 1
    max_participants = 3
    aggregation_rule = Task.Aggregation.FEDAVG
    reward_wei = Decimal(10**18)
    creator_share_bps = 1000
    licence_terms = "CC-BY-4.0"
    validation_file = factory.LazyFunction(lambda: ContentFile(npz_bytes(), name="val.npz"))
    validation_sha256 = "0" * 64
    spec_salt = factory.Sequence(lambda i: f"salt{i:028d}")
    status = Task.Status.RECRUITING
    chain_id = 31337
    chain_task_id = factory.Sequence(lambda i: i + 1)


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture
def fake_deployment(db, settings):
    """Deployment rows so EIP-712 domains resolve without a chain."""
    from contracts.models import Deployment

    Deployment.objects.create(chain_id=settings.CHAIN_ID, name="TaskRegistry", address=REGISTRY)
    Deployment.objects.create(chain_id=settings.CHAIN_ID, name="IdentityRegistry", address=IDENTITY_REGISTRY)
    return REGISTRY


@pytest.fixture
def user_factory(db):
    return UserFactory


@pytest.fixture
def task_factory(db):
    return TaskFactory


def summary(n: int = 30, shape=(4,), labels=(0, 1, 2)) -> dict:
    per = {str(lbl): 0 for lbl in labels}
    for i in range(n):
        per[str(labels[i % len(labels)])] += 1
    return {"feature_shape": list(shape), "examples_per_label": per, "n": n}


def signed_join(task: Task, account, data_summary: dict | None = None, node_key: str = NODE_KEY, chain_id=31337,
                registry=REGISTRY) -> dict:  # fmt: skip
    data_summary = data_summary if data_summary is not None else summary()
    message = eip712.join_typed_data(chain_id=chain_id, verifying_contract=registry, task_id=task.chain_task_id,
                                     participant=account.address, node_public_key=node_key, data_summary=data_summary)  # fmt: skip
    return {
        "participant": account.address,
        "node_public_key": node_key,
        "data_summary": data_summary,
        "signature": eip712.sign_typed_data(message, account.key.hex()),
    }
