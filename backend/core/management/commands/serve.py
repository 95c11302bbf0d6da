"""`make run`: migrate, make sure an admin exists, start web + workers, stop them all on Ctrl-C."""
import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the ASGI web server and the cpu + gpu Celery workers on the configured (or embedded) servers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("RAZMETKA_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("RAZMETKA_PORT", "8000")))
        parser.add_argument("--no-workers", action="store_true", help="web server only")

    def handle(self, *args, host, port, no_workers, **options):
        call_command("migrate", interactive=False, verbosity=0)
        login = self._ensure_admin()
        python = sys.executable
        commands = [[python, "-m", "daphne", "-b", host, "-p", str(port), "backend.config.asgi:application"]]
        if not no_workers:
            celery = [python, "-m", "celery", "-A", "backend.config", "worker", "--loglevel", "INFO"]
            commands.append(celery + ["-Q", settings.QUEUE_CPU, "-c", "2", "-n", "cpu@%h"])
            # One process that loads the models once; the device comes from RAZMETKA_ML_DEVICE.
            commands.append(celery + ["-Q", settings.QUEUE_GPU, "-c", "1", "--pool", "solo", "-n", "gpu@%h"])
        children = [subprocess.Popen(cmd, cwd=settings.BASE_DIR) for cmd in commands]
        self.stdout.write(self.style.SUCCESS(f"\nRazmetka is running at http://{host}:{port}/  ({login})"))
        if not settings.RAZMETKA_ML_CONFIG:
            self.stdout.write(
                "No models configured (RAZMETKA_ML_CONFIG is empty): pre-annotation jobs will fail with that message.\n"
                "Try it offline with tiny random models: make tiny-models, then set RAZMETKA_ML_CONFIG=var/tiny-models/config.json."
            )
        self.stdout.write("Press Ctrl-C to stop.\n")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        failed = [c.args[2] for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            self.stderr.write(f"A process exited unexpectedly: {failed}")
            sys.exit(1)

    def _ensure_admin(self) -> str:
        username = os.environ.get("RAZMETKA_ADMIN_USER", "admin")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return f"login: {username} (existing user; set RAZMETKA_ADMIN_PASSWORD before the first run to choose it)"
        password = os.environ.get("RAZMETKA_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password, email="")
        shown = password if not os.environ.get("RAZMETKA_ADMIN_PASSWORD") else "from RAZMETKA_ADMIN_PASSWORD"
        return f"login: {username} / {shown}  (printed once)"
