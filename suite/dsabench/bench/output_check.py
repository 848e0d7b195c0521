"""Non-finite elements of a forward's bf16 output, found in the bytes already read for its digest.

A NaN or inf anywhere in the output makes the case `nonfinite`, whatever the other variants
give: bit-identical NaNs are still wrong. Reading the bits costs no device work and no second
copy of the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_EXP = np.uint16(0x7F80)  # bf16 exponent bits: all ones means inf (mantissa 0) or NaN
_MANTISSA = np.uint16(0x007F)


def nonfinite_report(data: bytes, shape: Sequence[int]) -> dict | None:
    """None when every bf16 element of `data` (row-major `shape`) is finite; else what a record keeps:
    count, nan, inf, total, first_flat (flat index of the first one), first_index (as a tuple) and
    a one-line message."""
    bits = np.frombuffer(data, dtype="<u2")
    total = int(np.prod(shape)) if len(shape) else 1
    if bits.size != total:
        raise ValueError(f"output has {bits.size} bf16 elements; expected {total} for shape {list(shape)}")
    bad = (bits & _EXP) == _EXP
    count = int(np.count_nonzero(bad))
    if count == 0:
        return None
    nan = int(np.count_nonzero(bad & ((bits & _MANTISSA) != 0)))
    first = int(np.argmax(bad))
    index = tuple(int(i) for i in np.unravel_index(first, tuple(shape))) if len(shape) else ()
    message = (f"{count} of {total} output elements are not finite ({nan} NaN, {count - nan} inf); "
               f"first at flat index {first}, index {index} of shape {tuple(int(s) for s in shape)}")
    return {"count": count, "nan": nan, "inf": count - nan, "total": total, "first_flat": first,
            "first_index": list(index), "message": message}
