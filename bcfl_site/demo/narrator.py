"""Output and waiting for the demo story: one numbered line per step with the time since the start, indented
detail lines, and `wait_until` (poll a condition with a deadline; a timeout raises `StoryError` naming what was
awaited)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


class StoryError(RuntimeError):
    """A step of the story did not happen; the message says which and what was seen instead."""


class Narrator:
    """Writes the story's lines to `out` (flushed at once): ``[ 3/12]  0:41  text`` per step, detail lines
    indented below it. `on_tick` (if any) is called on every poll of `wait_until` (tests hook a worker kill)."""

    def __init__(
        self, out: TextIO = sys.stdout, *, total_steps: int, on_tick: Callable[[], None] | None = None
    ):
        self.out = out
        self.total = total_steps
        self.number = 0
        self.started = time.monotonic()
        self.on_tick = on_tick
        self.step_times: list[tuple[str, float]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def clock(self) -> str:
        s = int(self.elapsed())
        return f"{s // 60}:{s % 60:02d}"

    def write(self, text: str) -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")
        if hasattr(self.out, "flush"):
            self.out.flush()

    def step(self, text: str) -> None:
        self.number += 1
        self.step_times.append((text, round(self.elapsed(), 1)))
        self.write(f"[{self.number:2d}/{self.total}] {self.clock():>5}  {text}")

    def detail(self, text: str) -> None:
        self.write(f"{'':14}{text}")

    def tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick()

    def wait_until(self, what: str, probe: Callable[[], Any], *, timeout: float, poll: float = 1.0) -> Any:
        """Call `probe` every `poll` s until it returns something truthy (returned); `StoryError` after
        `timeout` s, naming `what` was awaited."""
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StoryError(f"Gave up after {timeout:.0f} s waiting for {what}.")
            time.sleep(poll)


class Indented:
    """A text stream that writes each line through `Narrator.detail` (for the participants' simulation)."""

    def __init__(self, narrator: Narrator):
        self.narrator = narrator

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.narrator.detail(line)
        return len(text)

    def flush(self) -> None:
        pass
