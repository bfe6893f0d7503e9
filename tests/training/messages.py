"""Flower train replies as a SuperLink hands them to the ServerApp's strategy (for strategy and rule tests)."""

from __future__ import annotations

import time

from flwr.app import Error, Message, Metadata, RecordDict
from flwr.app.message import make_message
from flwr.app.message_type import MessageType


def train_reply(
    node_id: int,
    content: RecordDict | None = None,
    *,
    error: Error | None = None,
    dst_node_id: int = 0,
    message_id: str | None = None,
    reply_to: str = "instruction",
    group_id: str = "1",
) -> Message:
    """A TRAIN reply from ``node_id`` carrying ``content`` (or ``error``, as the SuperLink sends for a node
    that went away)."""
    metadata = Metadata(
        run_id=1,
        message_id=f"m{node_id}" if message_id is None else message_id,
        src_node_id=node_id,
        dst_node_id=dst_node_id,
        reply_to_message_id=reply_to,
        group_id=group_id,
        created_at=time.time(),
        ttl=3600,
        message_type=MessageType.TRAIN,
    )
    if error is not None:
        return make_message(metadata=metadata, error=error)
    return make_message(metadata=metadata, content=content)
