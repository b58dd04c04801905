"""Measuring on the GPU: what a model's weights occupy once they are on the device.

The prediction is exact. Each parameter and buffer is one allocation from PyTorch's CUDA
caching allocator, which (with its default settings, see ``c10/cuda/CUDACachingAllocator.cpp``)

* rounds every request up to a multiple of 512 bytes;
* serves requests of at most 1 MiB from 2 MiB segments (the small pool) and larger ones
  from 20 MiB segments, or, from 10 MiB up, from a segment of the request rounded up to
  2 MiB (the large pool);
* takes the smallest free block that fits, and splits it only if what is left is at least
  512 bytes (small pool) or more than 1 MiB (large pool); otherwise the whole block is
  handed out and counted as allocated.

:func:`predicted_resident_bytes` replays exactly that for a model's tensors in the order
they are created, which is what ``torch.cuda.memory_allocated()`` grows by when the model
is built on the GPU.

>>> from torch import nn
>>> rounded_bytes(nn.Linear(10, 3))  # weight 120 B -> 512, bias 12 B -> 512
1024
>>> big = nn.Sequential(nn.Linear(1024, 384, bias=False), nn.Linear(4608, 1024, bias=False))
>>> [t.numel() * 4 / 2**20 for t in allocation_order(big)]  # MiB requested
[1.5, 18.0]
>>> predicted_resident_bytes(big) / 2**20  # the 18 MiB request gets the 18.5 MiB leftover whole
20.0
"""

from __future__ import annotations

import bisect
import gc
from dataclasses import dataclass

import torch
from torch import nn

from .catalogue import build, unique_parameter_count

# The caching allocator's constants (c10/cuda/CUDACachingAllocator.cpp, default settings).
MIN_BLOCK = 512  # every request is rounded up to a multiple of this
SMALL_SIZE = 2**20  # requests up to 1 MiB use the small pool
SMALL_SEGMENT = 2 * 2**20  # the small pool grows by 2 MiB segments
LARGE_SEGMENT = 20 * 2**20  # requests between 1 and 10 MiB get a 20 MiB segment
MIN_LARGE_ALLOC = 10 * 2**20  # from here on a segment is the request rounded up to ...
ROUND_LARGE = 2 * 2**20  # ... a multiple of 2 MiB


def _rounded(nbytes: int) -> int:
    return max(MIN_BLOCK, -(-nbytes // MIN_BLOCK) * MIN_BLOCK)


def _segment_size(rounded: int) -> int:
    if rounded <= SMALL_SIZE:
        return SMALL_SEGMENT
    if rounded < MIN_LARGE_ALLOC:
        return LARGE_SEGMENT
    return -(-rounded // ROUND_LARGE) * ROUND_LARGE


def allocation_order(model: nn.Module) -> list[torch.Tensor]:
    """Parameters and buffers in the order modules register them, each shared tensor once."""
    seen: set[int] = set()
    order = []
    for module in model.modules():
        for tensor in [*module._parameters.values(), *module._buffers.values()]:
            if tensor is not None and id(tensor) not in seen:
                seen.add(id(tensor))
                order.append(tensor)
    return order


def rounded_bytes(model: nn.Module) -> int:
    """Sum over tensors of their size rounded up to the allocator's 512-byte granule."""
    return sum(_rounded(t.numel() * t.element_size()) for t in allocation_order(model))


def simulate_allocations(request_bytes: list[int]) -> int:
    """Bytes the caching allocator counts as allocated after these requests (no frees)."""
    free = {"small": [], "large": []}  # sizes of free blocks, kept sorted for best fit
    allocated = 0
    for request in request_bytes:
        size = _rounded(request)
        pool = "small" if size <= SMALL_SIZE else "large"
        blocks = free[pool]
        index = bisect.bisect_left(blocks, size)
        block = blocks.pop(index) if index < len(blocks) else _segment_size(size)
        remaining = block - size
        if remaining >= MIN_BLOCK if pool == "small" else remaining > SMALL_SIZE:
            bisect.insort(blocks, remaining)
            allocated += size
        else:
            allocated += block
    return allocated


def predicted_resident_bytes(model: nn.Module) -> int:
    """Bytes ``memory_allocated()`` grows by when *model* is built on a CUDA device."""
    return simulate_allocations([t.numel() * t.element_size() for t in allocation_order(model)])


@dataclass(frozen=True)
class WeightsMeasurement:
    """Weights of one catalogue model on one device: counted, predicted, measured."""

    name: str
    parameters: int
    parameter_bytes: int  # 4 bytes per fp32 parameter: the textbook answer
    buffer_bytes: int  # non-learned tensors that live on the device too
    rounded_bytes: int  # parameters + buffers, each rounded up to 512 bytes
    predicted_bytes: int  # what the caching allocator counts: rounding plus unsplit blocks
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
        # The first random initialisation on the GPU in a process leaves one small block
        # allocated (512 bytes on the H100 this book was first built on): let it happen
        # before the baseline, so that it is not charged to the first model measured.
        nn.Linear(1, 1, device=device)
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
                                rounded_bytes(model), predicted_resident_bytes(model), measured,
                                str(device))
    del model
    if on_gpu:
        gc.collect()
        torch.cuda.empty_cache()
    return result
