"""The demo story, played against a running platform (site + anvil + Celery workers + beat + SuperLink).

Where a real person acts, the story acts over HTTP as their browser or client would: SIWE sign-in, joins
(`manage.py simulate_participants`' `Simulation`: a wallet, a data file and a real SuperNode each), purchase
confirmations, signed downloads and predictions; their wallets send their own transactions (`dev_send`, anvil
dev accounts). Where the platform acts (node registration, Flower runs, round commits, scoring, bans, NFT
mint, settlement, share claims, payouts) the story only waits for the workers and reports what they did;
the beat's payout job is sent at once instead of in up to 5 minutes.

`Story(...).play()` returns a `StoryResult`; `bcfl_site.demo.summary.summary_lines` turns it into the
closing summary. Raises `StoryError` (the step that did not happen) or `training.client.api.ApiError`.
"""

from __future__ import annotations

import io
import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from django.core.management import call_command

from bcfl_site.demo.actors import Actor
from bcfl_site.demo.narrator import Indented, Narrator, StoryError
from tasks.models import Task
from training.client import api

STEPS = 13


@dataclass
class StoryConfig:
    """What the story plays: sizes, prices (wei), accounts (anvil dev indexes 1-9) and time limits (s)."""

    site: str = "http://127.0.0.1:8000"
    superlink: str = "127.0.0.1:9093"
    root_cert: Path | None = None
    workdir: Path | None = None  # participants' homes: <workdir>/<task id>/p<i>/
    honest: int = 8
    malicious: int = 2
    attack: str = "label_flip"
    rounds: int = 3
    local_epochs: int = 2
    reward_eth: str = "0.1"
    licence_price_wei: int = 2 * 10**16  # 0.02 ETH
    licence_days: int = 30
    nft_price_wei: int = 5 * 10**17  # 0.5 ETH
    creator: int = 1
    licensee: int = 2
    nft_buyer: int = 3
    queues: tuple[str, ...] = ("default", "chain", "training")
    platform_timeout: float = 180.0
    training_timeout: float = 420.0
    settle_timeout: float = 180.0


@dataclass
class StoryResult:
    """What happened, for the summary and for tests: the task, the people, the wallets' transactions."""

    task_id: int | None = None
    token_id: int | None = None
    participants: list[dict] = field(default_factory=list)  # {index, wallet, role, attack}
    actors: dict[str, Actor] = field(default_factory=dict)
    licence: dict = field(default_factory=dict)  # purchase answer, download checks, predictions
    nft_sale: dict = field(default_factory=dict)
    payouts: dict = field(default_factory=dict)  # {"deposited": wei, "paid": {holder: wei withdrawn}}
    step_times: list[tuple[str, float]] = field(default_factory=list)
    total_s: float = 0.0


class Story:
    """One play of the story; `on_tick` is called on every poll while waiting (tests kill a worker there)."""

    def __init__(self, config: StoryConfig, *, out: TextIO, on_tick=None):
        self.c = config
        self.n = Narrator(out, total_steps=STEPS, on_tick=on_tick)
        self.result = StoryResult()
        self.creator = Actor("creator", config.creator)
        self.licensee = Actor("licence buyer", config.licensee)
        self.nft_buyer = Actor("NFT buyer", config.nft_buyer)
        self.result.actors = {a.role: a for a in (self.creator, self.licensee, self.nft_buyer)}
        self.task: Task | None = None

    def play(self) -> StoryResult:
        from bcfl_site.demo import market

        self.wait_for_platform()
        self.create_task()
        sim = self.join_participants()
        try:
            self.train(sim)
        finally:
            sim.stop()
        self.wait_for_settlement()
        market.Market(self).play()
        self.result.step_times = self.n.step_times
        self.result.total_s = round(self.n.elapsed(), 1)
        return self.result

    # --- 1. the platform --------------------------------------------------------------------------------

    def _health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.c.site}/healthz", timeout=5) as resp:  # noqa: S310 - our site
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return None
        checks = body["checks"]
        workers = {w["queue"] for w in checks["workers"] if w["ok"]}
        if checks["superlink"]["ok"] and set(self.c.queues) <= workers:
            return checks
        return None

    def wait_for_platform(self) -> None:
        self.n.detail(
            f"Waiting up to {self.c.platform_timeout:.0f} s for the platform at {self.c.site} (chain, SuperLink, "
            "workers); without --platform, start it first in another terminal with `make demo-platform`."
        )
        checks = self.n.wait_until(
            f"the site at {self.c.site} to report chain, SuperLink and workers ({', '.join(self.c.queues)}) up",
            self._health,
            timeout=self.c.platform_timeout,
            poll=2.0,
        )
        chain_info = checks["chain"]
        self.n.step(
            f"Platform up: site {self.c.site}, chain {chain_info.get('chain_id')} at block "
            f"{chain_info.get('block_number')}, SuperLink {checks['superlink']['address']}, "
            f"workers {', '.join(self.c.queues)}"
        )

    # --- 2. the creator -----------------------------------------------------------------------------------

    def create_task(self) -> None:
        self.creator.sign_in(self.c.site)
        before = Task.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        n = self.c.honest + self.c.malicious
        call_command(
            "create_task",
            "--dev-key",
            str(self.c.creator),
            "--dataset",
            "digits",
            "--rounds",
            str(self.c.rounds),
            "--min-participants",
            str(n),
            "--local-epochs",
            str(self.c.local_epochs),
            "--reward-eth",
            self.c.reward_eth,
            stdout=io.StringIO(),
        )
        task = Task.objects.filter(pk__gt=before, creator__username=self.creator.address).latest("pk")
        seen = self.creator.client.task(task.pk)  # what the site shows the creator
        if seen["status"] != Task.Status.RECRUITING:
            raise StoryError(f"Task {task.pk} is {seen['status']} after createTask, not recruiting.")
        self.task, self.result.task_id = task, task.pk
        self.n.step(
            f"Creator {self.creator.address} signed in (SIWE) and created task {task.pk} "
            f'"{task.title}": {self.c.reward_eth} ETH reward in escrow, on chain as #{task.chain_task_id}'
        )
        self.n.detail(f"createTask tx {task.create_tx_hash}")

    # --- 3-4. participants and training -------------------------------------------------------------------

    def join_participants(self):
        from bcfl_site.demo.participants import simulation_for

        self.n.step(
            f"{self.c.honest + self.c.malicious} participants ({self.c.honest} honest, {self.c.malicious} "
            f"malicious: {self.c.attack}) sign in (SIWE) and join with signed EIP-712 Joins; the platform "
            "registers their SuperNode keys and they start their SuperNodes"
        )
        sim = simulation_for(self, out=Indented(self.n))
        self.result.participants = [
            {"index": p["index"], "wallet": p["wallet"], "role": p["role"], "attack": p["attack"]}
            for p in sim.participants
        ]
        return sim

    def train(self, sim) -> None:
        from bcfl_site.demo.participants import follow

        self.n.step(f"Training: {self.c.rounds} rounds of Flower on digits, one line per round")
        status = follow(sim, self.n, timeout=self.c.training_timeout)
        if status not in api.ENDED_STATUSES:
            raise StoryError(
                f"Training did not end within {self.c.training_timeout:.0f} s (task is {status})."
            )
        if status in ("failed", "cancelled"):
            self.task.refresh_from_db()
            raise StoryError(f"The task {status}: {self.task.status_note}")

    def _completed(self) -> bool:
        self.task.refresh_from_db()
        if self.task.status in (Task.Status.FAILED, Task.Status.CANCELLED):
            raise StoryError(f"The task {self.task.status}: {self.task.status_note}")
        return self.task.status == Task.Status.COMPLETED

    def _finalize_did(self, step: str) -> bool:
        from training.models import Finalization

        self._completed()  # raises on a failed task
        fin = Finalization.objects.filter(task=self.task).first()
        return fin is not None and step in fin.steps_done

    def wait_for_settlement(self) -> None:
        from bcfl_site.demo import report

        self.n.wait_until(
            "every commitRound to be confirmed", lambda: report.commits_confirmed(self.task), timeout=60
        )
        self.n.step(f"{self.c.rounds} rounds committed on chain (TaskRegistry.commitRound, one per round)")
        for line in report.round_lines(self.task):
            self.n.detail(line)
        self.n.wait_until(
            "the finalize chain's verdicts",
            lambda: self._finalize_did("verdicts"),
            timeout=self.c.settle_timeout,
        )
        self.n.step("Contributions scored (Shapley value per round); the malicious judged, unpaid and banned")
        for line in report.contribution_lines(self.task):
            self.n.detail(line)
        self.n.wait_until(
            "the finalize chain to complete the task", self._completed, timeout=self.c.settle_timeout
        )
        self.result.token_id = int(self.task.chain_task_id)
        self.n.step(
            f"Task {self.task.pk} completed: model NFT #{self.task.chain_task_id} minted to the creator, the "
            "reward pool paid into its stake pool"
        )
        for line in report.settlement_lines(self.task):
            self.n.detail(line)
