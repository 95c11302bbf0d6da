"""Loaded with -p before Django's settings are imported: the environment of the whole test run.

Worker processes started by tests inherit it, so they see the same media root and queues.
"""
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# No models unless a test gives them (the tiny_models_config fixture): never whatever var/models or
# var/tiny-models this checkout happens to hold, so a run here and a clean clone in CI agree.
os.environ["RAZMETKA_ML_CONFIG"] = ""
os.environ["RAZMETKA_QUEUE_PREFIX"] = f"test{os.getpid()}-"
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="razmetka-test-media-"))
# Each run gets its own test database, so parallel runs on one embedded server never collide.
os.environ.setdefault("RAZMETKA_TEST_DB_NAME", f"test_razmetka_{os.getpid()}")
