"""Measuring on the GPU: what a model's weights occupy once they are on the device.

Every parameter and buffer tensor is one allocation, and PyTorch's CUDA caching allocator
rounds each allocation up to a multiple of 512 bytes. So the bytes
``torch.cuda.memory_allocated()`` gains when a model is built on the GPU are at least the
sum of the rounded sizes of its unique tensors. They can be a little more: a tensor over
1 MiB is cut from a larger segment, and when the piece left over would be under 1 MiB the
allocator hands out the whole block. That slack is below 1 MiB per large tensor, which
bounds the difference from above; Part IV models the allocator in full.

>>> from torch import nn
>>> predicted_resident_bytes(nn.Linear(10, 3))  # weight 120 B -> 512, bias 12 B -> 512
1024
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch
from torch import nn

from .catalogue import build, unique_parameter_count

ALLOCATION_GRANULE = 512  # bytes; c10's CUDA caching allocator rounds every block up to this
SMALL_ALLOCATION = 2**20  # bytes; larger requests come from the large pool, split only if >= this remains


def _rounded(nbytes: int) -> int:
    return -(-nbytes // ALLOCATION_GRANULE) * ALLOCATION_GRANULE


def unique_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters and buffers, each shared tensor once."""
    seen: dict[int, torch.Tensor] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        seen.setdefault(id(tensor), tensor)
    return list(seen.values())


def predicted_resident_bytes(model: nn.Module) -> int:
    """Bytes the caching allocator hands out to hold *model*'s parameters and buffers."""
    return sum(_rounded(t.numel() * t.element_size()) for t in unique_tensors(model))


def slack_bound_bytes(model: nn.Module) -> int:
    """Upper bound on unsplit remainders: under 1 MiB for each tensor over 1 MiB."""
    return sum(SMALL_ALLOCATION for t in unique_tensors(model)
               if _rounded(t.numel() * t.element_size()) > SMALL_ALLOCATION)


@dataclass(frozen=True)
class WeightsMeasurement:
    """Weights of one catalogue model on one device: counted, predicted, measured."""

    name: str
    parameters: int
    parameter_bytes: int  # 4 bytes per fp32 parameter: the textbook answer
    buffer_bytes: int  # non-learned tensors that live on the device too
    predicted_bytes: int  # parameters + buffers, each rounded to the allocator's granule
    slack_bound: int  # measured may exceed predicted by less than this (unsplit blocks)
    measured_bytes: int | None  # memory_allocated() growth; None where there is no GPU
    device: str


def measure_weights(name: str, device: torch.device | str) -> WeightsMeasurement:
    """Build catalogue model *name* on *device* and measure the memory its tensors take.

    On a CPU (a preview build) nothing is measured: ``measured_bytes`` is None, and the
    model is built on ``meta`` so that no memory is spent.
    """
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    if on_gpu:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
    model = build(name, device=device if on_gpu else "meta")
    measured = None
    if on_gpu:
        torch.cuda.synchronize(device)
        measured = torch.cuda.memory_allocated(device) - before
    parameters = unique_parameter_count(model)
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    result = WeightsMeasurement(name, parameters, parameter_bytes, buffer_bytes,
                                predicted_resident_bytes(model), slack_bound_bytes(model), measured,
                                str(device))
    del model
    if on_gpu:
        gc.collect()
        torch.cuda.empty_cache()
    return result
