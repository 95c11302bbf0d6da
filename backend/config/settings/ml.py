"""Pre-annotation engine settings: where the models are and which device runs them."""
import os

# A JSON/YAML file in ml.config.PipelineConfig's format (`python -m ml tiny-models` writes one).
RAZMETKA_ML_CONFIG = os.environ.get("RAZMETKA_ML_CONFIG", "")
RAZMETKA_ML_DEVICE = os.environ.get("RAZMETKA_ML_DEVICE", "cpu")

# Images per gpu task: one detector / SAM-encoder batch. A crash redelivers at most this many.
PRELABEL_BATCH_SIZE = int(os.environ.get("PRELABEL_BATCH_SIZE", "4"))
