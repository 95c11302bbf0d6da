"""Tiny random-weight models for EVERY stage, saved the way real ones are and
loaded back through the production loaders. Their predictions are meaningless;
they exist so tests and dev machines without weights exercise the real code."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ml.config import (ENGINE_NAMES, DetectorConfig, EmbedderConfig, MaskRCNNConfig, MatcherConfig, PipelineConfig,
                       Sam3Config, SegmenterConfig)

TINY_WARNING = "tiny random-weight models: their predictions are MEANINGLESS (for tests and plumbing only)"
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "a", "an", "the", "object", "tool",
              "tools", "hammer", "wrench", "screwdriver", "pliers", "thing", "item", "shape", "circle",
              "square", "red", "blue", "green"]
SAM_IMAGE_SIZE = 128


def build_tiny_gdino(out: Path, seed: int = 0) -> Path:
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    torch.manual_seed(seed)
    backbone = SwinConfig(image_size=128, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          window_size=4, out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)
    cfg = GroundingDinoConfig(backbone_config=backbone, text_config=text, num_queries=20, encoder_layers=1,
                              decoder_layers=2,  # transformers needs >= 2
                              d_model=32, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2,
                              decoder_attention_heads=2, max_text_len=32, encoder_n_points=2, decoder_n_points=2)
    model = GroundingDinoForObjectDetection(cfg).eval()
    # vocab= (a dict), not vocab_file=: transformers 5 ignores vocab_file here
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(TINY_VOCAB)}, do_lower_case=True)
    proc = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(
        size={"shortest_edge": 128, "longest_edge": 128}), tokenizer=tok)
    d = out / "grounding_dino"
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d


SAM3_IMAGE_SIZE = 112  # 8x8 ViT patches of 14 px


def _tiny_clip_tokenizer():
    """A CLIP BPE tokenizer with single letters only: every word spells out letter by letter."""
    import string

    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for tok in [*string.ascii_lowercase, *".,-", *(c + "</w>" for c in string.ascii_lowercase + ".,-")]:
        vocab[tok] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def build_tiny_sam3(out: Path, seed: int = 0) -> Path:
    """Sam3Model from a toy Sam3Config, saved with save_pretrained (loaded by from_pretrained)."""
    from transformers import Sam3Config as HFSam3Config
    from transformers import Sam3ImageProcessor, Sam3Model, Sam3Processor

    torch.manual_seed(seed)
    tok = _tiny_clip_tokenizer()
    s, patches = SAM3_IMAGE_SIZE, SAM3_IMAGE_SIZE // 14
    small = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
    cfg = HFSam3Config(
        vision_config={"backbone_config": {"model_type": "sam3_vit_model", **small, "num_hidden_layers": 2,
                                           "image_size": s, "patch_size": 14, "window_size": patches // 2,
                                           "global_attn_indexes": [1], "pretrain_image_size": s},
                       "fpn_hidden_size": 32,
                       "backbone_feature_sizes": [[patches * 4] * 2, [patches * 2] * 2, [patches] * 2]},
        text_config={"model_type": "clip_text_model", **small, "vocab_size": len(tok), "projection_dim": 32,
                     "num_hidden_layers": 1, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        geometry_encoder_config={**small, "num_layers": 1},
        detr_encoder_config={**small, "num_layers": 1},
        detr_decoder_config={**small, "num_layers": 1, "num_queries": 10},
        mask_decoder_config={"hidden_size": 32, "num_attention_heads": 2},
    )
    model = Sam3Model(cfg).eval()
    proc = Sam3Processor(image_processor=Sam3ImageProcessor(size={"height": s, "width": s}), tokenizer=tok)
    d = out / "sam3"
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d


TINY_MASKRCNN_CLASSES = ["hammer", "wrench", "pliers"]


def build_tiny_maskrcnn(out: Path, seed: int = 0) -> Path:
    """Mask R-CNN arch "tiny" written through ml.maskrcnn_model.save_checkpoint (training's format)."""
    from ml.maskrcnn_model import build_model, save_checkpoint

    torch.manual_seed(seed)
    spec = {"arch": "tiny", "class_names": list(TINY_MASKRCNN_CLASSES), "min_size": 96, "max_size": 128,
            "weights": None}
    return save_checkpoint(build_model(spec), spec, out / "maskrcnn")


def tiny_sam2_yaml(image_size: int = SAM_IMAGE_SIZE) -> str:
    """SAM 2.1 hiera config shrunk to toy sizes (same classes as the packaged ones)."""
    return f"""# @package _global_
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk:
      _target_: sam2.modeling.backbones.hieradet.Hiera
      embed_dim: 8
      num_heads: 1
      stages: [1, 2, 2, 1]
      global_att_blocks: [2, 4]  # never the first block of a stage
      window_pos_embed_bkg_spatial_size: [4, 4]
      window_spec: [4, 4, 4, 4]
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: 32
        normalize: true
        scale: null
        temperature: 10000
      d_model: 32
      backbone_channel_list: [64, 32, 16, 8]
      fpn_top_down_levels: [2, 3]
      fpn_interp_model: nearest
  memory_attention:
    _target_: sam2.modeling.memory_attention.MemoryAttention
    d_model: 32
    pos_enc_at_input: true
    layer:
      _target_: sam2.modeling.memory_attention.MemoryAttentionLayer
      activation: relu
      dim_feedforward: 64
      dropout: 0.0
      pos_enc_at_attn: false
      self_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [{image_size // 16}, {image_size // 16}]
        embedding_dim: 32
        num_heads: 1
        downsample_rate: 1
        dropout: 0.0
      d_model: 32
      pos_enc_at_cross_attn_keys: true
      pos_enc_at_cross_attn_queries: false
      cross_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [{image_size // 16}, {image_size // 16}]
        rope_k_repeat: True
        embedding_dim: 32
        num_heads: 1
        downsample_rate: 1
        dropout: 0.0
        kv_in_dim: 16
    num_layers: 1
  memory_encoder:
    _target_: sam2.modeling.memory_encoder.MemoryEncoder
    out_dim: 16
    in_dim: 32
    position_encoding:
      _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
      num_pos_feats: 16
      normalize: true
      scale: null
      temperature: 10000
    mask_downsampler:
      _target_: sam2.modeling.memory_encoder.MaskDownSampler
      embed_dim: 32
      kernel_size: 3
      stride: 2
      padding: 1
    fuser:
      _target_: sam2.modeling.memory_encoder.Fuser
      layer:
        _target_: sam2.modeling.memory_encoder.CXBlock
        dim: 32
        kernel_size: 7
        padding: 3
        layer_scale_init_value: 1e-6
        use_dwconv: True
      num_layers: 1
  num_maskmem: 2
  image_size: {image_size}
  sigmoid_scale_for_mem_enc: 20.0
  sigmoid_bias_for_mem_enc: -10.0
  use_mask_input_as_output_without_sam: true
  directly_add_no_mem_embed: true
  no_obj_embed_spatial: true
  use_high_res_features_in_sam: true
  multimask_output_in_sam: true
  iou_prediction_use_sigmoid: True
  use_obj_ptrs_in_encoder: true
  add_tpos_enc_to_obj_ptrs: true
  proj_tpos_enc_in_obj_ptrs: true
  use_signed_tpos_enc_to_obj_ptrs: true
  only_obj_ptrs_in_the_past_for_eval: true
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  multimask_output_for_tracking: true
  use_multimask_token_for_obj_ptr: true
  multimask_min_pt_num: 0
  multimask_max_pt_num: 1
  use_mlp_for_obj_ptr_proj: true
  compile_image_encoder: False
"""


def build_tiny_sam2(out: Path, seed: int = 0) -> tuple[Path, Path]:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    d = out / "sam2"
    d.mkdir(parents=True, exist_ok=True)
    yaml_path = d / "sam2_tiny.yaml"
    yaml_path.write_text(tiny_sam2_yaml(), encoding="utf-8")
    torch.manual_seed(seed)
    model = instantiate(OmegaConf.load(yaml_path).model, _recursive_=True)
    ckpt = d / "sam2_tiny.pt"
    torch.save({"model": model.state_dict()}, ckpt)  # the layout sam2's _load_checkpoint reads
    return yaml_path, ckpt


TINY_TIMM_ID = "vit_small_patch16_dinov3"
# init_values=1.0: with the default 1e-5 layer scale a random ViT maps every crop to
# the same vector; avg pooling spreads random features further than the CLS token.
TINY_TIMM_KWARGS = {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 64, "init_values": 1.0}
TINY_POOL = "avg"


def build_tiny_dinov3(out: Path, seed: int = 0) -> Path:
    import timm

    torch.manual_seed(seed)
    m = timm.create_model(TINY_TIMM_ID, pretrained=False, num_classes=0, global_pool=TINY_POOL, **TINY_TIMM_KWARGS)
    p = out / "dinov3_tiny.pth"
    torch.save(m.state_dict(), p)
    return p


def build_tiny_projection_head(out: Path, seed: int = 0, dims=(32, 48, 24)) -> Path:
    """Checkpoint with backbone id + kwargs + head dims, as a training script would save."""
    import timm

    from ml.embedders.projection_head import make_head

    torch.manual_seed(seed + 1)
    bb = timm.create_model(TINY_TIMM_ID, pretrained=False, num_classes=0, global_pool=TINY_POOL, **TINY_TIMM_KWARGS)
    head = make_head(list(dims))
    p = out / "projection_head.pt"
    torch.save({"backbone": TINY_TIMM_ID, "backbone_kwargs": TINY_TIMM_KWARGS, "global_pool": TINY_POOL,
                "input_size": 64, "head_dims": list(dims), "head_state_dict": head.state_dict(),
                "backbone_state_dict": bb.state_dict()}, p)
    return p


class _TinyClassifier(torch.nn.Module):
    """Seed-001 interface: uint8 NHWC [bs,112,112,3] -> p [bs,C], feature [bs,512]."""

    def __init__(self, n_classes: int = 11, dim: int = 512):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=16, stride=16)  # 112 -> 7x7
        self.feat = torch.nn.Linear(8 * 7 * 7, dim)
        self.cls = torch.nn.Linear(dim, n_classes)

    def forward(self, x):
        x = x.permute(0, 3, 1, 2).float() / 255.0
        x = torch.relu(self.conv(x)).flatten(1)
        f = self.feat(x)
        return torch.softmax(self.cls(f), dim=1), f


SEED001_CLASSES = ["screw_flat", "screw_plus", "offset_screw_plus", "kolovorot", "safety_pliers", "pliers",
                   "shernitsa", "adjustable_wrench", "can_opener", "open_end_wrench_3_4", "side_cutters"]


def build_tiny_onnx(out: Path, seed: int = 0, size: int = 112) -> Path:
    torch.manual_seed(seed)
    m = _TinyClassifier(len(SEED001_CLASSES)).eval()
    p = out / "clf_tiny.onnx"
    x = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    # dynamo=False: the dynamo exporter needs onnxscript, which is not installed
    torch.onnx.export(m, (x,), str(p), input_names=["input"], output_names=["p", "feature"],
                      dynamic_axes={"input": {0: "bs"}, "p": {0: "bs"}, "feature": {0: "bs"}}, dynamo=False)
    return p


def tiny_config(out: Path, embedder: str = "timm", engine: str = "gdino-sam2") -> PipelineConfig:
    """Config with relative paths (resolved against the config file's folder). Every config
    carries every engine's section, so one worker config serves projects of any engine."""
    det = DetectorConfig(model="grounding_dino", prompts=["tool"], box_threshold=0.05, text_threshold=0.0,
                         nms_iou=0.5, max_detections=4, batch_size=4)
    seg = SegmenterConfig(config="sam2/sam2_tiny.yaml", checkpoint="sam2/sam2_tiny.pt")
    emb = {
        "timm": EmbedderConfig(kind="timm", model=TINY_TIMM_ID, checkpoint="dinov3_tiny.pth",
                               model_kwargs=dict(TINY_TIMM_KWARGS), global_pool=TINY_POOL,
                               input_size=64),
        "projection_head": EmbedderConfig(kind="projection_head", model="projection_head.pt", input_size=64),
        "onnx": EmbedderConfig(kind="onnx", model="clf_tiny.onnx", input_size=112, layout="NHWC",
                               input_dtype="uint8", feature_output="feature", probs_output="p",
                               class_names=list(SEED001_CLASSES)),
    }[embedder]
    # thresholds near 0: random weights score low, and the tests want a few detections per image
    sam3 = Sam3Config(model="sam3", score_threshold=0.05, mask_threshold=0.5, nms_iou=0.5, max_detections=4,
                      batch_size=2)
    mrcnn = MaskRCNNConfig(model="maskrcnn", score_threshold=0.0, mask_threshold=0.5, max_detections=4, batch_size=2)
    return PipelineConfig(device="cpu", dtype="float32", engine=engine, detector=det, segmenter=seg, embedder=emb,
                          matcher=MatcherConfig(unknown_threshold=0.0, margin=0.0, top_k=3, unique_per_image=False),
                          sam3=sam3, maskrcnn=mrcnn)


def build_tiny_models(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write tiny models for every stage and engine plus ``config.json`` (gdino-sam2, timm
    embedder), ``config_head.json`` / ``config_onnx.json`` (other embedders) and one
    ``config_<engine>.json`` per engine. Returns the ``config.json`` path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tiny_gdino(out, seed)
    build_tiny_sam2(out, seed)
    build_tiny_dinov3(out, seed)
    build_tiny_projection_head(out, seed)
    build_tiny_onnx(out, seed)
    build_tiny_sam3(out, seed)
    build_tiny_maskrcnn(out, seed)
    for name, kind in (("config.json", "timm"), ("config_head.json", "projection_head"),
                       ("config_onnx.json", "onnx")):
        tiny_config(out, kind).to_file(out / name)
    for engine in ENGINE_NAMES:
        tiny_config(out, "timm", engine).to_file(out / f"config_{engine}.json")
    (out / "README.txt").write_text(TINY_WARNING + "\n", encoding="utf-8")
    return out / "config.json"


def synthetic_image(seed: int, h: int = 96, w: int = 128, n_shapes: int = 3) -> np.ndarray:
    """Plain background with a few filled shapes (tests, bench)."""
    import cv2

    rng = np.random.RandomState(seed)
    img = np.full((h, w, 3), rng.randint(180, 240), dtype=np.uint8)
    for _ in range(n_shapes):
        color = tuple(int(c) for c in rng.randint(0, 160, 3))
        x, y = int(rng.randint(8, w - 24)), int(rng.randint(8, h - 24))
        if rng.rand() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.randint(10, 22)), y + int(rng.randint(10, 22))), color, -1)
        else:
            cv2.circle(img, (x + 8, y + 8), int(rng.randint(5, 10)), color, -1)
    return img
