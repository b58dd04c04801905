"""Weights on the device: the allocator replay, and the measurement on CUDA."""

import pytest
import torch
from torch import nn

from modelnotes.catalogue import build, unique_parameter_count
from modelnotes.measure import (allocation_order, measure_weights, predicted_resident_bytes,
                                rounded_bytes, simulate_allocations)

MiB = 2**20


def test_every_request_is_rounded_to_512_bytes():
    layer = nn.Linear(300, 7)  # weight 8400 B -> 8704, bias 28 B -> 512
    assert rounded_bytes(layer) == 8704 + 512
    norm = nn.BatchNorm2d(64)  # weight, bias, running mean and var: 256 B each; an int64 count
    assert rounded_bytes(norm) == 5 * 512
    assert predicted_resident_bytes(norm) == 5 * 512  # small pool: always split


def test_large_pool_split_rule():
    # 1.5 MiB opens a 20 MiB segment and leaves 18.5 MiB free; 18 MiB then takes that
    # block whole, because the 0.5 MiB that would remain is not more than 1 MiB
    assert simulate_allocations([int(1.5 * MiB), 18 * MiB]) == 20 * MiB
    # 17 MiB leaves 1.5 MiB, which is split off and not counted
    assert simulate_allocations([int(1.5 * MiB), 17 * MiB]) == int(18.5 * MiB)
    # from 10 MiB up the segment is the request rounded to 2 MiB, and 1 MiB extra is kept
    assert simulate_allocations([11 * MiB]) == 12 * MiB
    assert simulate_allocations([int(10.5 * MiB)]) == int(10.5 * MiB)  # 1.5 MiB split off


def test_tied_tensors_are_held_once():
    model = build("gpt2", device="meta")
    assert sum(t.numel() for t in allocation_order(model) if isinstance(t, nn.Parameter)) == (
        unique_parameter_count(model))


def test_cpu_measures_nothing_and_says_so():
    result = measure_weights("resnet18", "cpu")
    assert result.measured_bytes is None
    assert result.parameters == 11_689_512
    assert result.parameter_bytes == 4 * 11_689_512
    assert result.predicted_bytes >= result.rounded_bytes >= result.parameter_bytes + result.buffer_bytes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["bert-base-uncased", "resnet18", "course-lstm", "gpt2",
                                  "t5-small", "vgg16"])
def test_measured_equals_predicted_on_cuda(name):
    result = measure_weights(name, "cuda")
    assert result.measured_bytes == result.predicted_bytes
