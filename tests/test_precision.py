"""Tests for modelnotes.precision: exact arithmetic and known answers on the CPU; the GPU-only
parts where CUDA is present. No timing is asserted: benchmarks are not tests."""

import math

import numpy as np
import pytest
import torch

from modelnotes import precision as mp

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ----- recipes -----------------------------------------------------------------------------

def test_recipe_bytes_are_exact():
    totals = {key: r.total for key, r in mp.RECIPES.items()}
    assert totals == {"fp32": 16, "amp": 16, "mixed": 16, "bf16": 8, "deepseek-v3": 12}
    mixed = mp.RECIPES["mixed"]  # ZeRO §3.1: 2Ψ + 2Ψ + KΨ with K = 12
    assert (mixed.weights, mixed.gradients) == (2, 2)
    assert mixed.master_weights + mixed.optimizer_states == 12
    deepseek = mp.RECIPES["deepseek-v3"]  # FP32 master and gradients, BF16 moments
    assert (deepseek.weights, deepseek.gradients, deepseek.master_weights,
            deepseek.optimizer_states) == (0, 4, 4, 4)


def test_recipes_match_the_tensors_of_real_runs():
    config = mp.TrainConfig(steps=2)
    for key, recipe in {"fp32": "fp32", "amp": "amp-bf16", "mixed": "bf16-master",
                        "bf16": "bf16"}.items():
        r = mp.RECIPES[key]
        assert mp.train(recipe, config, "cpu").state_bytes == {
            "weights": r.weights, "gradients": r.gradients, "master weights": r.master_weights,
            "optimizer states": r.optimizer_states}


# ----- formats and error --------------------------------------------------------------------

def test_unit_roundoff_and_prediction():
    assert mp.unit_roundoff("bf16") == 2.0**-8
    assert mp.unit_roundoff("fp8") == 2.0**-4
    assert mp.predicted_error("fp32") == 0.0
    assert mp.predicted_error("bf16") == math.sqrt(3 * 2.0**-16 / (8 * math.log(2)))
    assert mp.predicted_error("fp8") == math.sqrt((2 * 2.0**-8 + 2.0**-16) / (8 * math.log(2)))
    assert mp.worst_case_bound("bf16", 256) == 3 * 2.0**-8 + 256 * 2.0**-24
    assert mp.worst_case_bound("fp8-fast", 256) is None


def test_error_of_a_known_product():
    # Between 1 and 1 + 2^-7 bf16 has no number: 1 + 2^-9 is below the midpoint, rounds to 1.
    a, b = torch.tensor([[1 + 2**-9, 0.0]]), torch.tensor([[1.0], [0.0]])
    exact = mp.product_error(a, b, "fp32")
    assert (exact.relative, exact.componentwise, exact.arithmetic) == (0.0, 0.0, 0.0)
    low = mp.product_error(a, b, "bf16")
    assert low.relative == low.componentwise == 2**-9 / (1 + 2**-9)
    assert low.arithmetic == 0.0  # the product of the rounded inputs is exact
    half = mp.product_error(torch.tensor([[1 + 2**-12]]), torch.tensor([[1.0]]), "fp16")
    assert half.relative == 2**-12 / (1 + 2**-12)  # fp16's gap at 1 is 2^-10: rounds to 1


def test_fp8_quantization_layout_and_an_exact_product():
    a, b = torch.ones(16, 32), 2 * torch.ones(32, 16)
    a8, b8, sa, sb = mp.quantize_fp8(a, b)
    assert (a8.dtype, b8.dtype, sa.dtype, sa.shape, sb.shape) == (
        torch.float8_e4m3fn, torch.float8_e4m3fn, torch.float32, torch.Size([]), torch.Size([]))
    assert a8.stride() == (32, 1) and b8.stride() == (1, 32)  # a row-major, b column-major
    assert a8.float().max().item() == b8.float().max().item() == 448.0
    a8, b8, sa, sb = mp.quantize_fp8(a, b, rowwise=True)
    assert (tuple(sa.shape), tuple(sb.shape)) == ((16, 1), (1, 16))
    try:
        out = torch._scaled_mm(a8, b8, scale_a=sa, scale_b=sb, out_dtype=torch.float32)
    except (RuntimeError, NotImplementedError):
        pytest.skip("this PyTorch has no CPU _scaled_mm")
    assert torch.allclose(out, torch.full((16, 16), 64.0), rtol=0, atol=1e-4)


def test_matmul_errors_on_cpu_mark_what_needs_cuda():
    rows = {r.precision: r for r in mp.matmul_errors([32], "cpu")}
    assert rows["tf32"].note == rows["fp8-fast"].note == mp.NEEDS_CUDA
    assert rows["fp8"].note in ("", mp.NEEDS_CUDA)  # older PyTorch has no CPU _scaled_mm
    assert rows["tf32"].relative is None
    assert rows["fp32"].note == "" and rows["fp32"].relative < 1e-6


def test_matmul_rates_on_cpu_mark_what_needs_cuda():
    rows = mp.matmul_rates([32], "cpu", precisions=("fp32", "tf32", "fp8"), repeats=1, warmup=0)
    assert [(r.precision, r.note) for r in rows] == [
        ("fp32", ""), ("tf32", mp.NEEDS_CUDA), ("fp8", mp.NEEDS_CUDA)]
    assert rows[0].tflops > 0


def test_out_of_memory_is_recorded_not_raised(monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")

    monkeypatch.setattr(mp, "prepare", oom)
    rates = mp.matmul_rates([32], "cpu", precisions=("fp32",), repeats=1, warmup=0)
    errors = mp.matmul_errors([32], "cpu", precisions=("bf16",))
    assert (rates[0].note, rates[0].tflops) == ("OOM", None)
    assert (errors[0].note, errors[0].relative) == ("OOM", None)


def test_ceilings_and_vendor_peaks():
    rates = [mp.MatmulRate("bf16", 1024, 400.0, 410.0), mp.MatmulRate("bf16", 4096, 600.0, 650.0),
             mp.MatmulRate("fp8", 4096, None, None, mp.NEEDS_CUDA)]
    assert mp.measured_ceilings(rates) == {"bf16": 650.0}
    name = "NVIDIA H100 80GB HBM3"
    assert [mp.vendor_peak(name, p) for p in ("fp32", "tf32", "bf16", "fp16", "fp8-rowwise")] == [
        67.0, 494.5, 989.5, 989.5, 1979.0]
    assert mp.vendor_peak("NVIDIA A100-SXM4-80GB", "bf16") is None


# ----- autocast -------------------------------------------------------------------------------

def test_autocast_on_cpu_by_running():
    rows = {r.op: r for r in mp.autocast_table("cpu", torch.bfloat16)}
    assert (rows["Linear"].from_fp32, rows["Linear"].from_low) == (torch.bfloat16, torch.bfloat16)
    assert rows["Linear"].behaviour == "runs in bf16"
    assert rows["cross_entropy"].behaviour == "runs in fp32"
    assert rows["GELU"].behaviour == "keeps its input's dtype"
    assert rows["x + fp32 residual"].from_low == torch.float32  # type promotion
    assert mp.autocast_gradient_dtypes("cpu") == {
        "weight": torch.float32, "output": torch.bfloat16, "output gradient": torch.bfloat16,
        "weight gradient": torch.float32}


# ----- master weights and loss scaling --------------------------------------------------------

def test_small_updates_vanish_in_bf16_and_add_up_in_fp32():
    demo = mp.accumulate_updates(start=1.0, update=1e-3, steps=1000)
    expected = np.float32(1.0)
    for _ in range(1000):
        expected = np.float32(expected + np.float32(1e-3))
    assert demo.bf16_only == 1.0
    assert demo.fp32_master == float(expected)
    assert demo.bf16_of_master == 2.0
    assert demo.half_ulp == 2.0**-8
    assert mp.unchanged_fraction(torch.ones(8), 2.0**-8, torch.bfloat16) == 1.0  # a tie: to even
    assert mp.unchanged_fraction(torch.ones(8), 2.0**-8 * 1.01, torch.bfloat16) == 0.0


def test_pure_bf16_loses_updates_that_master_weights_keep():
    config = mp.TrainConfig(steps=3, lr=1e-5, final_lr=1e-5)  # updates far below bf16's gaps
    pure = mp.train("bf16", config, "cpu")
    master = mp.train("bf16-master", config, "cpu")
    assert min(pure.lost_fraction) > 0.5
    assert max(master.lost_fraction) < 0.01  # only weights whose gradient is exactly 0


def test_grad_scaler_skips_exactly_the_steps_it_finds_inf_in():
    run = mp.train("amp-fp16", mp.TrainConfig(steps=4, growth_interval=1), "cpu")
    assert len(run.scales) == 4
    assert run.skipped == run.unchanged
    assert run.scales[0] in (2.0**15, 2.0**17)  # halved after an overflow, or doubled


def test_unknown_names_are_refused():
    with pytest.raises(ValueError):
        mp.prepare(torch.ones(2, 2), torch.ones(2, 2), "fp4")
    with pytest.raises(ValueError):
        mp.train("fp64", mp.TrainConfig(steps=1), "cpu")


# ----- on a GPU --------------------------------------------------------------------------------

@cuda
def test_tf32_and_fp8_on_the_gpu():
    rows = {r.precision: r for r in mp.matmul_errors([256], "cuda")}
    assert all(r.note == "" for r in rows.values())
    assert rows["tf32"].relative < 1e-2 and rows["fp32"].relative < 1e-5
    assert rows["fp8"].relative < 0.1


@cuda
def test_scaled_mm_refuses_a_row_major_b_on_the_gpu():
    a, b = mp.random_inputs(64, "cuda")
    a8, b8, sa, sb = mp.quantize_fp8(a, b)
    with pytest.raises(RuntimeError):
        torch._scaled_mm(a8, b8.contiguous(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)


@cuda
def test_autocast_on_the_gpu_keeps_weights_fp32():
    assert mp.autocast_gradient_dtypes("cuda", torch.float16)["weight gradient"] == torch.float32
