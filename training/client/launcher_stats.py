"""The warm launcher's JSON-lines event log (start, fork, exit, phase, restart, stop) and its summary."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class Stats:
    """JSON-lines event log (open-append-close per line: no fd for children to inherit)."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def read_stats(path: str | os.PathLike) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def summarize_stats(paths: Iterable[str | os.PathLike]) -> dict[str, dict[str, float]]:
    """Per-child figures from launcher stats files: ``life`` (fork to reaped), ``cpu`` and, when traced,
    each phase's duration and ``exit`` (from ``flwr_exit`` to reaped). Each: n, mean, max (seconds)."""
    samples: dict[str, list[float]] = {}
    for path in paths:
        events = read_stats(path)
        forks = {e["child"]: e for e in events if e["event"] == "fork"}
        exits = {e["child"]: e for e in events if e["event"] == "exit"}
        phases: dict[int, list[dict[str, Any]]] = {}
        for e in events:
            if e["event"] == "phase":
                phases.setdefault(e["pid"], []).append(e)
        for pid, fork in forks.items():
            end = exits.get(pid)
            if end is None:
                continue
            life = end["t"] - fork["t"]
            samples.setdefault("life", []).append(life)
            if "cpu_s" in end:
                samples.setdefault("cpu", []).append(end["cpu_s"])
            for p in phases.get(pid, []):
                if "dur_s" in p:
                    samples.setdefault(p["phase"], []).append(p["dur_s"])
                else:
                    samples.setdefault("exit", []).append(max(0.0, life - p["start_s"]))
    return {
        k: {"n": len(v), "mean": round(sum(v) / len(v), 3), "max": round(max(v), 3)}
        for k, v in samples.items()
        if v
    }
