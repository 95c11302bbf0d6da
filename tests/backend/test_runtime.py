"""The embedded servers are the real thing: PostgreSQL with pgvector, Redis, a Celery worker."""
import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_database_is_postgres_with_pgvector():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
        cursor.execute("SELECT '[1,2,3]'::vector <=> '[1,2,3]'::vector")
        assert cursor.fetchone()[0] == pytest.approx(0.0)


def test_redis_answers():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set("razmetka-test-key", "v", ex=5)
    assert client.get("razmetka-test-key") == b"v"


def test_celery_is_json_only_and_not_eager():
    from backend.config.celery import app

    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert not app.conf.task_always_eager
    assert app.conf.task_acks_late
    assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_a_real_worker(celery_worker):
    from backend.core.tasks import ping

    result = ping.apply_async(args=["x"], queue=settings.QUEUE_CPU)
    assert result.get(timeout=60) == "pong:x"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_refuses_pickle(celery_worker):
    """A pickled message on the queue is rejected, never deserialized."""
    from backend.config.celery import app

    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn)
        result = app.send_task("core.ping", args=["p"], queue=settings.QUEUE_CPU, serializer="pickle", producer=producer)
    with pytest.raises(Exception):
        result.get(timeout=5)


def test_secret_key_file_is_private():
    import os
    import stat

    path = settings.VAR_DIR / "secret_key"
    if os.environ.get("SECRET_KEY"):
        pytest.skip("SECRET_KEY comes from the environment")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.SECRET_KEY == path.read_text().strip()
