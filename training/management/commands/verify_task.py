"""``manage.py verify_task ID``: recompute a task's round roots and checkpoint hashes, compare with the chain."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from contracts import chain
from tasks.models import Task
from training.verify import verify_task


class Command(BaseCommand):
    help = (
        "Verify a task's stored rounds against RoundCommitted events on chain; exit 1 on the first mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("task_id", type=int, help="Platform task id")
        parser.add_argument(
            "--source",
            choices=["chain", "index"],
            default="chain",
            help="Read RoundCommitted from the chain's logs (default) or from the indexed ChainEvent table",
        )

    def handle(self, *args, task_id: int, source: str, **options):
        task = Task.objects.filter(pk=task_id).first()
        if task is None:
            raise CommandError(f"no task {task_id}")
        try:
            result = verify_task(task, source=source)
        except chain.ChainUnavailable as exc:
            raise CommandError(
                f"The chain node at {settings.CHAIN_RPC_URL} did not answer ({exc}). verify_task reads the "
                "task's events from the chain: start the node (make demo-platform runs anvil) or point "
                "CHAIN_RPC_URL at one, or pass --source index to compare with the indexed events instead."
            ) from None
        for line in result.lines:
            self.stdout.write(line)
        if not result.ok:
            self.stderr.write(f"MISMATCH: {result.mismatch}")
            raise SystemExit(1)
        if result.final_model:
            self.stdout.write(f"final model: {result.final_model}")
        for line in result.stakes:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"OK: task {task_id}, {len(result.lines)} round(s) verified"))
