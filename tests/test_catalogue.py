"""The catalogue builds every model by name, offline, with the exact published sizes."""

import pytest
import torch

from modelnotes.catalogue import (CATALOGUE, CourseLSTM, UnknownModelError, build, entry, names,
                                  unique_parameter_count)

# Unique parameters (tied weights once). torchvision's counts are its published
# `num_params` metadata; the rest are what the reference checkpoints hold.
EXACT = {
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "course-lstm": 895_498,
    "bert-base-uncased": 109_482_240,
    "t5-small": 60_506_624,
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "cs336-lm": 2_127_057_600,
}


def test_catalogue_holds_exactly_the_course_models():
    assert set(names()) == set(EXACT)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_unique_parameter_count_on_meta(name):
    model = build(name, device="meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    assert unique_parameter_count(model) == EXACT[name]


def test_torchvision_published_counts_agree():
    from torchvision.models import ResNet18_Weights, VGG16_Weights

    assert VGG16_Weights.IMAGENET1K_V1.meta["num_params"] == EXACT["vgg16"]
    assert ResNet18_Weights.IMAGENET1K_V1.meta["num_params"] == EXACT["resnet18"]


def test_tied_heads_are_one_tensor_and_cs336_is_untied():
    t5 = build("t5-small", device="meta")
    assert t5.lm_head.weight is t5.shared.weight
    gpt2 = build("gpt2", device="meta")
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight
    cs336 = build("cs336-lm", device="meta")
    assert cs336.lm_head.weight is not cs336.model.embed_tokens.weight
    # a module walk meets T5's shared embedding four times (shared, encoder and decoder
    # embed_tokens, lm_head); the unique count must hold it once
    walked = sum(p.numel() for _, p in t5.named_parameters(remove_duplicate=False))
    assert walked - unique_parameter_count(t5) == 3 * t5.shared.weight.numel()


def test_cs336_matches_the_assignment_shape():
    config = entry("cs336-lm").config()
    assert (config.vocab_size, config.max_position_embeddings, config.num_hidden_layers,
            config.hidden_size, config.num_attention_heads, config.intermediate_size) == (
        50_257, 1_024, 48, 1_600, 25, 6_400)
    model = build("cs336-lm", device="meta")
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())


def test_builds_on_cpu_with_real_memory_and_runs():
    model = build("course-lstm", device="cpu")
    assert next(model.parameters()).device.type == "cpu"
    assert model(torch.randn(5, 2, 100)).shape == (2, 10)
    resnet = build("resnet18", device="cpu").eval()
    assert resnet(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_builds_on_cuda():
    assert next(build("resnet18", device="cuda").parameters()).is_cuda


def test_course_lstm_layout():
    lstm = CourseLSTM().lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.batch_first) == (
        100, 256, 2, False)


def test_unknown_name_is_one_line_listing_known_names():
    with pytest.raises(UnknownModelError) as caught:
        build("gpt-5")
    message = str(caught.value)
    assert "\n" not in message
    assert "'gpt-5'" in message
    assert all(name in message for name in CATALOGUE)
