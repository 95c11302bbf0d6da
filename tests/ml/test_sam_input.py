"""SAM 2's input is resized as uint8 before the float conversion (ml/segmenter.ResizedToTensor):
the same picture as SAM's own float transform, without turning a 12 MP photo into floats."""
import cv2
import numpy as np
import torch

from ml import _torchvision_compat


def _sam_reference(image: np.ndarray, size: int) -> torch.Tensor:
    _torchvision_compat.install()
    from sam2.utils.transforms import SAM2Transforms

    return SAM2Transforms(resolution=size, mask_threshold=0.0)(image)


def test_sam_input_matches_sams_own_transform(pipeline):
    from ml.tiny import synthetic_image

    seg = pipeline.segmenter
    size = seg.predictor.model.image_size
    rng = np.random.default_rng(0)
    for w, h in ((4000, 3000), (320, 240), (size, size)):
        image = cv2.resize(synthetic_image(int(rng.integers(1000)), 240, 320, n_shapes=6), (w, h),
                           interpolation=cv2.INTER_NEAREST)
        ours, ref = seg.predictor._transforms(image), _sam_reference(image, size)
        assert ours.shape == ref.shape == (3, size, size)
        # Area vs antialiased bilinear on flat synthetic shapes: equal but for edge pixels.
        assert float((ours - ref).abs().mean()) < 0.05
        batch = seg.predictor._transforms.forward_batch([image, image])
        assert batch.shape == (2, 3, size, size) and torch.equal(batch[0], ours)


def test_segmenter_never_converts_the_full_photo(pipeline, monkeypatch):
    """The ToTensor SAM's transform calls gets the encoder-sized image, never the 12 MP one."""
    seg = pipeline.segmenter
    size = seg.predictor.model.image_size
    seen = []
    inner = seg.predictor._transforms.to_tensor.to_tensor
    monkeypatch.setattr(seg.predictor._transforms.to_tensor, "to_tensor", lambda im: seen.append(im.shape) or inner(im))
    image = np.zeros((3000, 4000, 3), np.uint8)
    image[1000:2000, 1000:3000] = 200
    masks = seg.segment(image, [[900, 900, 3100, 2100]])
    assert seen == [(size, size, 3)]
    assert masks[0].mask.shape == (3000, 4000)
