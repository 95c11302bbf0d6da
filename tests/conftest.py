import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_sessionfinish(session, exitstatus):
    # In CI the embedded servers belong to this run's clone: stop them so nothing outlives it.
    if os.environ.get("CI") and not os.environ.get("DATABASE_URL"):
        from backend.config.embedded import stop_all

        stop_all()
