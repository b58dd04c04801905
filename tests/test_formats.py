"""Number formats against torch and ml_dtypes: properties, every code, and rounding."""

import math
import struct

import ml_dtypes
import numpy as np
import pytest
import torch

from modelnotes.formats import (BF16, BLOCK_FORMATS, E8M0, FORMATS, FP4_E2M1, FP6_E2M3,
                                FP6_E3M2, FP8_E4M3FN, FP8_E4M3FNUZ, FP8_E5M2, FP8_E5M2FNUZ,
                                FP16, FP32, FP64, INT4, INT8, MXFP4, MXFP6_E2M3, MXFP6_E3M2,
                                MXFP8_E4M3, MXFP8_E5M2, NVFP4, TF32, BlockFormat, FloatFormat,
                                UnknownFormatError, get)

FLOATS = [f for f in FORMATS.values() if f.kind == "float"]
FP8 = [FP8_E4M3FN, FP8_E5M2, FP8_E4M3FNUZ, FP8_E5M2FNUZ]
ML_DTYPES = [f for f in FLOATS if f.ml_dtypes_name]
NUMPY_NATIVE = [FP64, FP32, FP16]
RNG_SEED = 20261124


def torch_dtype(fmt: FloatFormat) -> torch.dtype:
    return getattr(torch, fmt.torch_name)


def ml_dtype(fmt: FloatFormat):
    return getattr(ml_dtypes, fmt.ml_dtypes_name) if fmt.ml_dtypes_name else np.dtype(
        fmt.torch_name)


def same(a: float, b: float) -> bool:
    """Equal as values: NaN matches NaN, and -0 does not match +0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def mismatches(fmt: FloatFormat, inputs, want_codes, got_codes) -> list:
    """Inputs whose codes differ (any NaN code matches any other NaN code)."""
    bad = []
    for x, want, got in zip(inputs, want_codes, got_codes):
        want, got = int(want), int(got)
        if want != got and not (fmt.is_nan(want) and fmt.is_nan(got)):
            bad.append((float(x), hex(want), hex(got)))
    return bad[:5]


# ----- properties ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [f for f in FLOATS if f.torch_name], ids=lambda f: f.name)
def test_properties_equal_torch_finfo(fmt):
    info = torch.finfo(torch_dtype(fmt))
    assert (fmt.max, fmt.min, fmt.min_normal, fmt.total_bits) == (
        info.max, info.min, info.tiny, info.bits)
    if fmt is FP8_E5M2FNUZ:
        # torch.finfo(float8_e5m2fnuz).eps is 0.125 = 2^-3, but with 2 mantissa bits the
        # value after 1.0 is 1.25 (ml_dtypes: 0.25). torch's eps is wrong; see the next test.
        assert info.eps == 0.125 and fmt.eps == 0.25
    else:
        assert fmt.eps == info.eps


def test_e5m2fnuz_eps_is_the_step_after_one():
    one = FP8_E5M2FNUZ.encode(1.0)
    assert FP8_E5M2FNUZ.decode(one + 1) - 1.0 == FP8_E5M2FNUZ.eps == 0.25
    # the same check through torch's own bit-cast: torch's values agree, its finfo does not
    after_one = torch.tensor([one + 1], dtype=torch.uint8).view(torch.float8_e5m2fnuz).item()
    assert after_one == 1.25 and torch.finfo(torch.float8_e5m2fnuz).eps == 0.125
    assert ml_dtypes.finfo(ml_dtypes.float8_e5m2fnuz).eps == 0.25
    # e4m3fnuz, the other one to suspect, agrees everywhere: 2^-3
    assert (torch.finfo(torch.float8_e4m3fnuz).eps == ml_dtypes.finfo(
        ml_dtypes.float8_e4m3fnuz).eps == FP8_E4M3FNUZ.eps == 0.125)


@pytest.mark.parametrize("fmt", ML_DTYPES + NUMPY_NATIVE, ids=lambda f: f.name)
def test_properties_equal_ml_dtypes_finfo(fmt):
    info = ml_dtypes.finfo(ml_dtype(fmt))
    assert (fmt.max, fmt.min_normal, fmt.eps, fmt.total_bits) == (
        float(info.max), float(info.smallest_normal), float(info.eps), info.bits)
    if fmt is E8M0:
        # E8M0 has no subnormals (code 0 is 2^-127, a normal); ml_dtypes reports its smallest
        # value as smallest_subnormal all the same. min_subnormal says None.
        assert float(info.smallest_subnormal) == fmt.min_normal and fmt.min_subnormal is None
    else:
        assert fmt.min_subnormal == float(info.smallest_subnormal)


@pytest.mark.parametrize("fmt, values", [
    (FP8_E4M3FN, (448.0, 2**-6, 2**-9, 0.125, 254)),
    (FP8_E5M2, (57344.0, 2**-14, 2**-16, 0.25, 248)),
    (FP8_E4M3FNUZ, (240.0, 2**-7, 2**-10, 0.125, 255)),
    (FP8_E5M2FNUZ, (57344.0, 2**-15, 2**-17, 0.25, 255)),
    (FP6_E3M2, (28.0, 0.25, 0.0625, 0.25, 64)),
    (FP6_E2M3, (7.5, 1.0, 0.125, 0.125, 64)),
    (FP4_E2M1, (6.0, 1.0, 0.5, 0.5, 16)),
    (E8M0, (2.0**127, 2**-127, None, 1.0, 255)),
    (TF32, ((2 - 2**-10) * 2.0**127, 2**-126, 2**-136, 2**-10, 2**19 - 2**11)),
    (FP16, (65504.0, 2**-14, 2**-24, 2**-10, 2**16 - 2**11)),
    (BF16, ((2 - 2**-7) * 2.0**127, 2**-126, 2**-133, 2**-7, 2**16 - 2**8)),
    (FP64, (np.finfo(np.float64).max, 2**-1022, 2**-1074, 2**-52, 2**64 - 2**53)),
])
def test_properties_exact(fmt, values):
    assert (fmt.max, fmt.min_normal, fmt.min_subnormal, fmt.eps, fmt.finite_values) == values


def test_finite_values_count_every_finite_code():
    for fmt in [f for f in FLOATS if f.total_bits <= 8]:
        assert fmt.finite_values == sum(math.isfinite(v) for v in fmt.values()), fmt.name
    assert FP16.finite_values == sum(math.isfinite(FP16.decode(c)) for c in range(1 << 16))


def test_integers_are_integers():
    info = torch.iinfo(torch.int8)
    assert (INT8.min, INT8.max, INT8.total_bits, INT8.finite_values) == (
        info.min, info.max, info.bits, 256)
    assert INT8.values() == np.arange(256, dtype=np.uint8).view(np.int8).tolist()
    assert sorted(INT4.values()) == list(range(-8, 8)) and INT4.step == 1
    assert INT4.layout == "SIII"


def test_layouts():
    assert [get(n).layout for n in ("fp8-e4m3fn", "fp8-e5m2", "fp4-e2m1", "e8m0", "tf32")] == [
        "S EEEE MMM", "S EEEEE MM", "S EE M", "EEEEEEEE", "S EEEEEEEE MMMMMMMMMM"]
    assert TF32.total_bits == 19 and FP8_E4M3FN.bits(0xFF) == "1 1111 111"


# ----- every code, decoded ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", FP8 + [E8M0], ids=lambda f: f.name)
def test_every_code_decodes_as_torch_and_ml_dtypes(fmt):
    codes = np.arange(256, dtype=np.uint8)
    through_torch = torch.from_numpy(codes).view(torch_dtype(fmt)).double().tolist()
    through_ml = codes.view(ml_dtype(fmt)).astype(np.float64).tolist()
    mine = fmt.values()
    assert [c for c in range(256) if not same(mine[c], through_torch[c])] == []
    assert [c for c in range(256) if not same(mine[c], through_ml[c])] == []


@pytest.mark.parametrize("fmt", [FP6_E3M2, FP6_E2M3, FP4_E2M1], ids=lambda f: f.name)
def test_every_fp6_fp4_code_decodes_as_ml_dtypes(fmt):
    codes = np.arange(1 << fmt.total_bits, dtype=np.uint8)
    through_ml = codes.view(ml_dtype(fmt)).astype(np.float64).tolist()
    mine = fmt.values()
    assert [c for c in codes if not same(mine[c], through_ml[c])] == []
    assert not any(math.isnan(v) or math.isinf(v) for v in mine)


@pytest.mark.parametrize("fmt", [FP16, BF16], ids=lambda f: f.name)
def test_every_16_bit_code_decodes_as_torch(fmt):
    codes = np.arange(1 << 16, dtype=np.uint16)
    through_torch = torch.from_numpy(codes).view(torch_dtype(fmt)).double().tolist()
    assert [c for c in range(1 << 16) if not same(fmt.decode(c), through_torch[c])] == []


def test_fp32_tf32_fp64_codes_decode_as_the_hardware_formats():
    rng = np.random.default_rng(RNG_SEED)
    codes = rng.integers(0, 1 << 32, 5000, dtype=np.uint64).astype(np.uint32)
    codes = np.concatenate([codes, np.array([0, 1, 0x7F7FFFFF, 0x7F800000, 0xFF800000,
                                             0x7FC00000, 0x80000001], dtype=np.uint32)])
    with np.errstate(invalid="ignore"):  # signalling NaNs among the random codes
        as_float32 = codes.view(np.float32).astype(np.float64).tolist()
        tf32_as_fp32 = (codes >> 13 << 13).view(np.float32).astype(np.float64).tolist()
    assert [c for c, v in zip(codes.tolist(), as_float32) if not same(FP32.decode(c), v)] == []
    # tf32 is fp32 with the low 13 mantissa bits gone
    tf32_codes = (codes >> 13).tolist()
    assert [c for c, v in zip(tf32_codes, tf32_as_fp32) if not same(TF32.decode(c), v)] == []
    codes64 = rng.integers(0, 1 << 63, 5000, dtype=np.uint64) * rng.integers(1, 3, 5000,
                                                                                 dtype=np.uint64)
    for c in codes64.tolist() + [0x7FEFFFFFFFFFFFFF, 1, 0x8000000000000000, 0x7FF0000000000000]:
        assert same(FP64.decode(c), struct.unpack("<d", struct.pack("<Q", c))[0]), hex(c)


def test_codes_out_of_range_are_refused():
    with pytest.raises(ValueError, match="codes are 0 to 15"):
        FP4_E2M1.decode(16)
    with pytest.raises(ValueError, match="at most 8 bits"):
        FP16.values()


# ----- encode ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FLOATS, ids=lambda f: f.name)
def test_encode_inverts_decode_on_every_value(fmt):
    if fmt.total_bits <= 16:
        codes = range(1 << fmt.total_bits)
    else:
        rng = np.random.default_rng(RNG_SEED)
        codes = rng.integers(0, 1 << min(fmt.total_bits, 63), 20000, dtype=np.uint64).tolist()
    bad = [c for c in codes if not fmt.is_nan(c) and fmt.encode(fmt.decode(c)) != c]
    assert bad == []


def cast_inputs(fmt: FloatFormat, n_random: int = 1500) -> np.ndarray:
    """float32 inputs for rounding: every value, every midpoint (an exact tie) and its two
    float32 neighbours, random magnitudes from below the smallest subnormal to past the
    overflow threshold, both signs, and the specials."""
    rng = np.random.default_rng(RNG_SEED)
    if fmt.total_bits <= 8:
        positive = sorted({v for v in fmt.values() if math.isfinite(v) and v >= 0})
    else:  # a sample of codes, each with its successor
        codes = rng.integers(0, fmt.max_code, 1500)
        positive = sorted({fmt.decode(c) for c in np.concatenate([codes, codes + 1]).tolist()})
    top = fmt.max + fmt.eps * 2.0**fmt.max_exponent / 2  # the overflow tie past max
    positive.append(top)
    ties = [(a + b) / 2 for a, b in zip(positive, positive[1:])]
    if not fmt.subnormals:  # below the smallest value: half of it, a tie with "zero"
        ties.append(fmt.min_normal / 2)
    ties = np.array(ties, dtype=np.float32)
    assert np.all(ties.astype(np.float64) == np.array(ties.tolist()))  # ties are exact
    near = np.concatenate([ties, np.nextafter(ties, np.float32(0)),
                           np.nextafter(ties, np.float32(np.inf))])
    low = math.log2(fmt.min_subnormal or fmt.min_normal) - 2
    high = min(math.log2(fmt.max) + 2, 127.9)
    random = np.exp2(rng.uniform(low, high, n_random)).astype(np.float32)
    specials = np.array([0.0, np.inf, np.nan, fmt.max, 2 * fmt.max if fmt.max < 1e38 else 3e38,
                         1e30, 1e-30, 1e-45], dtype=np.float32)
    magnitudes = np.concatenate([np.array(positive, dtype=np.float32), near, random, specials])
    return np.concatenate([magnitudes, -magnitudes])


def encode_all(fmt: FloatFormat, xs, saturate: bool = False) -> np.ndarray:
    return np.array([fmt.encode(x, saturate) for x in xs.tolist()], dtype=np.int64)


# torch's cast to float8_e4m3fn saturates overflow to +-448 from 2.12 on (pytorch/pytorch#178817);
# before, it gave NaN like ml_dtypes. Seen here: 2.11 gives NaN, 2.14 saturates.
TORCH_E4M3FN_SATURATES = tuple(map(int, torch.__version__.split("+")[0].split(".")[:2])) >= (2, 12)


def torch_codes(fmt: FloatFormat, xs: np.ndarray, clamp: bool = False) -> np.ndarray:
    t = torch.from_numpy(xs)
    if clamp:
        t = torch.clamp(t, -fmt.max, fmt.max)
    cast = t.to(torch_dtype(fmt))
    bits = torch.uint8 if fmt.total_bits == 8 else torch.int16
    return cast.view(bits).numpy().astype(np.int64) & ((1 << fmt.total_bits) - 1)


def ml_codes(fmt: FloatFormat, xs: np.ndarray, clamp: bool = False) -> np.ndarray:
    if clamp:
        xs = np.clip(xs, -fmt.max, fmt.max)
    return xs.astype(ml_dtype(fmt)).view(np.uint8).astype(np.int64)


@pytest.mark.parametrize("fmt", FP8 + [FP16, BF16], ids=lambda f: f.name)
def test_encode_rounds_as_torch_casts(fmt):
    xs = cast_inputs(fmt)
    saturating = encode_all(fmt, xs, saturate=True)
    # torch >= 2.12 saturates float8_e4m3fn casts (pytorch/pytorch#178817): 465 and inf -> 448
    plain = (saturating if fmt is FP8_E4M3FN and TORCH_E4M3FN_SATURATES
             else encode_all(fmt, xs))
    assert mismatches(fmt, xs, torch_codes(fmt, xs), plain) == []
    assert mismatches(fmt, xs, torch_codes(fmt, xs, clamp=True), saturating) == []


@pytest.mark.parametrize("fmt", FP8, ids=lambda f: f.name)
def test_encode_rounds_as_ml_dtypes_casts(fmt):
    xs = cast_inputs(fmt)
    assert mismatches(fmt, xs, ml_codes(fmt, xs), encode_all(fmt, xs)) == []
    assert mismatches(fmt, xs, ml_codes(fmt, xs, clamp=True),
                      encode_all(fmt, xs, saturate=True)) == []


@pytest.mark.parametrize("fmt", [FP6_E3M2, FP6_E2M3, FP4_E2M1], ids=lambda f: f.name)
def test_fp6_fp4_encode_rounds_as_ml_dtypes(fmt):
    xs = cast_inputs(fmt)
    xs = xs[~np.isnan(xs)]  # no NaN to go to: see test_formats_without_nan_refuse_it
    want = ml_codes(fmt, xs)
    assert mismatches(fmt, xs, want, encode_all(fmt, xs)) == []
    # nowhere to overflow to: saturation is what they always do
    assert mismatches(fmt, xs, want, encode_all(fmt, xs, saturate=True)) == []


def test_overflow_and_ties_by_hand():
    # 464 is halfway between 448 (mantissa 110) and 480 (111, the NaN code): even wins
    assert FP8_E4M3FN.encode(464.0) == 0x7E and FP8_E4M3FN.is_nan(FP8_E4M3FN.encode(465.0))
    assert FP8_E5M2.encode(61440.0) == 0x7C and FP8_E5M2.encode(61439.0) == 0x7B  # to inf
    assert FP8_E5M2.encode(-math.inf, saturate=True) == 0xFB                     # -57344
    assert FP8_E4M3FNUZ.encode(-1e-9) == 0x00           # no -0: rounds to +0
    assert FP8_E4M3FN.encode(-1e-9) == 0x80              # -0
    assert FP4_E2M1.encode(-math.inf) == 0xF and FP4_E2M1.encode(2.5) == 0x4  # -6; 2.5 -> 2
    assert FP16.encode(65520.0) == 0x7C00 and FP16.encode(65519.99) == 0x7BFF


def test_formats_without_nan_refuse_it():
    for fmt in (FP6_E3M2, FP6_E2M3, FP4_E2M1):
        with pytest.raises(ValueError, match="has no NaN"):
            fmt.encode(math.nan)
    # ml_dtypes makes NaN into -0 here (the code with only the sign bit set)
    assert np.array([np.nan], np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8)[0] == 8
    assert np.array([np.nan], np.float32).astype(ml_dtypes.float6_e3m2fn).view(np.uint8)[0] == 32


def test_e4m3fn_overflow_torch_saturates_from_2_12_ml_dtypes_gives_nan():
    xs = np.array([465.0, 1e9, np.inf, -np.inf, -500.0], dtype=np.float32)
    saturated, nan = [0x7E, 0x7E, 0x7E, 0xFE, 0xFE], [0x7F, 0x7F, 0x7F, 0xFF, 0xFF]
    assert torch_codes(FP8_E4M3FN, xs).tolist() == (saturated if TORCH_E4M3FN_SATURATES else nan)
    assert all(FP8_E4M3FN.is_nan(c) for c in ml_codes(FP8_E4M3FN, xs).tolist())
    assert [FP8_E4M3FN.encode(x, saturate=True) for x in xs.tolist()] == [
        0x7E, 0x7E, 0x7E, 0xFE, 0xFE]
    assert all(FP8_E4M3FN.is_nan(FP8_E4M3FN.encode(x)) for x in xs.tolist())
    # the other fp8 casts of torch do not saturate: e5m2 overflows to inf, fnuz to NaN
    assert torch_codes(FP8_E5M2, xs[1:3]).tolist() == [0x7C, 0x7C]
    assert torch_codes(FP8_E4M3FNUZ, xs[:2]).tolist() == [0x80, 0x80]


def test_e8m0_encode_against_torch_and_ml_dtypes():
    xs = cast_inputs(E8M0)
    # from 2^-126 up all three agree; below it, see the next test
    upper = xs[(xs >= 2.0**-126) | np.isnan(xs)]
    mine = encode_all(E8M0, upper)
    assert mismatches(E8M0, upper, torch_codes(E8M0, upper), mine) == []
    assert mismatches(E8M0, upper, ml_codes(E8M0, upper), mine) == []
    negative = xs[xs <= 0]  # no sign, no zero: NaN, as ml_dtypes has it (torch: next test)
    assert ml_codes(E8M0, negative).tolist() == encode_all(E8M0, negative).tolist() == [
        0xFF] * len(negative)
    # ties go up, to the even significand (2 = 1.0 x 2^1): 3 -> 4, 0.75 -> 1 in all three
    assert [E8M0.decode(E8M0.encode(x)) for x in (3.0, 0.75, 1.4999, 1.5)] == [4, 1, 1, 2]


def test_e8m0_where_torch_and_ml_dtypes_differ_from_nearest():
    bottom = np.array([1.01, 1.1, 1.4999, 1.5, 0.99, 0.5], dtype=np.float32) * np.float32(
        2.0**-127)
    # Nearest: 2^-127 (code 0) up to the tie at 1.5 x 2^-127, then 2^-126 (code 1). torch and
    # ml_dtypes both send everything above 2^-127 to 2^-126, as if the lowest binade were
    # subnormal (spacing 2^-126 from zero). encode rounds to nearest.
    assert [E8M0.encode(x) for x in bottom.tolist()] == [0, 0, 0, 1, 0, 0]
    assert torch_codes(E8M0, bottom).tolist() == [1, 1, 1, 1, 0, 0]
    assert ml_codes(E8M0, bottom).tolist() == [1, 1, 1, 1, 0, 0]
    assert ml_codes(E8M0, bottom.astype(np.float64)).tolist() == [1, 1, 1, 1, 0, 0]
    # Zero and negatives: encode and ml_dtypes give NaN (no zero, no sign); torch gives
    # 2^-127 for zero and drops the sign (-4 -> 4).
    signs = np.array([0.0, -0.0, -4.0], dtype=np.float32)
    assert [E8M0.encode(x) for x in signs.tolist()] == ml_codes(E8M0, signs).tolist() == [0xFF] * 3
    assert torch_codes(E8M0, signs).tolist() == [0x00, 0x00, 0x81]


def test_tf32_rounds_as_fp16_does_binade_by_binade():
    # tf32 and fp16 both keep 10 mantissa bits, so in each binade numpy's float16 cast of
    # x / 2^k (in [1, 2)) times 2^k is tf32's rounding; tf32's subnormals (below 2^-126,
    # spacing 2^-136) are fp16's (below 2^-14, spacing 2^-24) times 2^-112.
    xs = cast_inputs(TF32).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        k = np.frexp(xs)[1] - 1
        normal = np.ldexp(np.ldexp(xs, -k).astype(np.float16).astype(np.float64), k)
        subnormal = (xs * 2.0**112).astype(np.float16).astype(np.float64) * 2.0**-112
        want = np.where(np.abs(xs) < 2.0**-126, subnormal, normal)
        want = np.where(np.abs(want) > TF32.max, np.sign(xs) * np.inf, want)  # past max: inf
    got = [TF32.decode(TF32.encode(x)) for x in xs.tolist()]
    assert [(x, w, g) for x, w, g in zip(xs.tolist(), want.tolist(), got) if not same(w, g)] == []
    assert TF32.encode(1 + 2**-11) == TF32.encode(1.0) and TF32.encode(1 + 3 * 2**-11) == (
        TF32.encode(1.0) + 2)  # ties to even


def test_fp32_and_fp64_encode_as_numpy():
    rng = np.random.default_rng(RNG_SEED)
    f32 = np.sort(rng.standard_normal(3000).astype(np.float32) * np.float32(1e3))
    ties = (f32[:-1].astype(np.float64) + f32[1:].astype(np.float64)) / 2  # exact in fp64
    xs = np.concatenate([ties, rng.standard_normal(2000) * 10.0**rng.integers(-50, 50, 2000),
                         [3.5e38, 3.4028235677973366e38, 1e-46, 7e-46, 2.0**-150, -1e39]])
    with np.errstate(over="ignore"):
        want = xs.astype(np.float32).view(np.uint32).tolist()
    assert [x for x, w in zip(xs.tolist(), want) if FP32.encode(x) != w] == []
    doubles = rng.standard_normal(2000) * 10.0**rng.integers(-300, 300, 2000)
    for x in doubles.tolist() + [5e-324, -0.0, 1.7976931348623157e308]:
        assert FP64.encode(x) == struct.unpack("<Q", struct.pack("<d", x))[0]


# ----- registry --------------------------------------------------------------------------

def test_get_by_name_and_alias():
    assert get("FP8_E4M3FN") is get("float8_e4m3fn") is FP8_E4M3FN
    assert get("float6_e2m3fn") is FP6_E2M3 and get("bfloat16") is BF16 and get("NVFP4") is NVFP4
    assert list(FORMATS) == ["fp64", "fp32", "tf32", "fp16", "bf16", "fp8-e4m3fn", "fp8-e5m2",
                             "fp8-e4m3fnuz", "fp8-e5m2fnuz", "fp6-e3m2", "fp6-e2m3",
                             "fp4-e2m1", "e8m0", "int8", "int4"]


def test_unknown_name_is_one_line_listing_the_names():
    with pytest.raises(UnknownFormatError) as error:
        get("fp9")
    message = str(error.value)
    assert "\n" not in message and message.startswith("unknown format 'fp9'; known: fp64, ")
    assert all(name in message for name in [*FORMATS, *BLOCK_FORMATS])


# ----- block formats ---------------------------------------------------------------------

MX = [MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3, MXFP4]
# emax of each element format, from the OCP MX v1.0 spec's table of element formats
SPEC_EMAX = {"mxfp8-e4m3": 8, "mxfp8-e5m2": 15, "mxfp6-e3m2": 4, "mxfp6-e2m3": 2, "mxfp4": 2}


def test_bits_per_element_and_storage():
    assert [f.bits_per_element for f in MX + [NVFP4]] == [8.25, 8.25, 6.25, 6.25, 4.25, 4.5]
    assert MXFP4.storage_bits(32) == 32 * 4 + 8 and MXFP4.storage_bits(33) == 2 * 136
    assert NVFP4.storage_bits(16) == 16 * 4 + 8 + 32
    assert NVFP4.storage_bits(1 << 20) / (1 << 20) == 4.5 + 32 / (1 << 20)


def test_element_emax_is_the_specs():
    assert {f.name: f.element.max_exponent for f in MX} == SPEC_EMAX


def sample(shape, seed=RNG_SEED) -> np.ndarray:
    """Normal values with a few outliers and some blocks on very different scales."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape[:-1] + (1,))
    x.flat[rng.integers(0, x.size, max(1, x.size // 50))] *= 40
    return x


def element_error_bound(element: FloatFormat, x: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Half a unit in the last place of x / step in the element format, times step:
    2^(max(floor(log2 r), emin) - M - 1) * step for r = |x| / step within range."""
    r = np.abs(x) / step
    emin = 1 - element.bias
    exponent = np.maximum(np.frexp(r)[1] - 1, emin)
    return np.ldexp(step, exponent - element.mantissa_bits - 1)


@pytest.mark.parametrize("fmt", MX, ids=lambda f: f.name)
def test_mx_scales_are_the_specs_powers_of_two(fmt):
    x = sample((4, 96))
    q = fmt.quantize(x)
    blocks = x.reshape(4, 3, 32)
    amax = np.abs(blocks).max(axis=-1)
    scales = q.scales
    mantissa, _ = np.frexp(scales)
    assert np.all(mantissa == 0.5)                       # exact powers of two
    # 2^(floor(log2(amax)) - emax): amax / scale lies in [2^emax, 2^(emax+1))
    ratio = amax / scales
    assert np.all((ratio >= 2.0**SPEC_EMAX[fmt.name]) & (ratio < 2.0**(SPEC_EMAX[fmt.name] + 1)))
    assert np.array_equal(q.scale_codes, np.log2(scales).astype(int) + 127)


@pytest.mark.parametrize("fmt", MX, ids=lambda f: f.name)
def test_mx_elements_are_saturating_casts_of_x_over_the_scale(fmt):
    x = sample((3, 70))
    q = fmt.quantize(x)
    scales = np.repeat(q.scales, 32, axis=-1)[:, :70]
    element = fmt.element
    through_ml = np.clip(x / scales, -element.max, element.max).astype(ml_dtype(element))
    assert np.array_equal(q.dequantize(), through_ml.astype(np.float64) * scales)


@pytest.mark.parametrize("fmt", MX + [NVFP4], ids=lambda f: f.name)
def test_dequantize_error_is_within_the_bound(fmt):
    """Within range, |x - x̂| <= half an element ulp of x / s, times the scale s; an element
    past the element max saturates: x̂ = ±max * s exactly. For MX the block max lands in
    [2^emax, 2^(emax+1)) after scaling, so saturation costs less than 2^(emax+1) - max
    (E4M3: 64 = 2 ulps of its top binade; the others 1 ulp)."""
    x = sample((5, 160), seed=7)
    q = fmt.quantize(x)
    step = np.repeat(q.scales, fmt.block_size, axis=-1)[:, :160]
    xhat = q.dequantize()
    inside = np.abs(x) / step <= fmt.element.max
    bound = element_error_bound(fmt.element, x, step)
    assert np.all(np.abs(x - xhat)[inside] <= bound[inside])
    outside = ~inside
    assert np.array_equal(xhat[outside], np.sign(x[outside]) * fmt.element.max * step[outside])
    if fmt in MX:
        saturation = (2.0**(fmt.element.max_exponent + 1) - fmt.element.max) * step[outside]
        assert np.all(np.abs(x - xhat)[outside] < saturation)
    else:  # NVFP4: a normal E4M3 scale is within 2^-4 of block_amax / (6 * tensor scale), so
        # r stays below 6 / (1 - 2^-4) = 6.4 and saturation costs at most 0.4 * step
        assert np.all(q.scales / q.tensor_scale >= FP8_E4M3FN.min_normal)  # all normal here
        assert np.all(np.abs(x - xhat)[outside] <= 0.4 * step[outside])


def test_nvfp4_block_far_below_the_tensor_max_stores_zeros():
    x = np.concatenate([np.full(16, 1e-6), np.full(16, 1000.0)])
    q = NVFP4.quantize(x)
    # 1e-6 / (6 * 1000 / 2688) is below half of E4M3's smallest subnormal (2^-9): scale 0
    assert q.scale_codes.tolist() == [0, 0x7E] and q.codes[0].tolist() == [0] * 16
    assert q.dequantize()[:16].tolist() == [0.0] * 16


def test_mx_saturation_by_hand():
    # amax 511 -> X = 2^(8 - 8) = 1; 511 is past E4M3's 448 and saturates; 0.3 rounds
    out = MXFP8_E4M3.quantize([511.0, 0.3, -1.0]).dequantize().tolist()
    assert out == [448.0, 0.3125, -1.0]
    q = MXFP4.quantize([7.9, 0.74, 0.76])  # X = 1: 7.9 -> 6; 0.74 -> 0.5; 0.76 -> 1
    assert q.scale_codes.tolist() == [127] and q.dequantize().tolist() == [6.0, 0.5, 1.0]


def test_nvfp4_scales_as_described():
    x = sample((2, 64))
    q = NVFP4.quantize(x)
    amax = np.abs(x).max()
    assert q.tensor_scale == float(np.float32(amax / (448 * 6)))
    block_amax = np.abs(x.reshape(2, 4, 16)).max(axis=-1)
    block_scale = (block_amax / (6 * q.tensor_scale)).astype(ml_dtypes.float8_e4m3fn)
    assert np.array_equal(q.scale_codes, block_scale.view(np.uint8))
    step = np.repeat(block_scale.astype(np.float64) * q.tensor_scale, 16, axis=-1)
    elements = (x / step).astype(ml_dtypes.float4_e2m1fn).astype(np.float64)
    assert np.array_equal(q.dequantize(), elements * step)
    assert np.abs(q.dequantize()).max() == pytest.approx(amax, rel=1e-6)


@pytest.mark.parametrize("fmt", MX + [NVFP4], ids=lambda f: f.name)
def test_shapes_and_padding(fmt):
    x = sample((2, 3, 37))
    q = fmt.quantize(x)
    blocks = -(-37 // fmt.block_size)
    assert q.codes.shape == (2, 3, blocks, fmt.block_size) and q.codes.dtype == np.uint8
    assert q.scale_codes.shape == (2, 3, blocks)
    assert np.all(q.codes.reshape(2, 3, -1)[..., 37:] == 0)  # the padding stores zeros
    assert q.dequantize().shape == (2, 3, 37)
    if fmt in MX:  # blocks run along the last axis only: each row alone quantizes the same
        assert np.array_equal(fmt.quantize(x[1, 2]).dequantize(), q.dequantize()[1, 2])
    # (NVFP4's tensor scale comes from the whole tensor, so a row alone differs slightly)
    scalar = fmt.quantize(1.5).dequantize()
    assert scalar.shape == () and scalar == pytest.approx(1.5, rel=1e-7)


def assert_exact_for_mx(fmt: BlockFormat, got: np.ndarray, want: np.ndarray):
    """MX scales are powers of two, so values on the element grid come back exactly. NVFP4's
    tensor scale is amax / 2688 rounded to fp32: they come back within fp32's rounding."""
    assert np.allclose(got, want, rtol=0 if fmt in MX else 2**-23, atol=0)


@pytest.mark.parametrize("fmt", MX + [NVFP4], ids=lambda f: f.name)
def test_all_zero_blocks(fmt):
    x = np.zeros((2, 64))
    x[1, 40] = 3.0  # row 1: a zero block, then a block with one value
    q = fmt.quantize(x)
    out = q.dequantize()
    assert_exact_for_mx(fmt, out, x)
    assert not np.signbit(out).any() and np.count_nonzero(out) == 1
    if fmt in MX:
        assert q.scale_codes[0].tolist() == [0, 0]  # 2^-127, the smallest scale
    assert fmt.quantize(np.zeros(5)).dequantize().tolist() == [0.0] * 5


@pytest.mark.parametrize("fmt", MX + [NVFP4], ids=lambda f: f.name)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_makes_its_block_nan(fmt, bad):
    x = np.ones(3 * fmt.block_size)
    x[fmt.block_size + 1] = bad
    q = fmt.quantize(x)
    out = q.dequantize().reshape(3, fmt.block_size)
    assert np.isnan(out[1]).all()
    assert fmt.scale.is_nan(int(q.scale_codes[1]))
    assert_exact_for_mx(fmt, out[[0, 2]], np.ones((2, fmt.block_size)))  # the others: fine
