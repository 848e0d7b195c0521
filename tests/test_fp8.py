"""The float8_e4m3fn codec and the fp8_ds_mla record, checked against ml_dtypes as the independent reference."""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dsabench.workload import fp8

E4M3 = ml_dtypes.float8_e4m3fn
ALL_CODES = np.arange(256, dtype=np.uint8)


def reference_codes(x: np.ndarray) -> np.ndarray:
    """ml_dtypes' encoding; NaN and inf inputs make NumPy warn about the cast, which is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(x, np.float32).astype(E4M3).view(np.uint8)


def assert_encodes_like_ml_dtypes(x: np.ndarray) -> None:
    x = np.asarray(x, dtype=np.float32)
    got, want = fp8.encode_e4m3fn(x), reference_codes(x)
    bad = np.nonzero(got != want)[0]
    assert len(bad) == 0, [(float(x[i]), hex(int(x.view(np.uint32)[i])), hex(got[i]), hex(want[i])) for i in bad[:8]]


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def neighbours(x: np.ndarray) -> np.ndarray:
    """x and the float32 on each side of it."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):  # the float32 maximum's upper neighbour is inf, which is wanted
        return np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])


def finite_values() -> np.ndarray:
    """Every finite e4m3fn value, ascending, as float32 (one zero)."""
    v = ALL_CODES.view(E4M3).astype(np.float32)
    return np.unique(v[np.isfinite(v)])


# --- decoding ---


def test_every_code_decodes_to_the_value_ml_dtypes_gives() -> None:
    want = ALL_CODES.view(E4M3).astype(np.float32)
    got = fp8.decode_e4m3fn(ALL_CODES)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(got[finite].view(np.uint32), want[finite].view(np.uint32))  # -0.0 included


def test_only_0x7f_and_0xff_decode_to_nan() -> None:
    assert np.nonzero(np.isnan(fp8.decode_e4m3fn(ALL_CODES)))[0].tolist() == [0x7F, 0xFF]


# --- encoding ---


def test_every_representable_value_encodes_to_its_own_code() -> None:
    codes = ALL_CODES[(ALL_CODES & 0x7F) != 0x7F]
    np.testing.assert_array_equal(fp8.encode_e4m3fn(fp8.decode_e4m3fn(codes)), codes)


def test_midpoints_of_adjacent_values_and_their_neighbours_encode_like_ml_dtypes() -> None:
    v = finite_values().astype(np.float64)
    mid = ((v[:-1] + v[1:]) / 2).astype(np.float32)  # exact: a midpoint needs 5 significant bits
    assert_encodes_like_ml_dtypes(neighbours(np.concatenate([mid, v.astype(np.float32)])))


def test_saturation_edge_encodes_like_ml_dtypes() -> None:
    edge = f32(416, 432, 440, 448, 456, 464, 472, 480, 496, 512, 1e4, 3.4e38, np.finfo(np.float32).max)
    assert_encodes_like_ml_dtypes(neighbours(np.concatenate([edge, -edge])))


def test_overflow_inf_and_nan_become_the_nan_code_of_their_sign_without_saturating() -> None:
    """ml_dtypes does not saturate: past 464 (the tie that rounds to even 448) is NaN."""
    above = np.nextafter(np.float32(464), np.float32(np.inf))
    x = f32(464, above, 1e30, np.inf, np.nan, -464, -above, -1e30, -np.inf, -np.nan)
    assert fp8.encode_e4m3fn(x).tolist() == [0x7E, 0x7F, 0x7F, 0x7F, 0x7F, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF]
    assert_encodes_like_ml_dtypes(x)


def test_nan_payloads_and_signs_encode_like_ml_dtypes() -> None:
    bits = np.array([0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0xFF800001, 0xFFC00000, 0xFFFFFFFF], dtype=np.uint32)
    assert_encodes_like_ml_dtypes(bits.view(np.float32))


def test_subnormal_edges_encode_like_ml_dtypes() -> None:
    tiny = np.finfo(np.float32)
    edge = f32(
        2.0**-6, 2.0**-7, 7 * 2.0**-9, 15 * 2.0**-10, 2.0**-9, 3 * 2.0**-10, 2.0**-10, 3 * 2.0**-11, 2.0**-11,
        2.0**-12, 2.0**-30, float(tiny.tiny), float(tiny.smallest_subnormal), 0.0,
    )  # fmt: skip
    assert_encodes_like_ml_dtypes(neighbours(np.concatenate([edge, -edge])))


def test_ties_round_to_even() -> None:
    """Halfway cases go to the even code, in the subnormal and the normal range."""
    x = f32(2.0**-10, 3 * 2.0**-10, 1.0625, 1.1875, 0.0, -0.0)
    assert fp8.encode_e4m3fn(x).tolist() == [0x00, 0x02, 0x38, 0x3A, 0x00, 0x80]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(-448, 448, width=32)))
def test_encoding_agrees_with_ml_dtypes_on_random_values_in_range(x: np.ndarray) -> None:
    assert_encodes_like_ml_dtypes(x)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.uint32, st.integers(1, 64)))
def test_encoding_agrees_with_ml_dtypes_on_random_float32_bit_patterns(bits: np.ndarray) -> None:
    assert_encodes_like_ml_dtypes(bits.view(np.float32))


def test_encoding_keeps_the_shape_of_its_input() -> None:
    assert fp8.encode_e4m3fn(np.ones((2, 3, 4), np.float32)).shape == (2, 3, 4)


def test_encoding_refuses_a_float64_input_which_would_round_twice() -> None:
    with pytest.raises(ValueError, match="x has dtype float64"):
        fp8.encode_e4m3fn(np.ones(3))


def test_decoding_refuses_codes_that_are_not_uint8() -> None:
    with pytest.raises(ValueError, match="codes has dtype int32"):
        fp8.decode_e4m3fn(np.zeros(3, np.int32))


# --- records ---


def bf16_normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(ml_dtypes.bfloat16)


def sample_latent(rng: np.random.Generator, n: int) -> np.ndarray:
    """bf16-valued latents whose tiles span very different magnitudes, zeros included."""
    x = bf16_normal(rng, (n, fp8.LATENT)).astype(np.float32).reshape(n, fp8.TILES, -1)
    x *= np.float32(10.0) ** rng.integers(-40, 38, (n, fp8.TILES, 1)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = 0.0
    return x.reshape(n, fp8.LATENT)


def sample_rope(rng: np.random.Generator, n: int) -> np.ndarray:
    return bf16_normal(rng, (n, fp8.ROPE)).view(np.uint16)


def test_record_has_the_fp8_ds_mla_byte_layout() -> None:
    latent = np.zeros((1, fp8.LATENT), np.float32)
    latent[0, :128] = 448.0  # tile 0: scale exactly 1.0
    latent[0, 128] = -2.0  # tile 1: scale 2/448, the value becomes -448
    rope = np.full((1, fp8.ROPE), 0x1234, np.uint16)
    rec = fp8.encode_records(latent, rope)[0]
    assert rec.shape == (656,)
    assert set(rec[:128].tolist()) == {0x7E}
    assert rec[128] == 0xFE
    assert rec[512:516].tolist() == [0x00, 0x00, 0x80, 0x3F]  # 1.0f little endian
    assert rec[516:520].view("<f4")[0] == np.float32(2.0) / np.float32(448.0)
    assert rec[520:528].view("<f4").tolist() == [float(fp8.FLT_MIN)] * 2  # zero tiles
    assert rec[528:530].tolist() == [0x34, 0x12]


def test_latent_codes_are_ml_dtypes_codes_of_the_clamped_float32_quotient() -> None:
    rng = np.random.default_rng(0)
    latent = sample_latent(rng, 64)
    scales = fp8.tile_scales(latent)
    quotient = np.clip(latent.reshape(64, fp8.TILES, -1) / scales[:, :, None], np.float32(-448), np.float32(448))
    want = reference_codes(quotient.ravel()).reshape(64, fp8.LATENT)
    np.testing.assert_array_equal(fp8.encode_records(latent, sample_rope(rng, 64))[:, :512], want)


def test_tile_scale_is_amax_over_448_in_float32_floored_at_flt_min() -> None:
    latent = np.zeros((1, fp8.LATENT), np.float32)
    latent[0, 5] = -3.0
    latent[0, 130] = 1e-40  # subnormal: amax / 448 falls below FLT_MIN
    latent[0, 300] = 7.0
    want = [np.float32(3.0) / np.float32(448.0), fp8.FLT_MIN, np.float32(7.0) / np.float32(448.0), fp8.FLT_MIN]
    np.testing.assert_array_equal(fp8.tile_scales(latent)[0], np.array(want, np.float32))


def test_a_zero_tile_gets_scale_flt_min_and_zero_codes() -> None:
    rng = np.random.default_rng(1)
    latent = sample_latent(rng, 4)
    latent[:, 256:384] = 0.0
    rec = fp8.encode_records(latent, sample_rope(rng, 4))
    assert not rec[:, 256:384].any()
    np.testing.assert_array_equal(fp8.decode_records(rec)[2][:, 2], np.full(4, fp8.FLT_MIN))


def test_round_trip_returns_rope_bits_and_scales_exactly() -> None:
    rng = np.random.default_rng(2)
    latent, rope = sample_latent(rng, 200), sample_rope(rng, 200)
    _, rope_back, scales = fp8.decode_records(fp8.encode_records(latent, rope))
    np.testing.assert_array_equal(rope_back, rope)
    np.testing.assert_array_equal(scales, fp8.tile_scales(latent))


def test_round_trip_latent_is_within_half_an_fp8_ulp_times_the_tile_scale() -> None:
    """|x - code value * scale| <= scale * max(2^-4 |code value|, 2^-10), up to float32 rounding."""
    rng = np.random.default_rng(3)
    latent = sample_latent(rng, 200)
    rec = fp8.encode_records(latent, sample_rope(rng, 200))
    back, _, scales = fp8.decode_records(rec)
    s = np.repeat(scales.astype(np.float64), 128, axis=1)
    value = fp8.decode_e4m3fn(rec[:, :512]).astype(np.float64)
    bound = s * np.maximum(2.0**-4 * np.abs(value), 2.0**-10) * (1 + 2.0**-20)
    assert np.all(np.abs(latent.astype(np.float64) - back.astype(np.float64)) <= bound)


def test_re_encoding_a_decoded_record_gives_the_same_bytes() -> None:
    rng = np.random.default_rng(4)
    rec = fp8.encode_records(sample_latent(rng, 200), sample_rope(rng, 200))
    latent, rope, _ = fp8.decode_records(rec)
    np.testing.assert_array_equal(fp8.encode_records(latent, rope), rec)


def test_records_of_no_tokens_are_an_empty_table() -> None:
    rec = fp8.encode_records(np.zeros((0, 512), np.float32), np.zeros((0, 64), np.uint16))
    assert rec.shape == (0, 656)
    assert [a.shape for a in fp8.decode_records(rec)] == [(0, 512), (0, 64), (0, 4)]


def test_encoding_records_spans_several_chunks_consistently() -> None:
    rng = np.random.default_rng(5)
    n = fp8._ENCODE_CHUNK + 3
    latent, rope = rng.standard_normal((n, 512), dtype=np.float32), sample_rope(rng, n)
    whole = fp8.encode_records(latent, rope)
    np.testing.assert_array_equal(whole[-3:], fp8.encode_records(latent[-3:], rope[-3:]))


@pytest.mark.parametrize(
    ("latent", "rope", "message"),
    [
        (np.zeros((2, 512)), np.zeros((2, 64), np.uint16), "latent_f32 has dtype float64"),
        (np.zeros((2, 256), np.float32), np.zeros((2, 64), np.uint16), "latent_f32 has shape"),
        (np.zeros((2, 512), np.float32), np.zeros((2, 64), np.int16), "rope_bits has dtype int16"),
        (np.zeros((2, 512), np.float32), np.zeros((3, 64), np.uint16), "rope_bits has 3 rows"),
        (np.full((2, 512), np.inf, np.float32), np.zeros((2, 64), np.uint16), "latent_f32 contains inf or NaN"),
    ],
)
def test_encoding_records_refuses_bad_inputs_naming_the_argument(latent, rope, message) -> None:
    with pytest.raises(ValueError, match=message):
        fp8.encode_records(latent, rope)


def test_decoding_records_refuses_a_record_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="records has shape"):
        fp8.decode_records(np.zeros((2, 600), np.uint8))
