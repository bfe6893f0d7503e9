"""The story's participants: `manage.py simulate_participants`' `Simulation` (each a fresh wallet key file, its own
IID partition of digits, SIWE sign-in, a signed Join, a real SuperNode once the platform registered its key)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from bcfl_site.demo.narrator import StoryError
from training.client import api
from training.client.home import CliError
from training.management.commands.simulate_participants import Simulation

REGISTER_TIMEOUT_S = 180.0


def simulation_for(story, *, out) -> Simulation:
    """Participants of `story.task` joined, registered and running their SuperNodes (warm isolation).

    Homes under `<workdir>/<task id>/` (default `<VAR_DIR>/sim/<task id>/`). Raises `StoryError` when they
    cannot join or the platform does not register their nodes within 3 minutes; started SuperNodes are
    stopped again on failure. The caller must `stop()` the result."""
    c, task = story.c, story.task
    base = Path(c.workdir or Path(settings.VAR_DIR) / "sim") / str(task.pk)
    root_cert = Path(c.root_cert or Path(settings.VAR_DIR) / "flwr" / "certs" / "ca.crt")
    sim = Simulation(task.pk, base, site=c.site, out=out, poll=2.0)
    n = c.honest + c.malicious
    try:
        sim.prepare(n, c.malicious, c.attack, dataset="digits", scheme="iid", alpha=0.5, seed=task.pk)
        sim.join_all()
        if len(sim.participants) != n:
            raise StoryError(f"Only {len(sim.participants)} of {n} participants could join.")
        sim.wait_registered(REGISTER_TIMEOUT_S)
        sim.start_nodes(superlink=c.superlink, root_cert=root_cert, isolation="warm")
    except (api.ApiError, CliError) as exc:
        sim.stop()
        raise StoryError(f"Participants could not start: {exc}") from exc
    except BaseException:
        sim.stop()
        raise
    return sim


def follow(sim: Simulation, narrator, *, timeout: float) -> str:
    """Follow the task over HTTP as its participants see it, one progress line per round (accuracy, accepted and
    rejected updates); SuperNodes that stop are started again (`revive`). Returns the task's status once
    training ended (finalizing, completed, failed, cancelled) or at `timeout` s. Raises `StoryError` when a
    SuperNode keeps stopping."""
    from training.client.participant import MAX_NODE_RESTARTS, progress_bar
    from training.client.supernode import revive

    client = sim.participants[0]["home"].client()
    deadline = time.monotonic() + timeout
    shown = 0
    narrator.detail(f"{progress_bar(0, sim_rounds(client, sim))} training round 1…")
    while True:
        narrator.tick()
        task = client.task(sim.task_id)
        training = client.training(sim.task_id) or {}
        rounds = training.get("rounds") or []
        for r in rounds[shown:]:
            narrator.detail(
                f"{progress_bar(r['round'], task['rounds'])} round {r['round']}/{task['rounds']} · accuracy "
                f"{r['accuracy']:.3f} · {r['accepted']} accepted, {r['rejected']} rejected"
            )
        shown = max(shown, len(rounds))
        if task["status"] in api.ENDED_STATUSES or time.monotonic() > deadline:
            return task["status"]
        try:
            revive(sim.handles, max_restarts=MAX_NODE_RESTARTS, log=narrator.detail)
        except RuntimeError as exc:
            raise StoryError(f"{exc} (logs: {sim.base}/p<i>/tasks/{sim.task_id}/supernode.log)") from exc
        time.sleep(2.0)


def sim_rounds(client, sim: Simulation) -> int:
    return int(client.task(sim.task_id).get("rounds") or 0)
