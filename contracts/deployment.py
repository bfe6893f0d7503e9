"""Deploying the platform contracts through the ledger, idempotently, and granting the signer its roles."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from contracts import chain
from contracts.chain import ChainError
from contracts.models import ChainTx, Deployment
from contracts.services import chain_tx_create, chain_tx_process
from contracts.signer import get_signer

logger = logging.getLogger(__name__)

# Roles the platform signer must hold on each contract (constructors grant them; checked and fixed if not).
PLATFORM_ROLES = {
    "IdentityRegistry": ["BANNER_ROLE"],
    "TaskRegistry": ["PLATFORM_ROLE"],
    "ModelNFT": ["MINTER_ROLE"],
    "StakeToken": ["PAYOUT_ROLE"],
}
# Roles one contract holds on another: (contract, role, holder contract). TaskRegistry opens the stake pools.
CONTRACT_ROLES = [("StakeToken", "STAKES_ROLE", "TaskRegistry")]


def _constructor_args(name: str, signer_address: str, addresses: dict[str, str]) -> list:
    site = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    plan = {
        "IdentityRegistry": [signer_address],
        "StakeToken": [
            signer_address,
            getattr(settings, "STAKE_METADATA_URI", f"{site}/api/stake/{{id}}.json"),
        ],
        "TaskRegistry": lambda: [signer_address, addresses["StakeToken"]],
        "ModelNFT": [
            signer_address,
            getattr(settings, "NFT_METADATA_BASE_URI", f"{site}/api/nft/"),
            getattr(settings, "NFT_CONTRACT_URI", f"{site}/api/nft/contract.json"),
        ],
        "Marketplace": lambda: [addresses["ModelNFT"], addresses["StakeToken"]],
    }
    args = plan[name]
    return args() if callable(args) else args


def _usable_existing(name: str, sha: str, *, redeploy_missing: bool, log) -> tuple[Deployment | None, bool]:
    """(recorded row, its code is on the node). No code and no `redeploy_missing` -> `ChainError`."""
    existing = Deployment.objects.filter(chain_id=settings.CHAIN_ID, name=name).first()
    if existing is None:
        return None, False
    if chain.has_code(existing.address):
        if existing.bytecode_sha256 and existing.bytecode_sha256 != sha:
            log(f"warning: {name} at {existing.address} was built from different bytecode")
        return existing, True
    if not redeploy_missing:
        raise ChainError(
            f"{name} is recorded at {existing.address} on chain {settings.CHAIN_ID} but there is no code there "
            "(fresh or reset node?). Run `manage.py deploy_contracts --redeploy-missing` to deploy again."
        )
    log(f"{name}: no code at recorded {existing.address}; redeploying")
    return existing, False


def _deploy_one(name: str, sha: str, args: list, *, redeploy: bool, log) -> str:
    """Send one constructor through the ledger, record the `Deployment`; returns the address."""
    chain_id = settings.CHAIN_ID
    key = f"deploy:{chain_id}:{name}:{sha[:16]}"
    if redeploy:  # a redeploy needs a fresh idempotency key
        key += f":{timezone.now().strftime('%Y%m%dT%H%M%S%f')}"
    tx, _ = chain_tx_create(key=key, contract_name=name, function=chain.CONSTRUCTOR, args=args)
    tx = chain_tx_process(tx_id=tx.id)
    if tx.status != ChainTx.Status.CONFIRMED:
        raise ChainError(f"deploying {name} failed: {tx.error or tx.status}")
    address = chain.get_receipt(tx.tx_hash)["contractAddress"]
    Deployment.objects.update_or_create(
        chain_id=chain_id,
        name=name,
        defaults={
            "address": address,
            "tx_hash": tx.tx_hash,
            "block_number": tx.block_number,
            "bytecode_sha256": sha,
        },
    )
    log(f"{name}: deployed at {address} (tx {tx.tx_hash}, block {tx.block_number})")
    return address


def _grant_platform_roles(signer_address: str, addresses: dict[str, str]) -> list[str]:
    """Grant the roles of `PLATFORM_ROLES` the signer lacks and the `CONTRACT_ROLES` missing;
    returns ["Contract.ROLE", ...] granted (a contract holder as "Contract.ROLE->Holder")."""
    wanted = [(name, role, signer_address, "") for name, roles in PLATFORM_ROLES.items() for role in roles]
    wanted += [(name, role, addresses[holder], f"->{holder}") for name, role, holder in CONTRACT_ROLES]
    granted = []
    for name, role, account, label in wanted:
        role_id = chain.call(name, role)
        if chain.call(name, "hasRole", [role_id, account]):
            continue
        key = f"grant:{settings.CHAIN_ID}:{name}:{addresses[name]}:{role}:{account}"
        tx, _ = chain_tx_create(key=key, contract_name=name, function="grantRole", args=[role_id, account])
        tx = chain_tx_process(tx_id=tx.id)
        if tx.status != ChainTx.Status.CONFIRMED:
            raise ChainError(f"granting {role} on {name} failed: {tx.error or tx.status}")
        granted.append(f"{name}.{role}{label}")
    return granted


def deploy_contracts(*, redeploy_missing: bool = False, log=logger.info) -> dict:
    """Deploy the five contracts in dependency order (`chain.CONTRACT_NAMES`: the TaskRegistry takes the
    StakeToken's address) through the ledger, idempotently, then grant the signer its roles and the TaskRegistry
    the StakeToken's STAKES_ROLE.

    A recorded deployment whose address has no code (e.g. a fresh anvil) is an error (`ChainError`) unless
    `redeploy_missing`. Returns {"deployed": [...], "existing": [...], "roles_granted": [...]}.
    """
    signer = get_signer()
    actual = chain.actual_chain_id()
    if actual != settings.CHAIN_ID:
        raise ChainError(
            f"CHAIN_ID is {settings.CHAIN_ID} but the node at {settings.CHAIN_RPC_URL} reports {actual}"
        )
    result: dict[str, list] = {"deployed": [], "existing": [], "roles_granted": []}
    addresses: dict[str, str] = {}
    for name in chain.CONTRACT_NAMES:
        sha = chain.bytecode_sha256(name)
        existing, usable = _usable_existing(name, sha, redeploy_missing=redeploy_missing, log=log)
        if usable:
            addresses[name] = existing.address
            result["existing"].append(name)
            continue
        args = _constructor_args(name, signer.address, addresses)
        addresses[name] = _deploy_one(name, sha, args, redeploy=existing is not None, log=log)
        result["deployed"].append(name)
    result["roles_granted"] = _grant_platform_roles(signer.address, addresses)
    return result
