"""``manage.py create_task``: create a task on a bundled dataset and register it on chain (demo / dev only).

What a creator does in the browser (form, then MetaMask sends ``createTask`` with the reward), from the
command line: the validation set is the bundled dataset's test split, the data spec is read from it, the
creator is the wallet of an anvil dev key (``--dev-key N``, chain id 31337 only) or of a key file
(``--key-file``: plain hex or keystore JSON with the password in ``$BCFL_KEY_PASSWORD``). The creator's
transaction is signed and sent here (``contracts.devwallet``), then confirmed exactly as the site confirms a
browser's.
"""

from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError

from bcfl_core import dataspec
from training import datasets


def default_title(*, dataset: str, model: str, rounds: int, aggregation: str) -> str:
    """A title no other task has, e.g. "Digits demo #3: mlp, 5 rounds, FedAvg" (numbered per dataset)."""
    from tasks import catalog
    from tasks.models import Task

    rule = (
        catalog.aggregation_rules.get(aggregation).label
        if aggregation in catalog.aggregation_rules
        else aggregation
    )
    prefix = f"{dataset.capitalize()} demo #"
    number = Task.objects.filter(title__startswith=prefix).count() + 1
    while True:
        title = f"{prefix}{number}: {model}, {rounds} rounds, {rule}"
        if not Task.objects.filter(title=title).exists():
            return title
        number += 1


DEFAULT_LICENCE_TERMS = (
    "Use of the model and its outputs for research and commercial purposes; no redistribution of the weights "
    "without the NFT owner's permission."
)


def registration_failed(task, exc: Exception) -> str:
    """The words for a createTask that could not be sent or confirmed: the task stays and can be resent."""
    return (
        f"Registering task {task.pk} on chain failed: {exc}. The task stays 'registering': once the chain "
        f"answers, its creator can send it again with 'Register on chain' on /tasks/{task.pk}/."
    )


class Command(BaseCommand):
    help = "Create a task on a bundled dataset and register it on chain with a creator key (demo/dev)."

    def add_arguments(self, parser):
        from tasks import catalog

        who = parser.add_mutually_exclusive_group()
        who.add_argument(
            "--dev-key",
            type=int,
            default=None,
            help="index 1-9 of anvil's dev accounts (chain id 31337 only; #0 is the platform signer)",
        )
        who.add_argument("--key-file", default=None, help="the creator's key file (hex or keystore JSON)")
        parser.add_argument("--dataset", default="digits", choices=datasets.BUNDLED_DATASETS)
        parser.add_argument(
            "--title", default=None, help='default: "<Dataset> demo #<n>: <model>, <rounds>, <rule>"'
        )
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--min-participants", type=int, default=4)
        parser.add_argument("--max-participants", type=int, default=None, help="default: the minimum")
        parser.add_argument("--model", default="mlp")
        parser.add_argument("--lr", type=float, default=0.05)
        parser.add_argument("--local-epochs", type=int, default=2)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--min-samples", type=int, default=10, help="minimum examples per participant")
        parser.add_argument(
            "--aggregation",
            default=None,
            help=f"default: {catalog.aggregation_rule_default()} (FedAvg under its minimum of participants)",
        )
        parser.add_argument(
            "--scorer", default="", help="a contribution scorer name (default: the registry's)"
        )
        parser.add_argument(
            "--licence-terms",
            default=DEFAULT_LICENCE_TERMS,
            help="the licence terms of the trained model (the web form requires them too)",
        )
        parser.add_argument("--reward-eth", type=Decimal, default=Decimal("0.1"))
        parser.add_argument("--creator-share-percent", type=int, default=5)

    @staticmethod
    def creator_key(o) -> str:
        """The creator's private key: from --key-file, else anvil dev key --dev-key (1 by default)."""
        from contracts.devkeys import ANVIL_CHAIN_ID, ANVIL_DEV_KEYS

        if o["key_file"]:
            from training.client.wallet import KeyFileError, load_wallet

            try:
                return load_wallet(o["key_file"]).private_key
            except (KeyFileError, OSError) as exc:
                raise CommandError(f"Cannot read the key file: {exc}") from exc
        index = 1 if o["dev_key"] is None else o["dev_key"]
        if int(settings.CHAIN_ID) != ANVIL_CHAIN_ID:
            raise CommandError(f"anvil dev keys are for chain id {ANVIL_CHAIN_ID} only; use --key-file.")
        if not 1 <= index < len(ANVIL_DEV_KEYS):
            raise CommandError(
                f"--dev-key must be 1-{len(ANVIL_DEV_KEYS) - 1} (#0 is the platform's signer; sharing it "
                "would break the ledger's nonce sequence)."
            )
        return ANVIL_DEV_KEYS[index]

    @staticmethod
    def default_rule(min_participants: int) -> str:
        """The catalog's default rule, or the first one a task of ``min_participants`` can use."""
        from tasks import catalog

        rule = catalog.aggregation_rules.get(catalog.aggregation_rule_default())
        if min_participants >= rule.min_participants:
            return rule.name
        return next(
            e.name for e in catalog.aggregation_rules.entries() if e.min_participants <= min_participants
        )

    def handle(self, *args, **o):
        from eth_account import Account

        from bcfl_site.siwe.services import user_get_or_create_for_address
        from contracts.devwallet import dev_send, wallet_send
        from tasks.services import task_create, task_create_call, task_registration_confirm

        o["aggregation"] = o["aggregation"] or self.default_rule(o["min_participants"])
        key = self.creator_key(o)
        address = Account.from_key(key).address
        ds = datasets.load_dataset(o["dataset"])
        buf = io.BytesIO()
        np.savez(buf, x=ds.x_test, y=ds.y_test)
        summary = {**dataspec.data_summary(ds.x_test, ds.y_test), "dataset": o["dataset"]}
        creator = user_get_or_create_for_address(address=address)
        try:
            task = task_create(
                creator=creator,
                title=o["title"]
                or default_title(
                    dataset=o["dataset"], model=o["model"], rounds=o["rounds"], aggregation=o["aggregation"]
                ),
                model_kind=o["model"],
                learning_rate=o["lr"],
                local_epochs=o["local_epochs"],
                batch_size=o["batch_size"],
                feature_shape=[int(d) for d in ds.x_test.shape[1:]],
                label_set=sorted(int(v) for v in np.unique(ds.y_test)),
                min_samples_per_participant=o["min_samples"],
                rounds=o["rounds"],
                min_participants=o["min_participants"],
                max_participants=o["max_participants"] or o["min_participants"],
                aggregation_rule=o["aggregation"],
                contribution_scorer=o["scorer"],
                reward_wei=int(o["reward_eth"] * 10**18),
                creator_share_bps=int(o["creator_share_percent"]) * 100,
                validation_file=ContentFile(buf.getvalue(), name=f"{o['dataset']}-validation.npz"),
                validation_summary=summary,
                licence_terms=o["licence_terms"],
            )
        except Exception as exc:  # ValidationError / TaskStateError: the message says what is wrong
            raise CommandError(f"The task was refused: {exc}") from exc
        self.stdout.write(f"Task {task.pk} created by {address}; sending createTask ({o['reward_eth']} ETH)…")
        send = wallet_send if o["key_file"] else dev_send
        try:
            tx_hash = send(task_create_call(task=task), key, timeout=60)
            task = task_registration_confirm(task=task, tx_hash=tx_hash, by=creator)
        except Exception as exc:  # noqa: BLE001 - chain errors of every kind end the command with the reason
            raise CommandError(registration_failed(task, exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Task {task.pk} is {task.status} (on chain as #{task.chain_task_id}, tx {tx_hash}); "
                f"{task.min_participants} participant(s) start training."
            )
        )
        self.stdout.write(
            f"Next: python manage.py simulate_participants --task {task.pk} "
            f"--honest {max(1, task.min_participants - 1)} --malicious 1 --attack nan"
        )
