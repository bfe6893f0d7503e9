import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Wait until the chain RPC answers (used by `make demo` before deploying contracts)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args, timeout: float, **options):
        from bcfl_site.selectors import chain_status

        deadline = time.monotonic() + timeout
        status = {}
        while time.monotonic() < deadline:
            status = chain_status()
            if status.get("ok"):
                self.stdout.write(f"chain {status['chain_id']} is up at {settings.CHAIN_RPC_URL}")
                return
            time.sleep(0.5)
        raise CommandError(f"chain at {settings.CHAIN_RPC_URL} did not answer: {status.get('error')}")
