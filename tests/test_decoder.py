"""Facts the decoder-only chapter (docs/part1/decoder.md) states: GPT-2 and the CS336 LM."""

import pytest
import torch
from torch import nn
from torchinfo import summary
from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM
from transformers.models.llama import modeling_llama
from transformers.pytorch_utils import Conv1D

from modelnotes.catalogue import build, cs336_config, entry, gpt2_config, unique_parameter_count
from modelnotes.diagrams import decoder_blocks
from modelnotes.structure import trace_shapes

V, P = 50_257, 1_024
GPT2 = {"gpt2": (12, 768, 12, 124_439_808), "gpt2-medium": (24, 1024, 16, 354_823_168),
        "gpt2-large": (36, 1280, 20, 774_030_080), "gpt2-xl": (48, 1600, 25, 1_557_611_200)}
CS336_TOTAL = 2_127_057_600


@pytest.fixture(scope="module")
def gpt2():
    return build("gpt2", "meta").eval()


@pytest.fixture(scope="module")
def lm():
    return build("cs336-lm", "meta")


@pytest.mark.parametrize("name", sorted(GPT2))
def test_gpt2_sizes_and_formula(name):
    L, h, a, total = GPT2[name]
    c = entry(name).config()
    assert (c.n_layer, c.n_embd, c.n_head, c.n_embd // c.n_head) == (L, h, a, 64)
    assert unique_parameter_count(build(name, "meta")) == total
    assert V * h + P * h + L * (12 * h * h + 13 * h) + 2 * h == total


def test_gpt2_block_and_tied_head(gpt2):
    block = gpt2.transformer.h[0]
    assert sum(p.numel() for p in block.parameters()) == 7_087_872 == 12 * 768**2 + 13 * 768
    assert tuple(block.attn.c_attn.weight.shape) == (768, 3 * 768)
    assert tuple(block.mlp.c_fc.weight.shape) == (768, 4 * 768)
    assert isinstance(block.ln_1, nn.LayerNorm) and block.ln_1.bias is not None
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight
    assert gpt2.lm_head.bias is None
    assert tuple(gpt2.transformer.wpe.weight.shape) == (P, 768)


def test_conv1d_is_a_transposed_linear():
    conv = Conv1D(6, 4)  # nf=6 outputs, nx=4 inputs
    nn.init.normal_(conv.bias)
    assert tuple(conv.weight.shape) == (4, 6)
    x = torch.randn(3, 4)
    torch.testing.assert_close(conv(x), nn.functional.linear(x, conv.weight.T, conv.bias))


def test_torchinfo_counts_the_tied_embedding_twice(gpt2):
    ids = torch.zeros(2, 64, dtype=torch.long, device="meta")
    info = summary(gpt2, input_data=ids, depth=3, device="meta", verbose=0)
    assert info.total_params == 163_037_184 == 124_439_808 + V * 768


def test_gpt2_shapes(gpt2):
    ids = torch.zeros(2, 64, dtype=torch.long, device="meta")
    names = ["transformer.wte", "transformer.wpe", "transformer.h.0.attn.c_attn",
             "transformer.h.0.mlp.c_fc", "transformer.h.11", "transformer.ln_f", "lm_head"]
    rows = trace_shapes(gpt2, ids, names=names)
    assert [r.name for r in rows] == names
    assert [r.output_shape for r in rows] == [(2, 64, 768), (1, 64, 768), (2, 64, 2304),
                                              (2, 64, 3072), (2, 64, 768), (2, 64, 768),
                                              (2, 64, V)]


def test_causal_mask_on_a_small_gpt2():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2,
                                       n_head=4)).eval()
    ids = torch.randint(0, 50, (2, 12))
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 50
    with torch.no_grad():
        diff = (model(ids).logits - model(changed).logits).abs().amax(dim=(0, 2))
    assert diff[:6].max().item() == 0.0
    assert diff[6:].min().item() > 0.0
    captured = {}
    model.set_attn_implementation("eager")
    hook = model.transformer.h[0].attn.register_forward_hook(
        lambda module, inputs, output: captured.update(p=output[1]))
    with torch.no_grad():
        model(ids[:1, :6])
    hook.remove()
    probs = captured["p"][0, 0]
    assert torch.equal(probs.triu(diagonal=1), torch.zeros(6, 6))
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))


def test_cs336_counts(lm):
    h, f, L = 1600, 6400, 48
    assert unique_parameter_count(lm) == CS336_TOTAL
    assert 2 * V * h + L * (4 * h * h + 3 * h * f + 2 * h) + h == CS336_TOTAL
    layer = lm.model.layers[0]
    assert sum(p.numel() for p in layer.parameters()) == 40_963_200
    assert sum(p.numel() for p in layer.self_attn.parameters()) == 10_240_000
    assert sum(p.numel() for p in layer.mlp.parameters()) == 30_720_000
    assert tuple(layer.mlp.gate_proj.weight.shape) == (f, h)
    assert tuple(layer.mlp.down_proj.weight.shape) == (h, f)
    assert lm.lm_head.weight is not lm.model.embed_tokens.weight
    assert lm.lm_head.weight.numel() == lm.model.embed_tokens.weight.numel() == 80_411_200
    linears = [m for m in lm.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 337 and all(m.bias is None for m in linears)


def test_rope_has_no_parameters(lm):
    rotary = lm.model.rotary_emb
    assert list(rotary.parameters()) == []
    assert {n: tuple(b.shape) for n, b in rotary.named_buffers()} == {
        "inv_freq": (32,), "original_inv_freq": (32,)}
    assert not any("inv_freq" in key for key in lm.state_dict())
    assert 2 * P * (1600 // 25 // 2) == 65_536  # a precomputed cos/sin cache: a buffer


def test_rope_scores_depend_on_relative_position():
    config = cs336_config()
    rope = modeling_llama.LlamaRotaryEmbedding(config)
    cos, sin = rope(torch.empty(0), torch.arange(16)[None])
    assert tuple(cos.shape) == (1, 16, 64)
    q = torch.randn(64).expand(1, 1, 16, 64)
    k = torch.randn(64).expand(1, 1, 16, 64)
    q_rot, k_rot = modeling_llama.apply_rotary_pos_emb(q, k, cos, sin)
    score = q_rot[0, 0] @ k_rot[0, 0].T
    torch.testing.assert_close(score[5, 2], score[13, 10])


def test_fp32_size():
    size = 4 * CS336_TOTAL
    assert size == 8_508_230_400
    assert round(size / 1e9, 2) == 8.51 and round(size / 2**30, 2) == 7.92


def test_exercises(lm):
    xl = build("gpt2-xl", "meta")
    assert CS336_TOTAL - unique_parameter_count(xl) == 569_446_400
    assert 80_411_200 - 1_638_400 + 48 * (40_963_200 - 30_740_800) - 1_600 == 569_446_400
    assert sum(p.numel() for p in xl.transformer.h[0].parameters()) == 30_740_800
    assert CS336_TOTAL - lm.lm_head.weight.numel() == 2_046_646_400
    with torch.device("meta"):
        xl_long = GPT2LMHeadModel(GPT2Config(n_embd=1600, n_layer=48, n_head=25,
                                             n_positions=2048))
        long_config = cs336_config()
        long_config.max_position_embeddings = 2048
        lm_long = LlamaForCausalLM(long_config)
    assert unique_parameter_count(xl_long) - 1_557_611_200 == 1_638_400
    assert unique_parameter_count(lm_long) == CS336_TOTAL


def test_diagram_blocks_follow_the_configs():
    small = decoder_blocks(gpt2_config("gpt2"))
    cs336 = decoder_blocks(cs336_config())
    assert [b.repeat for b in small if b.repeat] == ["× 12"]
    assert [b.repeat for b in cs336 if b.repeat] == ["× 48"]
    assert "position embedding" in small[1].label and "RoPE" in cs336[1].label
    assert "tied" in small[-1].label and "untied" in cs336[-1].label
    assert any("SwiGLU" in b.label for b in cs336)
