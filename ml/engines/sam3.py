"""sam3: SAM 3 through transformers (``Sam3Model`` + ``Sam3Processor``): a text prompt in,
masks of every matching instance out, one model. The vision encoder runs once per image; all
prompts of a call go through the DETR encoder/decoder and mask head in one batched forward
(image features repeated per prompt), as the transformers docs do for several prompts."""
from __future__ import annotations

import os

import numpy as np

from ml import batching
from ml.engines.base import Engine, EngineInfo, mask_result, timed
from ml.errors import ModelLoadError
from ml.hub_guard import require_model_source
from ml.types import Box


class Sam3Engine(Engine):
    info = EngineInfo.named("sam3")  # catalog.json: weights, hub ids, gated, what it can do

    def __init__(self, cfg, device, model, processor):
        super().__init__(cfg, device)
        self.model = model
        self.processor = processor
        self.score_threshold = cfg.sam3.score_threshold
        self.nms_iou = cfg.sam3.nms_iou
        self._text_cache: tuple | None = None  # (prompts, text features): jobs reuse one prompt list

    @classmethod
    def load(cls, cfg, device, with_detector: bool = True) -> "Sam3Engine":
        from transformers import Sam3Model, Sam3Processor

        src = os.path.expanduser(cfg.sam3.model)
        require_model_source("sam3.model", cfg.sam3.model, src)
        try:
            processor = Sam3Processor.from_pretrained(src)
            model = Sam3Model.from_pretrained(src)
        except Exception as e:  # hub miss, gated without a token, offline, corrupt files
            raise ModelLoadError("sam3.model", cfg.sam3.model, f"cannot be loaded ({type(e).__name__}: {e}); "
                                 "facebook/sam3 is gated: accept its licence on the hub and log in, "
                                 "or point at a downloaded copy") from e
        return cls(cfg, device, model.to(device).eval(), processor)

    def configure(self, box_threshold=None, text_threshold=None, nms_iou=None) -> None:
        # The project's box threshold is GroundingDINO's scale; SAM 3 scores are calibrated
        # differently, so only the config's sam3.score_threshold applies. NMS IoU carries over.
        if nms_iou is not None:
            self.nms_iou = float(nms_iou)

    def check_prompts(self, prompts) -> None:
        """SAM 3 encodes each prompt alone in a CLIP text encoder of max_position_embeddings (32)."""
        from ml.inputs import PromptTooLongError

        text_config = getattr(getattr(self.model, "config", None), "text_config", None)
        limit = getattr(text_config, "max_position_embeddings", None)
        if not isinstance(limit, int):
            return
        for phrase in self.prompts(prompts):
            n_tokens = len(self.processor.tokenizer(phrase)["input_ids"])
            if n_tokens > limit:
                raise PromptTooLongError(n_tokens, limit, 1, what=f"the prompt {phrase[:40]!r}", model="SAM 3",
                                         setting="max_position_embeddings")

    def propose(self, images, prompts, timings=None):
        self.check_prompts(prompts)
        return self._propose(images, prompts, timings)

    def _text(self, phrases: list[str]):
        import torch

        if self._text_cache is None or self._text_cache[0] != phrases:
            tok = self.processor(text=phrases, return_tensors="pt")
            ids, mask = tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device)
            with torch.inference_mode():
                feats = self.model.get_text_features(input_ids=ids, attention_mask=mask)
            self._text_cache = (list(phrases), feats, mask)
        return self._text_cache[1], self._text_cache[2]

    def _propose(self, images, prompts, timings=None):
        import torch

        from ml.device import autocast

        t = {} if timings is None else timings
        phrases = self.prompts(prompts)
        out = []
        bs = batching.resolve(self.cfg.sam3.batch_size, "detector", self.device)
        with timed(t, "detect"), torch.inference_mode(), autocast(self.device, self.cfg.dtype):
            text, text_mask = self._text(phrases)
            for s in range(0, len(images), bs):
                out += self._forward(images[s:s + bs], phrases, text, text_mask)
        return out

    def _forward(self, images, phrases, text, text_mask):
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        n_img, n_p = len(images), len(phrases)
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        vis = self.model.get_vision_features(pixel_values=pixels)
        rep = lambda x: x.repeat_interleave(n_p, dim=0)  # image i -> rows i*P .. i*P+P-1
        vis_rep = Sam3VisionEncoderOutput(fpn_hidden_states=tuple(rep(x) for x in vis.fpn_hidden_states),
                                          fpn_position_encoding=tuple(rep(x) for x in vis.fpn_position_encoding))
        feats = BaseModelOutputWithPooling(pooler_output=text.pooler_output.repeat(n_img, 1, 1))  # all forward reads
        res = self.model(vision_embeds=vis_rep, text_embeds=feats, attention_mask=text_mask.repeat(n_img, 1))
        scores = res.pred_logits.float().sigmoid()
        if res.presence_logits is not None:
            scores = scores * res.presence_logits.float().sigmoid()
        scores = scores.view(n_img, n_p, -1).cpu().numpy()
        boxes = res.pred_boxes.float().view(n_img, n_p, -1, 4).cpu().numpy()  # relative xyxy
        logits = res.pred_masks.view(n_img, n_p, *res.pred_masks.shape[1:])
        return [self._image(im, phrases, scores[i], boxes[i], logits[i]) for i, im in enumerate(images)]

    def _image(self, image, phrases, scores, boxes, mask_logits):
        """Keep queries over the threshold, NMS across prompts, top-N, then upsample only
        the kept masks to the image (the cost at 12 MP)."""
        import torch

        from ml.detector import nms

        h, w = image.shape[:2]
        p_idx, q_idx = np.nonzero(scores > self.score_threshold)
        xyxy = np.clip(boxes[p_idx, q_idx] * [w, h, w, h], 0, [w, h, w, h])
        sc = scores[p_idx, q_idx]
        keep = nms(xyxy, sc, self.nms_iou)[: self.cfg.sam3.max_detections]
        if not keep:
            return []
        sel = mask_logits[torch.as_tensor(p_idx[keep]), torch.as_tensor(q_idx[keep])]
        up = torch.nn.functional.interpolate(sel[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
        masks = (up.sigmoid() > self.cfg.sam3.mask_threshold).cpu().numpy()
        out = []
        for k, i in enumerate(keep):
            phrase = phrases[p_idx[i]]
            box = Box([float(v) for v in xyxy[i]], float(sc[i]), phrase, phrase)
            out.append((box, mask_result(masks[k], float(sc[i]), box.xyxy)))
        return out
