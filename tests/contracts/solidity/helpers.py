"""Deployment and assertion helpers for the contract tests and the gas benchmark (plain web3.py, no Django)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from bcfl_core.merkle import merkle_proofs, merkle_root, stake_leaf_hash
from contracts.artifacts import artifact_names, load_artifact

ETH = 10**18
TOTAL_SHARES = 10_000
STAKE_URI = "https://bcfl.test/api/stake/{id}.json"
NFT_BASE_URI = "https://bcfl.test/api/nft/"
NFT_CONTRACT_URI = "https://bcfl.test/api/nft/contract.json"


@dataclass
class StakeTree:
    """A stakes tree over (holder, shares) leaves, as the platform builds it (bcfl_core.merkle)."""

    holders: list[str]
    shares: list[int]

    @cached_property
    def leaves(self) -> list[bytes]:
        return [stake_leaf_hash(h, s) for h, s in zip(self.holders, self.shares, strict=True)]

    @cached_property
    def root(self) -> bytes:
        return merkle_root(self.leaves)

    @cached_property
    def proofs(self) -> list[list[bytes]]:
        return merkle_proofs(self.leaves)

    def proof(self, index: int) -> list[bytes]:
        return self.proofs[index]

    def claim_args(self, id_: int, index: int) -> tuple:
        return id_, self.holders[index], self.shares[index], self.proof(index)


def _abi_type(item: dict) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return item["type"]


@cache
def _errors() -> dict[str, tuple[str, list[str]]]:
    """selector hex ("0x12345678") -> (error name, input types), over every artifact."""
    table: dict[str, tuple[str, list[str]]] = {}
    for name in artifact_names():
        for item in load_artifact(name)["abi"]:
            if item["type"] == "error":
                types = [_abi_type(i) for i in item["inputs"]]
                selector = "0x" + keccak(text=f"{item['name']}({','.join(types)})")[:4].hex()
                table[selector] = (item["name"], types)
    return table


def error_selector(name: str) -> str:
    for selector, (err, _types) in _errors().items():
        if err == name:
            return selector
    raise KeyError(f"no custom error {name!r} in the artifacts")


def decode_error(data: str) -> tuple[str, tuple]:
    data = data if isinstance(data, str) else "0x" + bytes(data).hex()
    selector = data[:10]
    if selector not in _errors():
        raise AssertionError(f"unknown revert data {data}")
    name, types = _errors()[selector]
    args = decode(types, bytes.fromhex(data[10:]))
    return name, tuple(
        to_checksum_address(a) if isinstance(a, str) and a.startswith("0x") else a for a in args
    )


@contextmanager
def reverts(name: str, *args) -> Iterator[pytest.ExceptionInfo]:
    """Expect a revert with custom error `name` (and, if given, exactly these arguments)."""
    with pytest.raises(ContractCustomError) as info:
        yield info
    got_name, got_args = decode_error(info.value.data)
    assert got_name == name, f"reverted with {got_name}{got_args}, expected {name}"
    assert error_selector(name) == info.value.data[:10]
    if args:
        want = tuple(to_checksum_address(a) if isinstance(a, str) and a.startswith("0x") else a for a in args)
        assert got_args == want, f"{name} args {got_args} != {want}"


@dataclass
class Env:
    """A deployed BCFL contract set; account 0 is the deployer/platform."""

    w3: Web3
    accounts: list[str]
    contracts: dict[str, Contract] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        return self.accounts[0]

    def deploy(self, name: str, *args, sender: str | None = None) -> Contract:
        art = load_artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx_hash = factory.constructor(*args).transact({"from": sender or self.platform})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def send(self, fn, sender: str | None = None, value: int = 0, gas: int | None = None, fast: bool = False):
        """Transact a bound contract function and return its (successful) receipt.

        `fast` skips gas estimation and fee lookups (2 RPCs instead of ~5): a revert then shows up as a
        status-0 receipt instead of a decoded custom error, so use it only where success is expected.
        """
        if fast:
            return self._send_fast(fn, sender or self.platform, value, gas or 5_000_000)
        tx: dict = {"from": sender or self.platform, "value": value}
        if gas is not None:
            tx["gas"] = gas
        receipt = self.w3.eth.wait_for_transaction_receipt(fn.transact(tx))
        assert receipt["status"] == 1, receipt
        return receipt

    def _send_fast(self, fn, sender: str, value: int, gas: int):
        """eth_sendTransaction with every field filled (nothing for web3 to look up), then the receipt."""
        tx = {
            "from": sender,
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "value": hex(value),
            "gas": hex(gas),
            "maxFeePerGas": hex(10**11),
            "maxPriorityFeePerGas": hex(10**9),
        }
        response = self.w3.provider.make_request("eth_sendTransaction", [tx])
        assert "result" in response, response
        receipt = self.w3.eth.wait_for_transaction_receipt(response["result"], timeout=30, poll_latency=0.002)
        assert receipt["status"] == 1, receipt
        return receipt

    def send_eth(self, sender: str, to: str, value: int):
        tx_hash = self.w3.eth.send_transaction(
            {
                "from": sender,
                "to": to,
                "value": value,
                "gas": 100_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, receipt
        return receipt

    def balance(self, address: str) -> int:
        return self.w3.eth.get_balance(address)

    def fee(self, receipt) -> int:
        return receipt["gasUsed"] * receipt["effectiveGasPrice"]

    # Shortcuts ----------------------------------------------------------------------------------
    @property
    def task(self) -> Contract:
        return self.contracts["TaskRegistry"]

    @property
    def identity(self) -> Contract:
        return self.contracts["IdentityRegistry"]

    @property
    def nft(self) -> Contract:
        return self.contracts["ModelNFT"]

    @property
    def stake(self) -> Contract:
        return self.contracts["StakeToken"]

    @property
    def market(self) -> Contract:
        return self.contracts["Marketplace"]

    def event(self, contract: Contract, name: str, receipt) -> list:
        return list(contract.events[name]().process_receipt(receipt, errors=DISCARD))

    def create_task(
        self,
        creator: str | None = None,
        reward: int = ETH,
        rounds: int = 3,
        share: int = 1000,
        spec: bytes = b"\x01" * 32,
    ) -> int:
        receipt = self.send(self.task.functions.createTask(spec, rounds, share), creator, value=reward)
        return self.event(self.task, "TaskCreated", receipt)[0]["args"]["taskId"]

    def commit_all(self, task_id: int, rounds: int, start: int = 1) -> None:
        for r in range(start, rounds + 1):
            fn = self.task.functions.commitRound(task_id, r, keccak(text=f"g{r}"), keccak(text=f"u{r}"), 1)
            self.send(fn, fast=True)

    def finalized_task(
        self, tree: StakeTree, reward: int = ETH, rounds: int = 1, creator: str | None = None
    ) -> tuple[int, object]:
        """Create a task, commit every round and finalize it with `tree`'s root: (task id, finalize receipt)."""
        task_id = self.create_task(creator=creator, reward=reward, rounds=rounds)
        self.commit_all(task_id, rounds)
        receipt = self.send(self.task.functions.finalize(task_id, keccak(text=f"final{task_id}"), tree.root))
        return task_id, receipt

    def open_stakes(self, id_: int, tree: StakeTree, value: int = 0):
        """openStakes directly (the test platform account also holds STAKES_ROLE, see `deploy_all`)."""
        return self.send(self.stake.functions.openStakes(id_, tree.root), value=value)

    def claim_all(self, id_: int, tree: StakeTree) -> None:
        for i in range(len(tree.holders)):
            self.send(self.stake.functions.claimShares(*tree.claim_args(id_, i)), fast=True)

    def give_shares(self, id_: int, holders: list[str], shares: list[int], value: int = 0) -> StakeTree:
        """Open the stakes of `id_` over (holders, shares) and claim every leaf."""
        tree = StakeTree(holders, shares)
        self.open_stakes(id_, tree, value=value)
        self.claim_all(id_, tree)
        return tree

    def mint_model(self, to: str, model_hash: bytes, task_id: int = 1, royalty_bps: int = 500) -> int:
        fn = self.nft.functions.mint(to, task_id, model_hash, self.stake.address, royalty_bps)
        receipt = self.send(fn)
        return self.event(self.nft, "ModelMinted", receipt)[0]["args"]["tokenId"]


def deploy_all(w3: Web3) -> Env:
    """The production order and roles (TaskRegistry holds StakeToken's STAKES_ROLE); for direct unit tests of
    StakeToken the platform account (account 0) holds STAKES_ROLE too."""
    env = Env(w3=w3, accounts=list(w3.eth.accounts))
    admin = env.platform
    env.contracts["IdentityRegistry"] = env.deploy("IdentityRegistry", admin)
    env.contracts["StakeToken"] = env.deploy("StakeToken", admin, STAKE_URI)
    env.contracts["TaskRegistry"] = env.deploy("TaskRegistry", admin, env.stake.address)
    env.contracts["ModelNFT"] = env.deploy("ModelNFT", admin, NFT_BASE_URI, NFT_CONTRACT_URI)
    env.contracts["Marketplace"] = env.deploy("Marketplace", env.nft.address, env.stake.address)
    env.send(env.stake.functions.grantRole(role("STAKES_ROLE"), env.task.address))
    env.send(env.stake.functions.grantRole(role("STAKES_ROLE"), admin))
    return env


def role(name: str) -> bytes:
    return b"\x00" * 32 if name == "DEFAULT_ADMIN_ROLE" else keccak(text=name)
