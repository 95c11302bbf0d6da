"""Label Studio's brush RLE, as label_studio_converter/brush.py does it: the RGBA image
(alpha = mask * 255) flattened, run-length coded into a bit stream: a 32-bit value count,
5 bits word size - 1, four 4-bit run-length widths - 1 (3, 4, 8, 16), then blocks of 1 flag bit
(1 = a run of one value, 0 = literal values), 2 bits choosing the width, the count - 1, and the
value(s).

Its own module so that rasterizing (base.py) can decode a brush region only once the image's
real size is known: the header's size comes from the file and cannot be trusted.
"""
from __future__ import annotations

import numpy as np

RLE_SIZES = (3, 4, 8, 16)
WORD = 8
_WEIGHTS = {n: 1 << np.arange(n - 1, -1, -1) for n in range(1, 33)}


def brush_encode(mask: np.ndarray) -> list[int]:
    flat = (mask.reshape(-1) > 0).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate(([0], edges))
    # Every pixel is 4 RGBA bytes of the same value, so pixel runs are 4x longer byte runs.
    lengths = np.diff(np.concatenate((starts, [flat.size]))) * 4
    bits = [f"{flat.size * 4:032b}", f"{WORD - 1:05b}", "".join(f"{s - 1:04b}" for s in RLE_SIZES)]
    limit = 1 << RLE_SIZES[-1]
    for start, length in zip(starts.tolist(), lengths.tolist()):
        value = f"{255 if flat[start] else 0:08b}"
        while length > 0:
            piece = min(length, limit)
            index = next(i for i, s in enumerate(RLE_SIZES) if piece - 1 < (1 << s))
            bits.append(f"1{index:02b}{piece - 1:0{RLE_SIZES[index]}b}{value}")
            length -= piece
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return np.packbits(np.frombuffer(stream.encode("ascii"), dtype=np.uint8) - ord("0")).tolist()


def brush_decode(rle: list[int], height: int, width: int) -> np.ndarray:
    """The (height, width) mask. `height` and `width` must be the image's real size: the header
    has to agree with them before anything is allocated, and only the alpha channel is kept
    (h*w bytes, not the 4*h*w RGBA values the stream codes). Every block reads bits, so a
    stream that lies about its runs ends in an error at its last bit, never loops past h*w."""
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > bits.size:
            raise ValueError("the brush RLE ends early")
        value = int(bits[pos:pos + n] @ _WEIGHTS[n])
        pos += n
        return value

    num = read(32)
    if num != height * width * 4:
        raise ValueError(f"the brush RLE holds {num} values, a {width}x{height} RGBA image needs {height * width * 4}")
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    alpha = np.zeros(height * width, dtype=np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(i + 1 + read(sizes[read(2)]), num)
        if repeat:
            # Values i..j-1; pixel p's alpha is value 4p + 3, so these cover pixels i//4..j//4-1.
            alpha[i // 4:j // 4] = read(word) > 0
        else:
            values = np.array([read(word) for _ in range(j - i)], dtype=np.int64)
            offsets = np.arange(i, j)
            is_alpha = offsets % 4 == 3
            alpha[offsets[is_alpha] // 4] = values[is_alpha] > 0
        i = j
    return alpha.reshape(height, width)
