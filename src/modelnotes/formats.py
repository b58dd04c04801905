"""Number formats: every property computed from the bit fields, and exact encode/decode.

A float format is a sign bit (or none), E exponent bits, M mantissa bits, a bias and a
convention for the special values. Everything else (the largest finite value, the
smallest normal and subnormal, eps, how many finite values there are) follows from
those fields and is computed here, never typed in; the tests hold each one against
``torch.finfo`` and ``ml_dtypes.finfo`` and every bit pattern against a bit-cast.

>>> fp8 = get("fp8-e4m3fn")
>>> fp8.layout, fp8.max, fp8.min_normal, fp8.min_subnormal, fp8.eps
('S EEEE MMM', 448.0, 0.015625, 0.001953125, 0.125)
>>> fp8.decode(0x7E), hex(fp8.encode(300.0)), fp8.decode(fp8.encode(300.0))
(448.0, '0x79', 288.0)
>>> get("fp4-e2m1").values()[:8]
[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]

Block formats share one scale among a block of elements (OCP Microscaling, NVFP4):

>>> MXFP4.bits_per_element, NVFP4.bits_per_element
(4.25, 4.5)
>>> MXFP4.quantize([0.3, -1.7, 2.5, 5.0]).dequantize().tolist()
[0.5, -1.5, 2.0, 4.0]

This module imports numpy but never torch (the ``modelnotes formats`` command must be
quick to start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FloatFormat", "IntFormat", "BlockFormat", "BlockQuantized", "UnknownFormatError",
    "FORMATS", "BLOCK_FORMATS", "SPECIAL_CONVENTIONS", "get",
    "FP64", "FP32", "TF32", "FP16", "BF16",
    "FP8_E4M3FN", "FP8_E5M2", "FP8_E4M3FNUZ", "FP8_E5M2FNUZ",
    "FP6_E3M2", "FP6_E2M3", "FP4_E2M1", "E8M0", "INT8", "INT4",
    "MXFP8_E4M3", "MXFP8_E5M2", "MXFP6_E3M2", "MXFP6_E2M3", "MXFP4", "NVFP4",
]

# The conventions for special values; "fn" and "fnuz" as LLVM and ml_dtypes spell them.
# ml_dtypes also calls fp6 and fp4 "fn" (float4_e2m1fn): they have no NaN either, "none" here.
SPECIAL_CONVENTIONS = {
    "ieee": "±inf at the all-ones exponent with a zero mantissa, NaN with any other mantissa",
    "fn": "finite: no infinities; NaN only where every bit but the sign is 1",
    "fnuz": "finite, unsigned zero: no infinities, no -0; NaN is the one code that would be -0",
    "none": "finite, no NaN: every code is a number",
}


class UnknownFormatError(ValueError):
    """A name that is not in :data:`FORMATS` or :data:`BLOCK_FORMATS`."""


# ----- scalar float formats --------------------------------------------------------------

@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format, from its fields.

    A code (bit pattern) is ``[sign] exponent mantissa``. With exponent field e and
    mantissa field m, the value is ``2^(e - bias) * (1 + m / 2^M)``; where the format has
    subnormals, e = 0 instead means ``2^(1 - bias) * (m / 2^M)`` (zero when m = 0).

    ``special`` is one of :data:`SPECIAL_CONVENTIONS`: ``ieee``, ``fn``, ``fnuz`` or
    ``none``. OCP's E8M0 scale is the ``fn`` convention on an unsigned format without
    subnormals: exponent field 0 is 2^-127, so it has no zero, and 0xFF is its NaN.

    >>> FP16.max, FP16.min_normal, FP16.min_subnormal, FP16.eps, FP16.total_bits
    (65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.0009765625, 16)
    >>> E8M0.max == 2.0**127, E8M0.min_normal == 2.0**-127, E8M0.min_subnormal
    (True, True, None)
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    special: str
    signed: bool = True
    subnormals: bool = True
    description: str = ""
    torch_name: str | None = None      # the torch dtype with these values, where there is one
    ml_dtypes_name: str | None = None  # the ml_dtypes type (numpy has fp16, fp32, fp64 itself)

    def __post_init__(self):
        if self.special not in SPECIAL_CONVENTIONS:
            raise ValueError(f"special must be one of {', '.join(SPECIAL_CONVENTIONS)}")

    kind = "float"

    # ----- the fields ------------------------------------------------------------------

    @property
    def total_bits(self) -> int:
        return int(self.signed) + self.exponent_bits + self.mantissa_bits

    @property
    def layout(self) -> str:
        """The bit layout drawn in text, most significant bit first."""
        fields = ["S"] if self.signed else []
        fields += ["E" * self.exponent_bits, "M" * self.mantissa_bits]
        return " ".join(f for f in fields if f)

    @property
    def _magnitude_bits(self) -> int:
        return self.exponent_bits + self.mantissa_bits

    @property
    def _sign_bit(self) -> int:
        return 1 << self._magnitude_bits if self.signed else 0

    @property
    def _all_ones(self) -> int:
        """The magnitude code with every exponent and mantissa bit set."""
        return (1 << self._magnitude_bits) - 1

    @property
    def _min_exponent(self) -> int:
        """The exponent of the lowest binade: 1 - bias with subnormals, -bias without."""
        return (1 if self.subnormals else 0) - self.bias

    @property
    def max_code(self) -> int:
        """The code of the largest finite value (positive, sign bit clear)."""
        if self.special == "ieee":  # the all-ones exponent is taken by inf and NaN
            return self._all_ones - (1 << self.mantissa_bits)
        if self.special == "fn":    # only the all-ones code is taken, by NaN
            return self._all_ones - 1
        return self._all_ones       # fnuz and none: NaN (if any) lives where -0 would

    @property
    def nan_code(self) -> int | None:
        """The NaN this format's encode returns (positive, quiet), or None without NaN."""
        if self.special == "ieee":  # exponent all ones, top mantissa bit set: quiet NaN
            return (self.max_code + 1) | (1 << (self.mantissa_bits - 1))
        if self.special == "fn":
            return self._all_ones
        if self.special == "fnuz":
            return self._sign_bit
        return None

    # ----- the values ------------------------------------------------------------------

    @property
    def max(self) -> float:
        """The largest finite value."""
        return self.decode(self.max_code)

    @property
    def min(self) -> float:
        """The most negative finite value (the smallest value of an unsigned format)."""
        return -self.max if self.signed else self.decode(0)

    @property
    def max_exponent(self) -> int:
        """floor(log2(max)): the OCP Microscaling spec's emax of an element format."""
        return (self.max_code >> self.mantissa_bits) - self.bias

    @property
    def min_normal(self) -> float:
        """The smallest positive value with a full significand (``torch.finfo().tiny``)."""
        return math.ldexp(1.0, self._min_exponent)

    @property
    def min_subnormal(self) -> float | None:
        """The smallest positive value; None where there are no subnormals."""
        if not self.subnormals or self.mantissa_bits == 0:
            return None
        return math.ldexp(1.0, self._min_exponent - self.mantissa_bits)

    @property
    def eps(self) -> float:
        """The distance from 1 to the next larger value: 2^-M."""
        return math.ldexp(1.0, -self.mantissa_bits)

    @property
    def nan_count(self) -> int:
        """How many codes are NaN."""
        signs = 2 if self.signed else 1
        return {"ieee": signs * ((1 << self.mantissa_bits) - 1), "fn": signs,
                "fnuz": 1, "none": 0}[self.special]

    @property
    def inf_count(self) -> int:
        return 2 if self.special == "ieee" else 0

    @property
    def finite_values(self) -> int:
        """How many codes are finite numbers (+0 and -0 count as two).

        >>> FP8_E4M3FN.finite_values, FP8_E4M3FNUZ.finite_values, FP8_E5M2.finite_values
        (254, 255, 248)
        """
        return (1 << self.total_bits) - self.nan_count - self.inf_count

    # ----- codes <-> values ------------------------------------------------------------

    def _check_code(self, code: int) -> int:
        code = int(code)
        if not 0 <= code < 1 << self.total_bits:
            raise ValueError(f"{self.name} codes are 0 to {(1 << self.total_bits) - 1}, "
                             f"not {code}")
        return code

    def is_nan(self, code: int) -> bool:
        code = self._check_code(code)
        magnitude = code & self._all_ones
        if self.special == "ieee":  # past +inf, the all-ones exponent with mantissa 0
            return magnitude > self.max_code + 1
        if self.special == "fn":
            return magnitude == self._all_ones
        if self.special == "fnuz":
            return code == self._sign_bit
        return False

    def is_inf(self, code: int) -> bool:
        code = self._check_code(code)
        return self.special == "ieee" and code & self._all_ones == self.max_code + 1

    def decode(self, code: int) -> float:
        """The value of a bit pattern, exactly (NaN as ``nan``, infinities as ``±inf``).

        >>> [FP8_E5M2.decode(c) for c in (0x7B, 0x7C, 0xFC, 0x01)]
        [57344.0, inf, -inf, 1.52587890625e-05]
        >>> FP8_E4M3FNUZ.decode(0x80), FP8_E4M3FN.decode(0x80)
        (nan, -0.0)
        """
        code = self._check_code(code)
        if self.is_nan(code):
            return math.nan
        negative = bool(code & self._sign_bit)
        if self.is_inf(code):
            return -math.inf if negative else math.inf
        exponent_field = (code & self._all_ones) >> self.mantissa_bits
        mantissa = code & ((1 << self.mantissa_bits) - 1)
        if exponent_field == 0 and self.subnormals:  # no hidden 1
            value = math.ldexp(mantissa, self._min_exponent - self.mantissa_bits)
        else:
            significand = (1 << self.mantissa_bits) + mantissa
            value = math.ldexp(significand, exponent_field - self.bias - self.mantissa_bits)
        return -value if negative else value

    def encode(self, x: float, saturate: bool = False) -> int:
        """The code nearest to *x*, ties to even (the cast torch and ml_dtypes do).

        *x* is taken as a Python float (binary64). Out of range:

        - ``saturate=True`` clamps every non-NaN input, ±inf included, to ±max first
          (``torch.clamp(x, -max, max)`` then the cast; PTX ``cvt ... .satfinite``);
        - otherwise ``ieee`` formats overflow to ±inf and ``fn``/``fnuz`` to NaN;
        - formats without inf and NaN (fp6, fp4) have nowhere else to go and always
          saturate, as ml_dtypes does.

        NaN becomes the format's quiet NaN; formats with no NaN refuse it (ValueError).
        A value that rounds to zero keeps its sign, except in ``fnuz`` (no -0). E8M0 has
        no zero and no sign: tiny values become 2^-127 and zero or negatives NaN (as in
        ml_dtypes; torch gives 2^-127 for 0 and drops the sign). Between 2^-127 and
        1.5 x 2^-127 this rounds to the nearer 2^-127, where torch and ml_dtypes both give
        2^-126; from 2^-126 up all three agree.

        >>> FP8_E4M3FN.encode(464.0), FP8_E4M3FN.encode(465.0), FP8_E4M3FN.encode(465.0, True)
        (126, 127, 126)
        >>> FP8_E5M2.encode(1e6), FP8_E5M2.encode(1e6, saturate=True), FP4_E2M1.encode(1e6)
        (124, 123, 7)
        >>> [FP4_E2M1.decode(FP4_E2M1.encode(x)) for x in (0.25, 0.75, 2.5, 5.0, -0.1)]
        [0.0, 1.0, 2.0, 4.0, -0.0]
        """
        x = float(x)
        if math.isnan(x):
            if self.nan_code is None:
                raise ValueError(f"{self.name} has no NaN")
            return self.nan_code
        negative = math.copysign(1.0, x) < 0
        if not self.signed and (negative or x == 0):
            if self.nan_code is None:
                raise ValueError(f"{self.name} holds positive numbers only, not {x}")
            return self.nan_code
        magnitude = abs(x)
        if saturate or self.special == "none":
            magnitude = min(magnitude, self.max)
        if math.isinf(magnitude):
            code = self._overflow_code()
        else:
            code = self._round(magnitude)
            if code > self.max_code:
                code = self._overflow_code()
        if code == self.nan_code or not negative:
            return code
        if code == 0 and self.special == "fnuz":  # no -0: a negative that rounds to 0 is +0
            return 0
        return code | self._sign_bit

    def _overflow_code(self) -> int:
        return self.max_code + 1 if self.special == "ieee" else self.nan_code

    def _round(self, magnitude: float) -> int:
        """The magnitude code of a finite ``magnitude >= 0``, rounded to nearest even.

        In the binade of exponent e the values are n * 2^(e - M) with integer n; n may
        round up to 2^(M+1), which is the first value of the next binade and, because the
        codes of a binade follow one another, also the next code.
        """
        if magnitude == 0:
            return 0
        M = self.mantissa_bits
        exponent = max(math.frexp(magnitude)[1] - 1, self._min_exponent)
        n = round(math.ldexp(magnitude, M - exponent))  # exact scaling; round() ties to even
        if self.subnormals:
            return ((exponent - self._min_exponent) << M) + n
        n = max(n, 1 << M)  # no subnormals, no zero: below the smallest value is that value
        return ((exponent - self._min_exponent) << M) + n - (1 << M)

    def values(self) -> list[float]:
        """Every code's value, indexed by code (formats of at most 8 bits).

        >>> len(FP8_E4M3FN.values()), FP6_E2M3.values()[31], E8M0.values()[127]
        (256, 7.5, 1.0)
        """
        if self.total_bits > 8:
            raise ValueError(f"{self.name} has {1 << self.total_bits:,} codes: "
                             "values() lists formats of at most 8 bits")
        return [self.decode(code) for code in range(1 << self.total_bits)]

    def bits(self, code: int) -> str:
        """A code's bits, grouped as in :attr:`layout`.

        >>> FP8_E4M3FN.bits(0x7E)
        '0 1111 110'
        """
        code = self._check_code(code)
        text = format(code, f"0{self.total_bits}b")
        widths = ([1] if self.signed else []) + [self.exponent_bits, self.mantissa_bits]
        groups, start = [], 0
        for width in widths:
            groups.append(text[start:start + width])
            start += width
        return " ".join(g for g in groups if g)

    def special_values(self) -> list[str]:
        """The zeros, infinities and NaNs, one line each, with their codes.

        >>> for line in FP8_E4M3FNUZ.special_values(): print(line)
        zero: 0x00 (no -0)
        no infinities
        NaN: 0x80 (the code -0 would have)
        """
        def hexcode(code: int) -> str:
            return f"0x{code:0{(self.total_bits + 3) // 4}X}"

        lines = []
        if not self.signed and not self.subnormals:
            lines.append(f"no zero: {hexcode(0)} is the smallest value, 2^{self._min_exponent}")
        elif self.special == "fnuz":
            lines.append(f"zero: {hexcode(0)} (no -0)")
        else:
            lines.append(f"zeros: +0 {hexcode(0)}, -0 {hexcode(self._sign_bit)}")
        if self.special == "ieee":
            inf = self.max_code + 1
            lines.append(f"infinities: +inf {hexcode(inf)}, -inf {hexcode(inf | self._sign_bit)}")
            lines.append(f"NaN: {self.nan_count:,} codes, the all-ones exponent with a nonzero "
                         f"mantissa (quiet NaN {hexcode(self.nan_code)})")
        else:
            lines.append("no infinities")
            if self.special == "fn":
                codes = [self._all_ones] + ([self._all_ones | self._sign_bit] if self.signed
                                            else [])
                lines.append("NaN: " + ", ".join(map(hexcode, codes)))
            elif self.special == "fnuz":
                lines.append(f"NaN: {hexcode(self._sign_bit)} (the code -0 would have)")
            else:
                lines.append("no NaN")
        return lines

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "bits": self.total_bits,
                "signed": self.signed, "exponent_bits": self.exponent_bits,
                "mantissa_bits": self.mantissa_bits, "bias": self.bias,
                "special": self.special, "subnormals": self.subnormals,
                "max": self.max, "min": self.min, "min_normal": self.min_normal,
                "min_subnormal": self.min_subnormal, "eps": self.eps,
                "finite_values": self.finite_values, "nan_codes": self.nan_count,
                "layout": self.layout, "description": self.description,
                "torch": self.torch_name, "ml_dtypes": self.ml_dtypes_name}


# ----- integers --------------------------------------------------------------------------

@dataclass(frozen=True)
class IntFormat:
    """A two's complement integer: not a float. A uniform grid of step 1 from min to max,
    with no exponent, no subnormals, no infinities and no NaN; quantizing to int8 or int4
    means choosing a scale that maps a tensor's range onto this grid.

    >>> INT4.min, INT4.max, INT4.step, INT4.finite_values
    (-8, 7, 1, 16)
    """

    name: str
    total_bits: int
    description: str = ""

    kind = "int"
    step = 1
    eps = 1  # the distance from 1 to the next value, as for a float

    @property
    def max(self) -> int:
        return (1 << (self.total_bits - 1)) - 1

    @property
    def min(self) -> int:
        return -(1 << (self.total_bits - 1))

    @property
    def finite_values(self) -> int:
        return 1 << self.total_bits

    @property
    def layout(self) -> str:
        return "S" + "I" * (self.total_bits - 1)

    def decode(self, code: int) -> int:
        """Two's complement: the top bit weighs -2^(bits-1).

        >>> INT8.decode(0x7F), INT8.decode(0x80), INT8.decode(0xFF)
        (127, -128, -1)
        """
        code = int(code)
        if not 0 <= code < 1 << self.total_bits:
            raise ValueError(f"{self.name} codes are 0 to {(1 << self.total_bits) - 1}, "
                             f"not {code}")
        return code - (1 << self.total_bits) if code >> (self.total_bits - 1) else code

    def values(self) -> list[int]:
        """Every code's value, indexed by code."""
        return [self.decode(code) for code in range(1 << self.total_bits)]

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "bits": self.total_bits, "signed": True,
                "exponent_bits": None, "mantissa_bits": None, "bias": None,
                "max": self.max, "min": self.min, "min_normal": None, "min_subnormal": None,
                "eps": self.eps, "step": self.step, "finite_values": self.finite_values,
                "layout": self.layout, "description": self.description}


# ----- the formats -----------------------------------------------------------------------

FP64 = FloatFormat("fp64", 11, 52, 1023, "ieee", description="IEEE 754 binary64 (double)",
                   torch_name="float64")
FP32 = FloatFormat("fp32", 8, 23, 127, "ieee", description="IEEE 754 binary32 (single)",
                   torch_name="float32")
# TF32 is not stored: with torch.backends.cuda.matmul.allow_tf32 tensor cores read fp32
# inputs at 10 mantissa bits. encode() rounds to nearest even; the hardware's own
# conversion of the inputs need not round the same way.
TF32 = FloatFormat(
    "tf32", 8, 10, 127, "ieee",
    description="TensorFloat-32: how tensor cores multiply fp32 inputs when TF32 is allowed; "
                "fp32 range, 10 mantissa bits; a matmul mode, not a storage type")
FP16 = FloatFormat("fp16", 5, 10, 15, "ieee", description="IEEE 754 binary16 (half)",
                   torch_name="float16")
BF16 = FloatFormat("bf16", 8, 7, 127, "ieee",
                   description="bfloat16: fp32's exponent with 7 mantissa bits",
                   torch_name="bfloat16", ml_dtypes_name="bfloat16")
FP8_E4M3FN = FloatFormat(
    "fp8-e4m3fn", 4, 3, 7, "fn",
    description="OCP FP8 E4M3: weights and activations in fp8 (NVIDIA Hopper, Blackwell)",
    torch_name="float8_e4m3fn", ml_dtypes_name="float8_e4m3fn")
FP8_E5M2 = FloatFormat(
    "fp8-e5m2", 5, 2, 15, "ieee",
    description="OCP FP8 E5M2: IEEE-style (fp16 with 2 mantissa bits), for gradients",
    torch_name="float8_e5m2", ml_dtypes_name="float8_e5m2")
FP8_E4M3FNUZ = FloatFormat(
    "fp8-e4m3fnuz", 4, 3, 8, "fnuz",
    description="E4M3 with bias 8, one NaN and no -0 (Graphcore; AMD MI300)",
    torch_name="float8_e4m3fnuz", ml_dtypes_name="float8_e4m3fnuz")
FP8_E5M2FNUZ = FloatFormat(
    "fp8-e5m2fnuz", 5, 2, 16, "fnuz",
    description="E5M2 with bias 16, one NaN and no -0 (Graphcore; AMD MI300)",
    torch_name="float8_e5m2fnuz", ml_dtypes_name="float8_e5m2fnuz")
FP6_E3M2 = FloatFormat("fp6-e3m2", 3, 2, 3, "none",
                       description="OCP Microscaling FP6 E3M2 element",
                       ml_dtypes_name="float6_e3m2fn")
FP6_E2M3 = FloatFormat("fp6-e2m3", 2, 3, 1, "none",
                       description="OCP Microscaling FP6 E2M3 element",
                       ml_dtypes_name="float6_e2m3fn")
FP4_E2M1 = FloatFormat("fp4-e2m1", 2, 1, 1, "none",
                       description="OCP Microscaling FP4 E2M1 element (MXFP4 and NVFP4)",
                       ml_dtypes_name="float4_e2m1fn")
E8M0 = FloatFormat("e8m0", 8, 0, 127, "fn", signed=False, subnormals=False,
                   description="OCP Microscaling E8M0 scale: a power of two, 2^-127 to 2^127",
                   torch_name="float8_e8m0fnu", ml_dtypes_name="float8_e8m0fnu")
INT8 = IntFormat("int8", 8, "8-bit two's complement integer (not a float)")
INT4 = IntFormat("int4", 4, "4-bit two's complement integer (not a float)")

FORMATS: dict[str, FloatFormat | IntFormat] = {f.name: f for f in (
    FP64, FP32, TF32, FP16, BF16, FP8_E4M3FN, FP8_E5M2, FP8_E4M3FNUZ, FP8_E5M2FNUZ,
    FP6_E3M2, FP6_E2M3, FP4_E2M1, E8M0, INT8, INT4)}


# ----- block formats ---------------------------------------------------------------------

@dataclass(frozen=True)
class BlockFormat:
    """Elements of a narrow format sharing one scale per block (and, for NVFP4, one fp32
    scale per tensor). A value is ``element * block scale [* tensor scale]``.

    Blocks run along the last axis; a last axis that is not a multiple of the block size
    is padded with zeros, which are stored (and counted by :meth:`storage_bits`) and
    dropped again by :meth:`BlockQuantized.dequantize`. The arithmetic is float64.

    MX (the OCP Microscaling Formats (MX) Specification v1.0's conversion from scalar
    floats; the scale's edge cases as in microsoft/microxcaling, the spec's reference code):

    - block scale X = 2^(floor(log2(amax)) - emax), emax = floor(log2(element max)). The
      floor puts the block's largest element in the element's top binade
      [2^emax, 2^(emax+1)), which can pass its max (E4M3: 448 < 512): it saturates.
      Libraries offer other roundings of the scale (torchao: FLOOR, which this is, CEIL,
      EVEN, RCEIL); floor is the spec's.
    - the exponent is clamped to E8M0's range: below -127 it is -127 (an all-zero block
      gets 2^-127 and zeros); above 127 the scale is NaN.
    - elements are x / X rounded to nearest even, saturating (the spec clamps normals
      past the element's max).

    NVFP4 (NVIDIA's two-level scaling):

    - tensor scale = amax / (448 * 6), stored as fp32 (448 and 6: the E4M3 and E2M1 max);
    - block scale = block amax / (6 * tensor scale), cast to E4M3 (nearest even,
      saturating), so the block's largest element maps near 6; a block scale that rounds
      to 0 stores zeros;
    - elements = x / (block scale * tensor scale), E2M1, nearest even, saturating.

    NaN and ±inf: a block holding either gets its scale format's NaN (E8M0 0xFF, E4M3
    0x7F) and zeros as elements, and dequantizes to NaN, as the MX spec has it for a NaN
    scale; the other blocks are unaffected (NVFP4's tensor amax is over finite values).

    Error: with s the element's scale (block scale, times the tensor scale for NVFP4) and
    r = |x| / s, an element with r <= element max comes back within half an element ulp,
    ``|x - x̂| <= s * 2^(max(floor(log2 r), 1 - bias) - M - 1)``; past the max it is
    ``±max * s``. For MX that saturation costs less than s * (2^(emax+1) - max): two ulps
    of the top binade for E4M3, one for the others. For NVFP4 with a normal E4M3 block
    scale (within 2^-4 of exact) r stays under 6.4, so at most 0.4 * s.

    >>> MXFP8_E4M3.bits_per_element, MXFP6_E3M2.bits_per_element
    (8.25, 6.25)
    >>> NVFP4.storage_bits(4096) / 4096  # 4.5 plus the fp32 tensor scale spread over 4096
    4.5078125
    """

    name: str
    element: FloatFormat
    scale: FloatFormat
    block_size: int
    tensor_scale: bool = False
    description: str = ""

    kind = "block"

    @property
    def bits_per_element(self) -> float:
        """Element bits plus the block scale's share (the tensor scale is not included)."""
        return self.element.total_bits + self.scale.total_bits / self.block_size

    def storage_bits(self, n: int) -> int:
        """Bits to store *n* elements along one axis: padded blocks, scales, tensor scale."""
        blocks = -(-n // self.block_size)
        per_block = self.block_size * self.element.total_bits + self.scale.total_bits
        return blocks * per_block + (FP32.total_bits if self.tensor_scale else 0)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "element": self.element.name,
                "scale": self.scale.name, "block_size": self.block_size,
                "tensor_scale": "fp32" if self.tensor_scale else None,
                "bits_per_element": self.bits_per_element, "description": self.description}

    def quantize(self, x) -> BlockQuantized:
        """Quantize an array along its last axis.

        >>> q = MXFP8_E4M3.quantize(np.arange(40.0))
        >>> q.codes.shape, q.scales.tolist()  # 2^(floor(log2(31)) - 8), 2^(floor(log2(39)) - 8)
        ((2, 32), [0.0625, 0.125])
        """
        x = np.asarray(x, dtype=np.float64)
        shape = x.shape
        x = np.atleast_1d(x)
        pad = -x.shape[-1] % self.block_size
        padded = np.concatenate([x, np.zeros(x.shape[:-1] + (pad,))], axis=-1)
        blocks = padded.reshape(x.shape[:-1] + (-1, self.block_size))
        if self.scale is E8M0:
            return self._quantize_mx(blocks, shape)
        return self._quantize_nvfp4(blocks, shape)

    def _quantize_mx(self, blocks: np.ndarray, shape: tuple) -> BlockQuantized:
        """MX: one E8M0 power of two per block (the class docstring has the rules)."""
        emax = self.element.max_exponent
        amax = np.max(np.abs(blocks), axis=-1)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(amax)
        # floor(log2(amax)) exactly: frexp gives amax = f * 2^k with f in [0.5, 1)
        exponent = np.frexp(np.where(finite & (amax > 0), amax, 1.0))[1] - 1 - emax
        exponent = np.maximum(np.where(amax > 0, exponent, -127), -127)  # E8M0's floor
        nan_scale = ~finite | (exponent > 127)
        scale_codes = np.where(nan_scale, E8M0.nan_code, exponent + E8M0.bias).astype(np.uint8)
        # x / X exactly (X is a power of two); a NaN-scale block stores zeros
        exponent = np.where(nan_scale, 0, exponent)[..., None]
        scaled = np.ldexp(np.where(nan_scale[..., None], 0.0, blocks), -exponent)
        return BlockQuantized(self, shape, _encode_array(self.element, scaled), scale_codes)

    def _quantize_nvfp4(self, blocks: np.ndarray, shape: tuple) -> BlockQuantized:
        """NVFP4: an fp32 tensor scale, an E4M3 scale per block (see the class docstring)."""
        element_max, scale_max = self.element.max, self.scale.max
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(blocks).all(axis=-1)
        amax_blocks = np.max(np.abs(np.where(finite[..., None], blocks, 0.0)), axis=-1,
                             initial=0.0)
        amax = float(np.max(amax_blocks, initial=0.0))
        tensor_scale = float(np.float32(amax / (scale_max * element_max)))
        ratio = amax_blocks / (element_max * tensor_scale) if tensor_scale else amax_blocks
        scale_codes = np.where(finite, _encode_array(self.scale, ratio), self.scale.nan_code)
        block_scale = np.array(self.scale.values())[scale_codes]
        step = np.where(finite, block_scale, 0.0) * tensor_scale  # 0: the block stores zeros
        usable = (step > 0)[..., None]
        scaled = np.where(usable, blocks / np.where(usable, step[..., None], 1.0), 0.0)
        return BlockQuantized(self, shape, _encode_array(self.element, scaled),
                              scale_codes.astype(np.uint8), tensor_scale)


def _encode_array(fmt: FloatFormat, values: np.ndarray) -> np.ndarray:
    """Element by element with :meth:`FloatFormat.encode`, saturating: slow, and exact."""
    codes = [fmt.encode(v, saturate=True) for v in values.ravel().tolist()]
    return np.array(codes, dtype=np.uint8).reshape(values.shape)


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare to one bool
class BlockQuantized:
    """A tensor in a block format: element codes in blocks, one scale code per block.

    ``codes`` has shape ``shape[:-1] + (blocks, block_size)`` (zero-padded) and
    ``scale_codes`` ``shape[:-1] + (blocks,)``, both uint8; ``tensor_scale`` is NVFP4's
    per-tensor fp32 scale (None for MX).
    """

    format: BlockFormat
    shape: tuple[int, ...]
    codes: np.ndarray
    scale_codes: np.ndarray
    tensor_scale: float | None = None

    @property
    def scales(self) -> np.ndarray:
        """Each block's scale as a number (times ``tensor_scale`` for NVFP4)."""
        table = np.array(self.format.scale.values())
        tensor_scale = 1.0 if self.tensor_scale is None else self.tensor_scale
        return table[self.scale_codes] * tensor_scale

    def dequantize(self) -> np.ndarray:
        """The values, float64, in the original shape (padding dropped)."""
        table = np.array(self.format.element.values())
        values = table[self.codes] * self.scales[..., None]
        n = self.shape[-1] if self.shape else 1
        values = values.reshape(values.shape[:-2] + (-1,))[..., :n]
        return values.reshape(self.shape)


MXFP8_E4M3 = BlockFormat("mxfp8-e4m3", FP8_E4M3FN, E8M0, 32,
                         description="OCP MX: 32 E4M3 elements share an E8M0 scale")
MXFP8_E5M2 = BlockFormat("mxfp8-e5m2", FP8_E5M2, E8M0, 32,
                         description="OCP MX: 32 E5M2 elements share an E8M0 scale")
MXFP6_E3M2 = BlockFormat("mxfp6-e3m2", FP6_E3M2, E8M0, 32,
                         description="OCP MX: 32 E3M2 elements share an E8M0 scale")
MXFP6_E2M3 = BlockFormat("mxfp6-e2m3", FP6_E2M3, E8M0, 32,
                         description="OCP MX: 32 E2M3 elements share an E8M0 scale")
MXFP4 = BlockFormat("mxfp4", FP4_E2M1, E8M0, 32,
                    description="OCP MX: 32 E2M1 elements share an E8M0 scale")
NVFP4 = BlockFormat("nvfp4", FP4_E2M1, FP8_E4M3FN, 16, tensor_scale=True,
                    description="NVIDIA: 16 E2M1 elements share an E4M3 scale, "
                                "plus one fp32 scale per tensor")

BLOCK_FORMATS: dict[str, BlockFormat] = {f.name: f for f in (
    MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3, MXFP4, NVFP4)}


def get(name: str) -> FloatFormat | IntFormat | BlockFormat:
    """A format by name (``_`` and ``-`` alike, any case; torch and ml_dtypes names too).

    >>> get("FP8_E4M3FN") is get("float8_e4m3fn") is FP8_E4M3FN
    True
    >>> get("fp9")
    Traceback (most recent call last):
    ...
    modelnotes.formats.UnknownFormatError: unknown format 'fp9'; known: fp64, fp32, ...
    """
    key = name.strip().lower().replace("_", "-")
    for fmt in (*FORMATS.values(), *BLOCK_FORMATS.values()):
        aliases = {getattr(fmt, "torch_name", None), getattr(fmt, "ml_dtypes_name", None)}
        if key == fmt.name or key in {a.replace("_", "-") for a in aliases if a}:
            return fmt
    known = ", ".join([*FORMATS, *BLOCK_FORMATS])
    raise UnknownFormatError(f"unknown format {name!r}; known: {known}")
