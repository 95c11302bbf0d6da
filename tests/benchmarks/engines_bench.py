"""Engine cost: seconds per image of each engine's propose() (masks + scores, before the
embedder), full-size architectures with random weights (nothing to download), on cuda or cpu.

    python tests/benchmarks/engines_bench.py --device cuda [--images 8] [--sizes 1024x768,4000x3000]
    python tests/benchmarks/engines_bench.py --device cpu --tiny   # smoke run with toy sizes

Random weights: scores are near the threshold, so the threshold is 0 and max_detections caps the
work at a realistic number of objects (--objects). The timings are real; the masks mean nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _sam3(device, objects: int, tiny: bool):
    import torch
    from transformers import Sam3Config as HFSam3Config
    from transformers import Sam3ImageProcessor, Sam3Model, Sam3Processor

    from ml.config import PipelineConfig, Sam3Config
    from ml.engines.sam3 import Sam3Engine
    from ml.tiny import _tiny_clip_tokenizer

    torch.manual_seed(0)
    if tiny:
        import tempfile
        from pathlib import Path

        from ml.tiny import build_tiny_sam3
        d = build_tiny_sam3(Path(tempfile.mkdtemp()))
        model, proc = Sam3Model.from_pretrained(d), Sam3Processor.from_pretrained(d)
    else:
        tok = _tiny_clip_tokenizer()  # the model's size does not depend on the vocabulary's
        hf = HFSam3Config()
        hf.text_config.vocab_size = max(hf.text_config.vocab_size, len(tok))
        model = Sam3Model(hf)
        proc = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=tok)
    cfg = PipelineConfig(engine="sam3", device=str(device),
                         sam3=Sam3Config(model="<random>", score_threshold=0.0, max_detections=objects, batch_size=1))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return Sam3Engine(cfg, device, model.to(device).eval(), proc), params


def _maskrcnn(device, objects: int, tiny: bool):
    import torch

    from ml.config import MaskRCNNConfig, PipelineConfig
    from ml.engines.maskrcnn import MaskRCNNEngine
    from ml.maskrcnn_model import build_model

    torch.manual_seed(0)
    spec = {"arch": "tiny" if tiny else "resnet50_fpn", "class_names": [f"c{i}" for i in range(10)]}
    model = build_model(spec)
    cfg = PipelineConfig(engine="maskrcnn", device=str(device),
                         maskrcnn=MaskRCNNConfig(model="<random>", score_threshold=0.0, max_detections=objects,
                                                 batch_size=1))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return MaskRCNNEngine(cfg, device, model.to(device).eval(), spec), params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--objects", type=int, default=20, help="max detections per image")
    ap.add_argument("--sizes", default="1024x768,4000x3000")
    ap.add_argument("--engines", default="sam3,maskrcnn")
    ap.add_argument("--tiny", action="store_true", help="toy models (a CPU smoke run)")
    args = ap.parse_args()

    import torch

    from ml import _torchvision_compat
    from ml.device import resolve_device
    from ml.tiny import synthetic_image

    _torchvision_compat.install()
    device = resolve_device(args.device)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    for name in args.engines.split(","):
        t0 = time.perf_counter()
        engine, params = {"sam3": _sam3, "maskrcnn": _maskrcnn}[name](device, args.objects, args.tiny)
        print(f"{name}: {params:.0f} M parameters, built in {time.perf_counter() - t0:.1f} s on {device}", flush=True)
        for w, h in sizes:
            import cv2
            images = [cv2.resize(synthetic_image(i, 240, 320, n_shapes=6), (w, h), interpolation=cv2.INTER_NEAREST)
                      for i in range(args.images)]
            engine.propose(images[:1], ["tool"])  # warm-up: kernels, lazy init, text features
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            found = sum(len(p) for p in engine.propose(images, ["tool", "hammer"]))
            if device.type == "cuda":
                torch.cuda.synchronize()
            secs = (time.perf_counter() - t) / len(images)
            mem = f" peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda" else ""
            print(f"  {w}x{h}: {secs * 1000:.0f} ms/image ({1 / secs:.2f} img/s), {found / len(images):.1f} masks/image{mem}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
