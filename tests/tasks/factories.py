"""factory_boy factories of the task domain, and the test data they are made of (wallets, data summaries,
validation files, signed joins). Every test folder imports them from here; fixtures stay in conftest.py files.
"""

from __future__ import annotations

import io
from decimal import Decimal

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from eth_account import Account
from eth_utils import keccak
from factory.django import DjangoModelFactory

from bcfl_core import eip712
from tasks.models import Ban, Identity, IdentityWallet, Participation, Task

User = get_user_model()
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
IDENTITY_REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
NODE_KEY = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEtest\n-----END PUBLIC KEY-----"


def wallet(i: int):
    """A deterministic test wallet (not an anvil key unless asked)."""
    return Account.from_key(keccak(text=f"bcfl-tasks-test-{i}"))


def npz_bytes(n: int = 40, shape=(4,), labels=(0, 1, 2), seed: int = 0, **extra) -> bytes:
    """A validation set as .npz bytes: `n` float32 examples of `shape`, labels cycling through `labels`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = np.array([labels[i % len(labels)] for i in range(n)], dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y, **extra)
    return buf.getvalue()


def summary(n: int = 30, shape=(4,), labels=(0, 1, 2)) -> dict:
    """A participant's data summary (`bcfl_core.dataspec.data_summary` shape) of `n` examples."""
    per = {str(lbl): 0 for lbl in labels}
    for i in range(n):
        per[str(labels[i % len(labels)])] += 1
    return {"feature_shape": list(shape), "examples_per_label": per, "n": n}


def signed_join(
    task: Task,
    account,
    data_summary: dict | None = None,
    node_key: str = NODE_KEY,
    chain_id=31337,
    registry=REGISTRY,
) -> dict:
    """`participation_join` kwargs (without task and user) with `account`'s EIP-712 Join signature."""
    data_summary = data_summary if data_summary is not None else summary()
    message = eip712.join_typed_data(
        chain_id=chain_id,
        verifying_contract=registry,
        task_id=task.chain_task_id,
        participant=account.address,
        node_public_key=node_key,
        data_summary=data_summary,
    )
    return {
        "participant": account.address,
        "node_public_key": node_key,
        "data_summary": data_summary,
        "signature": eip712.sign_typed_data(message, account.key.hex()),
    }


def fake_deployments(*, chain_id: int) -> str:
    """Deployment rows so EIP-712 domains resolve without a chain; returns the TaskRegistry address."""
    from contracts.models import Deployment

    Deployment.objects.create(chain_id=chain_id, name="TaskRegistry", address=REGISTRY)
    Deployment.objects.create(chain_id=chain_id, name="IdentityRegistry", address=IDENTITY_REGISTRY)
    return REGISTRY


class UserFactory(DjangoModelFactory):
    """A user named by wallet address, as SIWE sign-in makes them."""

    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda i: wallet(1000 + i).address)


class TaskFactory(DjangoModelFactory):
    """A task registered on chain and recruiting (status and chain id are overridable)."""

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
    aggregation_rule = "fedavg"
    reward_wei = Decimal(10**18)
    creator_share_bps = 1000
    licence_terms = "CC-BY-4.0"
    validation_file = factory.LazyFunction(lambda: ContentFile(npz_bytes(), name="val.npz"))
    validation_sha256 = "0" * 64
    spec_salt = factory.Sequence(lambda i: f"salt{i:028d}")
    status = Task.Status.RECRUITING
    chain_id = 31337
    chain_task_id = factory.Sequence(lambda i: i + 1)


class IdentityFactory(DjangoModelFactory):
    """A wallet's did:pkh identity, linked to that wallet (`address`)."""

    class Meta:
        model = Identity
        django_get_or_create = ("did",)
        skip_postgeneration_save = True  # the wallet link points at the identity; nothing to save again

    class Params:
        address = factory.Sequence(lambda i: wallet(2000 + i).address)

    did = factory.LazyAttribute(lambda o: f"did:pkh:eip155:31337:{o.address}")
    kind = Identity.Kind.PKH
    link = factory.RelatedFactory(
        "tests.tasks.factories.IdentityWalletFactory",
        factory_related_name="identity",
        address=factory.SelfAttribute("..address"),
    )


class IdentityWalletFactory(DjangoModelFactory):
    class Meta:
        model = IdentityWallet
        django_get_or_create = ("address",)

    address = factory.Sequence(lambda i: wallet(2500 + i).address)
    identity = factory.SubFactory(IdentityFactory, address=factory.SelfAttribute("..address"), link=None)


class ParticipationFactory(DjangoModelFactory):
    """A participation as `participation_join` leaves it (joined; the signature is not a real one)."""

    class Meta:
        model = Participation

    class Params:
        account = factory.Sequence(lambda i: wallet(3000 + i))

    task = factory.SubFactory(TaskFactory)
    wallet = factory.LazyAttribute(lambda o: o.account.address)
    user = factory.SubFactory(UserFactory, username=factory.SelfAttribute("..wallet"))
    identity = factory.SubFactory(IdentityFactory, address=factory.SelfAttribute("..wallet"))
    node_public_key = NODE_KEY
    node_public_key_hash = factory.LazyAttribute(lambda o: eip712.node_public_key_hash(o.node_public_key))
    data_summary = factory.LazyFunction(summary)
    data_summary_hash = factory.LazyAttribute(lambda o: eip712.data_summary_hash(o.data_summary))
    join_signature = "0x" + "00" * 65


class BanFactory(DjangoModelFactory):
    """An active, permanent ban (no chain transaction: use `ban_create` for that)."""

    class Meta:
        model = Ban

    identity = factory.SubFactory(IdentityFactory)
    task = None
    reason = "poisoning"
    evidence = factory.LazyFunction(dict)
    evidence_hash = factory.LazyAttribute(lambda o: eip712.keccak_hex(eip712.canonical_json(o.evidence)))
    expires_at = None
