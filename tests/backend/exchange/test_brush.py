import numpy as np
import pytest

from backend.exchange.formats.labelstudio import brush_decode, brush_encode


def _reference_encode(mask):
    """label_studio_converter's encoder, bit for bit (runs of one value only, as masks have)."""
    arr = np.repeat(mask.ravel(), 4) * 255
    out = f"{len(arr):032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))
    change = np.flatnonzero(np.diff(arr.astype(int))) + 1
    bounds = np.concatenate(([0], change, [arr.size]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        n, v = int(b - a), int(arr[a])
        while n > 0:
            piece = min(n, 1 << 16)
            i = next(k for k, s in enumerate((3, 4, 8, 16)) if piece - 1 < (1 << s))
            out += "1" + f"{i:02b}" + f"{piece - 1:0{(3, 4, 8, 16)[i]}b}" + f"{v:08b}"
            n -= piece
    out += "0" * (-len(out) % 8)
    return [int(out[i:i + 8], 2) for i in range(0, len(out), 8)]


@pytest.mark.parametrize("shape", [(7, 9), (40, 60), (300, 260)])
def test_brush_rle_round_trip_and_matches_reference(shape):
    rng = np.random.default_rng(shape[0])
    mask = (rng.random(shape) < 0.3).astype(np.uint8)
    mask[: shape[0] // 2] = 0  # long runs too (> 2**16 bytes on the big one)
    rle = brush_encode(mask)
    assert rle == _reference_encode(mask)
    assert np.array_equal(brush_decode(rle, *shape), mask)


def test_brush_decode_reads_literal_blocks():
    # flag 0 = literal values: 4 values (count-1 = 3 in 3 bits) of 8 bits each.
    bits = f"{4:032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16)) + "0" + "00" + "011"
    bits += "".join(f"{v:08b}" for v in (0, 0, 0, 255))
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    assert brush_decode(rle, 1, 1).tolist() == [[1]]


def test_brush_decode_refuses_wrong_size():
    with pytest.raises(ValueError, match="holds 16 values"):
        brush_decode(brush_encode(np.ones((2, 2), np.uint8)), 3, 3)
