"""The chain gateway: the only package that imports web3 (enforced by tests/contracts/test_signer_lint.py).

Everything else imports `contracts.chain` and calls these names; tests that are not about the chain replace
the network-facing ones with `contracts.fake_chain.FakeChain` (the `fake_chain` fixture). Failures are
`ChainError`s of three kinds:
- `ChainRevert`: the EVM said no (decoded custom error / reason). Never retried.
- `ChainUnavailable`: the node could not be reached or did not answer in time. Retry later.
- `ChainRejected`: the node refused a signed transaction for another reason (funds, nonce, ...).

Modules: `abi` (names, artifacts, argument coercion), `errors` (error types, revert decoding), `connection`
(node, chain id, block number), `calls` (addresses, reads, unsigned calls), `txs` (fees, nonces, signing,
broadcast, receipts), `events` (decoded logs), `values` (JSON helpers).
"""

from contracts.chain.abi import (
    CONSTRUCTOR,
    CONTRACT_NAMES,
    ETH_TRANSFER,
    bytecode_sha256,
    coerce_args,
    load_artifact,
)
from contracts.chain.calls import (
    EIP1271_MAGIC_VALUE,
    build_call,
    call,
    contract,
    deployment_address,
    eip1271_call,
    has_code,
)
from contracts.chain.connection import actual_chain_id, block_number, chain_status, get_w3
from contracts.chain.errors import (
    ChainError,
    ChainRejected,
    ChainRevert,
    ChainUnavailable,
    classify,
    decode_revert_data,
    translated,
)
from contracts.chain.events import decode_logs, get_logs
from contracts.chain.txs import (
    broadcast,
    estimate_gas,
    fee_fields,
    get_receipt,
    pending_nonce,
    revert_reason_of,
    sign,
    transaction_known,
    wait_for_receipt,
)
from contracts.chain.values import json_safe, receipt_summary

__all__ = [
    "CONSTRUCTOR",
    "CONTRACT_NAMES",
    "EIP1271_MAGIC_VALUE",
    "ETH_TRANSFER",
    "ChainError",
    "ChainRejected",
    "ChainRevert",
    "ChainUnavailable",
    "actual_chain_id",
    "block_number",
    "broadcast",
    "build_call",
    "bytecode_sha256",
    "call",
    "chain_status",
    "classify",
    "coerce_args",
    "contract",
    "decode_logs",
    "decode_revert_data",
    "deployment_address",
    "eip1271_call",
    "estimate_gas",
    "fee_fields",
    "get_logs",
    "get_receipt",
    "get_w3",
    "has_code",
    "json_safe",
    "load_artifact",
    "pending_nonce",
    "receipt_summary",
    "revert_reason_of",
    "sign",
    "transaction_known",
    "translated",
    "wait_for_receipt",
]
