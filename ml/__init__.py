"""Razmetka pre-annotation engine (GroundingDINO -> SAM 2 -> DINOv3/ONNX -> matcher).

Pure Python + torch; imports nothing from Django. ``ml.matcher``, ``ml.gallery``,
``ml.masks``, ``ml.config`` and ``ml.formats`` need only numpy/scipy/pycocotools/cv2,
so a web process without torch can re-score stored embeddings.
"""
__version__ = "0.1.0"

try:  # the shim must run before anything imports timm, sam2 or torchvision
    from ml import _torchvision_compat

    _torchvision_compat.install()
except ImportError:  # no torch here (web process): the numpy-only modules still work
    pass
