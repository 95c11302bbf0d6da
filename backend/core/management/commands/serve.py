"""`make run`: migrate, make sure an admin exists, start web + workers, keep them running, stop all on Ctrl-C."""
import logging
import os
import secrets
import signal
import socket
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from backend.config import embedded
from backend.core.supervisor import Service, Supervisor

WORKERS = ("cpu", "gpu", "interactive")


def default_web_processes() -> int:
    return max(2, min(4, os.cpu_count() or 1))


def uvicorn_command(python: str, *, fd: int | None = None, host: str = "127.0.0.1", port: int = 8000) -> list[str]:
    """One ASGI web process. uvicorn on uvloop + httptools costs a fraction of daphne's (twisted)
    CPU per request (docs/benchmarks.md); Channels' websockets run on it unchanged. No access log
    (a line per request is CPU the API needs); lifespan off (Channels' router has no lifespan); no
    proxy headers (as under daphne: the client address is the socket's). httptools with read
    timeouts for the request head and a stalled body (core/http_timeouts.py)."""
    where = ["--fd", str(fd)] if fd is not None else ["--host", host, "--port", str(port)]
    return [python, "-m", "uvicorn", *where, "--loop", "uvloop", "--http", "backend.core.http_timeouts:TimedHttpToolsProtocol",
            "--ws", "websockets",
            "--lifespan", "off", "--no-access-log", "--no-proxy-headers", "--no-server-header", "--timeout-graceful-shutdown", "10",
            "backend.config.asgi:application"]


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """The web port, bound once here and inherited by every web process. (`reuse_port`: one of
    several sockets on the port, the kernel spreading connections; api_bench's --reuseport.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048, reuse_port=reuse_port)
    # uvicorn takes an inherited socket for a unix one (socket.fromfd(fd, AF_UNIX, ...)), so
    # asyncio never sets TCP_NODELAY on its connections, and a small answer sent as headers +
    # body waited ~40 ms for the client's delayed ACK. Linux hands this on to accepted sockets.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock


class Command(BaseCommand):
    help = (
        "Run the ASGI web server and the cpu + gpu Celery workers on the configured (or embedded) servers; "
        "a child that crashes is restarted with backoff."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("RAZMETKA_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("RAZMETKA_PORT", "8000")))
        parser.add_argument(
            "--workers",
            default=os.environ.get("RAZMETKA_WORKERS", ",".join(WORKERS)),
            help="comma-separated workers to start: cpu, gpu, interactive (default all; empty for none)",
        )
        parser.add_argument("--no-workers", action="store_true", help="web server only (same as --workers '')")
        parser.add_argument(
            "--web-processes", type=int, default=int(os.environ.get("RAZMETKA_WEB_PROCESSES", "0")) or default_web_processes(),
            help="ASGI server processes sharing the port (default: one per core, 2 to 4)",
        )

    def handle(self, *args, host, port, workers, no_workers, web_processes, **options):
        wanted = [] if no_workers else [w.strip() for w in workers.split(",") if w.strip()]
        unknown = sorted(set(wanted) - set(WORKERS))
        if unknown:
            raise CommandError(f"unknown worker(s) {unknown}; choose from {list(WORKERS)}")
        call_command("migrate", interactive=False, verbosity=0)
        login = self._ensure_admin()
        self._log_to_console()
        listener = listen(host, port) if web_processes > 1 else None
        supervisor = Supervisor(
            self._commands(host, port, wanted, listener, web_processes), cwd=settings.BASE_DIR,
            services=self._embedded(), pass_fds=(listener.fileno(),) if listener else (),
        )
        # Installed before the first child starts, so a Ctrl-C at any point stops them all.
        signal.signal(signal.SIGINT, supervisor.request_stop)
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        supervisor.start()
        self.stdout.write(self.style.SUCCESS(f"\nRazmetka is running at http://{host}:{port}/  ({login})"))
        if "gpu" in wanted:
            ml_config, source = settings.RAZMETKA_ML_CONFIG, getattr(settings, "RAZMETKA_ML_CONFIG_SOURCE", "env")
            # build_tiny_models leaves this README next to its config; a tiny config named in the env is still tiny
            readme = os.path.join(os.path.dirname(ml_config), "README.txt") if ml_config else ""
            tiny = source == "tiny-models"
            if not tiny and readme and os.path.isfile(readme):
                with open(readme, encoding="utf-8") as fh:
                    tiny = "MEANINGLESS" in fh.read()
            if not ml_config:
                self.stdout.write(
                    "No models configured (RAZMETKA_ML_CONFIG is empty and there is no var/models/config.json): "
                    "pre-annotation jobs will fail with that message.\n"
                    "Real weights: make models (downloads them into var/models; `make run` then uses them).\n"
                    "Offline: make tiny-models (random weights, meaningless predictions; `make run` then uses them)."
                )
            elif not os.path.isfile(ml_config):
                self.stdout.write(self.style.WARNING(
                    f"RAZMETKA_ML_CONFIG points at {ml_config!r}, which does not exist: pre-annotation jobs will fail."))
            elif tiny:
                how = "RAZMETKA_ML_CONFIG" if source == "env" else "RAZMETKA_ML_CONFIG is unset and there is no var/models"
                self.stdout.write(self.style.WARNING(
                    f"Pre-annotation uses TINY RANDOM-WEIGHT models ({ml_config}; {how}): their predictions are "
                    "MEANINGLESS. For real weights run `make models` (var/models is preferred once it exists) "
                    "or set RAZMETKA_ML_CONFIG."))
            else:
                how = "RAZMETKA_ML_CONFIG" if source == "env" else "from `make models`; RAZMETKA_ML_CONFIG overrides it"
                self.stdout.write(f"Pre-annotation models: {ml_config} ({how}).")
        self.stdout.write("Press Ctrl-C to stop.\n")
        self.stdout.flush()
        supervisor.run()
        self.stdout.write("Stopped.\n")

    def _commands(self, host: str, port: int, workers: list[str], listener: socket.socket | None = None,
                  web_processes: int = 1) -> dict[str, list[str]]:
        python = sys.executable
        if listener is None:
            commands = {"web": uvicorn_command(python, host=host, port=port)}
        else:
            # One process runs Python on one core: N processes accept on one socket that serve
            # bound, and the kernel spreads the connections (a restarted one rejoins the same
            # socket, so the port never closes).
            commands = {f"web-{i}": uvicorn_command(python, fd=listener.fileno())
                        for i in range(1, web_processes + 1)}
        celery = [python, "-m", "celery", "-A", "backend.config", "worker", "--loglevel", "INFO"]
        # Node names carry the queue prefix, like the queues, so a test run's workers are told
        # apart from a `make run` on the same Redis (`celery inspect ping -d cpu@host`).
        prefix = settings.QUEUE_PREFIX
        if "cpu" in workers:
            commands["cpu"] = celery + ["-Q", settings.QUEUE_CPU, "-c", "2", "-n", f"{prefix}cpu@%h"]
        if "gpu" in workers:
            # One process that loads the models once; the device comes from RAZMETKA_ML_DEVICE.
            # It takes interactive tasks too when it is idle (a solo worker holds no message
            # while a task runs, so it never sits on one during a training).
            commands["gpu"] = celery + ["-Q", f"{settings.QUEUE_GPU},{settings.QUEUE_INTERACTIVE}", "-c", "1",
                                        "--pool", "solo", "-n", f"{prefix}gpu@%h"]
        if "interactive" in workers:
            # Box-segment and click-refine while the gpu worker runs a training for minutes (they
            # waited behind it and answered 503 after 60 s); its own copy of the models.
            commands["interactive"] = celery + ["-Q", settings.QUEUE_INTERACTIVE, "-c", "1", "--pool", "solo",
                                                "-n", f"{prefix}interactive@%h"]
        return commands

    def _embedded(self) -> list[Service]:
        """The embedded servers this process started (no URL given) are restarted when they die;
        real servers belong to their own supervisor (compose, systemd)."""
        services = []
        if not os.environ.get("DATABASE_URL"):
            services.append(Service("postgres (embedded)", embedded.postgres_alive, embedded.revive_postgres))
        if not os.environ.get("REDIS_URL"):
            services.append(Service("redis (embedded)", embedded.redis_alive, embedded.ensure_redis))
        return services

    def _log_to_console(self) -> None:
        handler = logging.StreamHandler()  # stderr, next to the children's own logs
        handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/serve] %(message)s"))
        log = logging.getLogger("razmetka.supervisor")
        log.handlers[:] = [handler]
        log.setLevel(logging.INFO)
        log.propagate = False

    def _ensure_admin(self) -> str:
        username = os.environ.get("RAZMETKA_ADMIN_USER", "admin")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return f"login: {username} (existing user; set RAZMETKA_ADMIN_PASSWORD before the first run to choose it)"
        password = os.environ.get("RAZMETKA_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password, email="")
        shown = password if not os.environ.get("RAZMETKA_ADMIN_PASSWORD") else "from RAZMETKA_ADMIN_PASSWORD"
        return f"login: {username} / {shown}  (printed once)"
