"""Bulk data for `benchmarks/web.py`: N completed tasks with runs, rounds, final models (tiny placeholder files and
model cards in the private storage), finalizations and stake allocations, each minted as a model NFT with a
varied mix of licence terms (active/old), listings (active/cancelled), NFT sales and licences; plus recruiting
tasks for the home page. Deterministic for a seed. Needs a configured Django (called after `django.setup()`).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from eth_utils import keccak, to_checksum_address

from marketplace import token_columns
from marketplace.models import Licence, LicenceTerms, Listing, ModelToken, NFTSale
from tasks.models import Task
from training.models import Finalization, FinalModel, Round, Run, StakeAllocation

DATASETS = ("digits", "mnist", "fashion-mnist", "iris", "wine", "breast-cancer", "har", "ecg")
WORDS = (
    "handwritten",
    "robust",
    "medical",
    "sensor",
    "federated",
    "private",
    "compact",
    "hospital",
    "retail",
)
BATCH = 2_000
ETH = 10**18


def address(label: str) -> str:
    """A deterministic checksummed address from a label (keccak, last 20 bytes)."""
    return to_checksum_address("0x" + keccak(text=label)[-20:].hex())


def tx_hash(label: str) -> str:
    return "0x" + keccak(text=label).hex()


def seed(*, n_models: int, n_recruiting: int = 100, n_users: int = 500, rng_seed: int = 7) -> dict:
    """Create the rows; returns {"token_ids": [...], "rows": {model name: count}}."""
    rng = random.Random(rng_seed)
    now = timezone.now()
    with transaction.atomic():
        users = _users(n_users)
        tasks = _tasks(rng, users, n_models, n_recruiting, now)
        done = [t for t in tasks if t.status == Task.Status.COMPLETED]
        _training(rng, done, now)
        _marketplace(rng, done, now)
    rows = {
        m.__name__: m.objects.count()
        for m in (Task, Run, Round, FinalModel, StakeAllocation, ModelToken, LicenceTerms, Listing, NFTSale)
    }
    rows["Licence"] = Licence.objects.count()
    return {"token_ids": [t.chain_task_id for t in done], "rows": rows}


def _users(n: int) -> list:
    user_model = get_user_model()
    objs = [user_model(username=address(f"bench-user-{i}")) for i in range(n)]
    return user_model.objects.bulk_create(objs, batch_size=BATCH)


def _tasks(rng: random.Random, users: list, n_models: int, n_recruiting: int, now) -> list[Task]:
    objs = []
    for i in range(n_models + n_recruiting):
        dataset, kind = rng.choice(DATASETS), rng.choice(("mlp", "cnn"))
        completed = i < n_models
        objs.append(
            Task(
                creator=rng.choice(users),
                title=f"{rng.choice(WORDS).title()} {dataset} {kind.upper()} #{i}",
                description=f"A {rng.choice(WORDS)} {kind} trained on {dataset} by {rng.randint(3, 30)} participants.",
                model_kind=kind,
                learning_rate=rng.choice((0.01, 0.05, 0.1)),
                local_epochs=rng.randint(1, 5),
                batch_size=rng.choice((16, 32, 64)),
                feature_shape=[64] if kind == "mlp" else [1, 8, 8],
                label_set=list(range(10)),
                rounds=rng.randint(3, 10),
                min_participants=3,
                max_participants=rng.randint(3, 50),
                aggregation_rule=rng.choice(("fedavg", "multikrum", "median", "trimmed_mean")),
                reward_wei=Decimal(rng.randint(1, 50) * ETH // 10),
                creator_share_bps=rng.choice((0, 500, 1000, 2000)),
                licence_terms="CC-BY-4.0",
                validation_file=f"validation/bench-{i}.npz",
                validation_sha256="0" * 64,
                validation_summary={"dataset": dataset, "n": rng.randint(100, 2000)},
                status=Task.Status.COMPLETED if completed else Task.Status.RECRUITING,
                chain_id=settings.CHAIN_ID,
                chain_task_id=i + 1,
                created_at=now - dt.timedelta(minutes=n_models + n_recruiting - i),
            )
        )
    return Task.objects.bulk_create(objs, batch_size=BATCH)


def _training(rng: random.Random, tasks: list[Task], now) -> None:
    runs = Run.objects.bulk_create(
        [Run(task=t, status=Run.Status.COMPLETED, flower_run_id=str(t.pk)) for t in tasks], batch_size=BATCH
    )
    rounds, last = [], {}
    for t, run in zip(tasks, runs, strict=True):
        acc = rng.uniform(0.3, 0.6)
        for number in range(1, t.rounds + 1):
            acc = min(0.995, acc + rng.uniform(0.0, 0.12))
            rnd = Round(
                task=t,
                run=run,
                number=number,
                global_sha256=keccak(text=f"g-{t.pk}-{number}").hex(),
                accuracy=acc,
                loss=max(0.01, 2.0 * (1 - acc)),
                accepted_count=t.max_participants,
                aggregation_rule=t.aggregation_rule,
                updates_root=tx_hash(f"root-{t.pk}-{number}"),
            )
            rounds.append(rnd)
            last[t.pk] = rnd
    Round.objects.bulk_create(rounds, batch_size=BATCH)
    _final_models(tasks, last)
    Finalization.objects.bulk_create(
        [
            Finalization(
                task=t,
                status=Finalization.Status.COMPLETED,
                settlement="finalize",
                stakes_root=tx_hash(f"stakes-{t.pk}"),
                paid_to_stakes_wei=t.reward_wei,
            )
            for t in tasks
        ],
        batch_size=BATCH,
    )
    allocs = []
    for t in tasks:
        holders = rng.randint(2, 6)
        cuts = sorted(rng.sample(range(1, 10_000), holders - 1))
        for j, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, 10_000], strict=True)):
            allocs.append(
                StakeAllocation(
                    task=t,
                    holder=address(f"holder-{t.pk}-{j}"),
                    shares=hi - lo,
                    leaf_index=j,
                    leaf=tx_hash(f"leaf-{t.pk}-{j}"),
                    proof=[tx_hash(f"sib-{t.pk}-{j}")],
                )
            )
    StakeAllocation.objects.bulk_create(allocs, batch_size=BATCH)


def _final_models(tasks: list[Task], last: dict) -> None:
    root = Path(settings.PRIVATE_MEDIA_ROOT)
    finals = []
    for t in tasks:
        folder = root / f"final_models/task-{t.pk}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"placeholder weights")
        rnd = last[t.pk]
        card = f"---\nlicense: cc-by-4.0\n---\n# {t.title}\n\nAccuracy {rnd.accuracy:.3f} after {t.rounds} rounds.\n"
        (folder / "README.md").write_text(card)
        finals.append(
            FinalModel(
                task=t,
                source_round=rnd,
                file=f"final_models/task-{t.pk}/model.safetensors",
                card=f"final_models/task-{t.pk}/README.md",
                sha256="0" * 64,
                weights_sha256=rnd.global_sha256,
                metrics={"rounds": [{"round": rnd.number, "accuracy": rnd.accuracy, "loss": rnd.loss}]},
            )
        )
    FinalModel.objects.bulk_create(finals, batch_size=BATCH)


def _marketplace(rng: random.Random, tasks: list[Task], now) -> None:
    tokens, terms, listings, sales, licences = [], [], [], [], []
    for i, t in enumerate(tasks):
        owner = t.creator.username
        minted = now - dt.timedelta(minutes=len(tasks) - i)
        token = ModelToken(
            task=t, chain_id=t.chain_id, token_id=t.chain_task_id, owner=owner, minted_at=minted
        )
        for s in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):  # NFT sales: the owner becomes the last buyer
            buyer = address(f"buyer-{t.pk}-{s}")
            price = Decimal(rng.randint(1, 200) * ETH // 100)
            sales.append(
                NFTSale(
                    token=token,
                    seller=owner,
                    buyer=buyer,
                    price_wei=price,
                    royalty_wei=price * 5 // 100,
                    tx_hash=tx_hash(f"sale-{t.pk}-{s}"),
                    block_number=1000 + i * 10 + s,
                )
            )
            owner = buyer
        token.owner = owner
        tokens.append(token)
        terms += _terms(rng, token, t.pk)
        listings += _listings(rng, token, t.pk)
        licences += _licences(rng, token, t.pk, i, now)
    ModelToken.objects.bulk_create(tokens, batch_size=BATCH)
    for rows, model in ((terms, LicenceTerms), (listings, Listing), (sales, NFTSale), (licences, Licence)):
        for row in rows:
            row.token_id = row.token.pk
        model.objects.bulk_create(rows, batch_size=BATCH)
    token_columns.refresh()  # bulk rows bypass the record functions: the list columns in one UPDATE


def _terms(rng: random.Random, token: ModelToken, pk: int) -> list[LicenceTerms]:
    rows = []
    if rng.random() < 0.2:  # older terms, replaced
        rows.append(_terms_row(rng, token, f"old-{pk}", active=False))
    if rng.random() < 0.7:
        rows.append(_terms_row(rng, token, f"now-{pk}", active=True))
    return rows


def _terms_row(rng: random.Random, token: ModelToken, label: str, *, active: bool) -> LicenceTerms:
    text = rng.choice(
        ("Non-exclusive research licence.", "Commercial use, no redistribution.", "Evaluation only.")
    )
    return LicenceTerms(
        token=token,
        set_by=token.owner,
        price_wei=Decimal(rng.randint(1, 100) * ETH // 100),
        duration_s=rng.choice((0, 30, 90, 365)) * 86_400,
        terms=text,
        terms_hash=tx_hash(text),
        active=active,
        tx_hash=tx_hash(f"terms-{label}"),
    )


def _listings(rng: random.Random, token: ModelToken, pk: int) -> list[Listing]:
    rows = []
    for label, share, active in (("old", 0.15, False), ("now", 0.3, True)):
        if rng.random() < share:
            rows.append(
                Listing(
                    token=token,
                    seller=token.owner,
                    price_wei=Decimal(rng.randint(1, 500) * ETH // 100),
                    active=active,
                    tx_hash=tx_hash(f"list-{label}-{pk}"),
                )
            )
    return rows


def _licences(rng: random.Random, token: ModelToken, pk: int, i: int, now) -> list[Licence]:
    count = rng.choice((0, 0, 0, 1, 2, 3, 6)) if rng.random() < 0.6 else 0
    return [
        Licence(
            token=token,
            buyer=address(f"licensee-{pk}-{k}"),
            price_wei=Decimal(rng.randint(1, 100) * ETH // 100),
            licence_id=pk * 10 + k,
            terms_hash=tx_hash("terms"),
            expires_at=None if k % 3 == 0 else now + dt.timedelta(days=rng.randint(-60, 300)),
            tx_hash=tx_hash(f"licence-{pk}-{k}"),
            block_number=2000 + i * 10 + k,
        )
        for k in range(count)
    ]
