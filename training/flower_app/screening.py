"""Update screening: every training reply is checked before it counts.

A reply is rejected, with a reason, when it comes from a node that is not a participant, carries an error,
lacks exactly one ArrayRecord and one MetricRecord or a valid ``num-examples``, has arrays whose keys,
shapes or dtypes differ from the global model's, non-finite values or too many bytes, or (platform runs) a
missing or wrong EIP-712 signature. Replies the SuperLink made up for nodes that did not answer are
attributed to those nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, Message

if __package__:  # imported from the repository as training.flower_app.screening
    from .round_records import UpdateRecord
    from .signatures import BCFL_RECORD, REASON_UNKNOWN_NODE, SigningContext, check_update_signature
else:  # loaded by Flower from the unpacked app bundle
    from round_records import UpdateRecord  # type: ignore[no-redef]
    from signatures import (  # type: ignore[no-redef]
        BCFL_RECORD,
        REASON_UNKNOWN_NODE,
        SigningContext,
        check_update_signature,
    )

from training import zoo

REASON_TOO_MANY_EXAMPLES = "num-examples above the committed data"
REASON_BANNED = "banned"
SUPERLINK_NODE_ID = 1  # flwr.common.constant.SUPERLINK_NODE_ID: the sender of replies the SuperLink makes up
NO_REPLY = "no reply: "  # reason prefix of a sampled node that did not answer

Reference = Sequence[tuple[str, tuple[int, ...], str]]  # (key, shape, dtype.str) of each global array


def validate_update(
    record: ArrayRecord, reference: Reference, max_bytes: int
) -> tuple[list[np.ndarray] | None, str]:
    """Check one reply's arrays against the global model's (key, shape, dtype) list.

    Returns ``(arrays, "")`` when valid, else ``(None, reason)``. Sizes are checked before
    anything is deserialised; arrays are read with numpy's ``allow_pickle=False``.
    """
    if not isinstance(record, ArrayRecord):
        return None, "reply has no ArrayRecord"
    keys = list(record.keys())
    want_keys = [k for k, _, _ in reference]
    if keys != want_keys:
        return None, f"array keys differ from the global model ({len(keys)} vs {len(want_keys)} arrays)"
    size = sum(len(record[k].data) for k in keys)
    if size > max_bytes:
        return None, f"update too large: {size} bytes > limit {max_bytes}"
    arrays: list[np.ndarray] = []
    for key, shape, dtype in reference:
        try:
            arr = record[key].numpy()
        except Exception as exc:  # malformed bytes from a remote node
            return None, f"{key}: unreadable array ({type(exc).__name__})"
        if arr.dtype.str != np.dtype(dtype).str:
            return None, f"{key}: dtype {arr.dtype} != {np.dtype(dtype)}"
        if tuple(arr.shape) != tuple(shape):
            return None, f"{key}: shape {tuple(arr.shape)} != {tuple(shape)}"
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            return None, f"{key}: contains NaN or infinite values"
        arrays.append(arr)
    return arrays, ""


def reference_of(record: ArrayRecord) -> list[tuple[str, tuple[int, ...], str]]:
    """The (key, shape, dtype.str) list of a model's arrays, in record order."""
    return [
        (k, tuple(a.shape), a.dtype.str)
        for k, a in zip(record.keys(), record.to_numpy_ndarrays(), strict=True)
    ]


def num_examples(msg: Message) -> int | None:
    """The reply's ``num-examples`` metric when it is a positive whole number, else None."""
    metrics = msg.content.metric_records.get("metrics") if msg.content else None
    if metrics is None or "num-examples" not in metrics:
        return None
    value = metrics["num-examples"]
    return int(value) if isinstance(value, int | float) and value > 0 and value == int(value) else None


def from_superlink(msg: Message) -> bool:
    """An error reply the SuperLink made up for a node that did not answer (node id 1 is reserved for it)."""
    return int(msg.metadata.src_node_id) == SUPERLINK_NODE_ID and msg.has_error()


def update_norm(arrays: Sequence[np.ndarray], global_arrays: Sequence[np.ndarray]) -> float:
    """L2 norm of (update - global model) over all arrays, in float64."""
    return float(
        np.sqrt(
            sum(
                float(np.sum((a.astype(np.float64) - g) ** 2))
                for a, g in zip(arrays, global_arrays, strict=True)
            )
        )
    )


def read_reply(
    msg: Message, reference: Reference, max_bytes: int
) -> tuple[list[np.ndarray] | None, int, dict[str, float], str]:
    """``(arrays, num_examples, metrics, "")`` of a well-formed reply, else ``(None, n, metrics, reason)``."""
    n = num_examples(msg)
    array_records = msg.content.array_records
    metric_records = msg.content.metric_records
    if len(array_records) != 1 or len(metric_records) != 1:
        return None, n or 0, {}, "reply must carry exactly one ArrayRecord and one MetricRecord"
    if n is None:
        return None, 0, {}, "missing or invalid num-examples"
    arrays, reason = validate_update(next(iter(array_records.values())), reference, max_bytes)
    metrics = {
        k: float(v) for k, v in next(iter(metric_records.values())).items() if isinstance(v, int | float)
    }
    return arrays, n, metrics, reason


@dataclass
class Screener:
    """Judges the replies of one round against the global model they answer.

    ``signing`` (platform runs): only participants' nodes may answer, and their updates must be signed
    for ``server_round`` (the task round).
    """

    global_record: ArrayRecord
    max_bytes: int
    signing: SigningContext | None = None
    server_round: int = 0
    reference: list[tuple[str, tuple[int, ...], str]] = field(init=False)
    global_arrays: list[np.ndarray] = field(init=False)
    banned: set[int] = field(init=False)

    def __post_init__(self) -> None:
        self.reference = reference_of(self.global_record)
        self.global_arrays = self.global_record.to_numpy_ndarrays()
        self.banned = self.signing.banned() if self.signing is not None else set()

    def wallet_of(self, node_id: int) -> str:
        return self.signing.participants.get(node_id, "") if self.signing else ""

    def silent(self, replies: Sequence[Message], sampled: Iterable[int]) -> list[UpdateRecord]:
        """Rejections for sampled nodes without a reply of their own, with the SuperLink's reason if any.

        The SuperLink answers for a node that went away (node unavailable, reply expired) with an error
        reply from its own node id; those are attributed to the silent nodes in order.
        """
        superlink_errors = [m for m in replies if from_superlink(m)]
        answered = {int(m.metadata.src_node_id) for m in replies if not from_superlink(m)}
        out = []
        for index, node_id in enumerate(n for n in sampled if n not in answered):
            why = superlink_errors[index].error.reason if index < len(superlink_errors) else "timed out"
            reason = f"{NO_REPLY}{why}"
            out.append(UpdateRecord(node_id, None, 0, None, False, reason, wallet=self.wallet_of(node_id)))
        return out

    def judge(self, msg: Message) -> tuple[UpdateRecord, list[np.ndarray] | None]:
        """One reply's record, with its arrays when accepted (``None`` when rejected)."""
        node_id = int(msg.metadata.src_node_id)
        wallet = self.wallet_of(node_id)
        if self.signing is not None and not wallet:
            return UpdateRecord(node_id, None, 0, None, False, REASON_UNKNOWN_NODE), None
        if node_id in self.banned:
            reason = f"{REASON_BANNED}: the participant was banned during training; its update does not count"
            return UpdateRecord(node_id, None, 0, None, False, reason, wallet=wallet), None
        if msg.has_error():
            reason = f"client error: {msg.error.reason}"
            return UpdateRecord(node_id, None, 0, None, False, reason, wallet=wallet), None
        arrays, n, metrics, reason = read_reply(msg, self.reference, self.max_bytes)
        cap = self.signing.max_examples.get(node_id) if self.signing is not None else None
        if arrays is not None and cap is not None and n > cap:
            arrays = (
                None  # FedAvg weights by num-examples: a claim above the committed data would own the average
            )
            reason = f"{REASON_TOO_MANY_EXAMPLES}: claims {n} examples, committed {cap} when joining"
        if arrays is None:
            return UpdateRecord(node_id, None, n, None, False, reason, metrics, wallet=wallet), None
        digest = zoo.weights_hash(arrays)
        signature = ""
        if self.signing is not None:
            bcfl = msg.content.config_records.get(BCFL_RECORD)
            wallet, signature, reason = check_update_signature(
                bcfl, digest, node_id, self.server_round, self.signing
            )
            if reason:
                return UpdateRecord(node_id, digest, n, None, False, reason, metrics, wallet, signature), None
        norm = update_norm(arrays, self.global_arrays)
        return UpdateRecord(node_id, digest, n, norm, True, "", metrics, wallet, signature), arrays
