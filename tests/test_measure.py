"""Weights on the device: the allocator-exact prediction, and the measurement on CUDA."""

import pytest
import torch
from torch import nn

from modelnotes.catalogue import build, unique_parameter_count
from modelnotes.measure import measure_weights, predicted_resident_bytes, unique_tensors


def test_prediction_rounds_each_tensor_to_512_bytes():
    layer = nn.Linear(300, 7)  # weight 8400 B -> 8704, bias 28 B -> 512
    assert predicted_resident_bytes(layer) == 8704 + 512
    norm = nn.BatchNorm2d(64)  # weight, bias, running_mean, running_var: 256 B each; an int64 count
    assert predicted_resident_bytes(norm) == 5 * 512


def test_tied_tensors_are_held_once():
    model = build("gpt2", device="meta")
    assert sum(t.numel() for t in unique_tensors(model) if isinstance(t, nn.Parameter)) == (
        unique_parameter_count(model))


def test_cpu_measures_nothing_and_says_so():
    result = measure_weights("resnet18", "cpu")
    assert result.measured_bytes is None
    assert result.parameters == 11_689_512
    assert result.parameter_bytes == 4 * 11_689_512
    assert result.predicted_bytes >= result.parameter_bytes + result.buffer_bytes
    assert result.slack_bound == 2**20 * sum(1 for t in unique_tensors(build("resnet18", "meta"))
                                             if t.numel() * 4 > 2**20)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["resnet18", "course-lstm", "gpt2", "t5-small", "bert-base-uncased"])
def test_measured_within_the_allocator_bound_on_cuda(name):
    result = measure_weights(name, "cuda")
    # never less than the rounded tensors; more by under 1 MiB per large tensor at most
    assert 0 <= result.measured_bytes - result.predicted_bytes < max(result.slack_bound, 1)
