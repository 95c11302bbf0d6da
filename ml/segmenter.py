"""SAM 2 segmenter (sam2 package): box prompts -> best mask + tight bbox."""
from __future__ import annotations

import os

import numpy as np
import torch

from ml import batching
from ml.config import SegmenterConfig
from ml.device import autocast
from ml.errors import ModelLoadError
from ml.masks import bbox_from_mask, mask_area
from ml.types import MaskResult

# build_sam2 adds these for packaged configs; we add them for yaml files too so a
# config file and a packaged name build the same model.
_POSTPROCESSING = [
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
]


def build_sam2_model(config: str, checkpoint: str | None, device: torch.device):
    """Build SAM 2 from a packaged hydra config name or from a yaml FILE path."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES, _load_checkpoint

    ckpt = checkpoint
    if ckpt and ckpt in HF_MODEL_ID_TO_FILENAMES:  # hub id -> cached download
        from huggingface_hub import hf_hub_download
        try:
            ckpt = hf_hub_download(repo_id=ckpt, filename=HF_MODEL_ID_TO_FILENAMES[ckpt][1])
        except Exception as e:
            raise ModelLoadError("segmenter.checkpoint", checkpoint, f"cannot be fetched ({type(e).__name__})") from e
    elif ckpt and not os.path.isfile(ckpt):
        raise ModelLoadError("segmenter.checkpoint", checkpoint, "not found")

    if config.endswith((".yaml", ".yml")) and os.path.isfile(config):
        cfg = OmegaConf.load(config)
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in _POSTPROCESSING]))
    else:
        from hydra import compose
        import sam2  # noqa: F401  (initialises hydra with sam2's packaged config module)
        try:
            cfg = compose(config_name=config, overrides=list(_POSTPROCESSING))
        except Exception as e:
            raise ModelLoadError("segmenter.config", config, f"is neither a yaml file nor a packaged sam2 config ({e})") from e
    OmegaConf.resolve(cfg)
    try:
        model = instantiate(cfg.model, _recursive_=True)
        _load_checkpoint(model, ckpt)
    except Exception as e:
        raise ModelLoadError("segmenter.checkpoint", checkpoint,
                             f"does not fit segmenter.config {config!r} ({type(e).__name__}: {e})") from e
    return model.to(device).eval()


class Segmenter:
    """Wraps SAM2ImagePredictor. After ``set_image`` the image embedding stays in
    ``predictor`` (see ``image_embedding``) so a click-to-refine can reuse it."""

    def __init__(self, model, cfg: SegmenterConfig, device: torch.device, dtype: str = "float32"):
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.cfg = cfg
        self.device = device
        self.dtype = dtype
        self.predictor = SAM2ImagePredictor(model, mask_threshold=cfg.mask_threshold)
        # The predictor hard-codes feature sizes for 1024 px; derive them from the model.
        s = model.image_size
        self.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]

    @classmethod
    def load(cls, cfg: SegmenterConfig, device: torch.device, dtype: str = "float32") -> "Segmenter":
        return cls(build_sam2_model(cfg.config, cfg.checkpoint, device), cfg, device, dtype)

    @property
    def image_embedding(self) -> torch.Tensor:
        return self.predictor.get_image_embedding()

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        with autocast(self.device, self.dtype):
            self.predictor.set_image(image)

    @torch.inference_mode()
    def segment(self, image: np.ndarray, boxes_xyxy, set_image: bool = True) -> list[MaskResult]:
        """All boxes of one image in ONE predict call."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        if set_image:
            self.set_image(image)
        if len(boxes) == 0:
            return []
        with autocast(self.device, self.dtype):
            masks, ious, _ = self.predictor.predict(box=boxes, multimask_output=self.cfg.multimask)
        return self._pick(masks, ious, boxes)

    @torch.inference_mode()
    def segment_batch(self, images: list[np.ndarray], boxes_per_image: list) -> list[list[MaskResult]]:
        """Image encoder batched over images, then one decoder call per image."""
        out: list[list[MaskResult]] = []
        bs = batching.resolve(self.cfg.batch_size, "segmenter", self.device)
        for s in range(0, len(images), bs):
            chunk = images[s:s + bs]
            with autocast(self.device, self.dtype):
                self.predictor.set_image_batch(list(chunk))
            for j in range(len(chunk)):
                boxes = np.asarray(boxes_per_image[s + j], dtype=np.float32).reshape(-1, 4)
                if len(boxes) == 0:
                    out.append([])
                    continue
                self.predictor._is_batch = False  # single-image predict on image j of the batch
                with autocast(self.device, self.dtype):
                    _, _, _, ubox = self.predictor._prep_prompts(None, None, boxes, None, True, img_idx=j)
                    masks, scores = self._predict_best(ubox, j)
                out.append(self._picked(masks, scores, boxes))
        return out

    def _predict_best(self, boxes: torch.Tensor, img_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """SAM2ImagePredictor._predict for box prompts, except that the best of the multimask
        outputs (by predicted IoU) is chosen on the low-res logits and only that one is upscaled
        to the image: a third of the upscaling (the cost that dominates at 12 MP) and bool masks
        straight away. Upscaling is per channel, so the chosen mask is the same as predict()'s."""
        p = self.predictor
        box_coords = boxes.reshape(-1, 2, 2)
        box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).repeat(boxes.size(0), 1)
        sparse, dense = p.model.sam_prompt_encoder(points=(box_coords, box_labels), boxes=None, masks=None)
        low_res, ious, _, _ = p.model.sam_mask_decoder(
            image_embeddings=p._features["image_embed"][img_idx].unsqueeze(0),
            image_pe=p.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=self.cfg.multimask, repeat_image=box_coords.shape[0] > 1,
            high_res_features=[f[img_idx].unsqueeze(0) for f in p._features["high_res_feats"]],
        )
        best = ious.float().argmax(dim=1)
        rows = torch.arange(len(best), device=best.device)
        chosen = low_res[rows, best].unsqueeze(1)  # [N, 1, h, w]
        masks = p._transforms.postprocess_masks(chosen, p._orig_hw[img_idx])[:, 0] > p.mask_threshold
        return masks.cpu().numpy(), ious[rows, best].float().cpu().numpy()

    def _picked(self, masks: np.ndarray, scores: np.ndarray, boxes: np.ndarray) -> list[MaskResult]:
        res = []
        for k in range(len(boxes)):
            m = masks[k]
            prompt = [float(v) for v in boxes[k]]
            res.append(MaskResult(mask=m, score=float(scores[k]), bbox_xyxy=bbox_from_mask(m) or prompt,
                                  area=mask_area(m), prompt_xyxy=prompt))
        return res

    def _pick(self, masks: np.ndarray, ious: np.ndarray, boxes: np.ndarray) -> list[MaskResult]:
        # predict() squeezes a single box: normalise to [N, C, H, W] / [N, C]
        if masks.ndim == 3:
            masks, ious = masks[None], ious[None]
        res = []
        for k in range(len(boxes)):
            best = int(np.argmax(ious[k]))  # best of the multimask outputs by predicted IoU
            m = masks[k, best] > 0.5 if masks.dtype != bool else masks[k, best]
            prompt = [float(v) for v in boxes[k]]
            res.append(MaskResult(mask=m, score=float(ious[k, best]), bbox_xyxy=bbox_from_mask(m) or prompt,
                                  area=mask_area(m), prompt_xyxy=prompt))
        return res

    def segment_rois(self, image: np.ndarray, boxes_xyxy, margin: float) -> list[MaskResult]:
        """Boxes-given mode with an ROI crop (seed 003): each box is segmented on its own crop,
        the box grown by ``margin`` × its width / height on every side and clipped to the image,
        so small objects get SAM's full resolution. One image-encoder pass per box."""
        h, w = image.shape[:2]
        res = []
        for box in np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4):
            cx1, cy1, cx2, cy2 = roi_crop(box, margin, w, h)
            crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2])
            r = self.segment(crop, box[None] - np.array([cx1, cy1, cx1, cy1], dtype=np.float32))[0]
            full = np.zeros((h, w), dtype=bool)
            full[cy1:cy2, cx1:cx2] = r.mask
            prompt = [float(v) for v in box]
            res.append(MaskResult(mask=full, score=r.score, bbox_xyxy=bbox_from_mask(full) or prompt,
                                  area=r.area, prompt_xyxy=prompt))
        return res

    @torch.inference_mode()
    def refine(self, point_coords=None, point_labels=None, box=None, mask_input=None) -> MaskResult:
        """Click-to-refine on the image last given to ``set_image`` (no re-embedding)."""
        with autocast(self.device, self.dtype):
            masks, ious, _ = self.predictor.predict(point_coords=point_coords, point_labels=point_labels,
                                                    box=box, mask_input=mask_input,
                                                    multimask_output=self.cfg.multimask)
        b = np.zeros((1, 4), np.float32) if box is None else np.asarray(box, np.float32).reshape(1, 4)
        return self._pick(masks, ious, b)[0]


def roi_crop(box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer xyxy of the ROI crop: ``box`` grown by ``margin`` of its size on each side,
    clipped to the image and never empty (a degenerate box still gives SAM a pixel)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    cx1 = min(max(0, int(np.floor(x1 - mx))), width - 1)
    cy1 = min(max(0, int(np.floor(y1 - my))), height - 1)
    cx2 = max(min(width, int(np.ceil(x2 + mx))), cx1 + 1)
    cy2 = max(min(height, int(np.ceil(y2 + my))), cy1 + 1)
    return cx1, cy1, cx2, cy2
