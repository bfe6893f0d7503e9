"""Locust user for `benchmarks/web.py`: GETs one endpoint's paths (BENCH_PATHS, one per line, picked at random)
as if behind a TLS proxy (`X-Forwarded-Proto: https`, what production settings expect), at most
BENCH_USER_RPS requests a second per user (locust's `constant_throughput`: a bounded, steady load; 0 = no think
time, i.e. saturation). The BENCH_USERS users start at evenly spread phases of the period, so the requests come
one every 1/(BENCH_USERS x BENCH_USER_RPS) s (users spawned together would otherwise send in lockstep, bursts of
4 requests at once on 2 cores). Every request is named BENCH_NAME, so the stats have one row per endpoint. A
non-200 answer is a failure."""

from __future__ import annotations

import itertools
import os
import random

import gevent
from locust import FastHttpUser, constant, constant_throughput, task

PATHS = [p for p in os.environ.get("BENCH_PATHS", "/").splitlines() if p]
NAME = os.environ.get("BENCH_NAME", "endpoint")
USER_RPS = float(os.environ.get("BENCH_USER_RPS", "0"))
USERS = int(os.environ.get("BENCH_USERS", "1"))
_started = itertools.count()
HEADERS = {"X-Forwarded-Proto": "https", "Accept": "text/html,application/json"}


class Visitor(FastHttpUser):
    wait_time = constant_throughput(USER_RPS) if USER_RPS > 0 else constant(0)

    def on_start(self) -> None:
        if USER_RPS > 0:
            gevent.sleep((next(_started) % USERS) / (USERS * USER_RPS))

    @task
    def get(self) -> None:
        with self.client.get(random.choice(PATHS), headers=HEADERS, name=NAME, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
