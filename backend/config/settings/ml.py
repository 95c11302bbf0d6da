"""Pre-annotation engine settings: where the models are and which device runs them."""
import os

from .base import VAR_DIR
from .env import env_int


def _ml_config() -> tuple[str, str]:
    """(config path, where it came from). An explicit RAZMETKA_ML_CONFIG wins, even empty (no models
    on purpose); else `make models`' real weights; else `make tiny-models`' random ones, which run
    the whole pipeline but predict nothing meaningful (`serve` says so at start)."""
    if "RAZMETKA_ML_CONFIG" in os.environ:
        return os.environ["RAZMETKA_ML_CONFIG"], "env"
    for source in ("models", "tiny-models"):
        path = VAR_DIR / source / "config.json"
        if path.is_file():
            return str(path), source
    return "", ""


# A JSON/YAML file in ml.config.PipelineConfig's format (`make models` / `make tiny-models` write one).
RAZMETKA_ML_CONFIG, RAZMETKA_ML_CONFIG_SOURCE = _ml_config()  # source: "env" | "models" | "tiny-models" | ""
RAZMETKA_ML_DEVICE = os.environ.get("RAZMETKA_ML_DEVICE", "cpu")

# Images per gpu task (one message, one claim): a crash redelivers at most this many. Inside a
# task the models run PRELABEL_CHUNK_SIZE images per call, and the results are written (one
# transaction, one progress event) once PRELABEL_WRITE_EVERY_S have passed since the last
# write, and at the end: slow models (CPU) write after every chunk as before, fast ones (a GPU,
# the tiny test models) write a few chunks at once, so a batch's fixed database cost (~50 ms:
# locks, status refresh, counters, events) is not paid for every 4 images (docs/benchmarks.md).
PRELABEL_BATCH_SIZE = env_int("PRELABEL_BATCH_SIZE", 16)
PRELABEL_CHUNK_SIZE = env_int("PRELABEL_CHUNK_SIZE", 4)
# A chunk also ends before its images pass this many pixels (one bigger image is a chunk alone):
# four 100 MP photos in one chunk, and the next chunk read ahead, took a worker to 8.8 GB.
PRELABEL_CHUNK_PIXELS = env_int("PRELABEL_CHUNK_PIXELS", 50_000_000)
PRELABEL_WRITE_EVERY_S = float(os.environ.get("PRELABEL_WRITE_EVERY_S") or 1.0)

# Box-segment / click-refine requests one web process lets wait for the interactive worker at
# once (jobs/interactive.py). A waiting click holds no database connection, only a thread; past
# this the click answers 503 "the segmentation queue is full" at once instead of piling up.
INTERACTIVE_MAX_WAITING = env_int("RAZMETKA_INTERACTIVE_MAX_WAITING", 32)
# How long a click waits for the worker before 503 (a cold worker loads its models first).
INTERACTIVE_TIMEOUT_S = env_int("RAZMETKA_INTERACTIVE_TIMEOUT_S", 60)
