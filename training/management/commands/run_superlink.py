"""``manage.py run_superlink``: the platform's Flower SuperLink in the foreground until SIGTERM."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from training import superlink


class Command(BaseCommand):
    help = "Run the Flower SuperLink (TLS + SuperNode authentication) until SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--address", default=settings.SUPERLINK_ADDRESS, help="host:port to listen on")

    def _reregister(self, link) -> None:
        from training.services import nodes_reregister_all

        count = nodes_reregister_all(link=link)
        self.stdout.write(f"re-registered {count} participant node key(s)")

    def handle(self, *args, **options):
        code = superlink.run_forever(
            var_dir=Path(settings.VAR_DIR),
            address=options["address"],
            flwr_home=Path(settings.FLWR_HOME),
            cert_hosts=tuple(settings.SUPERLINK_CERT_HOSTS),
            control_hosts=tuple(settings.SUPERLINK_CONTROL_HOSTS),
            on_started=self._reregister,
        )
        if code:
            raise SystemExit(code)
