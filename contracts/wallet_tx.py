"""Wallet-sent transactions: the user's browser wallet signs and sends, the server verifies from the chain.

`wallet_tx_confirm` is the one place that turns a transaction hash posted by a page into a fact the platform
records (task created or cancelled, licence or NFT bought): mined, successful, sent by the expected wallet to
the expected contract, and emitting the expected event with the expected arguments. The client is never
trusted. Each refusal is a `WalletTxError` subclass whose message can be shown to the user as is.

A wallet may replace a pending transaction ("speed up" / "cancel" gives it a new hash). When the posted hash
is not mined, the indexed `ChainEvent` rows are searched for the expected event with the expected arguments,
and a hit is verified from its own receipt like any other (sender, contract, status, event).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from eth_utils import is_hex_address, to_checksum_address

from contracts import chain
from contracts.chain import ChainRevert, ChainUnavailable

_TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")


class WalletTxError(Exception):
    """A posted transaction does not prove what the page claims; `str(exc)` says why, in plain words."""

    code = "wallet_tx"


class TxHashInvalid(WalletTxError):
    code = "bad_hash"


class TxNotMined(WalletTxError):
    """Not mined yet, or the node did not answer: the page may ask again (its message says "not mined yet")."""

    code = "not_mined"


class TxWrongContract(WalletTxError):
    code = "wrong_contract"


class TxWrongSender(WalletTxError):
    code = "wrong_sender"


class TxReverted(WalletTxError):
    """Mined with status 0; `revert` is the decoded reason (custom error name and arguments when known)."""

    code = "reverted"

    def __init__(self, message: str, revert: ChainRevert):
        super().__init__(message)
        self.revert = revert


class TxEventMissing(WalletTxError):
    code = "event_missing"


class TxArgsMismatch(WalletTxError):
    """The event is there but an argument differs: `name`, `expected`, `actual` (normalised values)."""

    code = "args_mismatch"

    def __init__(self, message: str, *, name: str, expected: Any, actual: Any):
        super().__init__(message)
        self.name, self.expected, self.actual = name, expected, actual


@dataclass(frozen=True)
class ConfirmedTx:
    """A verified wallet transaction. Amounts in wei; hashes 0x-prefixed lowercase; addresses checksummed."""

    tx_hash: str  # the mined transaction: differs from `submitted_hash` when the wallet replaced it
    submitted_hash: str
    sender: str
    contract_name: str
    contract_address: str
    event: (
        dict  # decoded: {contract_name, address, event, args, block_number, block_hash, tx_hash, log_index}
    )
    block_number: int
    gas_used: int
    fee_wei: int

    @property
    def args(self) -> dict:
        return self.event["args"]

    @property
    def replaced(self) -> bool:
        return self.tx_hash != self.submitted_hash

    @property
    def fee(self) -> Decimal:
        return Decimal(self.fee_wei)


def normalise(value: Any) -> Any:
    """One form for comparing event arguments: checksummed addresses, lowercase 0x hex, ints (from any spelling)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return int(value)
    if isinstance(value, str):
        if is_hex_address(value):
            return to_checksum_address(value)
        if value.startswith(("0x", "0X")):
            return value.lower()
        if value.lstrip("-").isdigit():
            return int(value)
    return value


def _label(name: str) -> str:
    """ "creatorShareBps" -> "creator share bps" (argument names as words for messages)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).lower()


def _first_mismatch(args: dict, expected_args: dict) -> tuple[str, Any, Any] | None:
    for name, want in expected_args.items():
        got = normalise(args.get(name))
        if got != normalise(want):
            return name, normalise(want), got
    return None


def _receipt(tx_hash: str, wait_seconds: float) -> dict | None:
    try:
        receipt = chain.get_receipt(tx_hash)
        if receipt is None and wait_seconds > 0:
            receipt = chain.wait_for_receipt(tx_hash, timeout=wait_seconds)
    except ChainUnavailable as exc:
        raise TxNotMined(
            "The transaction is not mined yet (or the chain is unreachable); try again in a few seconds."
        ) from exc
    return receipt


def find_replacement(*, sender: str, contract_name: str, event_name: str, expected_args: dict) -> dict | None:
    """The receipt of a mined transaction from `sender` whose indexed event matches, or None.

    Looks up indexed `ChainEvent` rows (the indexer's, so up to one indexing interval late) by every expected
    argument, newest first. An empty `expected_args` matches nothing: it would accept any event.
    """
    from contracts.models import ChainEvent

    if not expected_args:
        return None
    lookups = {f"args__{name}": chain.json_safe(normalise(v)) for name, v in expected_args.items()}
    rows = ChainEvent.objects.filter(
        chain_id=settings.CHAIN_ID, contract_name=contract_name, event=event_name, **lookups
    ).order_by("-block_number", "-log_index")
    for tx_hash in rows.values_list("tx_hash", flat=True)[:5]:
        receipt = chain.get_receipt(tx_hash)
        if receipt is not None and to_checksum_address(receipt["from"]) == to_checksum_address(sender):
            return receipt
    return None


def _check_receipt(receipt: dict, *, sender: str, contract_name: str, action: str, who: str) -> str:
    """Contract, sender, status; returns the contract's address."""
    address = to_checksum_address(chain.deployment_address(contract_name))
    to = receipt.get("to")
    if not to or to_checksum_address(to) != address:
        raise TxWrongContract(
            f"This transaction was not sent to the {contract_name} contract ({address}), so it cannot {action}."
        )
    actual = to_checksum_address(receipt["from"])
    if actual != to_checksum_address(sender):
        raise TxWrongSender(
            f"This transaction was sent by {actual}, not by {who} {to_checksum_address(sender)}; "
            f"only that wallet's own transaction can {action}."
        )
    if int(receipt["status"]) != 1:
        revert = chain.revert_reason_of(receipt)
        raise TxReverted(
            f"The transaction failed on chain (reverted: {revert.reason}), so it cannot {action}.", revert
        )
    return address


def _matching_event(
    receipt: dict, *, contract_name: str, event_name: str, expected_args: dict, action: str
) -> dict:
    events = [e for e in chain.decode_logs(contract_name, receipt) if e["event"] == event_name]
    if not events:
        raise TxEventMissing(f"This transaction cannot {action}: it emitted no {event_name} event.")
    mismatches = [_first_mismatch(e["args"], expected_args) for e in events]
    for event, mismatch in zip(events, mismatches, strict=True):
        if mismatch is None:
            return event
    name, want, got = mismatches[0]
    raise TxArgsMismatch(
        f"This transaction does not {action}: its {event_name} event has {_label(name)} {got}, expected {want}.",
        name=name,
        expected=want,
        actual=got,
    )


def wallet_tx_confirm(
    *,
    tx_hash: str,
    sender: str,
    contract_name: str,
    event_name: str,
    expected_args: dict,
    action: str = "do this",
    who: str = "the expected wallet",
    wait_seconds: float = 0.0,
) -> ConfirmedTx:
    """Verify a wallet-sent transaction from its receipt and the expected event.

    `expected_args` maps event argument names to values (addresses in any case, bytes or 0x hex, ints or
    decimal strings); `action` and `who` complete the messages ("… so it cannot {action}", "not by {who} 0x…").
    Waits up to `wait_seconds` for the receipt. Raises, in this order of checks: `TxHashInvalid`,
    `TxNotMined`, `TxWrongContract`, `TxWrongSender`, `TxReverted`, `TxEventMissing`, `TxArgsMismatch`.
    """
    if not _TX_HASH_RE.match(tx_hash or ""):
        raise TxHashInvalid("That is not a transaction hash (expected 0x followed by 64 hex digits).")
    receipt = _receipt(tx_hash, 0.0)
    if receipt is None:
        receipt = find_replacement(
            sender=sender, contract_name=contract_name, event_name=event_name, expected_args=expected_args
        )
    if receipt is None and wait_seconds > 0:
        receipt = _receipt(tx_hash, wait_seconds)
    if receipt is None:
        raise TxNotMined("The transaction is not mined yet; try again in a few seconds.")
    address = _check_receipt(receipt, sender=sender, contract_name=contract_name, action=action, who=who)
    event = _matching_event(
        receipt,
        contract_name=contract_name,
        event_name=event_name,
        expected_args=expected_args,
        action=action,
    )
    summary = chain.receipt_summary(receipt)
    return ConfirmedTx(
        tx_hash=summary["tx_hash"].lower(),
        submitted_hash=tx_hash.lower(),
        sender=to_checksum_address(sender),
        contract_name=contract_name,
        contract_address=address,
        event=event,
        block_number=summary["block_number"],
        gas_used=summary["gas_used"],
        fee_wei=summary["gas_used"] * summary["effective_gas_price"],
    )
