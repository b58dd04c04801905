"""Facts the CNN chapter (docs/part1/cnn.md) states about VGG16 and ResNet-18.

Everything runs on the meta device: shapes and counts, no memory, no arithmetic.
"""

import re

import pytest
import torch
from torch import nn

from modelnotes.catalogue import build, unique_parameter_count
from modelnotes.diagrams import basic_block_blocks, resnet_blocks, vgg_blocks
from modelnotes.structure import parameters_by_child, trace_shapes

STAGES = ("layer1", "layer2", "layer3", "layer4")


@pytest.fixture(scope="module")
def vgg():
    return build("vgg16", "meta")


@pytest.fixture(scope="module")
def resnet():
    return build("resnet18", "meta")


def image(side=224):
    return torch.empty(1, 3, side, side, device="meta")  # (B, C, H, W)


def count(module):
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def blocks_of(resnet):
    return [(f"{stage}.{i}", blk) for stage in STAGES for i, blk in enumerate(getattr(resnet, stage))]


# ----- totals against torchvision's published metadata ---------------------------------

def test_totals_match_torchvision_metadata(vgg, resnet):
    from torchvision.models import ResNet18_Weights, VGG16_Weights

    assert unique_parameter_count(vgg) == VGG16_Weights.IMAGENET1K_V1.meta["num_params"] == 138_357_544
    assert (unique_parameter_count(resnet) == ResNet18_Weights.IMAGENET1K_V1.meta["num_params"]
            == 11_689_512)


# ----- VGG16 -------------------------------------------------------------------------------

def test_vgg_parts_and_first_linear(vgg):
    assert parameters_by_child(vgg) == {"features": 14_714_688, "avgpool": 0,
                                        "classifier": 123_642_856}
    linears = [m for m in vgg.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(25_088, 4_096), (4_096, 4_096),
                                                                 (4_096, 1_000)]
    assert [count(m) for m in linears] == [102_764_544, 16_781_312, 4_097_000]
    assert vgg.classifier[2].p == 0.5 and list(vgg.buffers()) == []


def test_vgg_per_conv_counts_follow_the_formula(vgg):
    convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
    counts = [count(m) for m in convs]
    assert counts == [1_792, 36_928, 73_856, 147_584, 295_168, 590_080, 590_080, 1_180_160,
                      *[2_359_808] * 5]
    assert all(m.kernel_size == (3, 3) and m.padding == (1, 1) and m.stride == (1, 1)
               for m in convs)
    assert counts == [m.out_channels * m.in_channels * 9 + m.out_channels for m in convs]
    assert sum(counts) == 14_714_688
    assert 2_369_808 not in counts  # the report's typo
    # the report's list, with the last two layers mistyped, overshoots by 20,000
    assert sum(counts[:-2]) + 2 * 2_369_808 - sum(counts) == 20_000


def test_vgg_block_shapes_by_running(vgg):
    rows = trace_shapes(vgg, image(), types=(nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear))
    pools = [r.output_shape[1:] for r in rows if r.kind == "MaxPool2d"]
    assert pools == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    assert [r.output_shape for r in rows if r.name == "avgpool"] == [(1, 512, 7, 7)]
    assert rows[-1].output_shape == (1, 1000)
    # adaptive pooling makes the classifier accept other sizes: 320 -> 10 x 10 -> 7 x 7
    assert tuple(vgg.features(image(320)).shape) == (1, 512, 10, 10)
    assert tuple(vgg(image(320)).shape) == (1, 1000)


def test_vgg_activations_concentrate_early(vgg):
    rows = trace_shapes(vgg, image(), types=(nn.Conv2d, nn.Linear))
    sizes = [torch.Size(r.output_shape[1:]).numel() for r in rows]
    assert len(rows) == 16 and sizes[:2] == [3_211_264, 3_211_264]
    assert 0.47 < sum(sizes[:2]) / sum(sizes) < 0.48
    assert sum(r.parameters for r in rows[:2]) / 138_357_544 < 0.0003


@pytest.mark.parametrize("side", [224, 320])
def test_vgg_diagram_sizes_match_a_run(vgg, side):
    blocks = vgg_blocks(vgg, image=(3, side, side))
    pooled = [b.detail for b in blocks if b.label.startswith("max-pool")]
    rows = trace_shapes(vgg, image(side), types=(nn.MaxPool2d,))
    assert pooled == ["→ {} × {} × {}".format(*r.output_shape[1:]) for r in rows]
    assert [b.label for b in blocks if "conv" in b.label] == [
        "2 × (conv 3×3 + ReLU)", "2 × (conv 3×3 + ReLU)", "3 × (conv 3×3 + ReLU)",
        "3 × (conv 3×3 + ReLU)", "3 × (conv 3×3 + ReLU)"]
    assert blocks[-4].detail == "512 × 7 × 7 = 25088"
    assert blocks[-1].detail == "4096 → 1000 classes"


# ----- ResNet-18 ---------------------------------------------------------------------------

def test_resnet_stage_shapes_by_running(resnet):
    names = ("conv1", "maxpool", *STAGES, "avgpool", "fc")
    rows = trace_shapes(resnet, image(), names=names)
    assert {r.name: r.output_shape[1:] for r in rows} == {
        "conv1": (64, 112, 112), "maxpool": (64, 56, 56), "layer1": (64, 56, 56),
        "layer2": (128, 28, 28), "layer3": (256, 14, 14), "layer4": (512, 7, 7),
        "avgpool": (512, 1, 1), "fc": (1000,)}


def test_resnet_parameters_per_stage(resnet):
    assert parameters_by_child(resnet) == {
        "conv1": 9_408, "bn1": 128, "relu": 0, "maxpool": 0, "layer1": 147_968,
        "layer2": 525_568, "layer3": 2_099_712, "layer4": 8_393_728, "avgpool": 0,
        "fc": 513_000}


def test_resnet_convs_have_no_bias_and_fc_has_one(resnet):
    convs = [m for m in resnet.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and all(m.bias is None for m in convs)
    assert resnet.conv1.weight.numel() == count(resnet.conv1) == 64 * 3 * 7 * 7
    assert sum(m.out_channels for m in convs) == 4_800
    assert resnet.fc.bias is not None and resnet.fc.weight.numel() == 512_000


def test_batch_norm_parameters_and_buffers(resnet):
    bns = [m for m in resnet.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 20
    assert [n for n, _ in resnet.bn1.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in resnet.bn1.named_buffers()] == ["running_mean", "running_var",
                                                         "num_batches_tracked"]
    assert sum(count(m) for m in bns) == 9_600
    assert sum(b.numel() for b in resnet.buffers()) == 9_620
    state = sum(t.numel() for t in resnet.state_dict().values())
    assert state - unique_parameter_count(resnet) == 9_620


def test_basic_blocks_shortcuts_and_counts(resnet):
    rows = {name: (blk.conv1.stride[0], blk.downsample is not None, count(blk))
            for name, blk in blocks_of(resnet)}
    assert rows == {
        "layer1.0": (1, False, 73_984), "layer1.1": (1, False, 73_984),
        "layer2.0": (2, True, 230_144), "layer2.1": (1, False, 295_424),
        "layer3.0": (2, True, 919_040), "layer3.1": (1, False, 1_180_672),
        "layer4.0": (2, True, 3_673_088), "layer4.1": (1, False, 4_720_640)}
    proj = resnet.layer2[0].downsample
    assert proj[0].kernel_size == (1, 1) and proj[0].stride == (2, 2)
    assert (count(proj), count(proj[0])) == (8_448, 8_192)
    for _, blk in blocks_of(resnet):
        c_in, c_out = blk.conv1.in_channels, blk.conv2.out_channels
        formula = 9 * c_in * c_out + 9 * c_out ** 2 + 4 * c_out
        if blk.downsample is not None:
            formula += c_in * c_out + 2 * c_out
        assert count(blk) == formula


def test_residual_addition_shapes_match(resnet):
    rows = trace_shapes(resnet, image(), names=("layer2.0.bn2", "layer2.0.downsample"))
    assert [r.output_shape for r in rows] == [(1, 128, 28, 28), (1, 128, 28, 28)]
    from torchvision.models.resnet import BasicBlock

    with pytest.raises(RuntimeError):
        BasicBlock(64, 128, stride=2)(torch.randn(1, 64, 8, 8))


def test_resnet_diagram_has_one_skip_per_block(resnet):
    blocks = resnet_blocks(resnet)
    assert len(blocks) == 3 + 8 + 2
    residual = [(i, b) for i, b in enumerate(blocks) if b.residual_from]
    assert [i for i, _ in residual] == list(range(3, 11))
    assert all(b.residual_from == [i - 1] for i, b in residual)
    projections = [b.label.split(":")[0] for _, b in residual if "projection" in b.detail]
    assert projections == [name for name, blk in blocks_of(resnet) if blk.downsample is not None]
    # sizes written in the boxes are the ones a run produces
    shapes = {r.name: r.output_shape[1:] for r in trace_shapes(resnet, image(), names=[
        name for name, _ in blocks_of(resnet)])}
    for _, b in residual:
        side = int(re.search(r"(\d+) × \1", b.detail).group(1))
        assert shapes[b.label.split(":")[0]][1:] == (side, side)
    assert blocks[1].detail == "3 → 64 channels, 112 × 112"
    assert blocks[2].detail == "→ 64 × 56 × 56"


def test_basic_block_diagram(resnet):
    identity = basic_block_blocks(resnet.layer1[0])
    projection = basic_block_blocks(resnet.layer2[0])
    for blocks in (identity, projection):
        assert len(blocks) == 6 and blocks[-1].residual_from == [0]
        assert all("no bias" in b.label for b in blocks if b.label.startswith("conv"))
    assert "identity" in identity[-1].detail
    assert projection[1].label == "conv 3×3, stride 2, no bias"
    assert projection[-1].detail == "shortcut: conv 1×1, stride 2, no bias + BN, 64 → 128"


# ----- exercises --------------------------------------------------------------------------

def test_exercise_counts_match_metadata():
    from torchvision.models import (VGG16_BN_Weights, VGG19_Weights, vgg16_bn, vgg19)

    with torch.device("meta"):
        v19, v16bn = vgg19(weights=None), vgg16_bn(weights=None)
    assert unique_parameter_count(v19) == VGG19_Weights.IMAGENET1K_V1.meta["num_params"]
    assert unique_parameter_count(v19) - 138_357_544 == 590_080 + 2 * 2_359_808
    assert unique_parameter_count(v16bn) == VGG16_BN_Weights.IMAGENET1K_V1.meta["num_params"]
    assert unique_parameter_count(v16bn) - 138_357_544 == 8_448
    assert sum(b.numel() for b in v16bn.buffers()) == 8_461
    assert all(m.bias is not None for m in v16bn.modules() if isinstance(m, nn.Conv2d))


def test_exercise_global_average_pooling_head(vgg):
    gap = build("vgg16", "meta")
    gap.avgpool = nn.AdaptiveAvgPool2d(1)
    with torch.device("meta"):
        gap.classifier[0] = nn.Linear(512, 4096)
    assert tuple(gap(image()).shape) == (1, 1000)
    assert unique_parameter_count(gap) == 37_694_248
    assert unique_parameter_count(vgg) - count(vgg.classifier[0]) == 35_593_000
