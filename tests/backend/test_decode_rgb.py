"""jobs.engine.decode_rgb: the pixels every model stage reads. Plain JPEGs and PNGs are decoded
by OpenCV (half the time of Pillow's decode plus its two copies); the result must be exactly
what Pillow gives, for every kind of file an upload can store."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from backend.jobs.engine import decode_rgb


def _pillow(data: bytes) -> np.ndarray:
    """The reference: the decode read_rgb used before (Pillow only)."""
    with PILImage.open(io.BytesIO(data)) as img:
        if img.mode.startswith("I"):
            # 16-bit grey: scaled by the brightest value as make_thumbnail does, not clipped to white
            grey = img.convert("I")
            high = grey.getextrema()[1]
            grey = grey.point(lambda v: v * (255 / high)) if high > 255 else grey
            return np.asarray(grey.convert("L").convert("RGB"))
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = PILImage.new("RGBA", rgba.size, (124, 116, 104, 255))
            return np.asarray(PILImage.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB"))


def _scene(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w]
    smooth = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], axis=-1)
    return np.clip(smooth + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def _save(img: PILImage.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def _exif_turned() -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "turn 90°": decode_rgb, like Pillow, returns the stored pixels unturned
    return _save(PILImage.fromarray(_scene()), "JPEG", quality=90, exif=exif)


def _png16(channels: int) -> bytes:
    rng = np.random.default_rng(5)
    shape = (40, 50, channels) if channels > 1 else (40, 50)
    ok, encoded = cv2.imencode(".png", rng.integers(0, 65535, shape, dtype=np.uint16))
    assert ok
    return encoded.tobytes()


def _transparent_palette() -> bytes:
    img = PILImage.fromarray(_scene()).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=16)
    return _save(img, "PNG", transparency=0)


def _rgba() -> bytes:
    rgba = np.dstack([_scene(), np.tile(np.arange(160, dtype=np.uint8), (120, 1))])
    return _save(PILImage.fromarray(rgba, "RGBA"), "PNG")


FILES = {
    "jpeg 4:2:0": lambda: _save(PILImage.fromarray(_scene()), "JPEG", quality=90),
    "jpeg 4:4:4": lambda: _save(PILImage.fromarray(_scene()), "JPEG", quality=95, subsampling=0),
    "jpeg progressive": lambda: _save(PILImage.fromarray(_scene()), "JPEG", quality=85, progressive=True),
    "jpeg odd size": lambda: _save(PILImage.fromarray(_scene(121, 163)), "JPEG", quality=80),
    "jpeg grey": lambda: _save(PILImage.fromarray(_scene()).convert("L"), "JPEG", quality=90),
    "jpeg cmyk": lambda: _save(PILImage.fromarray(_scene()).convert("CMYK"), "JPEG", quality=90),
    "jpeg exif turned": _exif_turned,
    "png rgb": lambda: _save(PILImage.fromarray(_scene()), "PNG"),
    "png grey": lambda: _save(PILImage.fromarray(_scene()).convert("L"), "PNG"),
    "png rgba": _rgba,
    "png palette transparent": _transparent_palette,
    "png palette": lambda: _save(PILImage.fromarray(_scene()).convert("P"), "PNG"),
    "png 16-bit rgb": lambda: _png16(3),
    "png 16-bit grey": lambda: _png16(1),
    "webp": lambda: _save(PILImage.fromarray(_scene()), "WEBP", quality=80),
    "bmp": lambda: _save(PILImage.fromarray(_scene()), "BMP"),
    "tiff": lambda: _save(PILImage.fromarray(_scene()), "TIFF"),
}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_decoded_pixels_are_exactly_pillows(kind):
    data = FILES[kind]()
    got, want = decode_rgb(data), _pillow(data)
    assert got.dtype == np.uint8 and got.shape == want.shape and got.shape[2] == 3
    assert np.array_equal(got, want), f"{kind}: max difference {np.abs(got.astype(int) - want.astype(int)).max()}"


def test_a_plain_jpeg_goes_through_opencv(monkeypatch):
    """The fast path is taken for the photos jobs read (else the equality above proves nothing new)."""
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *args: calls.append(1) or real(*args))
    decode_rgb(FILES["jpeg 4:2:0"]())
    decode_rgb(FILES["png rgba"]())
    assert calls == [1]
