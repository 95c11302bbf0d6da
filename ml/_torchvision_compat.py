"""Make torchvision importable when its compiled ops do not match the installed torch.

A CUDA torchvision wheel next to a CPU torch fails at import with
"operator torchvision::nms does not exist": its Python side registers fake
kernels for ops the C++ extension never defined. timm and sam2 import
torchvision, so we define the two ops it needs (nms, qnms) with a plain torch
CPU implementation. This runs only when the real op is missing, so a working
CUDA install is left untouched.
"""
from __future__ import annotations

import torch  # ImportError here is caught by ml/__init__

_LIB = None  # keep the Library object alive; dropping it unregisters the ops


def _op_exists(name: str) -> bool:
    try:
        return torch._C._dispatch_has_kernel(f"torchvision::{name}") or bool(
            torch._C._jit_get_schemas_for_operator(f"torchvision::{name}"))
    except Exception:  # pragma: no cover - private API drift
        return False


def _nms_impl(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    # Greedy NMS on tensors (vectorised IoU per kept box); only used when the
    # compiled op is missing, i.e. CPU-only test/dev machines.
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.float().unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = torch.argsort(scores.float(), descending=True, stable=True)
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool, device=dets.device)
    keep = []
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def install() -> bool:
    """Register CPU fallbacks if torchvision's ops are missing. Returns True if it did."""
    global _LIB
    if _LIB is not None or _op_exists("nms"):
        return False
    try:
        import torchvision  # noqa: F401  (a healthy install registers the ops itself)
        return False
    except Exception:
        pass
    import sys
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]  # drop the half-imported package so the retry starts clean
    lib = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl(name, _nms_impl, "CPU")
    _LIB = lib
    try:
        import torchvision.ops.boxes as boxes

        # boxes.py (nms, batched_nms) only needs the nms op defined above; let it
        # past its "compiled ops missing" guard. Other ops (roi_align...) stay absent.
        boxes._assert_has_ops = lambda: None
    except Exception:  # pragma: no cover - torchvision not installed at all
        pass
    return True
