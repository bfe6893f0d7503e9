"""A Flower ``Grid`` that polls for replies more often than Flower's own (every 3 s)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid


class PollingGrid(Grid):
    """A Grid that polls for replies every ``poll_interval`` seconds (Flower's own grid sleeps 3 s).

    Everything else is delegated to the grid Flower gave the ServerApp. With replies that take
    about a second, the 3 s sleep is most of a round's wall time; polling the SuperLink every 0.5 s
    costs one small request per poll. Raises ``ValueError`` for a ``poll_interval`` ≤ 0.
    """

    def __init__(self, grid: Grid, poll_interval: float) -> None:
        if poll_interval <= 0:
            raise ValueError("reply-poll-interval must be positive")
        self._grid = grid
        self.poll_interval = float(poll_interval)

    def set_run(self, run) -> None:  # noqa: ANN001 - flwr's Run
        self._grid.set_run(run)

    @property
    def run(self):  # noqa: ANN201
        return self._grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self._grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def get_nodes(self):  # noqa: ANN201
        return self._grid.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Same contract as Flower's: push, then pull until every reply is in or ``timeout`` passes."""
        pending = set(self.push_messages(messages))
        end = time.monotonic() + (timeout if timeout is not None else 0.0)
        replies: list[Message] = []
        while timeout is None or time.monotonic() < end:
            got = list(self.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            if not pending:
                break
            time.sleep(
                self.poll_interval
                if timeout is None
                else max(0.0, min(self.poll_interval, end - time.monotonic()))
            )
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)
