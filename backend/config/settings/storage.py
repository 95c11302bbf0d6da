"""Uploaded files live in private storage (local disk or S3), served only through membership-checked views."""
import os
from pathlib import Path

from ..storage_url import storages_from_url
from .base import BASE_DIR, VAR_DIR
from .env import env_int

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Unset: local disk under MEDIA_ROOT. s3://bucket?endpoint_url=... puts all media in object storage,
# so web and workers on other hosts share it (backend/config/storage_url.py, docs/deploy.md).
STORAGE_URL = os.environ.get("STORAGE_URL", "")
STORAGES = storages_from_url(STORAGE_URL)
MEDIA_URL = "/media/"  # never routed: media goes through the API's file views
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
# Overridable so parallel work trees (or a test) can serve their own build.
FRONTEND_DIST = Path(os.environ.get("RAZMETKA_FRONTEND_DIST", BASE_DIR / "frontend" / "dist"))

# Upload limits (bytes / pixels / zip entries); errors name the limit that was hit.
MAX_IMAGE_BYTES = env_int("MAX_IMAGE_BYTES", 64 * 1024 * 1024)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 100_000_000)
# Shapes no model can use (backend/core/uploads.py): under 8 px a side is less than one patch of
# every model here; past 30:1 GroundingDINO (long side 1333 px) keeps under 44 px of the short
# side and SAM 2 stretches the strip 30x. Panoramas (~10:1) and long tool shots pass.
# Memory one process may spend decoding pictures at once (backend/core/decode_budget.py): a
# 100 MP RGBA picture takes ~800 MB of it; bigger ones are refused, others wait their turn.
DECODE_MEMORY_BYTES = env_int("DECODE_MEMORY_BYTES", 1024 * 1024 * 1024)
DECODE_WAIT_SECONDS = env_int("DECODE_WAIT_SECONDS", 120)
MIN_IMAGE_SIDE = env_int("MIN_IMAGE_SIDE", 8)
MAX_IMAGE_ASPECT = env_int("MAX_IMAGE_ASPECT", 30)
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)
ZIP_MAX_ENTRIES = env_int("ZIP_MAX_ENTRIES", 20_000)
ZIP_MAX_TOTAL_BYTES = env_int("ZIP_MAX_TOTAL_BYTES", 8 * 1024 * 1024 * 1024)
ZIP_MAX_RATIO = env_int("ZIP_MAX_RATIO", 200)
# Finished export zips kept per project; older ones' files are deleted (their rows say "expired").
EXPORTS_KEPT_PER_PROJECT = env_int("EXPORTS_KEPT_PER_PROJECT", 5)

FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MAX_FILES_PER_REQUEST", 1000)
FILE_UPLOAD_PERMISSIONS = 0o640
