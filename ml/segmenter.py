"""SAM 2 segmenter (sam2 package): box prompts -> best mask + tight bbox."""
from __future__ import annotations

import os

import numpy as np
import torch

from ml import batching
from ml.config import SegmenterConfig
from ml.device import autocast
from ml.embedding_cache import EmbeddingCache
from ml.errors import ModelLoadError, missing_path
from ml.hub_guard import require_hub_files
from ml.masks import bbox_from_mask, mask_area
from ml.types import MaskResult

# A binary mask becomes SAM's low-res mask prompt as logits of this magnitude (SAM's own
# confident logits are of this order; a 0/1 input would read as "unsure everywhere").
MASK_PROMPT_LOGIT = 8.0

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
    from omegaconf import DictConfig, OmegaConf
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES, _load_checkpoint

    ckpt = checkpoint
    if ckpt and ckpt in HF_MODEL_ID_TO_FILENAMES:  # hub id -> cached download
        from huggingface_hub import hf_hub_download

        require_hub_files("segmenter.checkpoint", checkpoint, ckpt, ((HF_MODEL_ID_TO_FILENAMES[ckpt][1],),))
        try:
            ckpt = hf_hub_download(repo_id=ckpt, filename=HF_MODEL_ID_TO_FILENAMES[ckpt][1])
        except Exception as e:
            raise ModelLoadError("segmenter.checkpoint", checkpoint, f"cannot be fetched ({type(e).__name__})") from e
    elif ckpt and not os.path.isfile(ckpt):
        raise ModelLoadError("segmenter.checkpoint", checkpoint, missing_path(ckpt))

    if config.endswith((".yaml", ".yml")) and os.path.isfile(config):
        try:
            cfg = OmegaConf.load(config)
            if not isinstance(cfg, DictConfig) or "model" not in cfg:  # a list, or no `model:` (round 16b)
                raise ValueError("it has no `model:` section, as sam2's configs do")
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in _POSTPROCESSING]))
            OmegaConf.resolve(cfg)  # an unresolved ${...} was a traceback
        except Exception as e:  # a yaml ParserError traceback (black-box round 16)
            raise ModelLoadError("segmenter.config", config, f"cannot be parsed ({type(e).__name__}: {e})") from e
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


# The float32 upscaled masks one step of _upscaled may hold (bytes).
UPSCALE_BYTES = 64 * 1024 * 1024


class ResizedToTensor:
    """ToTensor for SAM 2's transform, applied to the image already resized to the encoder's
    square input (area interpolation when shrinking), so the float conversion touches 1024² pixels
    instead of the photo's. The transform's own Resize then has nothing left to do."""

    def __init__(self, size: int):
        from torchvision.transforms import ToTensor

        self.size = size
        self.to_tensor = ToTensor()

    def __call__(self, image):
        image = np.asarray(image)  # PIL images too: the predictor takes either
        if image.shape[:2] != (self.size, self.size):
            import cv2

            shrink = image.shape[0] > self.size or image.shape[1] > self.size
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return self.to_tensor(image)


def _normalize_only(transforms):
    from torchvision.transforms import Normalize

    return torch.jit.script(torch.nn.Sequential(Normalize(transforms.mean, transforms.std)))


class Segmenter:
    """Wraps SAM2ImagePredictor. After ``set_image`` the image embedding stays in
    ``predictor`` (see ``image_embedding``) so a click-to-refine can reuse it."""

    def __init__(self, model, cfg: SegmenterConfig, device: torch.device, dtype: str = "float32",
                 embeddings: EmbeddingCache | None = None):
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.cfg = cfg
        # Image embeddings kept for click-to-refine (refine_cached); bounds from the environment.
        self.embeddings = embeddings if embeddings is not None else EmbeddingCache()
        self.device = device
        self.dtype = dtype
        self.predictor = SAM2ImagePredictor(model, mask_threshold=cfg.mask_threshold)
        # The predictor hard-codes feature sizes for 1024 px; derive them from the model.
        s = model.image_size
        self.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        # SAM 2's transform turns the whole photo into floats before resizing it to the encoder's
        # size: ~36 M floats per 12 MP image on the CPU, while the GPU waits. Resize the uint8 first.
        # (Normalize alone after it: a Resize of an image already at 1024² still interpolates.)
        self.predictor._transforms.to_tensor = ResizedToTensor(s)
        self.predictor._transforms.transforms = _normalize_only(self.predictor._transforms)

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
        return self._upscaled(chosen, p._orig_hw[img_idx]), ious[rows, best].float().cpu().numpy()

    def _upscaled(self, logits: torch.Tensor, hw) -> np.ndarray:
        """Low-res mask logits [N, 1, h, w] -> bool masks [N, H, W] at the image's size, a few at a
        time: all N upscaled at once were N float32 images (a 100 MP photo with 20 boxes, 8 GB)."""
        p = self.predictor
        per = max(1, int(UPSCALE_BYTES // (4 * int(hw[0]) * int(hw[1]))))
        out = np.empty((logits.shape[0], int(hw[0]), int(hw[1])), dtype=bool)
        for start in range(0, logits.shape[0], per):
            part = p._transforms.postprocess_masks(logits[start:start + per], hw)[:, 0] > p.mask_threshold
            out[start:start + part.shape[0]] = part.cpu().numpy()
        return out

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
    def refine(self, point_coords=None, point_labels=None, box=None, mask_input=None,
               multimask: bool | None = None) -> MaskResult:
        """Click-to-refine on the image last given to ``set_image`` (no re-embedding)."""
        multimask = self.cfg.multimask if multimask is None else multimask
        with autocast(self.device, self.dtype):
            masks, ious, _ = self.predictor.predict(point_coords=point_coords, point_labels=point_labels,
                                                    box=box, mask_input=mask_input,
                                                    multimask_output=multimask)
        b = np.zeros((1, 4), np.float32) if box is None else np.asarray(box, np.float32).reshape(1, 4)
        return self._pick(masks, ious, b)[0]

    @torch.inference_mode()
    def refine_cached(self, key, load_image, points, labels, box=None, mask=None) -> tuple[MaskResult, bool]:
        """Points (label 1 = object, 0 = background), an optional xyxy box and an optional current
        mask (bool HxW, given to SAM as its low-res mask prompt) on the image under ``key``. The
        image is read (``load_image()``) and encoded only when its embedding is not cached.
        Returns the best mask and whether the embedding came from the cache."""
        entry = self.embeddings.get(key)
        cached = entry is not None
        if entry is None:
            self.set_image(load_image())
            self.embeddings.stats.encodes += 1
            entry = self.embeddings.put(key, self.predictor._features, self.predictor._orig_hw[0])
        else:
            self._use_embedding(entry.features, entry.orig_hw)
        coords = np.asarray(points, np.float32).reshape(-1, 2) if len(points) else None
        lab = np.asarray(labels, np.int32).reshape(-1) if len(points) else None
        mask_input = None if mask is None else self.mask_prompt(mask)
        # One click is ambiguous (part / whole): let SAM offer three and keep the best; more
        # prompts pin the object down and SAM's single output is the better one (its docs' advice).
        single = (coords is not None and len(coords) == 1) and box is None and mask_input is None
        with autocast(self.device, self.dtype):
            m, score = self._predict_prompts(coords, lab, box, mask_input, self.cfg.multimask and single)
        b = [0.0, 0.0, 0.0, 0.0] if box is None else [float(v) for v in np.asarray(box, np.float32).reshape(4)]
        return MaskResult(mask=m, score=score, bbox_xyxy=bbox_from_mask(m) or b, area=mask_area(m), prompt_xyxy=b), cached

    def _predict_prompts(self, coords, labels, box, mask_input, multimask: bool) -> tuple[np.ndarray, float]:
        """SAM2ImagePredictor.predict for one object on image 0, except that the best output (by
        predicted IoU) is chosen on the low-res logits and only it is upscaled: the upscale to the
        image is what a warm click costs at 12 MP. Per-channel upscaling keeps predict()'s mask."""
        p = self.predictor
        mask_t, pts, lab, ubox = p._prep_prompts(coords, labels, box, mask_input, True)
        points = None if pts is None else (pts, lab)
        if ubox is not None:  # the box's corners go first, as predict() merges them
            box_pts = ubox.reshape(-1, 2, 2)
            box_lab = torch.tensor([[2, 3]], dtype=torch.int, device=box_pts.device).repeat(box_pts.size(0), 1)
            points = (box_pts, box_lab) if points is None else (torch.cat([box_pts, pts], 1), torch.cat([box_lab, lab], 1))
        sparse, dense = p.model.sam_prompt_encoder(points=points, boxes=None, masks=mask_t)
        low_res, ious, _, _ = p.model.sam_mask_decoder(
            image_embeddings=p._features["image_embed"][0].unsqueeze(0),
            image_pe=p.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask, repeat_image=False,
            high_res_features=[f[0].unsqueeze(0) for f in p._features["high_res_feats"]],
        )
        best = int(ious[0].float().argmax())
        m = p._transforms.postprocess_masks(low_res[:, best:best + 1], p._orig_hw[0])[0, 0] > p.mask_threshold
        return m.cpu().numpy(), float(ious[0, best].float())

    def _use_embedding(self, features, orig_hw: tuple[int, int]) -> None:
        p = self.predictor
        p._features = features
        p._orig_hw = [tuple(orig_hw)]
        p._is_image_set = True
        p._is_batch = False

    def mask_prompt(self, mask: np.ndarray) -> np.ndarray:
        """A full-size bool mask -> SAM's [1, s, s] low-res mask logits (s = image_size / 4), in
        the square frame the image encoder sees (the image is resized to a square, not padded)."""
        import cv2

        s = self.predictor.model.image_size // 4
        frac = cv2.resize(np.asarray(mask, np.float32), (s, s), interpolation=cv2.INTER_AREA)
        return ((frac * 2.0 - 1.0) * MASK_PROMPT_LOGIT)[None].astype(np.float32)


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
