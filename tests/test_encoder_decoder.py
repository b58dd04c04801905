"""Facts the T5 chapter (docs/part1/encoder_decoder.md) states, checked on the meta device."""

import pytest
import torch
from torch import nn
from torchinfo import summary
from transformers import AttentionInterface, T5Config, T5ForConditionalGeneration
from transformers.masking_utils import AttentionMaskInterface, eager_mask
from transformers.models.t5 import modeling_t5

from modelnotes.catalogue import build, t5_config, unique_parameter_count
from modelnotes.diagrams import t5_blocks
from modelnotes.structure import parameters_by_child, trace_shapes

V, D, D_KV, F, A, L = 32_128, 512, 64, 2_048, 8, 6


@pytest.fixture(scope="module")
def model():
    return build("t5-small", "meta").eval()


def test_config_is_t5_small_and_has_the_version_traps():
    config = t5_config()
    assert (config.vocab_size, config.d_model, config.d_kv, config.d_ff) == (V, D, D_KV, F)
    assert (config.num_layers, config.num_decoder_layers, config.num_heads) == (L, L, A)
    assert config.relative_attention_num_buckets == 32
    assert getattr(config, "decoder_start_token_id", None) is None
    forced = T5Config(tie_word_embeddings=False)
    assert forced.tie_word_embeddings is True and forced.scale_decoder_outputs is False


def test_one_embedding_three_users(model):
    shared = model.shared.weight
    assert tuple(shared.shape) == (V, D)
    for name in ("encoder.embed_tokens", "decoder.embed_tokens", "lm_head"):
        assert model.get_submodule(name).weight is shared
    holders = [n for n, p in model.named_parameters(remove_duplicate=False) if p is shared]
    assert len(holders) == 4


def test_parameter_counts(model):
    assert unique_parameter_count(model) == 60_506_624
    assert parameters_by_child(model) == {"shared": 16_449_536, "encoder": 18_881_280,
                                          "decoder": 25_175_808, "lm_head": 0}
    enc = [sum(p.numel() for p in b.parameters()) for b in model.encoder.block]
    dec = [sum(p.numel() for p in b.parameters()) for b in model.decoder.block]
    assert enc == [3_147_008] + [3_146_752] * 5
    assert dec == [4_196_096] + [4_195_840] * 5
    named = dict(model.named_parameters())
    assert sum(p.numel() for n, p in named.items() if "relative_attention_bias" in n) == 512
    assert sum(p.numel() for n, p in named.items() if "layer_norm" in n) == 16_384


def test_formula_matches_count(model):
    inner = A * D_KV
    formula = (V * D + L * (4 * D * inner + 2 * D * F + 2 * D)
               + L * (8 * D * inner + 2 * D * F + 3 * D) + 2 * D + 2 * 32 * A)
    assert formula == unique_parameter_count(model)


def test_relative_bias_only_in_block_zero_of_each_stack(model):
    for stack in (model.encoder, model.decoder):
        flags = [b.layer[0].SelfAttention.has_relative_attention_bias for b in stack.block]
        assert flags == [True] + [False] * 5
        assert tuple(stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight.shape) \
            == (32, A)
    assert not any(b.layer[1].EncDecAttention.has_relative_attention_bias
                   for b in model.decoder.block)


def test_bucket_examples():
    distances = torch.tensor([-300, -9, -8, -1, 0, 1, 8, 300])
    encoder = modeling_t5.T5Attention._relative_position_bucket(distances, True, 32, 128)
    decoder = modeling_t5.T5Attention._relative_position_bucket(distances, False, 32, 128)
    assert encoder.tolist() == [15, 8, 8, 1, 0, 17, 24, 31]
    assert decoder.tolist() == [31, 9, 8, 1, 0, 0, 0, 0]


def test_no_biases_and_rmsnorm(model):
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 97 and all(m.bias is None for m in linears)
    norms = [m for m in model.modules() if isinstance(m, modeling_t5.T5LayerNorm)]
    assert len(norms) == 32
    assert all([n for n, _ in m.named_parameters()] == ["weight"] for m in norms)
    assert modeling_t5.T5Attention(t5_config()).scaling == 1.0


def test_rmsnorm_matches_builtin():
    norm = modeling_t5.T5LayerNorm(D)
    nn.init.normal_(norm.weight)
    x = torch.randn(2, 5, D)
    expected = nn.functional.rms_norm(x, (D,), norm.weight, norm.variance_epsilon)
    torch.testing.assert_close(norm(x), expected)


def test_torchinfo_counts_the_embedding_three_times(model):
    ids = torch.zeros(2, 64, dtype=torch.long, device="meta")
    dec = torch.zeros(2, 16, dtype=torch.long, device="meta")
    info = summary(model, input_data={"input_ids": ids, "decoder_input_ids": dec}, depth=3,
                   device="meta", verbose=0)
    assert info.total_params == 93_405_696 == 60_506_624 + 2 * V * D


def test_shapes_including_cross_attention(model):
    calls = []

    def recording(module, query, key, value, mask, **kwargs):
        output, weights = modeling_t5.eager_attention_forward(module, query, key, value, mask,
                                                              **kwargs)
        calls.append((module.is_decoder, tuple(query.shape), tuple(key.shape),
                      tuple(weights.shape)))
        return output, weights

    AttentionInterface.register("t5-test-recording", recording)
    AttentionMaskInterface.register("t5-test-recording", eager_mask)
    ids = torch.zeros(2, 40, dtype=torch.long, device="meta")
    dec = torch.zeros(2, 16, dtype=torch.long, device="meta")
    for module in (model, model.encoder, model.decoder):
        module.set_attn_implementation("t5-test-recording")
    try:
        rows = trace_shapes(model, input_ids=ids, decoder_input_ids=dec,
                            names=["encoder", "decoder", "lm_head"])
    finally:
        for module in (model, model.encoder, model.decoder):
            module.set_attn_implementation("sdpa")
    assert [r.output_shape for r in rows] == [(2, 40, D), (2, 16, D), (2, 16, V)]
    assert len(calls) == L + 2 * L
    assert calls[0] == (False, (2, A, 40, D_KV), (2, A, 40, D_KV), (2, A, 40, 40))
    cross = [c for c in calls if c[0] and c[2][2] == 40]
    assert len(cross) == L
    assert cross[0][1:] == ((2, A, 16, D_KV), (2, A, 40, D_KV), (2, A, 16, 40))


def test_mistaken_formula_terms(model):
    linear_biases = sum(m.out_features for n, m in model.named_modules()
                        if isinstance(m, nn.Linear) and n != "lm_head")
    assert linear_biases == 67_584
    wrong = 60_506_624 + 512 * D + V * D + linear_biases + 16_384 + (32_100 - V) * D
    assert wrong == 77_287_936


def test_diagram_blocks_follow_the_config():
    (enc_title, encoder), (dec_title, decoder) = t5_blocks(t5_config())
    assert (enc_title, dec_title) == ("encoder", "decoder")
    assert [b.repeat for b in encoder if b.repeat] == [f"× {L}"]
    assert [b.repeat for b in decoder if b.repeat] == [f"× {L}"]
    assert any(b.label.startswith("cross-attention") for b in decoder)
    assert not any(b.label.startswith("cross-attention") for b in encoder)
    assert f"{V} × {D}" in encoder[1].detail
    assert decoder[-1].label.startswith("LM head (tied")


def test_exercises():
    with torch.device("meta"):
        base = T5ForConditionalGeneration(T5Config(d_model=768, d_ff=3072, num_layers=12,
                                                   num_heads=12))
        gated = T5ForConditionalGeneration(T5Config(feed_forward_proj="gated-gelu"))
    assert unique_parameter_count(base) == 222_903_552
    assert unique_parameter_count(gated) - 60_506_624 == 2 * L * D * F == 12_582_912
    assert gated.config.dense_act_fn == "gelu_new" and gated.config.is_gated_act
