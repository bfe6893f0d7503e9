"""A deterministic in-memory chain for tests that are not about the chain (like Saleor's dummy payment gateway).

`FakeChain().install(monkeypatch, settings)` replaces the network-facing names of `contracts.chain` (status, block
number, reads, gas and fees, nonces, broadcast, receipts, revert reasons, events) and points `CHAIN_RPC_URL` at a
closed port, so anything left unpatched fails loudly instead of reaching a developer's node. What stays real:
ABI encoding (`build_call`), signing (`sign`), `Deployment` rows (`deployment_address`), JSON helpers.

Signed transactions are decoded (eth_account), their calldata decoded with the artifacts' ABIs, and mined at
once (one block each) unless `automine` is off. Handlers per (contract, function) say which events a call
emits; the platform's calls have defaults (contracts/fake_handlers.py: createTask, cancel, finalize, fail,
ModelNFT.mint, StakeToken share claims, deposits and pushes). Failures on demand: `fail_next(op, error)`,
`revert_next(...)`, `down = True` (every call: `ChainUnavailable`), `automine = False` (receipts never come).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_utils import function_abi_to_4byte_selector, keccak, to_checksum_address
from hexbytes import HexBytes

from contracts import chain
from contracts.chain.abi import abi_type
from contracts.chain.errors import ChainError, ChainRejected, ChainRevert, ChainUnavailable
from contracts.fake_handlers import DEFAULT_HANDLERS

DEAD_RPC_URL = "http://127.0.0.1:9"  # discard port: nothing listens
GAS_PRICE = 10**9
PATCHED = (
    "chain_status",
    "block_number",
    "actual_chain_id",
    "call",
    "has_code",
    "estimate_gas",
    "fee_fields",
    "pending_nonce",
    "broadcast",
    "transaction_known",
    "get_receipt",
    "wait_for_receipt",
    "revert_reason_of",
    "decode_logs",
    "get_logs",
)

# A handler gets the decoded call and returns the events it emits: [(event name, args), ...] of the called
# contract, or (contract name, event name, args) for another contract. Defaults: contracts/fake_handlers.py.
Handler = Callable[["FakeCall"], list[tuple[str, dict]]]


@dataclass
class FakeCall:
    """A mined call as handlers see it: sender, contract, function, decoded args by name, value in wei."""

    chain: FakeChain
    sender: str
    contract_name: str
    function: str
    args: dict
    value: int


@dataclass
class FakeChain:
    """The fake node's state; see the module docstring. All amounts in wei, addresses checksummed."""

    chain_id: int = 31337
    automine: bool = True
    down: bool = False
    block: int = 0
    addresses: dict[str, str] = field(default_factory=dict)  # contract name -> address
    receipts: dict[str, dict] = field(default_factory=dict)  # tx hash -> receipt (mined)
    pending: dict[str, dict] = field(default_factory=dict)  # tx hash -> decoded tx (not mined)
    nonces: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    events: list[dict] = field(default_factory=list)
    reads: dict[tuple[str, str], Any] = field(
        default_factory=dict
    )  # (contract, function) -> value or callable
    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    tasks: dict[int, dict] = field(default_factory=dict)  # TaskRegistry state kept by the default handlers
    stakes: dict[int, dict] = field(default_factory=dict)  # StakeToken pools (see contracts.fake_handlers)
    nfts: dict[int, str] = field(default_factory=dict)  # ModelNFT token id -> model hash
    _failures: dict[str, list[Exception]] = field(default_factory=lambda: defaultdict(list))
    _reverts: list[ChainRevert] = field(default_factory=list)
    _revert_of: dict[str, ChainRevert] = field(default_factory=dict)

    # --- set-up ------------------------------------------------------------------------------------

    def install(self, monkeypatch, settings) -> FakeChain:
        """Patch `contracts.chain` (undone by `monkeypatch`) and point settings at this chain."""
        settings.CHAIN_RPC_URL, settings.CHAIN_ID, settings.CHAIN_CONFIRMATIONS = (
            DEAD_RPC_URL,
            self.chain_id,
            0,
        )
        for name in PATCHED:
            method = getattr(self, name)
            monkeypatch.setattr(
                chain, name, method if name == "chain_status" else self._guarded(name, method)
            )
        return self

    def deploy(self) -> dict[str, str]:
        """`Deployment` rows for the five contracts at fixed fake addresses; returns {name: address}."""
        from contracts.models import Deployment

        for name in chain.CONTRACT_NAMES:
            address = to_checksum_address(keccak(text=f"fake-chain:{name}")[-20:])
            Deployment.objects.update_or_create(
                chain_id=self.chain_id,
                name=name,
                defaults={"address": address, "bytecode_sha256": chain.bytecode_sha256(name)},
            )
            self.addresses[name] = address
        return dict(self.addresses)

    def on(self, contract_name: str, function: str, handler: Handler) -> None:
        """Emit `handler(call)`'s events whenever `contract_name.function` is mined."""
        self.handlers[(contract_name, function)] = handler

    def fail_next(self, op: str, error: Exception | None = None, times: int = 1) -> None:
        """The next `times` calls of gateway function `op` raise `error` (default `ChainUnavailable`)."""
        if op not in PATCHED:
            raise ValueError(f"{op!r} is not a faked gateway function ({', '.join(PATCHED)})")
        self._failures[op].extend([error or ChainUnavailable(f"fake chain: {op} failed on demand")] * times)

    def revert_next(self, error_name: str = "FakeRevert", reason: str = "", **error_args) -> None:
        """The next mined transaction reverts (status 0) with this decoded error; gas estimation still passes."""
        shown = ", ".join(f"{k}={v}" for k, v in error_args.items())
        self._reverts.append(ChainRevert(reason or f"{error_name}({shown})", error_name, error_args))

    def mine(self) -> list[str]:
        """Mine every pending transaction (one block each); returns their hashes."""
        hashes = list(self.pending)
        for tx_hash in hashes:
            self._execute(tx_hash, self.pending.pop(tx_hash))
        return hashes

    def drop(self, tx_hash: str) -> None:
        """Forget a pending transaction, as a node does when a wallet replaces or cancels it."""
        tx = self.pending.pop(tx_hash.lower())
        self.nonces[tx["from"]] -= 1

    # --- the faked gateway functions -----------------------------------------------------------

    def _guarded(self, op: str, fn: Callable) -> Callable:
        def run(*args, **kwargs):
            if self.down:
                raise ChainUnavailable(f"fake chain is down ({op})")
            if self._failures[op]:
                raise self._failures[op].pop(0)
            return fn(*args, **kwargs)

        run.__name__ = op
        return run

    def chain_status(self, timeout: float = 2.0) -> dict:
        from django.conf import settings

        if self.down or self._failures["chain_status"]:  # the real probe reports instead of raising
            error = (
                self._failures["chain_status"].pop(0)
                if self._failures["chain_status"]
                else "fake chain is down"
            )
            return {
                "connected": False,
                "chain_id": None,
                "block_number": None,
                "error": str(error),
                "rpc_url": settings.CHAIN_RPC_URL,
                "expected_chain_id": settings.CHAIN_ID,
            }
        status = {
            "connected": True,
            "chain_id": self.chain_id,
            "block_number": self.block,
            "error": "",
            "rpc_url": settings.CHAIN_RPC_URL,
            "expected_chain_id": settings.CHAIN_ID,
        }
        if self.chain_id != settings.CHAIN_ID:
            status["error"] = f"node reports chain id {self.chain_id}, expected {settings.CHAIN_ID}"
        return status

    def block_number(self) -> int:
        return self.block

    def actual_chain_id(self) -> int:
        return self.chain_id

    def call(self, name: str, function: str, args: list | tuple = (), address: str | None = None) -> Any:
        if (name, function) in self.reads:
            value = self.reads[(name, function)]
            return value(*args) if callable(value) else value
        if function.endswith("_ROLE"):
            return keccak(text=function)
        if function == "hasRole":
            return True
        raise ChainError(f"fake chain: no scripted read for {name}.{function} (set fake_chain.reads)")

    def has_code(self, address: str) -> bool:
        known = set(self.addresses.values()) | {r["contractAddress"] for r in self.receipts.values()}
        return to_checksum_address(address) in known

    def estimate_gas(self, tx: dict) -> int:
        return 150_000 if tx.get("data") else 21_000

    def fee_fields(self) -> dict:
        return {"maxPriorityFeePerGas": GAS_PRICE, "maxFeePerGas": 2 * GAS_PRICE, "type": 2}

    def pending_nonce(self, address: str) -> int:
        return self.nonces[to_checksum_address(address)]

    def broadcast(self, raw_tx: str, tx_hash: str) -> str:
        tx_hash = tx_hash.lower()
        if tx_hash in self.receipts:
            return "mined"
        if tx_hash in self.pending:
            return "known"
        tx = self._decode_raw(raw_tx)
        if tx["chainId"] != self.chain_id:
            raise ChainRejected(f"invalid chain id {tx['chainId']} (fake chain is {self.chain_id})")
        if tx["nonce"] != self.nonces[tx["from"]]:
            raise ChainRejected(f"nonce {tx['nonce']} of {tx['from']}: expected {self.nonces[tx['from']]}")
        self.nonces[tx["from"]] += 1
        self.pending[tx_hash] = tx
        if self.automine:
            self.mine()
        return "sent"

    def transaction_known(self, tx_hash: str) -> bool:
        return tx_hash.lower() in self.receipts or tx_hash.lower() in self.pending

    def get_receipt(self, tx_hash: str) -> dict | None:
        receipt = self.receipts.get(tx_hash.lower())
        return dict(receipt) if receipt else None

    def wait_for_receipt(self, tx_hash: str, timeout: float | None = None) -> dict:
        receipt = self.get_receipt(tx_hash)
        if receipt is None:
            raise ChainUnavailable(f"TimeExhausted: fake transaction {tx_hash} is not mined")
        return receipt

    def revert_reason_of(self, receipt: dict) -> ChainRevert:
        return self._revert_of.get(str(receipt["transactionHash"]).lower(), ChainRevert("reverted"))

    def decode_logs(self, contract_name: str, receipt: dict) -> list[dict]:
        address = to_checksum_address(chain.deployment_address(contract_name))
        return [dict(e) for e in receipt.get("logs", []) if e["address"] == address]

    def get_logs(self, from_block: int, to_block: int, chain_id: int | None = None) -> list[dict]:
        if chain_id not in (None, self.chain_id):
            return []
        return [dict(e) for e in self.events if from_block <= e["block_number"] <= to_block]

    # --- mining --------------------------------------------------------------------------------

    def _decode_raw(self, raw_tx: str) -> dict:
        raw = HexBytes(raw_tx)
        fields = TypedTransaction.from_bytes(raw).as_dict()
        to = bytes(fields["to"])
        return {
            "from": Account.recover_transaction(raw),
            "to": to_checksum_address(to) if to else None,
            "data": bytes(fields["data"]),
            "value": int(fields["value"]),
            "nonce": int(fields["nonce"]),
            "chainId": int(fields["chainId"]),
            "gas": int(fields["gas"]),
        }

    def _contract_at(self, address: str | None) -> str:
        from contracts.models import Deployment

        names = {v: k for k, v in self.addresses.items()}
        for d in Deployment.objects.filter(chain_id=self.chain_id):
            names.setdefault(to_checksum_address(d.address), d.name)
        return names.get(address or "", "")

    def _decode_call(self, contract_name: str, data: bytes) -> tuple[str, dict]:
        for entry in chain.load_artifact(contract_name)["abi"]:
            if entry.get("type") == "function" and function_abi_to_4byte_selector(entry) == data[:4]:
                values = abi_decode([abi_type(p) for p in entry["inputs"]], data[4:])
                names = [p.get("name") or f"arg{i}" for i, p in enumerate(entry["inputs"])]
                return entry["name"], chain.json_safe(dict(zip(names, values, strict=True)))
        raise ChainRevert(f"fake chain: {contract_name} has no function with selector 0x{data[:4].hex()}")

    def _execute(self, tx_hash: str, tx: dict) -> None:
        self.block += 1
        block_hash = "0x" + keccak(text=f"fake-block-{self.block}").hex()
        receipt = {
            "transactionHash": tx_hash,
            "from": tx["from"],
            "to": tx["to"],
            "status": 1,
            "blockNumber": self.block,
            "blockHash": block_hash,
            "gasUsed": 21_000 + 16 * len(tx["data"]),
            "effectiveGasPrice": GAS_PRICE,
            "contractAddress": None,
            "logs": [],
        }
        emitted: list[tuple[str, str, dict]] = []
        try:
            if self._reverts:
                raise self._reverts.pop(0)
            if tx["to"] is None:
                receipt["contractAddress"] = to_checksum_address(
                    keccak(text=f"{tx['from']}:{tx['nonce']}")[-20:]
                )
            elif tx["data"] and (name := self._contract_at(tx["to"])):
                function, args = self._decode_call(name, tx["data"])
                handler = self.handlers.get((name, function)) or DEFAULT_HANDLERS.get((name, function))
                call = FakeCall(self, tx["from"], name, function, args, tx["value"])
                emitted = [e if len(e) == 3 else (name, *e) for e in (handler(call) if handler else [])]
        except ChainRevert as revert:
            receipt["status"], emitted = 0, []
            self._revert_of[tx_hash] = revert
        for log_index, (name, event, args) in enumerate(emitted):
            decoded = {
                "contract_name": name,
                "address": self.addresses.get(name) or tx["to"],
                "event": event,
                "args": chain.json_safe(args),
                "block_number": self.block,
                "block_hash": block_hash,
                "tx_hash": tx_hash,
                "log_index": log_index,
            }
            receipt["logs"].append(decoded)
            self.events.append(decoded)
        self.receipts[tx_hash] = receipt
