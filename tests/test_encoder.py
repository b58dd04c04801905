"""Facts the BERT chapter (docs/part1/encoder.md) states about BERT-base."""

import pytest
import torch
import torchinfo

from modelnotes.catalogue import bert_config, build, unique_parameter_count
from modelnotes.diagrams import bert_blocks
from modelnotes.structure import trace_shapes

h, a, L, f, V, P, T = 768, 12, 12, 3072, 30522, 512, 2


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def meta_model():
    return build("bert-base-uncased", "meta")


@pytest.fixture(scope="module")
def cpu_model():
    torch.manual_seed(0)
    return build("bert-base-uncased", "cpu").eval()


def test_config_is_bert_base():
    config = bert_config()
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers,
            config.intermediate_size, config.vocab_size, config.max_position_embeddings,
            config.type_vocab_size, config.hidden_act) == (h, a, L, f, V, P, T, "gelu")
    assert config.is_decoder is False


def test_embedding_counts(meta_model):
    emb = meta_model.embeddings
    assert count(emb.word_embeddings) == V * h == 23_440_896
    assert count(emb.position_embeddings) == P * h == 393_216
    assert count(emb.token_type_embeddings) == T * h == 1_536
    assert count(emb.LayerNorm) == 2 * h
    assert count(emb) == 23_837_184
    assert {name for name, _ in emb.named_buffers()} == {"position_ids", "token_type_ids"}


def test_layer_counts(meta_model):
    layer = meta_model.encoder.layer[0]
    attention = count(layer.attention.self) + count(layer.attention.output.dense)
    ffn = count(layer.intermediate.dense) + count(layer.output.dense)
    norms = count(layer.attention.output.LayerNorm) + count(layer.output.LayerNorm)
    assert attention == 4 * h * h + 4 * h == 2_362_368
    assert ffn == 2 * h * f + f + h == 4_722_432
    assert norms == 4 * h == 3_072
    assert count(layer) == attention + ffn + norms == 7_087_872
    assert all(count(other) == 7_087_872 for other in meta_model.encoder.layer)
    assert len(meta_model.encoder.layer) == L


def test_totals(meta_model):
    assert count(meta_model.pooler) == h * h + h == 590_592
    assert unique_parameter_count(meta_model) == 109_482_240
    assert unique_parameter_count(meta_model) - count(meta_model.pooler) == 108_891_648
    formula = (V + P + T) * h + 2 * h + L * (4 * h * h + 2 * h * f + 9 * h + f) + h * h + h
    assert formula == 109_482_240


def test_matrices_only_formula_gap():
    matrices_only = (V + P + T) * h + L * (4 * h * h + 2 * h * f)
    biases, norms, pooler = L * (4 * h + f + h), 2 * h + 4 * h * L, h * h + h
    assert matrices_only == 108_770_304
    assert (biases, norms, pooler) == (82_944, 38_400, 590_592)
    assert 109_482_240 - matrices_only == biases + norms + pooler == 711_936
    assert 109_482_240 - (matrices_only + norms) == 673_536  # LayerNorms added back


def test_diagram_blocks_follow_the_config():
    blocks = bert_blocks(bert_config())
    repeated = next(b for b in blocks if b.repeat)
    assert repeated.repeat == f"× {L}" and repeated.span == 4
    assert "12 heads × 64" in repeated.detail
    assert any(b.detail == "768 → 3072 → 768" for b in blocks)
    assert blocks[-1].label.startswith("pooler")


def test_shapes_and_attention_by_running(cpu_model):
    B, S = 2, 16
    ids = torch.randint(0, V, (B, S))
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, 12:] = 0
    names = ["embeddings", "embeddings.position_embeddings", "encoder.layer.0.intermediate",
             "encoder.layer.11", "pooler"]
    rows = {r.name: r.output_shape
            for r in trace_shapes(cpu_model, input_ids=ids, attention_mask=mask, names=names)}
    assert rows == {"embeddings": (B, S, h), "embeddings.position_embeddings": (1, S, h),
                    "encoder.layer.0.intermediate": (B, S, f), "encoder.layer.11": (B, S, h),
                    "pooler": (B, h)}
    with torch.no_grad():
        cpu_model.set_attn_implementation("eager")
        try:
            out = cpu_model(input_ids=ids, attention_mask=mask, output_attentions=True)
        finally:
            cpu_model.set_attn_implementation("sdpa")
        attn = cpu_model.encoder.layer[0].attention.self
        X = cpu_model.embeddings(input_ids=ids)
        split = lambda t: t.view(B, S, a, h // a).transpose(1, 2)  # noqa: E731
        scores = split(attn.query(X)) @ split(attn.key(X)).transpose(-1, -2) / (h // a) ** 0.5
        M = torch.zeros(B, 1, 1, S)
        M[mask[:, None, None, :] == 0] = torch.finfo(scores.dtype).min
        by_hand = torch.softmax(scores + M, dim=-1)
    assert len(out.attentions) == L and out.attentions[0].shape == (B, a, S, S)
    assert out.attentions[0][1, :, :, 12:].max().item() == 0.0  # padded keys get no weight
    later = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1)
    assert out.attentions[0][0][:, later].sum() > 0  # bidirectional: later tokens are seen
    assert torch.allclose(by_hand, out.attentions[0], atol=1e-6)


def test_exercise_bert_large_and_mlm():
    from transformers import BertConfig, BertForMaskedLM, BertModel

    with torch.device("meta"):
        large = BertModel(BertConfig(hidden_size=1024, num_hidden_layers=24,
                                     num_attention_heads=16, intermediate_size=4096))
        mlm = BertForMaskedLM(BertConfig())
    assert unique_parameter_count(large) == 335_141_888
    assert count(large.encoder.layer[0]) == 12_596_224
    assert mlm.bert.pooler is None
    assert mlm.cls.predictions.decoder.weight is mlm.bert.embeddings.word_embeddings.weight
    assert unique_parameter_count(mlm) == 109_514_298
    assert unique_parameter_count(mlm) - unique_parameter_count(mlm.bert) == 622_650
    summary = torchinfo.summary(mlm, input_data={"input_ids": torch.zeros(1, 8, dtype=torch.long)},
                                device="meta", depth=2, verbose=0)
    assert summary.total_params == 109_514_298 + V * h == 132_955_194
