"""Contract events: decoded from a receipt, or read from the node over a block range."""

from __future__ import annotations

from django.conf import settings
from eth_utils import event_abi_to_log_topic, to_checksum_address

from contracts.chain.abi import load_artifact
from contracts.chain.calls import deployment_address
from contracts.chain.connection import get_w3
from contracts.chain.errors import translated
from contracts.chain.values import hexstr, json_safe


def _event_table(name: str) -> dict[bytes, dict]:
    return {event_abi_to_log_topic(e): e for e in load_artifact(name)["abi"] if e.get("type") == "event"}


def _decode_log(name: str, address: str, log: dict) -> dict | None:
    topics = log.get("topics") or []
    if not topics:
        return None
    entry = _event_table(name).get(bytes(topics[0]))
    if entry is None:
        return None
    c = get_w3().eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])
    event = c.events[entry["name"]]().process_log(log)
    return {
        "contract_name": name,
        "address": to_checksum_address(address),
        "event": entry["name"],
        "args": json_safe(dict(event["args"])),
        "block_number": int(log["blockNumber"]),
        "block_hash": hexstr(log["blockHash"]),
        "tx_hash": hexstr(log["transactionHash"]),
        "log_index": int(log["logIndex"]),
    }


def decode_logs(contract_name: str, receipt: dict) -> list[dict]:
    """Decoded events of `contract_name` (at its deployed address) in a receipt.

    Each: {contract_name, address, event, args (JSON-safe), block_number, block_hash, tx_hash, log_index}.
    """
    address = to_checksum_address(deployment_address(contract_name))
    out = []
    for log in receipt.get("logs", []):
        if to_checksum_address(log["address"]) == address:
            decoded = _decode_log(contract_name, address, log)
            if decoded:
                out.append(decoded)
    return out


def get_logs(from_block: int, to_block: int, chain_id: int | None = None) -> list[dict]:
    """Decoded events (as `decode_logs`) of every deployed contract on the chain, in block/log order."""
    from contracts.models import Deployment

    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    by_address = {
        to_checksum_address(d.address): d.name for d in Deployment.objects.filter(chain_id=chain_id)
    }
    if not by_address or to_block < from_block:
        return []
    with translated():
        logs = get_w3().eth.get_logs(
            {"fromBlock": from_block, "toBlock": to_block, "address": list(by_address)}
        )
        out = []
        for log in logs:
            address = to_checksum_address(log["address"])
            decoded = _decode_log(by_address[address], address, dict(log)) if address in by_address else None
            if decoded:
                out.append(decoded)
    out.sort(key=lambda e: (e["block_number"], e["log_index"]))
    return out
