"""Float formats and mixed precision, measured: matmul error and speed, autocast, loss scaling,
master weights, and the bytes per parameter of each training recipe.

Everything here runs on the device it is given: on a CUDA GPU the book's pages measure the
GPU; on a CPU (the preview) they measure what the CPU can do and mark the rest, TF32 and
FP8 throughput, as not measured.

Unit roundoff (half the gap between 1 and the next number) of each format:

>>> {name: unit_roundoff(name) for name in ("fp32", "tf32", "bf16", "fp16", "fp8")}
{'fp32': 5.960464477539063e-08, 'tf32': 0.00048828125, 'bf16': 0.00390625, 'fp16': 0.00048828125, 'fp8': 0.0625}

The training recipes, in bytes per parameter (ZeRO's mixed precision with Adam is 16):

>>> [(key, r.total) for key, r in RECIPES.items()]
[('fp32', 16), ('amp', 16), ('mixed', 16), ('bf16', 8), ('deepseek-v3', 12)]
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

# ----- formats ----------------------------------------------------------------------------------

# Storage dtype and significand bits (the stored mantissa plus the implicit leading 1) of each
# precision the book compares. TF32 is not a storage dtype: it is how tensor cores read fp32.
SIGNIFICAND_BITS = {"fp64": 53, "fp32": 24, "tf32": 11, "bf16": 8, "fp16": 11, "fp8": 4}
DTYPES = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32,
          "bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.float8_e4m3fn}


def unit_roundoff(fmt: str) -> float:
    """Half the gap between 1 and the next representable number: the largest relative error of
    rounding to nearest, ``2**-p`` for *p* significand bits."""
    return 2.0 ** -SIGNIFICAND_BITS[fmt]


# ----- matrix products in each precision -----------------------------------------------------

# The ways this module multiplies two fp32 matrices. The fp8 ones quantize both inputs to
# e4m3 and call torch._scaled_mm with bf16 output: "fp8" with one scale per tensor, "fp8-rowwise"
# with one per row of a and one per column of b, "fp8-fast" per tensor with cuBLAS's fast
# (lower precision) accumulation.
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp8-rowwise", "fp8-fast")
FP8_MAX = 448.0  # largest finite float8_e4m3fn
NEEDS_CUDA = "not measured: needs a CUDA GPU"


def needs_cuda(precision: str, *, timing: bool = False) -> bool:
    """True when *precision* can only be run on a CUDA GPU (all fp8 timings do: the CPU path
    of ``_scaled_mm`` is an emulation, correct but not a product a CPU would use)."""
    return precision in ("tf32", "fp8-fast") or (timing and precision.startswith("fp8"))


@contextlib.contextmanager
def tf32_matmul(enabled: bool):
    """Let fp32 matrix products use TF32 tensor cores (or not) inside the block, then restore."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


def quantize_fp8(a: torch.Tensor, b: torch.Tensor, rowwise: bool = False):
    """Scale and cast a (M, K) and b (K, N) to e4m3, the way ``torch._scaled_mm`` wants them.

    Returns ``(a8, b8, scale_a, scale_b)`` with ``a ≈ a8 * scale_a`` and ``b ≈ b8 * scale_b``.
    Each scale maps the largest magnitude of its group onto 448, e4m3's largest value: per tensor
    the scales are fp32 scalars; row-wise ``scale_a`` is (M, 1) and ``scale_b`` is (1, N), both
    fp32. ``a8`` is row-major and ``b8`` column-major, as cuBLAS requires.

    >>> a8, b8, sa, sb = quantize_fp8(torch.ones(16, 32), 2 * torch.ones(32, 16), rowwise=True)
    >>> a8.dtype, tuple(sa.shape), tuple(sb.shape), b8.stride(), round(sb[0, 0].item() * 448, 6)
    (torch.float8_e4m3fn, (16, 1), (1, 16), (1, 32), 2.0)
    """
    if rowwise:
        amax_a = a.abs().amax(dim=1, keepdim=True)  # (M, 1)
        amax_b = b.abs().amax(dim=0, keepdim=True)  # (1, N)
    else:
        amax_a, amax_b = a.abs().amax(), b.abs().amax()
    scale_a = (amax_a.float() / FP8_MAX).clamp(min=1e-12)
    scale_b = (amax_b.float() / FP8_MAX).clamp(min=1e-12)
    a8 = (a / scale_a).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)  # (M, K) row-major
    b8 = (b / scale_b).t().contiguous().clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn).t()  # (K, N) column-major
    return a8, b8, scale_a.contiguous(), scale_b.contiguous()


def prepare(a: torch.Tensor, b: torch.Tensor, precision: str):
    """The product a @ b in *precision*, split into what is done once and what is timed.

    Returns ``(run, a_seen, b_seen)``: ``run()`` computes the product (only the product: casts and
    quantization happen here, before), and ``a_seen``, ``b_seen`` are the inputs as the product
    sees them after rounding, in fp64 (None for TF32, whose rounding happens inside the tensor
    core and cannot be read back).
    """
    if precision in ("fp32", "tf32"):
        use_tf32 = precision == "tf32"

        def run():
            with tf32_matmul(use_tf32):
                return a @ b
        return run, (None if use_tf32 else a.double()), (None if use_tf32 else b.double())
    if precision in ("bf16", "fp16"):
        a_low, b_low = a.to(DTYPES[precision]), b.to(DTYPES[precision])
        return (lambda: a_low @ b_low), a_low.double(), b_low.double()
    if precision.startswith("fp8"):
        a8, b8, sa, sb = quantize_fp8(a, b, rowwise=precision == "fp8-rowwise")
        fast = precision == "fp8-fast"

        def run():
            return torch._scaled_mm(a8, b8, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16,
                                    use_fast_accum=fast)
        return run, a8.double() * sa.double(), b8.double() * sb.double()
    raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")


_ROUNDED = {  # (format the inputs are rounded to, format the output is rounded to)
    "fp32": (None, None), "tf32": ("tf32", None), "bf16": ("bf16", "bf16"),
    "fp16": ("fp16", "fp16"), "fp8": ("fp8", "bf16"), "fp8-rowwise": ("fp8", "bf16"),
    "fp8-fast": ("fp8", "bf16")}


def predicted_error(precision: str) -> float:
    """Relative (Frobenius) error of a product of random matrices that rounding alone predicts.

    A rounding to nearest with unit roundoff u has mean square relative error u²/(8 ln 2) on
    random data; the product rounds both inputs and, except for fp32 and TF32, its output, so
    the prediction is sqrt((2 u_in² + u_out²) / (8 ln 2)), whatever the size. fp32 rounds
    nothing on the way in or out: its error is all accumulation, and the prediction is 0.

    >>> round(predicted_error("bf16") / unit_roundoff("bf16"), 4)
    0.7355
    """
    inputs, output = _ROUNDED[precision]
    variance = (2 * unit_roundoff(inputs) ** 2 if inputs else 0.0) + (
        unit_roundoff(output) ** 2 if output else 0.0)
    return math.sqrt(variance / (8 * math.log(2)))


def worst_case_bound(precision: str, k: int) -> float | None:
    """First-order bound on max_ij |C' - C|_ij / (|A| |B|)_ij: the inputs' and output's rounding
    plus k fp32 additions (``k * 2**-24``). None for fp8-fast, whose accumulator is not fp32.

    >>> worst_case_bound("fp32", 1024) == 1024 * 2**-24
    True
    """
    if precision == "fp8-fast":
        return None
    inputs, output = _ROUNDED[precision]
    return ((2 * unit_roundoff(inputs) if inputs else 0.0) + (unit_roundoff(output) if output else 0.0)
            + k * unit_roundoff("fp32"))


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _free(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class MatmulError:
    """How far one (n, n) @ (n, n) product in one precision is from the fp64 product."""

    precision: str
    n: int
    relative: float | None  # ||C' - C||_F / ||C||_F
    componentwise: float | None  # max_ij |C' - C|_ij / (|A| |B|)_ij
    arithmetic: float | None  # relative error against the exact product of the rounded inputs
    note: str = ""  # why a number is missing: NEEDS_CUDA, "OOM"


def random_inputs(n: int, device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, n) fp32 matrices of standard normal entries, the same for a seed on any device."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=generator)  # (n, n), drawn on the CPU: identical everywhere
    b = torch.randn(n, n, generator=generator)
    return a.to(device), b.to(device)


def product_error(a: torch.Tensor, b: torch.Tensor, precision: str) -> MatmulError:
    """Multiply fp32 a (M, K) and b (K, N) in *precision* and compare with the fp64 product.

    With exactly representable inputs fp32 is exact and bf16 is off by its rounding alone:

    >>> a, b = torch.tensor([[1 + 2**-9, 0.0]]), torch.tensor([[1.0], [0.0]])
    >>> product_error(a, b, "fp32").relative, product_error(a, b, "bf16").relative == 2**-9 / (1 + 2**-9)
    (0.0, True)
    """
    run, a_seen, b_seen = prepare(a, b, precision)
    result = run().double()  # (M, N)
    a64, b64 = a.double(), b.double()
    exact = a64 @ b64  # (M, N)
    scale = a64.abs() @ b64.abs()  # (M, N): the size of each dot product's terms
    error = result - exact
    arithmetic = None
    if a_seen is not None:
        exact_of_rounded = a_seen @ b_seen
        arithmetic = ((result - exact_of_rounded).norm() / exact_of_rounded.norm()).item()
    return MatmulError(precision, a.shape[1], (error.norm() / exact.norm()).item(),
                       (error.abs() / scale.clamp(min=1e-300)).max().item(), arithmetic)


def matmul_errors(sizes, device, precisions=PRECISIONS, seed: int = 0) -> list[MatmulError]:
    """Error of every precision at every size n, for (n, n) @ (n, n) standard normal inputs.

    A precision the device cannot run gets a row with ``note`` set and no numbers; a size that
    runs out of memory gets ``note="OOM"``.
    """
    device = torch.device(device)
    rows = []
    for n in sizes:
        try:
            a, b = random_inputs(n, device, seed)
        except (RuntimeError, torch.OutOfMemoryError) as error:
            if not _is_oom(error):
                raise
            rows += [MatmulError(p, n, None, None, None, "OOM") for p in precisions]
            continue
        for precision in precisions:
            if device.type != "cuda" and needs_cuda(precision):
                rows.append(MatmulError(precision, n, None, None, None, NEEDS_CUDA))
                continue
            try:
                rows.append(product_error(a, b, precision))
            except (RuntimeError, NotImplementedError, torch.OutOfMemoryError) as error:
                if _is_oom(error):
                    _free(device)
                    rows.append(MatmulError(precision, n, None, None, None, "OOM"))
                elif device.type != "cuda" and precision.startswith("fp8"):
                    # older PyTorch versions have no CPU _scaled_mm
                    rows.append(MatmulError(precision, n, None, None, None, NEEDS_CUDA))
                else:
                    raise
        del a, b
        _free(device)
    return rows


@dataclass(frozen=True)
class MatmulRate:
    """Throughput of (n, n) @ (n, n) in one precision: 2 n^3 floating-point operations a product."""

    precision: str
    n: int
    tflops: float | None  # median over repeats, TFLOP/s
    best_tflops: float | None  # fastest repeat
    note: str = ""


def time_calls(run: Callable[[], object], device, repeats: int = 5, warmup: int = 2,
               inner: int = 1) -> list[float]:
    """Seconds per call of *run*, one number per repeat, each the mean of *inner* back-to-back
    calls; on CUDA timed with events around the queued kernels, elsewhere with a wall clock."""
    device = torch.device(device)
    for _ in range(warmup):
        run()
    seconds = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                run()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1e3 / inner)
    else:
        for _ in range(repeats):
            begin = time.perf_counter()
            for _ in range(inner):
                run()
            seconds.append((time.perf_counter() - begin) / inner)
    return seconds


def matmul_rates(sizes, device, precisions=PRECISIONS, repeats: int = 5, warmup: int = 2,
                 min_flop: float = 2e11, max_inner: int = 200) -> list[MatmulRate]:
    """TFLOP/s of every precision at every size: median and best of *repeats*.

    Each timed repeat runs enough back-to-back products to add up to *min_flop* (at most
    *max_inner*), so that small products are not timed one launch at a time. Inputs are cast or
    quantized before the clock starts.
    """
    device = torch.device(device)
    rows = []
    for n in sizes:
        flop = 2 * n**3
        inner = max(1, min(max_inner, math.ceil(min_flop / flop)))
        if device.type != "cuda":
            inner = 1
        try:
            a, b = random_inputs(n, device)
        except (RuntimeError, torch.OutOfMemoryError) as error:
            if not _is_oom(error):
                raise
            a = b = None
        for precision in precisions:
            if device.type != "cuda" and needs_cuda(precision, timing=True):
                rows.append(MatmulRate(precision, n, None, None, NEEDS_CUDA))
                continue
            try:
                if a is None:
                    raise torch.OutOfMemoryError("the inputs did not fit")
                run, _, _ = prepare(a, b, precision)
                seconds = time_calls(run, device, repeats, warmup, inner)
                del run
            except (RuntimeError, torch.OutOfMemoryError) as error:
                if not _is_oom(error):
                    raise
                rows.append(MatmulRate(precision, n, None, None, "OOM"))
                _free(device)
                continue
            _free(device)
            rows.append(MatmulRate(precision, n, flop / statistics.median(seconds) / 1e12,
                                   flop / min(seconds) / 1e12))
        del a, b
        _free(device)
    return rows


def measured_ceilings(rates: list[MatmulRate]) -> dict[str, float]:
    """For each precision, the best rate seen at the largest size it was measured at.

    >>> measured_ceilings([MatmulRate("bf16", 1024, 500.0, 600.0), MatmulRate("bf16", 4096, 700.0, 720.0)])
    {'bf16': 720.0}
    """
    ceilings: dict[str, tuple[int, float]] = {}
    for r in rates:
        if r.best_tflops is not None and r.n >= ceilings.get(r.precision, (-1, 0.0))[0]:
            ceilings[r.precision] = (r.n, r.best_tflops)
    return {p: best for p, (_, best) in ceilings.items()}


# NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column, in TFLOP/s. The datasheet gives the
# tensor-core rates "with sparsity"; the dense rate, the one a plain matmul can reach, is half.
H100_SXM_DATASHEET = {"fp32": 67.0, "tf32": 989.0, "bf16": 1979.0, "fp16": 1979.0, "fp8": 3958.0}
H100_SXM_DENSE = {"fp32": 67.0, "tf32": 989.0 / 2, "bf16": 1979.0 / 2, "fp16": 1979.0 / 2,
                  "fp8": 3958.0 / 2}


def vendor_peak(device_name: str, precision: str) -> float | None:
    """The dense peak (TFLOP/s) the datasheet gives for *precision* on this GPU, if on record.

    Only the H100 SXM is on record (its CUDA name ends in "HBM3"; the PCIe card is slower).

    >>> vendor_peak("NVIDIA H100 80GB HBM3", "fp8-rowwise"), vendor_peak("NVIDIA H100 PCIe", "bf16")
    (1979.0, None)
    """
    if "H100" not in device_name or not ("HBM3" in device_name or "SXM" in device_name):
        return None
    return H100_SXM_DENSE.get("fp8" if precision.startswith("fp8") else precision)


# ----- autocast, by running it -------------------------------------------------------------

@dataclass(frozen=True)
class AutocastRow:
    """What one op returns under autocast, fed an fp32 input and a low-precision input."""

    op: str
    from_fp32: torch.dtype
    from_low: torch.dtype
    behaviour: str  # "runs in bf16" (or fp16), "runs in fp32", "keeps its input's dtype"


def _autocast_ops(h: int) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The ops the book inspects, each a function of one activation x (B, S, h)."""
    linear, norm, rms = nn.Linear(h, h), nn.LayerNorm(h), nn.RMSNorm(h)
    conv = nn.Conv1d(h, h, kernel_size=3, padding=1)

    def cross_entropy(x):
        logits = x.flatten(0, -2)  # (B*S, h): h classes
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=x.device))

    return [
        ("Linear", linear),
        ("matmul (x @ xᵀ)", lambda x: x @ x.mT),
        ("Conv1d", lambda x: conv(x.mT)),
        ("scaled_dot_product_attention", lambda x: F.scaled_dot_product_attention(x, x, x)),
        ("LayerNorm", norm),
        ("RMSNorm", rms),
        ("GELU", F.gelu),
        ("softmax", lambda x: x.softmax(-1)),
        ("log_softmax", lambda x: x.log_softmax(-1)),
        ("exp", torch.exp),
        ("sum", torch.sum),
        ("mean", torch.mean),
        ("cross_entropy", cross_entropy),
        ("mse_loss", lambda x: F.mse_loss(x, torch.zeros_like(x))),
        ("x + x", lambda x: x + x),
        ("x + fp32 residual", lambda x: x + torch.ones(x.shape, device=x.device)),
    ]


def autocast_table(device, dtype: torch.dtype = torch.bfloat16, h: int = 16) -> list[AutocastRow]:
    """Run each op of a small block under ``torch.autocast(device.type, dtype)`` and record the
    dtype it returns, once for an fp32 input and once for an input already in *dtype*.

    The classification comes from those two dtypes, not from PyTorch's documentation:

    >>> rows = {r.op: r for r in autocast_table("cpu", torch.bfloat16)}
    >>> rows["Linear"].behaviour, rows["cross_entropy"].behaviour, rows["GELU"].behaviour
    ('runs in bf16', 'runs in fp32', "keeps its input's dtype")
    """
    device = torch.device(device)
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, h, generator=generator).to(device)  # (B, S, h)
    rows = []
    with torch.device(device):
        ops = _autocast_ops(h)
    for op, fn in ops:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RMSNorm notes that mixed dtypes miss a fused kernel
            from_fp32, from_low = fn(x).dtype, fn(x.to(dtype)).dtype
        if from_fp32 == from_low == dtype:
            behaviour = f"runs in {name}"
        elif from_fp32 == from_low == torch.float32:
            behaviour = "runs in fp32"
        elif (from_fp32, from_low) == (torch.float32, dtype):
            behaviour = "keeps its input's dtype"
        else:
            behaviour = "other"
        rows.append(AutocastRow(op, from_fp32, from_low, behaviour))
    return rows


def autocast_gradient_dtypes(device, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.dtype]:
    """Dtypes of a Linear's weight, its output, the gradient arriving at that output, and the
    weight's gradient, for one forward and backward under autocast.

    >>> autocast_gradient_dtypes("cpu")["weight gradient"]
    torch.float32
    """
    device = torch.device(device)
    linear = nn.Linear(8, 8, device=device)
    x = torch.randn(4, 8, device=device)  # (B, h)
    seen = {}
    with torch.autocast(device.type, dtype=dtype):
        y = linear(x)  # (B, h)
        y.register_hook(lambda g: seen.update({"output gradient": g.dtype}))
        loss = y.float().pow(2).mean()
    loss.backward()
    return {"weight": linear.weight.dtype, "output": y.dtype,
            "output gradient": seen["output gradient"], "weight gradient": linear.weight.grad.dtype}


# ----- master weights ------------------------------------------------------------------------

@dataclass(frozen=True)
class MasterWeightsDemo:
    """A weight of 1.0 receiving the same small update many times, stored three ways."""

    start: float
    update: float
    steps: int
    bf16_only: float  # the weight kept in bf16 and updated in place
    fp32_master: float  # an fp32 master copy updated in place
    bf16_of_master: float  # the bf16 copy of that master the forward pass would read
    half_ulp: float  # half the gap above *start* in bf16: smaller updates round away


def accumulate_updates(start: float = 1.0, update: float = 1e-3, steps: int = 1000) -> MasterWeightsDemo:
    """Add *update* to *start* *steps* times in bf16 and in an fp32 master copy.

    >>> demo = accumulate_updates()
    >>> demo.bf16_only, demo.bf16_of_master, demo.half_ulp
    (1.0, 2.0, 0.00390625)
    """
    bf16 = torch.tensor(start, dtype=torch.bfloat16)
    master = torch.tensor(start, dtype=torch.float32)
    for _ in range(steps):
        bf16.add_(update)  # computed in fp32, rounded back to bf16: 1 + 1e-3 -> 1
        master.add_(update)
    # the gap between numbers in [2^e, 2^(e+1)) is 2^(e - p + 1) for p significand bits
    ulp = 2.0 ** (math.floor(math.log2(abs(start))) - SIGNIFICAND_BITS["bf16"] + 1)
    return MasterWeightsDemo(start, update, steps, bf16.item(), master.item(),
                             master.to(torch.bfloat16).item(), ulp / 2)


def unchanged_fraction(weights: torch.Tensor, update: float, dtype: torch.dtype) -> float:
    """Fraction of *weights* (stored in *dtype*) that ``w + update`` leaves exactly unchanged.

    >>> unchanged_fraction(torch.ones(4), 1e-3, torch.bfloat16), unchanged_fraction(torch.ones(4), 1e-3, torch.float32)
    (1.0, 0.0)
    """
    stored = weights.to(dtype)
    return (stored + update == stored).float().mean().item()


# ----- training: underflow, loss scaling, master weights, loss curves ----------------------------

# How each training recipe runs:
#   fp32               fp32 weights, fp32 compute
#   amp-bf16           fp32 weights, autocast to bf16
#   amp-fp16           fp32 weights, autocast to fp16, GradScaler
#   amp-fp16-unscaled  fp32 weights, autocast to fp16, no loss scaling
#   bf16               bf16 weights, bf16 gradients and bf16 Adam states ("pure bf16")
#   bf16-master        bf16 weights and gradients; Adam updates an fp32 master copy
TRAINING_RECIPES = ("fp32", "amp-bf16", "amp-fp16", "amp-fp16-unscaled", "bf16", "bf16-master")
FP16_ROUNDS_TO_ZERO = 2.0**-25  # half fp16's smallest subnormal: this and below round to 0
_AUTOCAST = {"amp-bf16": torch.bfloat16, "amp-fp16": torch.float16,
             "amp-fp16-unscaled": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    """A classifier MLP x (B, d) -> logits (B, V), trained with Adam on synthetic labels."""

    d: int = 16
    hidden: int = 32
    V: int = 64  # classes: the logits are (B, V), like a language model's output layer
    batch: int = 64
    steps: int = 20
    lr: float = 3e-3
    final_lr: float = 3e-5  # cosine decay from lr to final_lr; equal means constant
    growth_interval: int = 20  # GradScaler doubles its scale after this many steps without inf
    # (PyTorch's default is 2000; a short run needs a short interval to reach its settled scale)
    seed: int = 0


@dataclass
class TrainingRun:
    """What one training run recorded, step by step."""

    recipe: str
    config: TrainConfig
    losses: list[float] = field(default_factory=list)
    zero_fraction: list[float] = field(default_factory=list)  # of dL/dlogits, as backward made it
    fp16_zero_fraction: list[float] = field(default_factory=list)  # of dL/dlogits, the part that
    # rounding to fp16 would make zero (|g| <= 2^-25); in the fp32 run, a prediction
    scales: list[float] = field(default_factory=list)  # GradScaler's scale after each step
    skipped: list[int] = field(default_factory=list)  # steps GradScaler skipped (inf found)
    unchanged: list[int] = field(default_factory=list)  # steps after which no weight had changed
    lost_fraction: list[float] = field(default_factory=list)  # of the weights the optimizer
    # updates (the master copy where there is one), the fraction a step left exactly unchanged
    state_bytes: dict[str, float] = field(default_factory=dict)  # per parameter, after training
    seconds: float = 0.0


def classifier(config: TrainConfig) -> nn.Sequential:
    """Two GELU hidden layers and an output layer of V classes."""
    return nn.Sequential(nn.Linear(config.d, config.hidden), nn.GELU(),
                         nn.Linear(config.hidden, config.hidden), nn.GELU(),
                         nn.Linear(config.hidden, config.V))


def state_bytes_per_parameter(model: nn.Module, optimizer: torch.optim.Optimizer,
                              master: list[torch.Tensor] | None = None) -> dict[str, float]:
    """Bytes per parameter of the weights, gradients, master weights and optimizer states that
    exist right now (the optimizer's scalar step counters are not counted).

    >>> model = nn.Linear(4, 4); optimizer = torch.optim.Adam(model.parameters())
    >>> model(torch.ones(1, 4)).sum().backward(); optimizer.step()
    >>> state_bytes_per_parameter(model, optimizer)
    {'weights': 4.0, 'gradients': 4.0, 'master weights': 0.0, 'optimizer states': 8.0}
    """
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    states = [t for s in optimizer.state.values() for t in s.values()
              if torch.is_tensor(t) and t.dim() > 0]
    return {"weights": nbytes(params) / n,
            "gradients": nbytes([p.grad for p in params if p.grad is not None]) / n,
            "master weights": nbytes(master or []) / n,
            "optimizer states": nbytes(states) / n}


def train(recipe: str, config: TrainConfig, device) -> TrainingRun:
    """Train the classifier with one recipe; record loss, underflow, loss scale, skipped steps.

    Labels come from a fixed random linear teacher, ``argmax(x @ T)``, and the loss is the mean
    cross-entropy over the batch, so the gradient reaching each logit is ``(p - y) / B``: tiny
    for the many classes the model already rules out. Every recipe sees the same data and the
    same initial weights.

    >>> run = train("bf16", TrainConfig(steps=3), "cpu")
    >>> len(run.losses), run.state_bytes["weights"], run.state_bytes["optimizer states"]
    (3, 2.0, 4.0)
    """
    if recipe not in TRAINING_RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {TRAINING_RECIPES}")
    device = torch.device(device)
    torch.manual_seed(config.seed)
    model = classifier(config).to(device)
    generator = torch.Generator().manual_seed(config.seed + 1)
    teacher = torch.randn(config.d, config.V, generator=generator).to(device)  # (d, V)
    batches = torch.Generator(device).manual_seed(config.seed + 2)
    low = recipe in ("bf16", "bf16-master")
    if low:
        model = model.to(torch.bfloat16)
    master = ([p.detach().float().clone() for p in model.parameters()]
              if recipe == "bf16-master" else None)
    optimizer = torch.optim.Adam(master if master is not None else model.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler(device.type, growth_interval=config.growth_interval) \
        if recipe == "amp-fp16" else None
    autocast_dtype = _AUTOCAST.get(recipe)
    run = TrainingRun(recipe, config)
    begin = time.perf_counter()
    for step in range(config.steps):
        progress = step / max(1, config.steps - 1)
        for group in optimizer.param_groups:
            group["lr"] = config.final_lr + 0.5 * (config.lr - config.final_lr) * (
                1 + math.cos(math.pi * progress))
        x = torch.randn(config.batch, config.d, device=device, generator=batches)  # (B, d)
        y = (x @ teacher).argmax(-1)  # (B,)
        seen = {}
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            logits = model(x.to(torch.bfloat16) if low else x)  # (B, V)
            logits.register_hook(lambda g: seen.update(g=g))  # dL/dlogits as backward made it
            loss = F.cross_entropy(logits.float(), y)  # in fp32 in every recipe, as autocast does
        model.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        updated = master if master is not None else list(model.parameters())
        before = [t.detach().clone() for t in updated]
        if master is not None:  # the update happens in fp32; the model gets its bf16 rounding
            for m, p in zip(master, model.parameters()):
                m.grad = p.grad.float()
            optimizer.step()
            with torch.no_grad():
                for m, p in zip(master, model.parameters()):
                    p.copy_(m)
        elif scaler is not None:
            scale = scaler.get_scale()
            scaler.step(optimizer)  # skipped when a gradient is inf or nan
            scaler.update()  # ... and then the scale is halved
            run.scales.append(scaler.get_scale())
            if scaler.get_scale() < scale:
                run.skipped.append(step)
        else:
            optimizer.step()
        changed = sum(int((b != t).sum()) for b, t in zip(before, updated))
        if changed == 0:
            run.unchanged.append(step)
        run.lost_fraction.append(1 - changed / sum(t.numel() for t in updated))
        run.losses.append(loss.item())
        run.zero_fraction.append((seen["g"] == 0).float().mean().item())
        run.fp16_zero_fraction.append((seen["g"].abs() <= FP16_ROUNDS_TO_ZERO).float().mean().item())
    run.seconds = time.perf_counter() - begin
    run.state_bytes = state_bytes_per_parameter(model, optimizer, master)
    return run


def train_config(device, *, steps: int | None = None, **changes) -> TrainConfig:
    """The book's configuration: a larger problem on a GPU, a small one for the CPU preview."""
    if torch.device(device).type == "cuda":
        config = TrainConfig(d=64, hidden=512, V=4096, batch=4096, steps=300)
    else:
        config = TrainConfig(d=32, hidden=64, V=512, batch=256, steps=150)
    values = {**config.__dict__, **changes}
    if steps is not None:
        values["steps"] = steps
    return TrainConfig(**values)


# ----- bytes per parameter of each training recipe --------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """Bytes per parameter that a training recipe keeps from one step to the next.

    Activations, temporary casts and communication buffers are not counted: they depend on the
    batch and the implementation, not on the parameter count (Part IV measures them).
    """

    name: str
    weights: int  # the copy the forward and backward passes read
    gradients: int  # the buffer the backward pass writes and the optimizer reads
    master_weights: int  # a separate higher-precision copy the optimizer updates, if any
    optimizer_states: int  # Adam's first and second moments
    source: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.master_weights + self.optimizer_states


RECIPES: dict[str, Recipe] = {
    "fp32": Recipe("fp32 + Adam", 4, 4, 0, 4 + 4,
                   "fp32 weights and gradients; Adam's m and v in fp32"),
    "amp": Recipe("AMP (fp32 weights, autocast) + Adam", 4, 4, 0, 4 + 4,
                  "torch.autocast lowers the compute, not the stored state: weights, gradients "
                  "and Adam's states stay fp32"),
    "mixed": Recipe("mixed precision, fp32 master weights + Adam", 2, 2, 4, 4 + 4,
                    "ZeRO (Rajbhandari et al., 2020, arXiv:1910.02054) §3.1: fp16 parameters "
                    "and gradients, 2Ψ + 2Ψ, plus fp32 parameters, momentum and variance, "
                    "KΨ with K = 12: 16Ψ bytes"),
    "bf16": Recipe("pure bf16 + Adam", 2, 2, 0, 2 + 2,
                   "bf16 weights and gradients; torch.optim.Adam keeps m and v in the "
                   "parameters' dtype"),
    "deepseek-v3": Recipe("DeepSeek-V3 FP8 recipe", 0, 4, 4, 2 + 2,
                          "DeepSeek-V3 technical report (arXiv:2412.19437) §3.3.3: AdamW's "
                          "first and second moments in BF16; master weights (stored by the "
                          "optimizer) and gradients (used for batch size accumulation) in FP32. "
                          "FP8 GEMM inputs are quantized online from them (§3.3.1, §3.3.2) and "
                          "are not kept between steps"),
}
