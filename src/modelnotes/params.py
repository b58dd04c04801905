"""Exact parameter counts in closed form, from a model's config alone, and a second count.

Every formula here is plain integer arithmetic over config fields: nothing is built and
torch is not imported until :func:`pytorch_count` builds the real module on the ``meta``
device for the independent count. The two must agree to the parameter.

Layer formulas (one function per layer type):

>>> linear(768, 3072), linear(768, 3072, bias=False)
(2362368, 2359296)
>>> layernorm(768), layernorm(512, bias=False), rmsnorm(512)
(1536, 512, 512)
>>> conv2d(64, 128, 3), batchnorm(128)
(73856, 256)
>>> lstm(100, 256, num_layers=2)  # two bias vectors per gate
892928

Whole models, from a catalogue or issue name, a Hugging Face config, or its ``to_dict()``:

>>> c = count("qwen3-0.6b")
>>> c.total, c.embedding
(596049920, 155582464)
>>> c = count("deepseek-v3")
>>> c.total, c.active
(671026404352, 37552282624)
>>> count(named_config("deepseek-v3"), mtp=True).total
682636472320
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Count", "MissingFieldError", "UnsupportedModelError",
    "linear", "embedding", "layernorm", "rmsnorm", "conv2d", "batchnorm", "lstm",
    "attention", "mla", "ffn", "moe", "relative_attention_bias",
    "count", "pytorch_count", "build_meta", "torchvision_module", "named_config", "load_config",
    "report", "weight_bytes",
    "NAMED", "VGG_CFGS", "RESNET_DEPTHS",
]


class UnsupportedModelError(ValueError):
    """The config's ``model_type`` (or ``architectures``) has no formula here."""


class MissingFieldError(KeyError):
    """A config field the formula needs is absent."""


# ----- the result ----------------------------------------------------------------------

@dataclass
class Count:
    """A node of the parameter breakdown.

    ``params`` are held directly by this node (per copy), ``children`` hold the rest;
    ``times`` identical copies exist (layers, experts), of which a token uses
    ``active_times`` (routed experts: top-k; None means all). ``kind`` is "embedding" for
    vocabulary and position tables and untied output projections onto the vocabulary, and
    "tied" for an output layer that reuses the embedding (kept in the tree, holding 0).
    Under a node with ``times`` N, the children's totals are per copy.

    "Active" counts every parameter a token's forward pass reads except the routed experts
    it skips; the input embedding is included (only one row is read). DeepSeek's README
    figure "36.6B activated" leaves the input embedding out; its "37B" keeps it in.

    >>> layer = Count("layer", children=[Count("attn", 40), Count("mlp", 60)], times=3)
    >>> layer.total, layer.unit
    (300, 100)
    >>> experts = Count("experts", children=[Count("expert", 10)], times=8, active_times=2)
    >>> experts.total, experts.active
    (80, 20)
    """

    name: str
    params: int = 0
    children: list[Count] = field(default_factory=list)
    times: int = 1
    active_times: int | None = None
    kind: str = ""

    @property
    def unit(self) -> int:
        """Parameters of one copy."""
        return self.params + sum(c.total for c in self.children)

    @property
    def total(self) -> int:
        return self.times * self.unit

    @property
    def active(self) -> int:
        """Parameters a token passes through (all but the routed experts it skips)."""
        n = self.times if self.active_times is None else self.active_times
        return n * (self.params + sum(c.active for c in self.children))

    @property
    def embedding(self) -> int:
        """Vocabulary/position tables and untied vocabulary projections."""
        if self.kind == "embedding":
            return self.total
        return self.times * sum(c.embedding for c in self.children)

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding

    def find(self, name: str) -> Count:
        """The first node called *name*, depth first."""
        if self.name == name:
            return self
        for c in self.children:
            try:
                return c.find(name)
            except KeyError:
                pass
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "total": self.total}
        if self.times != 1:
            out["times"], out["each"] = self.times, self.unit
        if self.active != self.total:
            out["active"] = self.active
        if self.kind:
            out["kind"] = self.kind
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out

    def rows(self, depth: int = 0, max_depth: int | None = None):
        """(depth, name, times, total, active) for a breakdown table, depth first."""
        yield depth, self.name, self.times, self.total, self.active
        if max_depth is None or depth < max_depth:
            for c in self.children:
                yield from c.rows(depth + 1, max_depth)


def _leaf(name: str, n: int, kind: str = "") -> Count:
    return Count(name, n, kind=kind)


def _node(name: str, *children: Count | None, times: int = 1, active_times: int | None = None,
          kind: str = "") -> Count:
    # Empty parts (a bias switched off) are dropped; a tied head stays, as a visible 0.
    kept = [c for c in children if c is not None and (c.total or c.kind == "tied")]
    return Count(name, 0, kept, times=times, active_times=active_times, kind=kind)


# ----- layer formulas ------------------------------------------------------------------

def linear(in_features: int, out_features: int, bias: bool = True) -> int:
    """nn.Linear: a weight out x in and, with bias, out more."""
    return in_features * out_features + (out_features if bias else 0)


def embedding(num_embeddings: int, dim: int) -> int:
    """nn.Embedding: a table num_embeddings x dim."""
    return num_embeddings * dim


def layernorm(dim: int, bias: bool = True) -> int:
    """nn.LayerNorm: scale and shift (T5's and RMSNorm's are scale only)."""
    return dim * (2 if bias else 1)


def rmsnorm(dim: int) -> int:
    """RMSNorm: a scale only."""
    return dim


def conv2d(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
           bias: bool = True, groups: int = 1) -> int:
    """nn.Conv2d: out x (in / groups) x kh x kw weights plus out biases."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


def batchnorm(num_features: int, affine: bool = True) -> int:
    """nn.BatchNorm: weight and bias; running mean/var are buffers, not parameters."""
    return 2 * num_features if affine else 0


def lstm(input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
         proj_size: int = 0, bias: bool = True) -> int:
    """nn.LSTM: per layer and direction 4h(in + r) + 8h, r = proj_size or h; with
    ``proj_size`` p also ``weight_hr`` p x h. Layers after the first take r (2r if
    bidirectional) as input. PyTorch keeps two bias vectors (b_ih, b_hh) per gate.

    >>> lstm(10, 20, bidirectional=True, proj_size=5, num_layers=3)
    8760
    """
    dirs = 2 if bidirectional else 1
    r = proj_size or hidden_size
    total = 0
    for layer in range(num_layers):
        inp = input_size if layer == 0 else r * dirs
        per_dir = 4 * hidden_size * (inp + r) + (8 * hidden_size if bias else 0)
        if proj_size:
            per_dir += proj_size * hidden_size
        total += dirs * per_dir
    return total


def relative_attention_bias(num_buckets: int, num_heads: int) -> int:
    """T5's relative position bias: one scalar per bucket and head (first layer only)."""
    return num_buckets * num_heads


def attention(hidden: int, num_heads: int, num_kv_heads: int | None = None,
              head_dim: int | None = None, *, q_bias: bool = False, k_bias: bool | None = None,
              v_bias: bool | None = None, o_bias: bool = False, qk_norm: bool = False,
              kv_hidden: int | None = None, name: str = "attention",
              proj_names: tuple[str, str, str, str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
              ) -> Count:
    """Multi-head attention: MHA (kv = heads), GQA (kv < heads), MQA (kv = 1).

    q: d x (H*hd), k and v: d_kv x (KV*hd), o: (H*hd) x d. ``head_dim`` need not be
    d / H (Qwen3: 128 everywhere). ``qk_norm``: an RMSNorm of head_dim on q and on k.
    ``kv_hidden``: the width keys/values are projected from (cross-attention).
    """
    kv = num_heads if num_kv_heads is None else num_kv_heads
    hd = hidden // num_heads if head_dim is None else head_dim
    kv_in = hidden if kv_hidden is None else kv_hidden
    k_bias = q_bias if k_bias is None else k_bias
    v_bias = q_bias if v_bias is None else v_bias
    q, k, v, o = proj_names
    return _node(
        name,
        _leaf(q, linear(hidden, num_heads * hd, q_bias)),
        _leaf(k, linear(kv_in, kv * hd, k_bias)),
        _leaf(v, linear(kv_in, kv * hd, v_bias)),
        _leaf(o, linear(num_heads * hd, hidden, o_bias)),
        _leaf("q_norm", rmsnorm(hd)) if qk_norm else None,
        _leaf("k_norm", rmsnorm(hd)) if qk_norm else None,
    )


def mla(hidden: int, num_heads: int, q_lora_rank: int | None, kv_lora_rank: int,
        qk_nope_head_dim: int, qk_rope_head_dim: int, v_head_dim: int,
        bias: bool = False) -> Count:
    """Multi-head latent attention (DeepSeek-V2/V3).

    Queries: d -> q_lora (+RMSNorm) -> H(nope + rope), or d -> H(nope + rope) directly
    when ``q_lora_rank`` is None. Keys/values: d -> kv_lora + rope (the rope part is one
    shared key), RMSNorm on kv_lora, kv_lora -> H(nope + v). Output H*v -> d.
    ``bias`` (``attention_bias``) applies to q_a, kv_a and o only.
    """
    qk = qk_nope_head_dim + qk_rope_head_dim
    if q_lora_rank:
        q = [_leaf("q_a_proj", linear(hidden, q_lora_rank, bias)),
             _leaf("q_a_layernorm", rmsnorm(q_lora_rank)),
             _leaf("q_b_proj", linear(q_lora_rank, num_heads * qk, False))]
    else:
        q = [_leaf("q_proj", linear(hidden, num_heads * qk, False))]
    return _node(
        "attention (MLA)", *q,
        _leaf("kv_a_proj_with_mqa", linear(hidden, kv_lora_rank + qk_rope_head_dim, bias)),
        _leaf("kv_a_layernorm", rmsnorm(kv_lora_rank)),
        _leaf("kv_b_proj", linear(kv_lora_rank, num_heads * (qk_nope_head_dim + v_head_dim),
                                  False)),
        _leaf("o_proj", linear(num_heads * v_head_dim, hidden, bias)),
    )


def ffn(hidden: int, intermediate: int, gated: bool = True, bias: bool = False,
        name: str = "mlp") -> Count:
    """Feed-forward block: 2 matrices (up, down) or gated 3 (gate, up, down)."""
    parts = [_leaf("gate_proj", linear(hidden, intermediate, bias))] if gated else []
    parts += [_leaf("up_proj", linear(hidden, intermediate, bias)),
              _leaf("down_proj", linear(intermediate, hidden, bias))]
    return _node(name, *parts)


def moe(hidden: int, num_experts: int, top_k: int, expert_intermediate: int, *,
        shared_intermediate: int = 0, router_bias: bool = False, gated: bool = True,
        expert_bias: bool = False, name: str = "moe") -> Count:
    """Mixture of experts: a router d -> E, E routed experts (top_k active per token) and,
    optionally, an always-on shared expert of width ``shared_intermediate``.

    DeepSeek-V3's router also has ``e_score_correction_bias`` (E floats per MoE layer, used
    only to pick experts): transformers registers it as a buffer, so it is not a parameter
    here and not in the meta count; DeepSeek's own inference code makes it an
    ``nn.Parameter`` and the checkpoint stores it (58 x 256 = 14,848 values for V3).
    """
    return _node(
        name,
        _leaf("router", linear(hidden, num_experts, router_bias)),
        _node("routed experts", ffn(hidden, expert_intermediate, gated, expert_bias, "expert"),
              times=num_experts, active_times=top_k),
        ffn(hidden, shared_intermediate, gated, expert_bias, "shared expert")
        if shared_intermediate else None,
    )


# ----- config access -------------------------------------------------------------------

_MISSING = object()


class _Fields:
    """Read fields from a config object or a ``to_dict()``/config.json mapping alike."""

    def __init__(self, config: Any):
        self.config = config

    def has(self, name: str) -> bool:
        if isinstance(self.config, Mapping):
            return name in self.config
        return hasattr(self.config, name)

    def raw(self, name: str, default: Any = None) -> Any:
        if isinstance(self.config, Mapping):
            return self.config.get(name, default)
        return getattr(self.config, name, default)

    def __call__(self, name: str, default: Any = _MISSING) -> Any:
        value = self.raw(name)
        if value is None:
            if default is _MISSING:
                raise MissingFieldError(f"config has no {name!r}")
            return default
        return value

    def first(self, *names: str, default: Any = _MISSING) -> Any:
        for n in names:
            if self.raw(n) is not None:
                return self.raw(n)
        if default is _MISSING:
            raise MissingFieldError(f"config has none of {names}")
        return default

    def sub(self, name: str) -> _Fields:
        value = self.raw(name)
        if value is None:
            raise MissingFieldError(f"config has no {name!r}")
        return _Fields(value)

    def num_labels(self) -> int:
        id2label = self.raw("id2label")
        if id2label:
            return len(id2label)
        return self("num_labels", 2)


def _model_type(config: Any) -> str:
    f = _Fields(config)
    mt = f.raw("model_type")
    if not mt:
        mt = getattr(type(config), "model_type", None)
    if not mt:
        raise UnsupportedModelError("config has no 'model_type'")
    return str(mt)


def _architecture(config: Any) -> str | None:
    archs = _Fields(config).raw("architectures")
    return archs[0] if archs else None


# ----- families --------------------------------------------------------------------------

def _vocab_head(name: str, f: _Fields, d: int, tied: bool, table: str = "embed_tokens") -> Count:
    """The output projection onto the vocabulary: its own matrix, or 0 when tied to *table*."""
    return (_leaf(f"{name} (tied to {table})", 0, "tied") if tied
            else _leaf(name, linear(d, f("vocab_size"), False), "embedding"))


def _group_layers(layers: list[Count]) -> list[Count]:
    """Collapse identical consecutive-or-not layers into one node with ``times``."""
    groups: dict[Any, tuple[list[int], Count]] = {}
    for i, layer in enumerate(layers):
        key = (layer.name, repr(layer.to_dict()))
        if key not in groups:
            groups[key] = ([], layer)
        groups[key][0].append(i)
    out = []
    for idx, layer in groups.values():
        span = (f"{idx[0]}" if len(idx) == 1 else
                f"{idx[0]}-{idx[-1]}" if idx == list(range(idx[0], idx[-1] + 1)) else
                ", ".join(map(str, idx[:3])) + ", …")
        out.append(Count(f"{layer.name} [{span}]", layer.params, layer.children,
                         times=len(idx)))
    return out


def bert(config: Any, architecture: str | None = None) -> Count:
    """BERT: BertModel (with pooler) or a task head by ``architectures``."""
    f = _Fields(config)
    arch = architecture or _architecture(config) or "BertModel"
    d, ff, L = f("hidden_size"), f("intermediate_size"), f("num_hidden_layers")
    V, tied = f("vocab_size"), f("tie_word_embeddings", True)
    emb = _node("embeddings",
                _leaf("word_embeddings", embedding(V, d), "embedding"),
                _leaf("position_embeddings", embedding(f("max_position_embeddings"), d),
                      "embedding"),
                _leaf("token_type_embeddings", embedding(f("type_vocab_size"), d), "embedding"),
                _leaf("LayerNorm", layernorm(d)))
    attn = _node("attention",
                 attention(d, f("num_attention_heads"), q_bias=True, o_bias=True,
                           name="self"),
                 _leaf("LayerNorm", layernorm(d)))
    cross = None
    if f("is_decoder", False) and f("add_cross_attention", False):
        cross = _node("crossattention",
                      attention(d, f("num_attention_heads"), q_bias=True, o_bias=True,
                                name="self"),
                      _leaf("LayerNorm", layernorm(d)))
    layer = _node("layer", attn, cross,
                  _leaf("intermediate", linear(d, ff)),
                  _node("output", _leaf("dense", linear(ff, d)), _leaf("LayerNorm", layernorm(d))),
                  times=L)
    pooler_archs = {"BertModel", "BertForPreTraining", "BertForNextSentencePrediction",
                    "BertForSequenceClassification", "BertForMultipleChoice"}
    known = pooler_archs | {"BertForMaskedLM", "BertLMHeadModel", "BertForTokenClassification",
                            "BertForQuestionAnswering"}
    if arch not in known:
        raise UnsupportedModelError(f"no formula for architecture {arch!r}")
    body = _node("bert", emb, _node("encoder", layer),
                 _leaf("pooler", linear(d, d)) if arch in pooler_archs else None)
    heads: list[Count | None] = []
    if arch in {"BertForMaskedLM", "BertLMHeadModel", "BertForPreTraining"}:
        heads.append(_node("cls.predictions",
                           _leaf("transform.dense", linear(d, d)),
                           _leaf("transform.LayerNorm", layernorm(d)),
                           _leaf("decoder (tied: word_embeddings and bias)", 0, "tied") if tied
                           else _node("decoder", _leaf("weight", V * d, "embedding"),
                                      _leaf("bias", V)),
                           _leaf("bias", V)))
    if arch in {"BertForPreTraining", "BertForNextSentencePrediction"}:
        heads.append(_leaf("cls.seq_relationship", linear(d, 2)))
    if arch in {"BertForSequenceClassification", "BertForTokenClassification"}:
        heads.append(_leaf("classifier", linear(d, f.num_labels())))
    if arch == "BertForMultipleChoice":
        heads.append(_leaf("classifier", linear(d, 1)))
    if arch == "BertForQuestionAnswering":
        heads.append(_leaf("qa_outputs", linear(d, f.num_labels())))
    return _node(arch, body, *heads)


def t5(config: Any, architecture: str | None = None) -> Count:
    """T5 (relu or gated feed-forward): T5Model, T5ForConditionalGeneration, T5EncoderModel.

    No biases, scale-only norms, no absolute positions: a relative-position bias table
    (buckets x heads) in the first layer of each stack. transformers 5 always ties lm_head.
    """
    f = _Fields(config)
    arch = architecture or _architecture(config) or "T5Model"
    if arch not in {"T5Model", "T5ForConditionalGeneration", "T5EncoderModel"}:
        raise UnsupportedModelError(f"no formula for architecture {arch!r}")
    d, ff, H, dkv = f("d_model"), f("d_ff"), f("num_heads"), f("d_kv")
    gated = str(f("feed_forward_proj", "relu")).startswith("gated-")
    buckets = f("relative_attention_num_buckets", 32)
    L = f("num_layers")
    Ld = f("num_decoder_layers", L)

    def attn(name: str) -> Count:
        return attention(d, H, head_dim=dkv, name=name, proj_names=("q", "k", "v", "o"))

    ffn_node = _node("DenseReluDense",
                     *([_leaf("wi_0", linear(d, ff, False)), _leaf("wi_1", linear(d, ff, False))]
                       if gated else [_leaf("wi", linear(d, ff, False))]),
                     _leaf("wo", linear(ff, d, False)))

    def stack(name: str, n: int, decoder: bool) -> Count:
        parts = [attn("SelfAttention"), _leaf("layer_norm", rmsnorm(d))]
        if decoder:
            parts += [attn("EncDecAttention"), _leaf("layer_norm (cross)", rmsnorm(d))]
        parts += [ffn_node, _leaf("layer_norm (ff)", rmsnorm(d))]
        return _node(name, _node("block", *parts, times=n),
                     _leaf("relative_attention_bias (block 0)",
                           relative_attention_bias(buckets, H)) if n else None,
                     _leaf("final_layer_norm", rmsnorm(d)))

    parts = [_leaf("shared", embedding(f("vocab_size"), d), "embedding"),
             stack("encoder", L, False)]
    if arch != "T5EncoderModel":
        parts.append(stack("decoder", Ld, True))
    if arch == "T5ForConditionalGeneration":
        parts.append(_leaf("lm_head (tied to shared)", 0, "tied"))
    return _node(arch, *parts)


def gpt2(config: Any, architecture: str | None = None) -> Count:
    """GPT-2: learned positions, biased Conv1D projections, LayerNorms, tied head."""
    f = _Fields(config)
    arch = architecture or _architecture(config) or "GPT2Model"
    d, L = f.first("n_embd", "hidden_size"), f.first("n_layer", "num_hidden_layers")
    ff = f("n_inner", 4 * d)
    block = _node("h", _leaf("ln_1", layernorm(d)),
                  _node("attn", _leaf("c_attn", linear(d, 3 * d)), _leaf("c_proj", linear(d, d))),
                  _leaf("ln_2", layernorm(d)),
                  _node("mlp", _leaf("c_fc", linear(d, ff)), _leaf("c_proj", linear(ff, d))),
                  times=L)
    body = _node("transformer",
                 _leaf("wte", embedding(f("vocab_size"), d), "embedding"),
                 _leaf("wpe", embedding(f.first("n_positions", "max_position_embeddings"), d),
                       "embedding"),
                 block, _leaf("ln_f", layernorm(d)))
    if arch == "GPT2Model":
        return _node(arch, body)
    if arch == "GPT2LMHeadModel":
        return _node(arch, body,
                     _vocab_head("lm_head", f, d, f("tie_word_embeddings", True), "wte"))
    if arch == "GPT2ForSequenceClassification":
        return _node(arch, body, _leaf("score", linear(d, f.num_labels(), False)))
    if arch == "GPT2ForTokenClassification":
        return _node(arch, body, _leaf("classifier", linear(d, f.num_labels())))
    raise UnsupportedModelError(f"no formula for architecture {arch!r}")


_DECODER_FAMILIES = {  # model_type: (bare class, causal LM class)
    "llama": ("LlamaModel", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Model", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Model", "Qwen3ForCausalLM"),
    "mixtral": ("MixtralModel", "MixtralForCausalLM"),
    "qwen3_moe": ("Qwen3MoeModel", "Qwen3MoeForCausalLM"),
    "llama4_text": ("Llama4TextModel", "Llama4ForCausalLM"),
    "deepseek_v3": ("DeepseekV3Model", "DeepseekV3ForCausalLM"),
}


def _attention_for(mt: str, f: _Fields) -> Count:
    d, H = f("hidden_size"), f("num_attention_heads")
    kv = f("num_key_value_heads", H)
    if mt == "deepseek_v3":
        return mla(d, H, f.raw("q_lora_rank"), f("kv_lora_rank"), f("qk_nope_head_dim"),
                   f("qk_rope_head_dim"), f("v_head_dim"), f("attention_bias", False))
    default_hd = {"qwen3": 128, "llama4_text": 128}.get(mt, d // H)
    hd = f("head_dim", default_hd)
    if mt == "qwen2":
        return attention(d, H, kv, hd, q_bias=True)
    if mt == "mixtral":
        return attention(d, H, kv, hd)
    b = f("attention_bias", False)
    return attention(d, H, kv, hd, q_bias=b, o_bias=b, qk_norm=mt in {"qwen3", "qwen3_moe"})


def _mlp_for(mt: str, f: _Fields, i: int) -> Count:
    d = f("hidden_size")
    if mt == "mixtral":
        return moe(d, f("num_local_experts"), f("num_experts_per_tok"), f("intermediate_size"),
                   name="block_sparse_moe")
    if mt == "qwen3_moe":
        E = f.first("num_experts", "num_local_experts")
        if i not in (f("mlp_only_layers", []) or []) and E > 0 and \
                (i + 1) % f("decoder_sparse_step", 1) == 0:
            return moe(d, E, f("num_experts_per_tok"), f("moe_intermediate_size"))
        return ffn(d, f("intermediate_size"))
    if mt == "llama4_text":
        L, step = f("num_hidden_layers"), f("interleave_moe_layer_step", 1)
        moe_layers = f.raw("moe_layers")
        if moe_layers is None:
            moe_layers = list(range(step - 1, L, step))
        if i in moe_layers:
            return moe(d, f("num_local_experts"), f("num_experts_per_tok"),
                       f("intermediate_size"), shared_intermediate=f("intermediate_size"))
        return ffn(d, f("intermediate_size_mlp"))
    if mt == "deepseek_v3":
        if i >= f("first_k_dense_replace", 0):
            return moe(d, f.first("n_routed_experts", "num_local_experts"),
                       f("num_experts_per_tok"), f("moe_intermediate_size"),
                       shared_intermediate=f("moe_intermediate_size") * f("n_shared_experts", 0))
        return ffn(d, f("intermediate_size"))
    return ffn(d, f("intermediate_size"), bias=f("mlp_bias", False))


def _decoder_layer(mt: str, f: _Fields, i: int) -> Count:
    mlp = _mlp_for(mt, f, i)
    d = f("hidden_size")
    name = "MoE layer" if mlp.name != "mlp" else "dense layer"
    return _node(name, _leaf("input_layernorm", rmsnorm(d)), _attention_for(mt, f),
                 _leaf("post_attention_layernorm", rmsnorm(d)), mlp)


def decoder(config: Any, architecture: str | None = None, mtp: bool = False) -> Count:
    """LLaMA-style decoders: llama, qwen2, qwen3, mixtral, qwen3_moe, llama4_text, deepseek_v3.

    Pre-norm RMSNorm, rotary positions (no parameters), gated 3-matrix MLP or MoE, optional
    tied head. ``mtp`` adds DeepSeek-V3's multi-token-prediction modules
    (``num_nextn_predict_layers``; shared embedding and head), which transformers'
    DeepseekV3 classes do not build.
    """
    f = _Fields(config)
    mt = _model_type(config)
    bare, lm = _DECODER_FAMILIES[mt]
    arch = architecture or _architecture(config) or bare
    if arch not in (bare, lm):
        raise UnsupportedModelError(f"no formula for architecture {arch!r}")
    d, L = f("hidden_size"), f("num_hidden_layers")
    layers = [_decoder_layer(mt, f, i) for i in range(L)]
    body = _node("model", _leaf("embed_tokens", embedding(f("vocab_size"), d), "embedding"),
                 _node("layers", *_group_layers(layers)), _leaf("norm", rmsnorm(d)))
    parts = [body]
    if arch == lm:
        parts.append(_vocab_head("lm_head", f, d, f("tie_word_embeddings", False)))
    if mtp and mt == "deepseek_v3" and f("num_nextn_predict_layers", 0):
        mtp_layer = _node("mtp module",
                          _leaf("enorm", rmsnorm(d)), _leaf("hnorm", rmsnorm(d)),
                          _leaf("eh_proj", linear(2 * d, d, False)),
                          _decoder_layer(mt, f, L),
                          _leaf("shared_head.norm", rmsnorm(d)),
                          times=f("num_nextn_predict_layers"))
        parts.append(mtp_layer)
    return _node(arch, *parts)


def _llama4_vision(f: _Fields) -> Count:
    d, ff, L = f("hidden_size"), f("intermediate_size"), f("num_hidden_layers")
    H, p, ch = f("num_attention_heads"), f("patch_size"), f("num_channels", 3)
    n_patches = (f("image_size") // p) ** 2 + 1
    layer = _node("encoder layer", _leaf("input_layernorm", layernorm(d)),
                  attention(d, H, q_bias=True, o_bias=True, name="self_attn"),
                  _leaf("post_attention_layernorm", layernorm(d)),
                  _node("mlp", _leaf("fc1", linear(d, ff)), _leaf("fc2", linear(ff, d))),
                  times=L)
    return _node("vision_model",
                 _leaf("patch_embedding", linear(ch * p * p, d, False)),
                 _leaf("class_embedding", d),
                 _leaf("positional_embedding_vlm", n_patches * d),
                 _leaf("layernorm_pre", layernorm(d)), _leaf("layernorm_post", layernorm(d)),
                 _node("model", layer),
                 _node("vision_adapter",
                       _leaf("fc1", linear(ff, f("projector_input_dim"), False)),
                       _leaf("fc2", linear(f("projector_output_dim"), f("projector_output_dim"),
                                           False))))


def llama4(config: Any, architecture: str | None = None) -> Count:
    """Llama4ForConditionalGeneration: vision encoder, projector and the text decoder."""
    f = _Fields(config)
    text, vision = f.sub("text_config"), f.sub("vision_config")
    text_cfg = dict(text.config) if isinstance(text.config, Mapping) else text.config
    if isinstance(text_cfg, dict):
        text_cfg["model_type"] = "llama4_text"
    lm = decoder(text_cfg, "Llama4ForCausalLM")
    lm.name = "language_model"
    return _node("Llama4ForConditionalGeneration", _llama4_vision(vision),
                 _leaf("multi_modal_projector",
                       linear(vision("vision_output_dim"), text("hidden_size"), False)), lm)


def grok(config: Any, architecture: str | None = None) -> Count:
    """Grok-1 / Grok-2 (see :mod:`modelnotes.grok`)."""
    f = _Fields(config)
    d, L = f("hidden_size"), f("num_hidden_layers")
    E = f.first("num_local_experts", "num_experts")
    H = f("num_attention_heads")
    layer = _node("layer",
                  _leaf("pre_attn_norm", rmsnorm(d)),
                  attention(d, H, f("num_key_value_heads", H), f("head_dim", d // H), name="attn"),
                  _leaf("post_attn_norm", rmsnorm(d)), _leaf("pre_moe_norm", rmsnorm(d)),
                  moe(d, E, f("num_experts_per_tok"),
                      f.first("moe_intermediate_size", "intermediate_size")),
                  ffn(d, f("intermediate_size"), name="mlp (residual)")
                  if f("residual_moe", False) else None,
                  _leaf("post_moe_norm", rmsnorm(d)), times=L)
    return _node("GrokForCausalLM",
                 _leaf("embed_tokens", embedding(f("vocab_size"), d), "embedding"),
                 _node("layers", layer), _leaf("norm", rmsnorm(d)),
                 _vocab_head("lm_head", f, d, f("tie_word_embeddings", True)))


VGG_CFGS: dict[str, list] = {  # torchvision's cfgs; "M" is a max-pool
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}
_VGG_DEPTH = {11: "A", 13: "B", 16: "D", 19: "E"}


def _vgg_cfg(f: _Fields) -> list:
    cfg = f.raw("cfg")
    if cfg is None:
        cfg = _VGG_DEPTH[f("depth")]
    return VGG_CFGS[cfg] if isinstance(cfg, str) else list(cfg)


def vgg(config: Any, architecture: str | None = None) -> Count:
    """torchvision VGG for any layer list: 3x3 convs (bias), optional BN, 3 Linear layers
    on a 7x7 adaptive-pooled map. torchvision fixes the first Linear's input at 512*7*7
    whatever the last conv's width (a list not ending in 512 builds but cannot run)."""
    f = _Fields(config)
    bn = f("batch_norm", False)
    convs, c_in = [], f("in_channels", 3)
    for v in _vgg_cfg(f):
        if v == "M":
            continue
        convs.append(_node(f"conv {c_in}->{v}", _leaf("conv", conv2d(c_in, v, 3)),
                           _leaf("bn", batchnorm(v)) if bn else None))
        c_in = v
    nc = f("num_classes", 1000)
    return _node("VGG", _node("features", *convs),
                 _node("classifier", _leaf("fc1", linear(512 * 7 * 7, 4096)),
                       _leaf("fc2", linear(4096, 4096)), _leaf("fc3", linear(4096, nc))))


RESNET_DEPTHS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3]),
}


def resnet(config: Any, architecture: str | None = None) -> Count:
    """torchvision ResNet (also ResNeXt / wide): bias-free convs, BN weight+bias, fc."""
    f = _Fields(config)
    if f.has("depth") and f.raw("depth") is not None:
        block, layers = RESNET_DEPTHS[f("depth")]
    else:
        block, layers = f("block"), list(f("layers"))
    groups, base = f("groups", 1), f("width_per_group", 64)
    exp = 1 if block == "basic" else 4
    inplanes = 64
    stages = []
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        blocks = []
        for b in range(n):
            stride = 2 if (s > 0 and b == 0) else 1
            if block == "basic":
                parts = [_leaf("conv1", conv2d(inplanes, planes, 3, False)),
                         _leaf("bn1", batchnorm(planes)),
                         _leaf("conv2", conv2d(planes, planes, 3, False)),
                         _leaf("bn2", batchnorm(planes))]
            else:
                w = int(planes * (base / 64.0)) * groups
                parts = [_leaf("conv1", conv2d(inplanes, w, 1, False)), _leaf("bn1", batchnorm(w)),
                         _leaf("conv2", conv2d(w, w, 3, False, groups)), _leaf("bn2", batchnorm(w)),
                         _leaf("conv3", conv2d(w, planes * exp, 1, False)),
                         _leaf("bn3", batchnorm(planes * exp))]
            if stride != 1 or inplanes != planes * exp:
                parts.append(_node("downsample", _leaf("conv", conv2d(inplanes, planes * exp, 1,
                                                                      False)),
                                   _leaf("bn", batchnorm(planes * exp))))
            blocks.append(_node(f"block {b}", *parts))
            inplanes = planes * exp
        stages.append(_node(f"layer{s + 1}", *blocks))
    return _node("ResNet", _leaf("conv1", conv2d(3, 64, 7, False)), _leaf("bn1", batchnorm(64)),
                 *stages, _leaf("fc", linear(512 * exp, f("num_classes", 1000))))


def lstm_classifier(config: Any, architecture: str | None = None) -> Count:
    """The course LSTM: nn.LSTM then a Linear on the top layer's last hidden state."""
    f = _Fields(config)
    h, p = f("hidden_size"), f("proj_size", 0)
    dirs = 2 if f("bidirectional", False) else 1
    return _node("LSTMClassifier",
                 _leaf("lstm", lstm(f("input_size"), h, f("num_layers", 1), dirs == 2, p,
                                    f("bias", True))),
                 _leaf("fc", linear((p or h) * dirs, f("num_classes"))))


_FAMILIES = {
    "bert": bert, "t5": t5, "gpt2": gpt2, "llama4": llama4,
    **{mt: decoder for mt in _DECODER_FAMILIES},
    "grok": grok, "grok-1": grok, "grok-2": grok,
    "vgg": vgg, "resnet": resnet, "lstm": lstm_classifier,
}


def count(config: Any, architecture: str | None = None, *, mtp: bool = False) -> Count:
    """The closed-form breakdown for *config*: a catalogue/issue name, a Hugging Face
    config object or its dict (``model_type``; ``architectures`` picks the head class,
    otherwise the bare model). ``mtp``: add DeepSeek-V3's MTP module."""
    if isinstance(config, str):
        config = named_config(config)
    mt = _model_type(config)
    family = _FAMILIES.get(mt)
    if family is None:
        raise UnsupportedModelError(
            f"unsupported model_type {mt!r}; supported: {', '.join(sorted(_FAMILIES))}")
    if family is decoder:
        return decoder(config, architecture, mtp=mtp)
    return family(config, architecture)


# ----- named configs (official config.json values) -----------------------------------------

def _qwen3(h: int, ff: int, L: int, H: int, tied: bool) -> dict:
    return {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "vocab_size": 151_936,
            "hidden_size": h, "intermediate_size": ff, "num_hidden_layers": L,
            "num_attention_heads": H, "num_key_value_heads": 8, "head_dim": 128,
            "attention_bias": False, "tie_word_embeddings": tied, "max_position_embeddings": 40_960}


def _qwen3_moe(h: int, ff: int, moe_ff: int, L: int, H: int) -> dict:
    return {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"],
            "vocab_size": 151_936, "hidden_size": h, "intermediate_size": ff,
            "moe_intermediate_size": moe_ff, "num_hidden_layers": L, "num_attention_heads": H,
            "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
            "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "norm_topk_prob": True, "attention_bias": False, "tie_word_embeddings": False,
            "max_position_embeddings": 40_960}


def _llama4_text(experts: int, step: int, qk_norm: bool) -> dict:
    return {"model_type": "llama4_text", "vocab_size": 202_048, "hidden_size": 5_120,
            "intermediate_size": 8_192, "intermediate_size_mlp": 16_384,
            "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8,
            "head_dim": 128, "num_local_experts": experts, "num_experts_per_tok": 1,
            "interleave_moe_layer_step": step, "attention_bias": False,
            "use_qk_norm": qk_norm, "tie_word_embeddings": False,
            "max_position_embeddings": 10_485_760 if experts == 16 else 1_048_576}


def _llama4(experts: int, step: int, qk_norm: bool) -> dict:
    return {"model_type": "llama4", "architectures": ["Llama4ForConditionalGeneration"],
            "tie_word_embeddings": False,
            "text_config": _llama4_text(experts, step, qk_norm),
            "vision_config": {"model_type": "llama4_vision_model", "hidden_size": 1_408,
                              "intermediate_size": 5_632, "num_hidden_layers": 34,
                              "num_attention_heads": 16, "num_channels": 3, "image_size": 336,
                              "patch_size": 14, "vision_output_dim": 4_096,
                              "projector_input_dim": 4_096, "projector_output_dim": 4_096,
                              "pixel_shuffle_ratio": 0.5, "rope_theta": 10_000}}


def _deepseek_v3() -> dict:
    return {"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"],
            "vocab_size": 129_280, "hidden_size": 7_168, "intermediate_size": 18_432,
            "moe_intermediate_size": 2_048, "num_hidden_layers": 61, "num_attention_heads": 128,
            "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256,
            "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1,
            "n_group": 8, "topk_group": 4, "q_lora_rank": 1_536, "kv_lora_rank": 512,
            "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
            "num_nextn_predict_layers": 1, "attention_bias": False, "tie_word_embeddings": False,
            "max_position_embeddings": 163_840}


def _grok_cfg(which: int) -> dict:
    """Grok-1 / Grok-2 fields (as modelnotes.grok's configs, without importing torch)."""
    fields = dict(vocab_size=131_072, hidden_size=6_144, intermediate_size=32_768,
                  moe_intermediate_size=32_768, num_hidden_layers=64, num_attention_heads=48,
                  num_key_value_heads=8, head_dim=128, num_local_experts=8,
                  num_experts_per_tok=2, residual_moe=False, tie_word_embeddings=True,
                  model_type="grok")
    if which == 2:
        fields.update(hidden_size=8_192, moe_intermediate_size=16_384, num_attention_heads=64,
                      residual_moe=True, tie_word_embeddings=False)
    return fields


_GPT2_SHAPES = {  # n_embd, n_layer, n_head (as modelnotes.catalogue.GPT2_SHAPES)
    "gpt2": (768, 12, 12), "gpt2-medium": (1_024, 24, 16), "gpt2-large": (1_280, 36, 20),
    "gpt2-xl": (1_600, 48, 25)}


def _named_tables() -> dict[str, Any]:
    """Name -> config dict. The catalogue's models are repeated here as plain dicts so that
    the formulas never import torch; tests check each against the catalogue's builder."""
    return {
        "vgg16": lambda: {"model_type": "vgg", "cfg": "D", "batch_norm": False,
                          "num_classes": 1000},
        "resnet18": lambda: {"model_type": "resnet", "block": "basic", "layers": [2, 2, 2, 2],
                             "num_classes": 1000},
        "course-lstm": lambda: {"model_type": "lstm", "input_size": 100, "hidden_size": 256,
                                "num_layers": 2, "num_classes": 10},
        "bert-base-uncased": lambda: {
            "model_type": "bert", "architectures": ["BertModel"], "vocab_size": 30_522,
            "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3_072, "max_position_embeddings": 512, "type_vocab_size": 2},
        "t5-small": lambda: {
            "model_type": "t5", "architectures": ["T5ForConditionalGeneration"],
            "vocab_size": 32_128, "d_model": 512, "d_kv": 64, "d_ff": 2_048, "num_layers": 6,
            "num_decoder_layers": 6, "num_heads": 8, "relative_attention_num_buckets": 32,
            "feed_forward_proj": "relu"},
        **{g: (lambda d=d, L=L, H=H: {
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50_257,
            "n_positions": 1_024, "n_embd": d, "n_layer": L, "n_head": H})
           for g, (d, L, H) in _GPT2_SHAPES.items()},
        "cs336-lm": lambda: {  # CS336 assignment 1: GPT-2 XL shape, LLaMA-style, untied
            "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 50_257,
            "max_position_embeddings": 1_024, "num_hidden_layers": 48, "hidden_size": 1_600,
            "num_attention_heads": 25, "num_key_value_heads": 25, "intermediate_size": 6_400,
            "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False},
        "llama4-scout": lambda: _llama4(16, 1, True),
        "llama4-maverick": lambda: _llama4(128, 2, False),
        "deepseek-v3": _deepseek_v3,
        "qwen3-0.6b": lambda: _qwen3(1_024, 3_072, 28, 16, True),
        "qwen3-1.7b": lambda: _qwen3(2_048, 6_144, 28, 16, True),
        "qwen3-4b": lambda: _qwen3(2_560, 9_728, 36, 32, True),
        "qwen3-8b": lambda: _qwen3(4_096, 12_288, 36, 32, False),
        "qwen3-14b": lambda: _qwen3(5_120, 17_408, 40, 40, False),
        "qwen3-32b": lambda: _qwen3(5_120, 25_600, 64, 64, False),
        "qwen3-30b-a3b": lambda: _qwen3_moe(2_048, 6_144, 768, 48, 32),
        "qwen3-235b-a22b": lambda: _qwen3_moe(4_096, 12_288, 1_536, 94, 64),
        "grok-1": lambda: _grok_cfg(1),
        "grok-2": lambda: _grok_cfg(2),
        "mixtral-8x7b": lambda: {
            "model_type": "mixtral", "architectures": ["MixtralForCausalLM"],
            "vocab_size": 32_000, "hidden_size": 4_096, "intermediate_size": 14_336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
            "max_position_embeddings": 32_768},
    }


NAMED: tuple[str, ...] = tuple(_named_tables())


_TV_RESNEXT = {"resnext50_32x4d": (50, 32, 4), "resnext101_32x8d": (101, 32, 8),
               "resnext101_64x4d": (101, 64, 4), "wide_resnet50_2": (50, 1, 128),
               "wide_resnet101_2": (101, 1, 128)}


def _torchvision_config(name: str) -> dict | None:
    """torchvision's VGG/ResNet family names as configs (vgg16_bn, resnet50, resnext…)."""
    base, bn = (name[:-3], True) if name.endswith("_bn") else (name, False)
    if base.startswith("vgg") and base[3:].isdigit() and int(base[3:]) in _VGG_DEPTH:
        return {"model_type": "vgg", "depth": int(base[3:]), "batch_norm": bn}
    if name.startswith("resnet") and name[6:].isdigit() and int(name[6:]) in RESNET_DEPTHS:
        return {"model_type": "resnet", "depth": int(name[6:])}
    if name in _TV_RESNEXT:
        depth, groups, width = _TV_RESNEXT[name]
        block, layers = RESNET_DEPTHS[depth]
        return {"model_type": "resnet", "block": block, "layers": layers, "groups": groups,
                "width_per_group": width}
    return None


def named_config(name: str) -> dict:
    """The config dict (config.json style) for a catalogue or issue-3 model name, or a
    torchvision VGG/ResNet/ResNeXt/wide-ResNet name.

    >>> named_config("vgg19_bn")
    {'model_type': 'vgg', 'depth': 19, 'batch_norm': True}
    """
    tables = _named_tables()
    if name in tables:
        return tables[name]()
    tv = _torchvision_config(name)
    if tv is not None:
        return tv
    raise UnsupportedModelError(f"unknown model {name!r}; known: {', '.join(NAMED)} "
                                "and torchvision's vgg*/resnet*/resnext*/wide_resnet* names")


# ----- the second count: build on meta and count unique parameters ---------------------

def build_meta(config: Any, architecture: str | None = None, *, mtp: bool = False):
    """The real module for *config* on the ``meta`` device (no memory, no download)."""
    import torch

    if isinstance(config, str):
        config = named_config(config)
    mt = _model_type(config)
    f = _Fields(config)
    with torch.device("meta"):
        if mt in ("grok", "grok-1", "grok-2"):
            from .grok import GrokConfig, GrokForCausalLM

            known = GrokConfig.__dataclass_fields__
            kw = {k: v for k, v in (config.items() if isinstance(config, Mapping)
                                   else vars(config).items()) if k in known}
            if "num_local_experts" not in kw and f.raw("num_experts"):
                kw["num_local_experts"] = f("num_experts")
            return GrokForCausalLM(GrokConfig(**kw))
        if mt in ("vgg", "resnet"):
            return torchvision_module(config, init_weights=False)  # meta: nothing to fill
        if mt == "lstm":
            from torch import nn

            h, p = f("hidden_size"), f("proj_size", 0)
            bi = f("bidirectional", False)
            return nn.ModuleDict({
                "lstm": nn.LSTM(f("input_size"), h, f("num_layers", 1), bias=f("bias", True),
                                bidirectional=bi, proj_size=p),
                "fc": nn.Linear((p or h) * (2 if bi else 1), f("num_classes"))})
        return _build_hf(config, mt, architecture, mtp)


def torchvision_module(config: Any, init_weights: bool = True):
    """A VGG or ResNet config as torchvision's own module (on the current default device)."""
    f = _Fields(config)
    if _model_type(config) == "vgg":
        from torchvision.models.vgg import VGG, make_layers

        return VGG(make_layers(_vgg_cfg(f), f("batch_norm", False)),
                   num_classes=f("num_classes", 1000), init_weights=init_weights)
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    if f.raw("depth") is not None:
        block, layers = RESNET_DEPTHS[f("depth")]
    else:
        block, layers = f("block"), list(f("layers"))
    return ResNet(BasicBlock if block == "basic" else Bottleneck, layers,
                  num_classes=f("num_classes", 1000), groups=f("groups", 1),
                  width_per_group=f("width_per_group", 64))


def _hf_config(config: Any, mt: str):
    from transformers import AutoConfig, PreTrainedConfig

    if isinstance(config, PreTrainedConfig):
        return config
    kw = {k: v for k, v in config.items() if k != "model_type"}
    return AutoConfig.for_model(mt, **kw)


def _build_hf(config: Any, mt: str, architecture: str | None, mtp: bool):
    import transformers

    if mt not in _FAMILIES or _FAMILIES[mt] in (grok, vgg, resnet, lstm_classifier):
        raise UnsupportedModelError(f"unsupported model_type {mt!r}")
    hf = _hf_config(config, mt)
    default = {"bert": "BertModel", "t5": "T5Model", "gpt2": "GPT2Model",
               "llama4": "Llama4ForConditionalGeneration",
               **{k: v[0] for k, v in _DECODER_FAMILIES.items()}}[mt]
    arch = architecture or _architecture(config) or default
    model = getattr(transformers, arch)(hf)
    if mtp and mt == "deepseek_v3" and hf.num_nextn_predict_layers:
        model.add_module("mtp", _deepseek_mtp(hf))
    return model


def _deepseek_mtp(hf):
    """DeepSeek-V3's MTP module(s) as in the checkpoint's ``model.layers.61``, less the
    embedding and head it shares with the main model."""
    from torch import nn
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import (DeepseekV3DecoderLayer,
                                                                      DeepseekV3RMSNorm)

    d, L = hf.hidden_size, hf.num_hidden_layers

    def one(k: int) -> nn.Module:
        return nn.ModuleDict({
            "enorm": DeepseekV3RMSNorm(d), "hnorm": DeepseekV3RMSNorm(d),
            "eh_proj": nn.Linear(2 * d, d, bias=False),
            "block": DeepseekV3DecoderLayer(hf, L + k),
            "shared_head_norm": DeepseekV3RMSNorm(d)})

    return nn.ModuleList(one(k) for k in range(hf.num_nextn_predict_layers))


def pytorch_count(config: Any, architecture: str | None = None, *, mtp: bool = False) -> int:
    """Unique parameters (tied weights once) of the real module built on ``meta``.

    >>> pytorch_count("gpt2") == count("gpt2").total == 124_439_808
    True
    """
    model = build_meta(config, architecture, mtp=mtp)
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


# ----- one summary for the command line and the book -----------------------------------

BITS = {"fp32": 32, "bf16": 16, "fp8": 8, "fp4": 4}


def weight_bytes(n: int) -> dict[str, int]:
    """Bytes to hold *n* weights per dtype (elements only: block scales not included).

    >>> weight_bytes(3)
    {'fp32': 12, 'bf16': 6, 'fp8': 3, 'fp4': 2}
    """
    return {k: -(-n * bits // 8) for k, bits in BITS.items()}


def load_config(path: str) -> dict:
    """A Hugging Face style config.json as a dict; ValueError with a one-line reason."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a JSON object")
    if "model_type" not in data:
        raise ValueError(f"{path}: no 'model_type'")
    return data


def report(config: Any, architecture: str | None = None, *, check: bool = True,
           mtp: bool = False) -> dict[str, Any]:
    """Everything about one model's parameters as one JSON-ready dict: ``total`` (formula),
    ``pytorch`` (meta-device count, None without *check*), ``difference``, ``active``,
    ``embedding``, ``non_embedding``, ``bytes`` per dtype and ``components``.

    >>> r = report("qwen3-30b-a3b", check=False)
    >>> r["total"], r["active"], r["bytes"]["bf16"]
    (30532122624, 3353032704, 61064245248)
    """
    name = config if isinstance(config, str) else None
    if isinstance(config, str):
        config = named_config(config)
    c = count(config, architecture, mtp=mtp)
    pt = pytorch_count(config, architecture, mtp=mtp) if check else None
    return {"model": name or c.name, "architecture": c.name, "total": c.total, "pytorch": pt,
            "difference": None if pt is None else c.total - pt, "active": c.active,
            "embedding": c.embedding, "non_embedding": c.non_embedding,
            "bytes": weight_bytes(c.total), "components": c.to_dict()}
