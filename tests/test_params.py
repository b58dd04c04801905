"""Closed-form parameter counts equal, to the parameter, what PyTorch builds on ``meta``.

Three kinds of check: every catalogue model (against the catalogue's own builder), the
named modern LLMs with their official config values (against published exact counts),
and, per family, randomly drawn small configs (a formula that only fits the shipped
configs is a defect).
"""

import json
import random
import subprocess
import sys

import pytest

from modelnotes import catalogue
from modelnotes.params import (NAMED, Count, MissingFieldError, UnsupportedModelError,
                               attention, batchnorm, conv2d, count, embedding, ffn, layernorm,
                               linear, load_config, lstm, mla, moe, named_config, pytorch_count,
                               report, rmsnorm)

# Exact unique-parameter counts published or derived from official configs (facts.md),
# each reproduced below by both counts.
PUBLISHED = {
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
    "llama4-scout": 108_641_793_536,
    "llama4-maverick": 401_583_781_376,
    "deepseek-v3": 671_026_404_352,
    "qwen3-0.6b": 596_049_920,
    "qwen3-1.7b": 1_720_574_976,
    "qwen3-4b": 4_022_468_096,
    "qwen3-8b": 8_190_735_360,
    "qwen3-14b": 14_768_307_200,
    "qwen3-32b": 32_762_123_264,
    "qwen3-30b-a3b": 30_532_122_624,
    "qwen3-235b-a22b": 235_093_634_560,
    "grok-1": 315_684_820_992,
    "grok-2": 269_515_497_472,
    "mixtral-8x7b": 46_702_792_704,
}


def _n(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_layer_formulas_equal_torch_modules():
    import torch
    from torch import nn

    r = random.Random(0)
    with torch.device("meta"):
        for _ in range(DRAWS):
            i, o, b = r.randint(1, 50), r.randint(1, 50), r.random() < 0.5
            assert linear(i, o, b) == _n(nn.Linear(i, o, bias=b))
            assert embedding(i, o) == _n(nn.Embedding(i, o))
            assert layernorm(o, b) == _n(nn.LayerNorm(o, bias=b))
            assert rmsnorm(o) == _n(nn.RMSNorm(o))
            assert batchnorm(o, b) == _n(nn.BatchNorm2d(o, affine=b))
            g = r.choice([1, 2, 4])
            k = (r.randint(1, 5), r.randint(1, 5))
            assert conv2d(4 * i, 4 * o, k, b, g) == _n(nn.Conv2d(4 * i, 4 * o, k, bias=b, groups=g))
            h, layers, bi = r.randint(2, 20), r.randint(1, 3), r.random() < 0.5
            p = r.choice([0, r.randint(1, h - 1)])
            assert lstm(i, h, layers, bi, p, b) == _n(
                nn.LSTM(i, h, layers, bias=b, bidirectional=bi, proj_size=p))
            heads, kv = _heads(r)
            hd = r.randint(1, 8)
            a = attention(o, heads, kv, hd, q_bias=b, o_bias=not b, qk_norm=b)
            assert a.total == linear(o, heads * hd, b) + 2 * linear(o, kv * hd, b) + linear(
                heads * hd, o, not b) + (2 * hd if b else 0)
            f = ffn(o, i, gated=b, bias=not b)
            assert f.total == (3 if b else 2) * o * i + (0 if b else i + o)
    m = moe(8, 4, 2, 6, shared_intermediate=5, router_bias=True)
    assert (m.total, m.active) == (8 * 4 + 4 + 4 * 3 * 8 * 6 + 3 * 8 * 5,
                                   8 * 4 + 4 + 2 * 3 * 8 * 6 + 3 * 8 * 5)
    no_q_lora = mla(16, 2, None, 4, 3, 2, 5)
    assert no_q_lora.find("q_proj").total == 16 * 2 * 5


def test_every_name_has_a_published_count():
    assert set(NAMED) == set(PUBLISHED)
    assert set(catalogue.names()) <= set(NAMED)


@pytest.mark.parametrize("name", catalogue.names())
def test_catalogue_model_formula_equals_its_builder(name):
    model = catalogue.build(name, device="meta")
    assert count(name).total == catalogue.unique_parameter_count(model) == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_named_model_formula_equals_meta_count(name):
    c = count(name)
    assert c.total == PUBLISHED[name]
    assert pytorch_count(name) - c.total == 0


def test_llama4_text_part_and_vision():
    scout = named_config("llama4-scout")
    assert count(scout["text_config"], "Llama4ForCausalLM").total == 107_769_861_120
    maverick = named_config("llama4-maverick")
    assert count(maverick["text_config"], "Llama4ForCausalLM").total == 400_711_848_960
    full = count(scout)
    assert full.find("vision_model").total + full.find("multi_modal_projector").total == (
        108_641_793_536 - 107_769_861_120)


def test_moe_active_parameters():
    # everything a token passes through: all but the routed experts it skips
    ds = count("deepseek-v3")
    assert ds.active == 37_552_282_624  # "37B activated"
    q = count("qwen3-30b-a3b")
    assert q.active == 3_353_032_704  # "A3B"
    assert count("qwen3-235b-a22b").active == 22_190_763_520  # "A22B"
    assert count("mixtral-8x7b").active == 12_879_925_248  # "12.9B active"
    assert count("llama4-scout").find("language_model").active == 17_172_894_720  # "17B"
    dense = count("qwen3-8b")
    assert dense.active == dense.total


def test_embedding_split():
    g = count("grok-1")  # tied: one table
    assert g.embedding == 131_072 * 6_144
    assert g.non_embedding == 314_879_514_624  # the "314B"
    cs = count("cs336-lm")  # untied: input table and output projection
    assert cs.embedding == 2 * 50_257 * 1_600


def test_deepseek_mtp_module():
    plain = count("deepseek-v3")
    with_mtp = count("deepseek-v3", mtp=True)
    extra = with_mtp.total - plain.total
    assert extra == 11_610_067_968  # shares the embedding and head with the main model
    assert pytorch_count("deepseek-v3", mtp=True) == with_mtp.total
    # the hub checkpoint also stores copies of embedding and head in layer 61: ~685B
    copies = 2 * 129_280 * 7_168
    assert round((with_mtp.total + copies) / 1e9) == 684
    # README_WEIGHTS: "11.5B unique" is the extra transformer layer alone (eh_proj adds 0.1B);
    # "36.6B activated (including 0.9B for the output Head)" leaves out the input embedding
    assert round(with_mtp.find("mtp module").find("MoE layer").total / 1e8) == 115
    assert round((plain.active - plain.find("embed_tokens").total) / 1e8) == 366


def test_count_structure_and_dict_are_consistent():
    c = count("llama4-maverick")
    d = c.to_dict()
    assert d["total"] == c.total and d["active"] == c.active
    json.dumps(d)

    def check(node: Count):
        assert node.unit == node.params + sum(ch.total for ch in node.children)
        for ch in node.children:
            check(ch)

    check(c)
    layers = c.find("language_model").find("layers")
    assert sorted(ch.times for ch in layers.children) == [24, 24]  # dense and MoE interleaved


def test_config_json_like_the_hub(tmp_path):
    # an official-style config.json: extra fields (quantization, auto_map, rope scaling) and
    # no derived fields; no remote code is run
    cfg = {**named_config("deepseek-v3"), "auto_map": {"AutoConfig": "configuration_deepseek.X"},
           "quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
                                   "weight_block_size": [128, 128]},
           "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
           "torch_dtype": "bfloat16"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = report(load_config(str(path)))
    assert r["total"] == r["pytorch"] == 671_026_404_352 and r["difference"] == 0
    assert r["bytes"]["fp8"] == r["total"]
    json.dumps(r)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(str(tmp_path / "bad.json"))
    (tmp_path / "nomt.json").write_text("{}")
    with pytest.raises(ValueError, match="model_type"):
        load_config(str(tmp_path / "nomt.json"))


def test_errors():
    with pytest.raises(UnsupportedModelError):
        count({"model_type": "whisper"})
    with pytest.raises(UnsupportedModelError):
        count("gpt-5")
    with pytest.raises(MissingFieldError):
        count({"model_type": "llama", "hidden_size": 64})
    with pytest.raises(UnsupportedModelError):
        count({**named_config("gpt2"), "architectures": ["GPT2DoubleHeadsModel"]})


def test_formulas_do_not_import_torch():
    code = ("import sys; from modelnotes.params import NAMED, count; "
            "totals = [count(n).total for n in NAMED]; "
            "assert 'torch' not in sys.modules, 'torch imported'; print(totals[NAMED.index('deepseek-v3')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": ":".join(sys.path), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "671026404352"


def test_catalogue_configs_match_the_catalogue():
    from modelnotes.catalogue import GPT2_SHAPES

    assert {k: v for k, v in GPT2_SHAPES.items()} == {
        k: tuple(named_config(k)[f] for f in ("n_embd", "n_layer", "n_head")) for k in GPT2_SHAPES}
    for name in ("bert-base-uncased", "t5-small", "cs336-lm", "gpt2-xl"):
        official = catalogue.entry(name).config().to_dict()
        mine = named_config(name)
        assert {k: official[k] for k in mine if k not in ("architectures", "model_type")} == {
            k: v for k, v in mine.items() if k not in ("architectures", "model_type")}, name


# ----- property tests: random small configs, formula == meta count -------------------------

DRAWS = 20


def _agree(config, architecture=None, **kw):
    """Formula from the config object and from its dict (config.json) == meta count."""
    as_dict = json.loads(json.dumps(config.to_dict()))
    expected = pytorch_count(as_dict, architecture, **kw)
    assert count(config, architecture, **kw).total == expected, config
    assert count(as_dict, architecture, **kw).total == expected, as_dict
    return expected


def _heads(r: random.Random):
    kv = r.choice([1, 2, 4])
    return kv * r.choice([1, 2, 3]), kv


def test_property_bert():
    from transformers import BertConfig

    r = random.Random(1)
    archs = ["BertModel", "BertForMaskedLM", "BertForPreTraining", "BertLMHeadModel",
             "BertForNextSentencePrediction", "BertForSequenceClassification",
             "BertForMultipleChoice", "BertForTokenClassification", "BertForQuestionAnswering"]
    for i in range(DRAWS):
        h = r.choice([2, 4])
        arch = archs[i % len(archs)]
        cfg = BertConfig(vocab_size=r.randint(20, 90), hidden_size=8 * h,
                         num_hidden_layers=r.randint(1, 3), num_attention_heads=h,
                         intermediate_size=r.randint(8, 70), max_position_embeddings=r.randint(8, 40),
                         type_vocab_size=r.randint(1, 3), num_labels=r.randint(2, 5),
                         tie_word_embeddings=r.random() < 0.5,
                         is_decoder=arch == "BertLMHeadModel",
                         add_cross_attention=arch == "BertLMHeadModel" and r.random() < 0.5)
        cfg.architectures = [arch]
        _agree(cfg)


def test_property_t5():
    from transformers import T5Config

    r = random.Random(2)
    archs = ["T5Model", "T5ForConditionalGeneration", "T5EncoderModel"]
    for i in range(DRAWS):
        cfg = T5Config(vocab_size=r.randint(20, 90), d_model=r.choice([8, 12, 16]),
                       d_kv=r.choice([2, 4, 6]), d_ff=r.randint(4, 40), num_heads=r.randint(1, 4),
                       num_layers=r.randint(1, 3), num_decoder_layers=r.randint(1, 3),
                       relative_attention_num_buckets=r.randint(4, 32),
                       feed_forward_proj=r.choice(["relu", "gated-gelu", "gated-silu"]),
                       decoder_start_token_id=0)
        cfg.architectures = [archs[i % 3]]
        _agree(cfg)


def test_property_gpt2():
    from transformers import GPT2Config

    r = random.Random(3)
    archs = ["GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification",
             "GPT2ForTokenClassification"]
    for i in range(DRAWS):
        h = r.randint(1, 4)
        cfg = GPT2Config(vocab_size=r.randint(20, 90), n_embd=4 * h, n_head=h,
                         n_layer=r.randint(1, 3), n_positions=r.randint(8, 40),
                         n_inner=r.choice([None, r.randint(4, 40)]),
                         tie_word_embeddings=r.random() < 0.7, num_labels=r.randint(2, 4))
        cfg.architectures = [archs[i % 4]]
        _agree(cfg)


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "qwen3", "mixtral"])
def test_property_llama_style(model_type):
    from transformers import AutoConfig

    r = random.Random(model_type)
    for i in range(DRAWS):
        H, KV = _heads(r)
        # transformers validates hidden % heads == 0 even where head_dim is set apart
        kw = dict(vocab_size=r.randint(20, 90), hidden_size=H * r.choice([2, 4, 6]),
                  intermediate_size=r.randint(4, 40), num_hidden_layers=r.randint(1, 3),
                  num_attention_heads=H, num_key_value_heads=KV,
                  tie_word_embeddings=r.random() < 0.5)
        if r.random() < 0.7:  # head_dim independent of hidden / heads
            kw["head_dim"] = r.choice([2, 4, 6, 8])
        if model_type == "mixtral":
            kw.update(num_local_experts=r.randint(1, 5), num_experts_per_tok=1)
        if model_type in ("llama", "qwen3"):
            kw["attention_bias"] = r.random() < 0.5
        if model_type == "llama":
            kw["mlp_bias"] = r.random() < 0.5
        cfg = AutoConfig.for_model(model_type, **kw)
        arch = [f"{cls}" for cls in ("Model", "ForCausalLM")][i % 2]
        prefix = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3", "mixtral": "Mixtral"}
        _agree(cfg, prefix[model_type] + arch)


def test_property_qwen3_moe():
    from transformers import Qwen3MoeConfig

    r = random.Random(5)
    for i in range(DRAWS):
        H, KV = _heads(r)
        L = r.randint(1, 4)
        E = r.randint(1, 6)
        cfg = Qwen3MoeConfig(vocab_size=r.randint(20, 90), hidden_size=r.choice([8, 16]),
                             intermediate_size=r.randint(4, 40),
                             moe_intermediate_size=r.randint(2, 20), num_hidden_layers=L,
                             num_attention_heads=H, num_key_value_heads=KV, head_dim=r.choice([2, 4, 8]),
                             num_experts=E, num_experts_per_tok=r.randint(1, E),
                             decoder_sparse_step=r.randint(1, 3),
                             mlp_only_layers=r.sample(range(L), r.randint(0, L)),
                             attention_bias=r.random() < 0.5, tie_word_embeddings=r.random() < 0.5)
        _agree(cfg, ["Qwen3MoeModel", "Qwen3MoeForCausalLM"][i % 2])


def _llama4_text_kwargs(r: random.Random) -> dict:
    H, KV = _heads(r)
    L = r.randint(1, 4)
    E = r.randint(1, 5)
    kw = dict(vocab_size=r.randint(20, 90), hidden_size=r.choice([8, 16]),
              intermediate_size=r.randint(4, 30), intermediate_size_mlp=r.randint(4, 30),
              num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=KV,
              head_dim=r.choice([2, 4, 8]), num_local_experts=E, num_experts_per_tok=r.randint(1, E),
              attention_bias=r.random() < 0.5, use_qk_norm=r.random() < 0.5,
              tie_word_embeddings=r.random() < 0.5)
    if r.random() < 0.5:
        kw["interleave_moe_layer_step"] = r.randint(1, 3)
    else:
        kw["moe_layers"] = r.sample(range(L), r.randint(0, L))
    return kw


def test_property_llama4_text():
    from transformers import Llama4TextConfig

    r = random.Random(6)
    for i in range(DRAWS):
        cfg = Llama4TextConfig(**_llama4_text_kwargs(r))
        arch = ["Llama4TextModel", "Llama4ForCausalLM"][i % 2]
        n = _agree(cfg, arch)
        # official config.json files give interleave_moe_layer_step, not the derived moe_layers
        d = cfg.to_dict()
        step = d["interleave_moe_layer_step"]
        if d["moe_layers"] == list(range(step - 1, d["num_hidden_layers"], step)):
            d.pop("moe_layers")
            assert count(d, arch).total == n


def test_property_llama4_multimodal():
    from transformers import Llama4Config, Llama4TextConfig, Llama4VisionConfig

    r = random.Random(7)
    for _ in range(DRAWS // 2):
        heads = r.choice([1, 2])
        patch = r.choice([2, 4])
        vision = Llama4VisionConfig(hidden_size=8 * heads, intermediate_size=r.randint(4, 30),
                                    num_hidden_layers=r.randint(1, 2), num_attention_heads=heads,
                                    image_size=patch * r.randint(2, 4), patch_size=patch,
                                    vision_output_dim=r.randint(4, 20),
                                    projector_input_dim=r.randint(4, 20),
                                    projector_output_dim=r.randint(4, 20))
        cfg = Llama4Config(vision_config=vision.to_dict(),
                           text_config=Llama4TextConfig(**_llama4_text_kwargs(r)).to_dict())
        _agree(cfg, "Llama4ForConditionalGeneration")


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # n_shared_experts=0
def test_property_deepseek_v3():
    from transformers import DeepseekV3Config

    r = random.Random(8)
    for i in range(DRAWS):
        H = r.randint(1, 4)
        E = r.choice([2, 4, 8])
        L = r.randint(1, 4)
        cfg = DeepseekV3Config(
            vocab_size=r.randint(20, 90), hidden_size=r.choice([8, 16]),
            intermediate_size=r.randint(4, 30), moe_intermediate_size=r.randint(2, 12),
            num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=H,
            n_shared_experts=r.randint(0, 2), n_routed_experts=E,
            num_experts_per_tok=r.randint(1, E), n_group=1, topk_group=1,
            first_k_dense_replace=r.randint(0, L), q_lora_rank=r.choice([None, 4, 6]),
            kv_lora_rank=r.choice([2, 4, 8]), qk_nope_head_dim=r.choice([2, 4]),
            qk_rope_head_dim=r.choice([2, 4]), v_head_dim=r.choice([2, 6]),
            attention_bias=r.random() < 0.5, tie_word_embeddings=r.random() < 0.5,
            num_nextn_predict_layers=r.randint(0, 2))
        _agree(cfg, ["DeepseekV3Model", "DeepseekV3ForCausalLM"][i % 2], mtp=r.random() < 0.5)


def test_property_grok():
    from modelnotes.grok import GrokConfig

    r = random.Random(9)
    for _ in range(DRAWS):
        H, KV = _heads(r)
        E = r.randint(1, 4)
        cfg = GrokConfig(vocab_size=r.randint(20, 90), hidden_size=r.choice([8, 16]),
                         intermediate_size=r.randint(4, 30), moe_intermediate_size=r.randint(2, 20),
                         num_hidden_layers=r.randint(1, 3), num_attention_heads=H,
                         num_key_value_heads=KV, head_dim=r.choice([2, 4, 6]),
                         num_local_experts=E, num_experts_per_tok=r.randint(1, E),
                         residual_moe=r.random() < 0.5, tie_word_embeddings=r.random() < 0.5)
        _agree(cfg)


def test_property_vgg():
    r = random.Random(10)
    for _ in range(DRAWS):
        cfg = []
        for _ in range(r.randint(1, 8)):
            cfg.append(r.choice([8, 16, 24, "M"]))
        if all(v == "M" for v in cfg):
            cfg.append(8)
        config = {"model_type": "vgg", "cfg": cfg, "batch_norm": r.random() < 0.5,
                  "num_classes": r.randint(2, 20)}
        assert count(config).total == pytorch_count(config)
    for depth in (11, 13, 16, 19):
        for bn in (False, True):
            config = {"model_type": "vgg", "depth": depth, "batch_norm": bn}
            assert count(config).total == pytorch_count(config)


def test_property_resnet():
    r = random.Random(11)
    for _ in range(DRAWS):
        config = {"model_type": "resnet", "block": r.choice(["basic", "bottleneck"]),
                  "layers": [r.randint(1, 3) for _ in range(4)], "num_classes": r.randint(2, 20)}
        if config["block"] == "bottleneck" and r.random() < 0.5:  # ResNeXt / wide
            config.update(groups=r.choice([1, 2, 4]), width_per_group=r.choice([4, 64, 128]))
        assert count(config).total == pytorch_count(config)
    for depth in (18, 34, 50, 101, 152):
        config = {"model_type": "resnet", "depth": depth}
        assert count(config).total == pytorch_count(config)


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19",
                                  "vgg19_bn", "resnet34", "resnet50", "resnet101", "resnet152",
                                  "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                                  "wide_resnet50_2", "wide_resnet101_2"])
def test_torchvision_names_published_counts(name):
    import torch
    from torchvision.models import get_model, get_model_weights

    published = get_model_weights(name).DEFAULT.meta["num_params"]
    with torch.device("meta"):
        built = sum(p.numel() for p in get_model(name, weights=None).parameters())
    assert count(name).total == pytorch_count(name) == built == published


def test_property_lstm():
    r = random.Random(12)
    for _ in range(DRAWS):
        h = r.randint(2, 20)
        config = {"model_type": "lstm", "input_size": r.randint(1, 20), "hidden_size": h,
                  "num_layers": r.randint(1, 3), "bidirectional": r.random() < 0.5,
                  "proj_size": r.choice([0, 0, r.randint(1, h - 1) if h > 1 else 0]),
                  "bias": r.random() < 0.8,
                  "num_classes": r.randint(2, 10)}
        assert count(config).total == pytorch_count(config)


@pytest.mark.parametrize("name, head", [("gpt2", "lm_head (tied to wte)"),
                                        ("t5-small", "lm_head (tied to shared)"),
                                        ("qwen3-0.6b", "lm_head (tied to embed_tokens)")])
def test_a_tied_head_is_listed_with_zero(name, head):
    node = count(name).find(head)
    assert (node.total, node.kind, node.embedding) == (0, "tied", 0)
    assert head in [row[1] for row in count(name).rows()]


def test_an_untied_head_holds_its_own_matrix():
    head = count("qwen3-8b").find("lm_head")
    assert head.total == head.embedding == 151_936 * 4_096
