"""``manage.py play_demo``: play the whole demo story against the running platform and print its summary.

``--platform`` (what `make demo` runs) first starts the platform itself (``honcho -f Procfile start``, its
output in ``<VAR_DIR>/logs/platform.log``), plays, prints the summary, then leaves the site running until
Ctrl-C. Without it the story plays against a platform already up (`make demo-platform` in another terminal).
Each run makes a new task; earlier ones stay. The steps: `bcfl_site.demo.story`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.client.procs import local_address

ROOT = Path(__file__).resolve().parents[3]


class Command(BaseCommand):
    help = (
        "Play the demo story (creator, participants, training, settlement, marketplace, payouts) end to end."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--platform",
            action="store_true",
            help="start the platform (honcho, Procfile) first and keep it up",
        )
        parser.add_argument("--site", default=getattr(settings, "BCFL_SITE_URL", "http://127.0.0.1:8000"))
        parser.add_argument("--superlink", default=local_address(settings.SUPERLINK_ADDRESS))
        parser.add_argument("--honest", type=int, default=8)
        parser.add_argument("--malicious", type=int, default=2)
        parser.add_argument("--attack", default="label_flip")
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--exit", action="store_true", help="with --platform: stop it after the summary")

    def handle(self, *args, **o):
        from bcfl_site.demo.narrator import StoryError
        from bcfl_site.demo.story import Story, StoryConfig
        from bcfl_site.demo.summary import summary_lines
        from training.client.api import ApiError

        _interrupt_on_signals()
        platform = start_platform(self.stdout) if o["platform"] else None
        config = StoryConfig(
            site=o["site"].rstrip("/"),
            superlink=o["superlink"],
            honest=o["honest"],
            malicious=o["malicious"],
            attack=o["attack"],
            rounds=o["rounds"],
        )
        failure = ""
        try:
            story = Story(config, out=self.stdout, on_tick=platform.check if platform else None)
            result = story.play()
            for line in summary_lines(result, site=config.site):
                self.stdout.write(line)
        except (StoryError, ApiError, PlatformStopped) as exc:
            failure = str(exc)
            self.stderr.write(f"The story stopped: {failure}")
        except KeyboardInterrupt:
            failure = "interrupted"
        if platform is not None:
            platform.keep_up(site=config.site, until_interrupt=not (o["exit"] or failure == "interrupted"))
        if failure:
            raise CommandError(f"The demo story did not finish: {failure}")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt (also when started with SIGINT ignored, e.g. in the
    background), so the participants' SuperNodes and the platform are stopped on the way out."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


class PlatformStopped(RuntimeError):
    pass


class Platform:
    """`honcho -f Procfile start` in a session of its own (Ctrl-C reaches only this command, which stops it)."""

    def __init__(self, proc: subprocess.Popen, log: Path, out):
        self.proc, self.log, self.out = proc, log, out

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise PlatformStopped(f"the platform stopped (exit {self.proc.returncode}); see {self.log}")

    def keep_up(self, *, site: str, until_interrupt: bool) -> None:
        if until_interrupt and self.proc.poll() is None:
            self.out.write(
                f"\nThe platform stays up: open {site}/ (logs: {self.log}). Ctrl-C stops everything."
            )
            try:
                self.proc.wait()
            except KeyboardInterrupt:
                pass
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.out.write("Stopping the platform…")
        self.proc.send_signal(signal.SIGTERM)  # honcho stops every process it started
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_platform(out) -> Platform:
    honcho = shutil.which("honcho") or str(Path(sys.executable).parent / "honcho")
    logs = Path(settings.VAR_DIR) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "platform.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [honcho, "-f", str(ROOT / "Procfile"), "start"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    out.write(f"Started the platform (honcho, pid {proc.pid}); its output goes to {log_path}")
    return Platform(proc, log_path, out)
