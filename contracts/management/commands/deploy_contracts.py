"""`manage.py deploy_contracts [--redeploy-missing]`: deploy the platform contracts, idempotently.

Deployment transactions go through the ledger (`ChainTx` rows keyed `deploy:<chain>:<name>:<bytecode>`),
processed inline, so they share the platform signer's nonce sequence with every other transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from contracts.chain import ChainError
from contracts.deployment import deploy_contracts


class Command(BaseCommand):
    help = "Deploy IdentityRegistry, TaskRegistry, ModelNFT, StakeToken and Marketplace (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--redeploy-missing",
            action="store_true",
            help="Redeploy contracts whose recorded address has no code (fresh or reset node).",
        )

    def handle(self, *args, **options):
        self.stdout.write(f"Chain {settings.CHAIN_ID} at {settings.CHAIN_RPC_URL}")
        try:
            result = deploy_contracts(redeploy_missing=options["redeploy_missing"], log=self.stdout.write)
        except ChainError as exc:
            raise CommandError(str(exc)) from exc
        if result["deployed"]:
            self.stdout.write(self.style.SUCCESS(f"Deployed: {', '.join(result['deployed'])}"))
        else:
            self.stdout.write(self.style.SUCCESS("Nothing to deploy: all contracts are already deployed."))
        if result["roles_granted"]:
            self.stdout.write(f"Roles granted: {', '.join(result['roles_granted'])}")
