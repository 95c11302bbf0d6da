"""Pre-annotation engine settings: where the models are and which device runs them."""
import os

from .base import VAR_DIR


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

# Images per gpu task: one detector / SAM-encoder batch. A crash redelivers at most this many.
PRELABEL_BATCH_SIZE = int(os.environ.get("PRELABEL_BATCH_SIZE", "4"))
