"""float8_e4m3fn and the 656-byte fp8_ds_mla record, in plain NumPy from the formats' definitions.

float8_e4m3fn: 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; the only
NaN codes are S.1111.111 (0x7F, 0xFF); the largest finite magnitude is 1.75 * 2^8 = 448;
subnormals are m * 2^-9 for m = 1..7. The codec is written with integer bit manipulation, not
with ml_dtypes, so that ml_dtypes can serve as an independent check of it (tests/test_fp8.py).

Encoding float32 -> e4m3fn matches ml_dtypes 0.6 (`x.astype(ml_dtypes.float8_e4m3fn)`) bit for
bit on every float32, which means:
- finite values are rounded to nearest, ties to even, with gradual underflow (subnormals);
- the conversion does NOT saturate: a magnitude that rounds past 448 (anything above 464, the
  midpoint between 448 and the would-be next value 480; 464 itself ties to even 448), as well as
  +-inf and every NaN, becomes the NaN code of the input's sign (0x7F, or 0xFF when the sign bit
  is set);
- signed zeros keep their sign (0x00, 0x80).
Callers that want saturation clamp first, as the cache kernel does (`encode_records`).

A record (one token of one layer's latent cache, FastDeploy's "fp8_ds_mla" layout):
bytes 0..511 the 512 latent values as e4m3fn codes of x / tile_scale, in 4 tiles of 128; bytes
512..527 the 4 float32 tile scales, little endian; bytes 528..655 the 64 bf16 rope values' raw
bits, little endian.
"""

from __future__ import annotations

import numpy as np

from dsabench.workload.dims import DEFAULT_DIMS, FP8_MAX, NOPE_TILE

LATENT = DEFAULT_DIMS.kv_lora_rank  # 512 latent values per record
TILES = DEFAULT_DIMS.num_tiles  # 4 scale tiles
ROPE = DEFAULT_DIMS.qk_rope_head_dim  # 64 rope values
RECORD_BYTES = DEFAULT_DIMS.record_bytes  # 656
SCALE_OFFSET = DEFAULT_DIMS.scale_offset  # 512
ROPE_OFFSET = DEFAULT_DIMS.rope_offset  # 528
FLT_MIN = np.float32(np.finfo(np.float32).tiny)  # smallest normal float32, the floor of a tile scale

_F32_MAG_MASK = np.uint32(0x7FFFFFFF)
_E4M3_MIN_NORMAL_BITS = 0x3C800000  # float32 bits of 2^-6, the smallest normal e4m3fn
_EXP_REBIAS = (127 - 7) << 3  # float32 exponent bias minus e4m3 bias, in code units (exponent << 3)
_NAN_MAG = 0x7F
_ENCODE_CHUNK = 8192  # tokens per encode_records step: bounds temporaries to a few tens of MB


def _require(arr: np.ndarray, name: str, dtype: np.dtype, ndim: int | None = None, last: int | None = None) -> None:
    if arr.dtype != dtype:
        raise ValueError(f"{name} has dtype {arr.dtype}; expected {np.dtype(dtype)}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} has shape {arr.shape}; expected {ndim} dimensions")
    if last is not None and arr.shape[-1] != last:
        raise ValueError(f"{name} has shape {arr.shape}; expected last dimension {last}")


def _round_shift_even(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """m >> s rounded to nearest, ties to even (uint32 m, shifts 1..31)."""
    q = m >> s
    rem = m & ((np.uint32(1) << s) - np.uint32(1))
    half = np.uint32(1) << (s - np.uint32(1))
    up = (rem > half) | ((rem == half) & ((q & np.uint32(1)) == 1))
    return q + up.astype(np.uint32)


def _subnormal_magnitudes(mag: np.ndarray) -> np.ndarray:
    """Codes of float32 magnitudes below 2^-6: round(|x| / 2^-9), which lands in 0..8.

    |x| = M * 2^(e - 150) with M the significand (implicit bit included for normal floats), so
    |x| / 2^-9 = M >> (141 - e); shifts past 31 give 0 as a shift of 31 does, since M < 2^24.
    Code 8 (a carry out of the subnormal range) is exactly the bit pattern of 2^-6.
    """
    e = mag >> np.uint32(23)
    m = (mag & np.uint32(0x7FFFFF)) | np.where(e > 0, np.uint32(0x800000), np.uint32(0))
    shift = np.minimum(np.uint32(141) - np.maximum(e, np.uint32(1)), np.uint32(31))
    return _round_shift_even(m, shift)


def encode_e4m3fn(x: np.ndarray) -> np.ndarray:
    """float32 -> e4m3fn codes (uint8, same shape), rounding as ml_dtypes does (module docstring).

    Normal range: drop the low 20 mantissa bits with round-half-even and rebias the exponent;
    a carry out of the mantissa correctly bumps the exponent. Everything whose code would pass
    0x7E (overflow, inf, NaN) is clamped to the NaN code 0x7F.
    """
    x = np.asarray(x)
    _require(x, "x", np.dtype(np.float32))
    bits = x.view(np.uint32)
    mag = bits & _F32_MAG_MASK
    code = mag >> np.uint32(20)
    code &= np.uint32(1)
    code += mag
    code += np.uint32(0x7FFFF)  # at most 0x8007FFFF: no uint32 overflow, even for NaN payloads
    code >>= np.uint32(20)
    signed = code.view(np.int32)
    signed -= _EXP_REBIAS
    np.minimum(signed, _NAN_MAG, out=signed)
    small = mag < np.uint32(_E4M3_MIN_NORMAL_BITS)
    if small.any():
        signed[small] = _subnormal_magnitudes(mag[small]).view(np.int32)
    out = signed.astype(np.uint8)
    out |= (bits >> np.uint32(24)).astype(np.uint8) & np.uint8(0x80)
    return out


def _decode_table() -> np.ndarray:
    """The float32 value of each of the 256 codes, from the format's definition."""
    c = np.arange(256, dtype=np.uint32)
    sign = (c >> 7) << 31
    e = (c >> 3) & 0xF
    m = c & 7
    normal = (sign | ((e + 120) << 23) | (m << 20)).view(np.float32)
    sub = m.astype(np.float32) * np.float32(2.0**-9)
    sub = np.where(sign != 0, -sub, sub)  # keeps -0.0 for code 0x80
    nan = (sign | np.uint32(0x7FC00000)).view(np.float32)
    table = np.where(e == 0, sub, normal)
    table = np.where((e == 15) & (m == 7), nan, table).astype(np.float32)
    table.setflags(write=False)
    return table


DECODE_TABLE = _decode_table()


def decode_e4m3fn(codes: np.ndarray) -> np.ndarray:
    """e4m3fn codes (uint8) -> float32 values, same shape; 0x7F and 0xFF decode to NaN."""
    codes = np.asarray(codes)
    _require(codes, "codes", np.dtype(np.uint8))
    return DECODE_TABLE[codes]


def tile_scales(latent_f32: np.ndarray) -> np.ndarray:
    """Per-tile float32 scales [N, 4]: max(amax(|tile|) / 448, FLT_MIN), all in float32.

    The FLT_MIN floor keeps an all-zero tile from dividing by zero (its codes become 0).
    amax is taken as max(max, -min) to avoid an |x| temporary as large as the input.
    """
    latent_f32 = np.asarray(latent_f32)
    _require(latent_f32, "latent_f32", np.dtype(np.float32), ndim=2, last=LATENT)
    tiles = latent_f32.reshape(latent_f32.shape[0], TILES, NOPE_TILE)
    amax = np.maximum(tiles.max(axis=2, initial=-np.inf), -tiles.min(axis=2, initial=np.inf))
    return np.maximum(amax / np.float32(FP8_MAX), FLT_MIN).astype(np.float32)


def _encode_chunk(latent: np.ndarray, rope_bits: np.ndarray, out: np.ndarray) -> None:
    n = latent.shape[0]
    scales = tile_scales(latent)
    if not np.isfinite(scales).all():
        raise ValueError("latent_f32 contains inf or NaN; expected finite values (a tile scale would not be finite)")
    scaled = latent.reshape(n, TILES, NOPE_TILE) / scales[:, :, None]
    np.clip(scaled, np.float32(-FP8_MAX), np.float32(FP8_MAX), out=scaled)
    out[:, :LATENT] = encode_e4m3fn(scaled).reshape(n, LATENT)
    out[:, SCALE_OFFSET:ROPE_OFFSET] = np.ascontiguousarray(scales, dtype="<f4").view(np.uint8)
    out[:, ROPE_OFFSET:] = np.ascontiguousarray(rope_bits, dtype="<u2").view(np.uint8)


def encode_records(latent_f32: np.ndarray, rope_bits: np.ndarray) -> np.ndarray:
    """fp8_ds_mla records [N, 656] uint8 of N tokens, quantized as the write-cache kernel does.

    latent_f32: [N, 512] float32 (the bf16 compressed_kv widened); rope_bits: [N, 64] uint16, the
    raw bf16 bits of k_pe. Each value is x / tile_scale in float32, clamped to +-448 (so the
    e4m3fn rounding never reaches its NaN code), then rounded to nearest even. Works in chunks
    of tokens so a million-token context stays within modest memory.
    """
    latent_f32 = np.asarray(latent_f32)
    rope_bits = np.asarray(rope_bits)
    _require(latent_f32, "latent_f32", np.dtype(np.float32), ndim=2, last=LATENT)
    _require(rope_bits, "rope_bits", np.dtype(np.uint16), ndim=2, last=ROPE)
    n = latent_f32.shape[0]
    if rope_bits.shape[0] != n:
        raise ValueError(f"rope_bits has {rope_bits.shape[0]} rows; expected {n}, one per latent_f32 row")
    out = np.empty((n, RECORD_BYTES), dtype=np.uint8)
    for lo in range(0, n, _ENCODE_CHUNK):
        hi = min(lo + _ENCODE_CHUNK, n)
        _encode_chunk(latent_f32[lo:hi], rope_bits[lo:hi], out[lo:hi])
    return out


def decode_records(records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latent float32 [N, 512], rope_bits uint16 [N, 64], scales float32 [N, 4]) of N records.

    latent is code value * tile scale in float32, the dequantization a reader of the cache does;
    rope_bits are returned raw so the caller chooses how to widen them (view as bf16).
    """
    records = np.asarray(records)
    _require(records, "records", np.dtype(np.uint8), ndim=2, last=RECORD_BYTES)
    n = records.shape[0]
    scales = np.ascontiguousarray(records[:, SCALE_OFFSET:ROPE_OFFSET]).view("<f4").astype(np.float32)
    values = DECODE_TABLE[records[:, :LATENT]].reshape(n, TILES, NOPE_TILE)
    latent = (values * scales[:, :, None]).reshape(n, LATENT)
    rope_bits = np.ascontiguousarray(records[:, ROPE_OFFSET:]).view("<u2").astype(np.uint16)
    return latent, rope_bits, scales
