"""Structure diagrams drawn from a model's config, never pasted.

Each family function reads a config (or a built module) and returns a list of
:class:`Block` from input to output; :func:`draw_stack` draws any such list. A block
that repeats carries ``repeat="× L"`` and is drawn once with a bracket, the way papers
draw a transformer layer.

>>> blocks = decoder_blocks(__import__("modelnotes.catalogue").catalogue.gpt2_config("gpt2"))
>>> [b.label for b in blocks][:3]
['token ids', 'token embedding + position embedding', 'LayerNorm']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

PALETTE = {  # one colour per kind of component, the same in every chapter
    "io": "#e8e8e8",
    "embedding": "#f6d9a8",
    "norm": "#d5e8d4",
    "attention": "#f8cecc",
    "ffn": "#dae8fc",
    "conv": "#dae8fc",
    "pool": "#e1d5e7",
    "recurrent": "#f8cecc",
    "head": "#fff2cc",
    # mixtures of experts, multimodal models and DeepSeek's MTP module (Part II)
    "expert": "#9dc3e6",
    "shared_expert": "#6c8ebf",
    "router": "#cdb4db",
    "vision": "#b3e5e0",
    "mtp": "#e6b8d0",
}


@dataclass
class Block:
    """One box of a diagram: what it is, a shape or size note, and its kind (colour)."""

    label: str
    detail: str = ""
    kind: str = "io"
    repeat: str = ""  # e.g. "× 12": this block and the ``span`` blocks after it repeat
    span: int = 1
    residual_from: list[int] = field(default_factory=list)  # skip connection into this block


def draw_stack(blocks: list[Block], title: str = "", ax=None, width: float = 4.2):
    """Draw *blocks* bottom (input) to top (output); return the matplotlib Figure."""
    height = 0.62
    gap = 0.38
    if ax is None:
        fig, ax = plt.subplots(figsize=(width + 2.6, 0.5 + len(blocks) * (height + gap) * 0.62))
    else:
        fig = ax.figure
    centres = []
    for i, block in enumerate(blocks):
        y = i * (height + gap)
        centres.append(y + height / 2)
        ax.add_patch(FancyBboxPatch((0, y), width, height, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor=PALETTE.get(block.kind, "#ffffff"),
                                    edgecolor="#444444", linewidth=1))
        text = block.label if not block.detail else f"{block.label}\n{block.detail}"
        ax.text(width / 2, y + height / 2, text, ha="center", va="center",
                fontsize=8.5 if block.detail else 9.5, linespacing=1.15)
        if i:
            ax.add_patch(FancyArrowPatch((width / 2, y - gap), (width / 2, y),
                                         arrowstyle="-|>", mutation_scale=9, color="#444444"))
    for i, block in enumerate(blocks):
        for source in block.residual_from:
            x = -0.25
            ax.add_patch(FancyArrowPatch((0, centres[source] + 0.18), (0, centres[i] - 0.18),
                                         connectionstyle=f"bar,fraction={-0.35 / max(1, i - source)}",
                                         arrowstyle="-|>", mutation_scale=8, color="#888888",
                                         linewidth=1))
            ax.text(x - 0.12, (centres[source] + centres[i]) / 2, "+", ha="right", va="center",
                    fontsize=9, color="#666666")
        if block.repeat:
            top = (i + block.span - 1) * (height + gap) + height
            bottom = i * (height + gap)
            ax.plot([width + 0.2, width + 0.35, width + 0.35, width + 0.2],
                    [bottom, bottom, top, top], color="#444444", linewidth=1.2)
            ax.text(width + 0.45, (top + bottom) / 2, block.repeat, va="center", fontsize=11,
                    fontweight="bold")
    ax.set_xlim(-1.0, width + 1.6)
    ax.set_ylim(-0.2, len(blocks) * (height + gap))
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def draw_side_by_side(stacks: list[tuple[str, list[Block]]], width: float = 4.2):
    """Several stacks in one figure (an encoder beside a decoder, two CNNs side by side)."""
    tallest = max(len(blocks) for _, blocks in stacks)
    fig, axes = plt.subplots(1, len(stacks),
                             figsize=(len(stacks) * (width + 2.6), 0.5 + tallest * 0.62))
    for ax, (title, blocks) in zip(axes, stacks):
        draw_stack(blocks, title, ax=ax, width=width)
        ax.set_ylim(-0.2, tallest * 1.0)
    return fig


# ----- families ------------------------------------------------------------------------

def _side_after(side: int, layer) -> int:
    """Height (= width) of a square map after a conv or pooling layer, as PyTorch rounds it."""
    k, s, p = (v if isinstance(v, int) else v[0]
               for v in (layer.kernel_size, layer.stride, layer.padding))
    return (side + 2 * p - k) // s + 1


def vgg_blocks(model, image: tuple[int, int, int] = (3, 224, 224)) -> list[Block]:
    """VGG from a torchvision module: one block per conv stage, read off ``model.features``.

    Sizes are worked out from each layer's kernel, stride and padding for a square *image*
    (C, H, W); the chapter checks them against a real forward pass.
    """
    from torch import nn

    channels, side = image[0], image[1]
    blocks = [Block("image", f"{channels} × {side} × {side}")]
    convs: list[nn.Conv2d] = []
    for layer in model.features:
        if isinstance(layer, nn.Conv2d):
            convs.append(layer)
            side = _side_after(side, layer)
        elif isinstance(layer, nn.MaxPool2d):
            k = convs[0].kernel_size[0]
            channels = convs[-1].out_channels
            blocks.append(Block(f"{len(convs)} × (conv {k}×{k} + ReLU)",
                                f"{convs[0].in_channels} → {channels} channels, {side} × {side}",
                                "conv"))
            side = _side_after(side, layer)
            blocks.append(Block(f"max-pool {layer.kernel_size}×{layer.kernel_size}, stride "
                                f"{layer.stride}", f"→ {channels} × {side} × {side}", "pool"))
            convs = []
    out = model.avgpool.output_size
    out_h, out_w = (out, out) if isinstance(out, int) else out
    blocks.append(Block("adaptive avg-pool + flatten",
                        f"{channels} × {out_h} × {out_w} = {channels * out_h * out_w}", "pool"))
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    for linear in linears[:-1]:
        blocks.append(Block("Linear + ReLU + Dropout", f"{linear.in_features} → {linear.out_features}",
                            "ffn"))
    blocks.append(Block("Linear (classifier)", f"{linears[-1].in_features} → "
                        f"{linears[-1].out_features} classes", "head"))
    return blocks


def resnet_blocks(model, image: tuple[int, int, int] = (3, 224, 224)) -> list[Block]:
    """ResNet from a torchvision module: stem, every residual block with its own skip, head.

    One box per residual block; the arrow on its left is that block's shortcut, added to
    the block's output (identity, or a 1×1 projection where stride or channels change).
    """
    channels, side = image[0], image[1]
    conv1, pool = model.conv1, model.maxpool
    blocks = [Block("image", f"{channels} × {side} × {side}")]
    side = _side_after(side, conv1)
    blocks.append(Block(f"conv {conv1.kernel_size[0]}×{conv1.kernel_size[0]} stride "
                        f"{conv1.stride[0]} + BN + ReLU",
                        f"{channels} → {conv1.out_channels} channels, {side} × {side}", "conv"))
    side = _side_after(side, pool)
    blocks.append(Block(f"max-pool {pool.kernel_size}×{pool.kernel_size} stride {pool.stride}",
                        f"→ {conv1.out_channels} × {side} × {side}", "pool"))
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        for index, block in enumerate(getattr(model, stage)):
            kind = type(block).__name__  # BasicBlock or Bottleneck
            strided = block.conv1 if kind == "BasicBlock" else block.conv2
            last = getattr(block, "conv3", block.conv2)
            side = _side_after(side, strided)
            skip = "identity" if block.downsample is None else "1×1 projection"
            blocks.append(Block(f"{stage}.{index}: {kind}, stride {strided.stride[0]}",
                                f"{block.conv1.in_channels} → {last.out_channels} channels, "
                                f"{side} × {side}; skip: {skip}", "conv",
                                residual_from=[len(blocks) - 1]))
    blocks.append(Block("global avg-pool + flatten", f"→ {model.fc.in_features}", "pool"))
    blocks.append(Block("Linear (classifier)", f"{model.fc.in_features} → {model.fc.out_features}",
                        "head"))
    return blocks


def basic_block_blocks(block) -> list[Block]:
    """Inside one torchvision BasicBlock: two 3×3 convs, and the shortcut added at the end."""
    c_in, c_out = block.conv1.in_channels, block.conv2.out_channels

    def conv_label(conv) -> str:
        k = conv.kernel_size[0]
        bias = "bias" if conv.bias is not None else "no bias"
        return f"conv {k}×{k}, stride {conv.stride[0]}, {bias}"

    if block.downsample is None:
        skip = "shortcut: identity, x itself"
    else:
        proj = block.downsample[0]
        skip = (f"shortcut: {conv_label(proj)} + BN, "
                f"{proj.in_channels} → {proj.out_channels}")
    return [
        Block("input x", f"{c_in} channels"),
        Block(conv_label(block.conv1), f"{c_in} → {c_out} channels", "conv"),
        Block("BatchNorm2d + ReLU", f"{c_out} channels", "norm"),
        Block(conv_label(block.conv2), f"{c_out} → {c_out} channels", "conv"),
        Block("BatchNorm2d", f"{c_out} channels", "norm"),
        Block("add shortcut, then ReLU", skip, "io", residual_from=[0]),
    ]


def lstm_blocks(model) -> list[Block]:
    """The course LSTM: input sequence, one block per LSTM layer, classifier on the last step."""
    lstm = model.lstm
    blocks = [Block("input sequence", f"(S, B, {lstm.input_size})")]
    for layer in range(lstm.num_layers):
        width = lstm.input_size if layer == 0 else lstm.hidden_size
        gates = 4 * lstm.hidden_size
        blocks.append(Block(f"LSTM layer {layer + 1}: {width} → {lstm.hidden_size}, gates i f g o",
                            f"W_ih {gates}×{width}, W_hh {gates}×{lstm.hidden_size}, "
                            "2 biases", "recurrent"))
    blocks.append(Block("last time step: top layer's h_S", f"(B, {lstm.hidden_size})", "io"))
    blocks.append(Block("Linear (classifier)", f"{model.fc.in_features} → {model.fc.out_features}",
                        "head"))
    return blocks


def bert_blocks(config) -> list[Block]:
    """BERT from a BertConfig: post-norm encoder layers, then the pooler."""
    h, a, f = config.hidden_size, config.num_attention_heads, config.intermediate_size
    blocks = [
        Block("token ids + segment ids", f"(B, S), S ≤ {config.max_position_embeddings}"),
        Block("token + position + segment embedding", f"{config.vocab_size} · "
              f"{config.max_position_embeddings} · {config.type_vocab_size} rows × {h}", "embedding"),
        Block("LayerNorm + Dropout", f"h = {h}", "norm"),
    ]
    start = len(blocks) - 1
    blocks += [
        Block("multi-head self-attention (Q, K, V, output)",
              f"{a} heads × {h // a}, bidirectional: no causal mask", "attention",
              repeat=f"× {config.num_hidden_layers}", span=4),
        Block("Add & LayerNorm", "post-norm", "norm", residual_from=[start]),
        Block(f"feed-forward ({config.hidden_act.upper()})", f"{h} → {f} → {h}", "ffn"),
        Block("Add & LayerNorm", "post-norm", "norm", residual_from=[start + 2]),
        Block("pooler: Linear + tanh on [CLS]", f"{h} → {h}", "head"),
    ]
    return blocks


def _t5_ffn(config) -> str:
    gated = "gated " if getattr(config, "is_gated_act", False) else ""
    return f"{gated}feed-forward ({config.dense_act_fn})"


def t5_blocks(config) -> list[tuple[str, list[Block]]]:
    """T5 from a T5Config: the encoder stack and the decoder stack, pre-norm, RMSNorm."""
    d, a, dkv, f = config.d_model, config.num_heads, config.d_kv, config.d_ff
    encoder = [
        Block("input ids", "(B, S_enc)"),
        Block("shared token embedding", f"{config.vocab_size} × {d}", "embedding"),
        Block("RMSNorm", f"d = {d}", "norm", repeat=f"× {config.num_layers}", span=4),
        Block("self-attention + relative bias", f"{a} heads × {dkv}; bias table in layer 0", "attention"),
        Block("RMSNorm", f"d = {d}", "norm", residual_from=[1]),
        Block(_t5_ffn(config), f"{d} → {f} → {d}", "ffn"),
        Block("final RMSNorm", f"d = {d}", "norm", residual_from=[3]),
    ]
    decoder = [
        Block("decoder input ids", "(B, S_dec), shifted labels"),
        Block("shared token embedding", f"{config.vocab_size} × {d}", "embedding"),
        Block("RMSNorm", f"d = {d}", "norm", repeat=f"× {config.num_decoder_layers}", span=6),
        Block("causal self-attention + relative bias", f"{a} heads × {dkv}", "attention"),
        Block("RMSNorm", f"d = {d}", "norm", residual_from=[1]),
        Block("cross-attention to encoder output", f"{a} heads × {dkv}", "attention"),
        Block("RMSNorm", f"d = {d}", "norm", residual_from=[3]),
        Block(_t5_ffn(config), f"{d} → {f} → {d}", "ffn"),
        Block("final RMSNorm", f"d = {d}", "norm", residual_from=[5]),
        Block("LM head (tied to embedding)", f"{d} → {config.vocab_size}", "head"),
    ]
    return [("encoder", encoder), ("decoder", decoder)]


def decoder_blocks(config) -> list[Block]:
    """A decoder-only LM from a GPT2Config or a LLaMA-style config (the CS336 LM)."""
    if config.model_type == "gpt2":
        h, a, L, V = config.n_embd, config.n_head, config.n_layer, config.vocab_size
        inner = config.n_inner or 4 * h
        tied = "tied to embedding"
        return [
            Block("token ids", f"(B, S), S ≤ {config.n_positions}"),
            Block("token embedding + position embedding", f"{V} × {h} + {config.n_positions} × {h}",
                  "embedding"),
            Block("LayerNorm", f"h = {h}", "norm", repeat=f"× {L}", span=4),
            Block("causal self-attention", f"{a} heads × {h // a}, fused QKV with bias", "attention",
                  residual_from=[1]),
            Block("LayerNorm", f"h = {h}", "norm"),
            Block("MLP (GELU)", f"{h} → {inner} → {h}", "ffn", residual_from=[3]),
            Block("final LayerNorm", f"h = {h}", "norm"),
            Block(f"LM head ({tied})", f"{h} → {V}", "head"),
        ]
    h, a, L, V = (config.hidden_size, config.num_attention_heads, config.num_hidden_layers,
                  config.vocab_size)
    kv = config.num_key_value_heads
    heads = f"{a} heads × {h // a}" + (f", {kv} KV heads" if kv != a else "") + ", RoPE"
    tied = "tied to embedding" if config.tie_word_embeddings else "untied"
    return [
        Block("token ids", f"(B, S), S ≤ {config.max_position_embeddings}"),
        Block("token embedding (no positions: RoPE)", f"{V} × {h}", "embedding"),
        Block("RMSNorm", f"h = {h}", "norm", repeat=f"× {L}", span=4),
        Block("causal self-attention", heads, "attention", residual_from=[1]),
        Block("RMSNorm", f"h = {h}", "norm"),
        Block("SwiGLU feed-forward", f"{h} → 2 × {config.intermediate_size} → {h}", "ffn",
              residual_from=[3]),
        Block("final RMSNorm", f"h = {h}", "norm"),
        Block(f"LM head ({tied})", f"{h} → {V}", "head"),
    ]


# ----- Part II: modern LLMs (mixtures of experts, MLA, a vision encoder) ---------------

def _get(config, name: str, default=None):
    """A field of a config object or of its ``to_dict()`` / config.json mapping."""
    if isinstance(config, dict):
        value = config.get(name, default)
    else:
        value = getattr(config, name, default)
    return default if value is None else value


def _b(n: int) -> str:
    """A parameter count in billions for a figure label: 1.5 B, 12.3 B, 235.1 B."""
    return f"{n / 1e9:,.1f} B"


def _heads(a: int, kv: int, d: int) -> str:
    return f"{a} heads × {d}" + (f", {kv} KV heads" if kv != a else "")


def _llama4_layers(text) -> tuple[list[int], list[int], int | None]:
    """MoE layer indices, NoPE layer indices and the chunk size of a Llama 4 text config,
    with transformers' defaults when a field is unset: MoE every
    ``interleave_moe_layer_step``-th layer, NoPE every 4th, chunks of 8192 tokens."""
    L, step = _get(text, "num_hidden_layers"), _get(text, "interleave_moe_layer_step", 1)
    moe_layers = _get(text, "moe_layers") or list(range(step - 1, L, step))
    interval = _get(text, "no_rope_layer_interval", 4)
    rope = _get(text, "no_rope_layers") or [int((i + 1) % interval != 0) for i in range(L)]
    nope = [i for i in range(L) if not rope[i]]
    # None means no chunking; a config.json without the field gets transformers' default
    chunk = (text.get("attention_chunk_size", 8192) if isinstance(text, dict)
             else getattr(text, "attention_chunk_size", None))
    return list(moe_layers), nope, chunk


def llama4_blocks(config) -> list[tuple[str, list[Block]]]:
    """Llama 4 (``Llama4ForConditionalGeneration``) from its config: the vision encoder
    with its adapter and projector, and the text decoder with its MoE interleaving.

    When MoE layers alternate with dense ones (Maverick: ``interleave_moe_layer_step`` 2),
    the repeated unit is the pair of layers.

    >>> from modelnotes.params import named_config
    >>> (vision_title, vision), (text_title, text) = llama4_blocks(named_config("llama4-maverick"))
    >>> [b.repeat for b in text if b.repeat], text[2].span
    (['× 24'], 8)
    >>> text[5].label
    'dense SwiGLU feed-forward'
    """
    v, t = _get(config, "vision_config"), _get(config, "text_config")
    # vision encoder
    p, side, c = _get(v, "patch_size"), _get(v, "image_size"), _get(v, "num_channels", 3)
    hv, fv, Lv, av = (_get(v, "hidden_size"), _get(v, "intermediate_size"),
                      _get(v, "num_hidden_layers"), _get(v, "num_attention_heads"))
    n = (side // p) ** 2
    ratio = _get(v, "pixel_shuffle_ratio", 0.5)
    shuffled, width = int(n * ratio * ratio), int(hv / ratio ** 2)
    out = _get(v, "vision_output_dim")
    h = _get(t, "hidden_size")
    vision = [
        Block("image tile", f"({c}, {side}, {side})"),
        Block(f"patch embedding: unfold {p}×{p} + Linear", f"{n} patches, {c * p * p} → {hv}",
              "embedding"),
        Block("+ class token, + learned positions", f"{n + 1} × {hv}", "embedding"),
        Block("LayerNorm (pre)", f"{hv}", "norm"),
        Block("LayerNorm", f"{hv}", "norm", repeat=f"× {Lv}", span=4),
        Block("self-attention, 2-D RoPE, biases", _heads(av, av, hv // av), "attention",
              residual_from=[3]),
        Block("LayerNorm", f"{hv}", "norm"),
        Block("MLP (GELU), biases", f"{hv} → {fv} → {hv}", "ffn", residual_from=[5]),
        Block("LayerNorm (post), drop class token", f"{n} × {hv}", "norm"),
        Block(f"pixel shuffle ×{ratio} + adapter MLP", f"{shuffled} × {width} → "
              f"{_get(v, 'projector_input_dim')} → {_get(v, 'projector_output_dim')}", "ffn"),
        Block("multi-modal projector (Linear)", f"{out} → {h}: image tokens for the decoder",
              "head"),
    ]
    # text decoder
    L, a = _get(t, "num_hidden_layers"), _get(t, "num_attention_heads")
    kv, d = _get(t, "num_key_value_heads"), _get(t, "head_dim", h // a)
    V, E, k, fe = (_get(t, "vocab_size"), _get(t, "num_local_experts"),
                   _get(t, "num_experts_per_tok"), _get(t, "intermediate_size"))
    moe_layers, nope, chunk = _llama4_layers(t)
    qk = ", QK-norm" if _get(t, "use_qk_norm", False) else ""
    every = L // len(nope) if nope else 0
    attention_detail = f"RoPE{qk}" + (f", {chunk}-token chunks" if chunk else "")
    if nope:
        nth = {1: "", 2: "2nd ", 3: "3rd "}.get(every, f"{every}th ")
        attention_detail += f"; every {nth}layer: NoPE"
    attention = dict(label=f"self-attention: {_heads(a, kv, d)}", detail=attention_detail,
                     kind="attention")
    moe = dict(label=f"MoE: top-{k} of {E} experts + 1 shared expert",
               detail=f"router; each SwiGLU {h} → {fe} → {h}", kind="expert")
    dense = dict(label="dense SwiGLU feed-forward",
                 detail=f"{h} → {_get(t, 'intermediate_size_mlp')} → {h}", kind="ffn")
    text = [Block("token ids (+ projected image tokens)",
                  f"(B, S), S ≤ {_get(t, 'max_position_embeddings')}"),
            Block("token embedding", f"{V} × {h}", "embedding")]
    step = L // max(1, len(moe_layers))
    unit = [dense] * (step - 1) + [moe] if moe_layers == list(range(step - 1, L, step)) else None
    if unit is None:  # an irregular pattern: say so in one box
        unit = [dict(moe, detail=f"MoE in layers {moe_layers[:3]}…, dense elsewhere")]
    start = len(text)
    for ff in unit:
        base = len(text)
        text += [Block("RMSNorm", f"h = {h}", "norm"),
                 Block(**attention, residual_from=[base - 1]),
                 Block("RMSNorm", f"h = {h}", "norm"),
                 Block(**ff, residual_from=[base + 1])]
    text[start].repeat, text[start].span = f"× {L // len(unit)}", 4 * len(unit)
    text += [Block("final RMSNorm", f"h = {h}", "norm"),
             Block("LM head (untied)" if not _get(config, "tie_word_embeddings", False)
                   else "LM head (tied)", f"{h} → {V}", "head")]
    return [("vision encoder", vision), ("text decoder", text)]


def qwen3_blocks(config) -> list[Block]:
    """Qwen3 dense (``qwen3``) or MoE (``qwen3_moe``) from its config.

    >>> from modelnotes.params import named_config
    >>> blocks = qwen3_blocks(named_config("qwen3-30b-a3b"))
    >>> blocks[3].label, blocks[5].label
    ('self-attention, RoPE, QK-norm', 'MoE: router → top-8 of 128 experts, no shared expert')
    """
    h, a, kv, L, V = (_get(config, "hidden_size"), _get(config, "num_attention_heads"),
                      _get(config, "num_key_value_heads"), _get(config, "num_hidden_layers"),
                      _get(config, "vocab_size"))
    d = _get(config, "head_dim", 128)
    E = _get(config, "num_experts", 0) if _get(config, "model_type") == "qwen3_moe" else 0
    if E:
        fe = _get(config, "moe_intermediate_size")
        ff = Block(f"MoE: router → top-{_get(config, 'num_experts_per_tok')} of {E} experts, "
                   "no shared expert", f"each SwiGLU {h} → {fe} → {h}", "expert",
                   residual_from=[3])
    else:
        ff = Block("SwiGLU feed-forward", f"{h} → {_get(config, 'intermediate_size')} → {h}",
                   "ffn", residual_from=[3])
    tied = _get(config, "tie_word_embeddings", False)
    return [
        Block("token ids", f"(B, S), S ≤ {_get(config, 'max_position_embeddings')}"),
        Block("token embedding", f"{V} × {h}", "embedding"),
        Block("RMSNorm", f"h = {h}", "norm", repeat=f"× {L}", span=4),
        Block("self-attention, RoPE, QK-norm",
              f"{_heads(a, kv, d)}: a·d_h = {a * d}, h = {h}", "attention", residual_from=[1]),
        Block("RMSNorm", f"h = {h}", "norm"),
        ff,
        Block("final RMSNorm", f"h = {h}", "norm"),
        Block("LM head (tied to embedding)" if tied else "LM head (untied)", f"{h} → {V}",
              "head"),
    ]


def _mla_detail(config) -> str:
    return (f"q via rank {_get(config, 'q_lora_rank')}, k/v via rank "
            f"{_get(config, 'kv_lora_rank')} + {_get(config, 'qk_rope_head_dim')} RoPE dims")


def deepseek_v3_blocks(config, mtp: bool = True) -> list[tuple[str, list[Block]]]:
    """DeepSeek-V3 from its config: the main model (dense layers, then MoE layers, all with
    MLA) and, with *mtp*, the multi-token-prediction module beside it.

    >>> from modelnotes.params import named_config
    >>> (_, main), (_, mtp) = deepseek_v3_blocks(named_config("deepseek-v3"))
    >>> [b.repeat for b in main if b.repeat]
    ['× 3', '× 58']
    >>> mtp[3].label
    'eh_proj (Linear, no bias)'
    """
    h, a, L, V = (_get(config, "hidden_size"), _get(config, "num_attention_heads"),
                  _get(config, "num_hidden_layers"), _get(config, "vocab_size"))
    k_dense = _get(config, "first_k_dense_replace", 0)
    E, k, Es = (_get(config, "n_routed_experts"), _get(config, "num_experts_per_tok"),
                _get(config, "n_shared_experts", 0))
    fe = _get(config, "moe_intermediate_size")
    mla = dict(label=f"multi-head latent attention, {a} heads", detail=_mla_detail(config),
               kind="attention")
    moe = dict(label=f"MoE: sigmoid router → top-{k} of {E} + {Es} shared",
               detail=f"each expert SwiGLU {h} → {fe} → {h}", kind="expert")

    def layer(base: int, ff: dict, repeat: str) -> list[Block]:
        return [Block("RMSNorm", f"h = {h}", "norm", repeat=repeat, span=4),
                Block(**mla, residual_from=[base - 1]),
                Block("RMSNorm", f"h = {h}", "norm"),
                Block(**ff, residual_from=[base + 1])]

    main = [Block("token ids", f"(B, S), S ≤ {_get(config, 'max_position_embeddings')}"),
            Block("token embedding", f"{V} × {h}", "embedding")]
    if k_dense:
        main += layer(len(main), dict(label="dense SwiGLU feed-forward",
                                      detail=f"{h} → {_get(config, 'intermediate_size')} → {h}",
                                      kind="ffn"), f"× {k_dense}")
    main += layer(len(main), moe, f"× {L - k_dense}")
    main += [Block("final RMSNorm", f"h = {h}", "norm"),
             Block("LM head (untied)", f"{h} → {V}", "head")]
    stacks = [("main model", main)]
    if mtp and _get(config, "num_nextn_predict_layers", 0):
        module = [
            Block("next token's embedding  |  main hidden state",
                  f"shared table  |  {h} numbers from the last layer", "embedding"),
            Block("enorm and hnorm (one RMSNorm each)", f"{h} and {h}", "norm"),
            Block("concatenate", f"{2 * h}", "io"),
            Block("eh_proj (Linear, no bias)", f"{2 * h} → {h}", "mtp"),
            *layer(4, moe, "× 1"),
            Block("shared_head.norm (RMSNorm)", f"h = {h}", "norm"),
            Block("output head, shared with the main model", f"{h} → {V}", "head"),
        ]
        stacks.append(("MTP module (predicts one token further)", module))
    return stacks


def mla_blocks(config) -> list[tuple[str, list[Block]]]:
    """Multi-head latent attention as two paths: queries, and keys with values.

    >>> from modelnotes.params import named_config
    >>> (_, q), (_, kv) = mla_blocks(named_config("deepseek-v3"))
    >>> kv[1].detail
    '7168 → 512 + 64'
    """
    h, a = _get(config, "hidden_size"), _get(config, "num_attention_heads")
    rq, rkv = _get(config, "q_lora_rank"), _get(config, "kv_lora_rank")
    dn, dr, dv = (_get(config, "qk_nope_head_dim"), _get(config, "qk_rope_head_dim"),
                  _get(config, "v_head_dim"))
    query = [Block("normalised hidden state", f"h = {h}"),
             Block("q_a_proj: down to the query latent", f"{h} → {rq}", "attention"),
             Block("q_a_layernorm (RMSNorm)", f"r_q = {rq}", "norm"),
             Block("q_b_proj: up to every head", f"{rq} → {a} × ({dn} + {dr})", "attention"),
             Block("split each head; RoPE on the last part", f"{dn} without position, {dr} with"),
             Block("queries", f"{a} heads × {dn + dr}")]
    kv = [Block("normalised hidden state", f"h = {h}"),
          Block("kv_a_proj_with_mqa: latent + RoPE key", f"{h} → {rkv} + {dr}",
                "attention"),
          Block("RMSNorm on the latent, RoPE on the key", f"r_kv = {rkv}; d_r = {dr}",
                "norm"),
          Block("the cache keeps these per token and layer", f"{rkv} + {dr} = {rkv + dr} numbers",
                "io"),
          Block("kv_b_proj: latent up to every head", f"{rkv} → {a} × ({dn} + {dv})",
                "attention"),
          Block("keys and values", f"k: {a} × ({dn} + {dr} shared), v: {a} × {dv}")]
    return [("query path", query), ("key/value path", kv)]


def grok_blocks(config) -> list[Block]:
    """Grok-1 / Grok-2 from a :class:`modelnotes.grok.GrokConfig` (or its dict): four
    RMSNorms per layer, the residual added after the post-norms.

    >>> from modelnotes.params import named_config
    >>> blocks = grok_blocks(named_config("grok-2"))
    >>> blocks[6].label
    'MoE (top-2 of 8) + dense MLP, sum ÷ √2'
    >>> blocks[6].detail
    'experts 8192 → 16384 → 8192, MLP 8192 → 32768 → 8192'
    """
    h, a, kv, L, V = (_get(config, "hidden_size"), _get(config, "num_attention_heads"),
                      _get(config, "num_key_value_heads"), _get(config, "num_hidden_layers"),
                      _get(config, "vocab_size"))
    d = _get(config, "head_dim", h // a)
    E, k, fe = (_get(config, "num_local_experts"), _get(config, "num_experts_per_tok"),
                _get(config, "moe_intermediate_size"))
    if _get(config, "residual_moe", False):
        moe = Block(f"MoE (top-{k} of {E}) + dense MLP, sum ÷ √2",
                    f"experts {h} → {fe} → {h}, "
                    f"MLP {h} → {_get(config, 'intermediate_size')} → {h}", "expert")
    else:
        moe = Block(f"MoE: router → top-{k} of {E} experts",
                    f"each GELU-gated {h} → {fe} → {h}", "expert")
    tied = _get(config, "tie_word_embeddings", True)
    return [
        Block("token ids", "(B, S)"),
        Block("token embedding", f"{V} × {h}", "embedding"),
        Block("RMSNorm (pre-attention)", f"h = {h}", "norm", repeat=f"× {L}", span=6),
        Block("self-attention", f"{_heads(a, kv, d)}, RoPE", "attention"),
        Block("RMSNorm (post-attention), then add", f"h = {h}", "norm", residual_from=[1]),
        Block("RMSNorm (pre-MoE)", f"h = {h}", "norm"),
        moe,
        Block("RMSNorm (post-MoE), then add", f"h = {h}", "norm", residual_from=[4]),
        Block("final RMSNorm", f"h = {h}", "norm"),
        Block("LM head (tied to embedding)" if tied else "LM head (untied)", f"{h} → {V}",
              "head"),
    ]


# ----- where the parameters live: a breakdown of a modelnotes.params.Count tree ----------

GROUPS = {  # group of a Count node -> palette kind; also the order of the bars' segments
    "embedding": "embedding", "attention": "attention", "dense FFN": "ffn",
    "shared experts": "shared_expert", "routed experts": "expert", "router": "router",
    "norms": "norm", "head": "head", "vision": "vision", "MTP module": "mtp", "other": "io",
}


def _group_of(node) -> str | None:
    name = node.name
    if name in ("vision_model", "multi_modal_projector"):
        return "vision"
    if name.startswith("mtp module"):
        return "MTP module"
    if name.startswith("routed experts"):
        return "routed experts"
    if name.startswith("shared expert"):
        return "shared experts"
    if name == "router":
        return "router"
    if name.startswith("lm_head"):
        return "head"
    if node.kind == "embedding":
        return "embedding"
    if name.startswith("attention") or name in ("attn", "self_attn"):
        return "attention"
    if name == "mlp" or name.startswith("mlp "):
        return "dense FFN"
    if not node.children:
        return "norms" if "norm" in name else "other"
    return None


def parameter_groups(count) -> dict[str, tuple[int, int]]:
    """(total, active) parameters per group of a :class:`modelnotes.params.Count` tree:
    embedding, attention (with any norms inside it), dense FFN, shared experts, routed
    experts, router, norms, head, vision, MTP module. The groups add up to the tree's
    ``total`` and ``active``; groups with no parameters are left out.

    >>> from modelnotes.params import count
    >>> groups = parameter_groups(count("mixtral-8x7b"))
    >>> list(groups)
    ['embedding', 'attention', 'routed experts', 'router', 'norms', 'head']
    >>> sum(t for t, a in groups.values()) == count("mixtral-8x7b").total
    True
    >>> groups["routed experts"][1] * 4 == groups["routed experts"][0]  # top-2 of 8
    True
    """
    sums: dict[str, list[int]] = {}

    def walk(node, f_total: int, f_active: int) -> None:
        group = _group_of(node)
        if group is not None:
            entry = sums.setdefault(group, [0, 0])
            entry[0] += f_total * node.total
            entry[1] += f_active * node.active
            return
        n_active = node.times if node.active_times is None else node.active_times
        if node.params:
            entry = sums.setdefault("other", [0, 0])
            entry[0] += f_total * node.times * node.params
            entry[1] += f_active * n_active * node.params
        for child in node.children:
            walk(child, f_total * node.times, f_active * n_active)

    walk(count, 1, 1)
    return {g: (sums[g][0], sums[g][1]) for g in GROUPS if g in sums and sums[g][0]}


def draw_breakdown(models, *, active: bool = True, inactive_groups: tuple[str, ...] = (),
                   active_label: str = "active per token", width: float = 10.0):
    """Horizontal stacked bars of where each model's parameters live.

    *models* is a list of (name, :class:`modelnotes.params.Count`). Each model gets a bar of
    its total and, when *active* and the model is sparse, a second bar of what one token
    uses (leaving out *inactive_groups*, e.g. ``("vision",)`` for a text token). Every bar
    is drawn as 100 % of itself, so that models of any size and their active parts compare;
    the count in billions (and, for an active bar, its share of the total) is written at
    the end of each bar. Returns the Figure.

    >>> from modelnotes.params import count
    >>> fig = draw_breakdown([("Mixtral-8x7B", count("mixtral-8x7b"))])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['Mixtral-8x7B: active per token', 'Mixtral-8x7B']
    >>> plt.close(fig)
    """
    bars = []
    for name, count in models:
        groups = parameter_groups(count)
        bars.append((name, {g: t for g, (t, a) in groups.items()}, count.total))
        if active and count.active != count.total:
            bars.append((f"{name}: {active_label}",
                         {g: a for g, (t, a) in groups.items() if g not in inactive_groups},
                         count.total))
    height = 0.45 * len(bars) + 1.3
    fig, ax = plt.subplots(figsize=(width, height))
    labelled: set[str] = set()
    for row, (label, groups, total) in enumerate(bars):
        y = len(bars) - 1 - row
        size = sum(groups.values())
        left = 0.0
        for g in GROUPS:
            share = 100.0 * groups.get(g, 0) / size
            if not share:
                continue
            ax.barh(y, share, left=left, height=0.7, color=PALETTE[GROUPS[g]],
                    edgecolor="#444444", linewidth=0.6,
                    label=None if g in labelled else g)
            labelled.add(g)
            if share >= 5:
                ax.text(left + share / 2, y, f"{share:.0f} %", ha="center", va="center",
                        fontsize=8)
            left += share
        note = (_b(size) if size == total
                else f"{_b(size)} = {100 * size / total:.1f} % of the total")
        ax.text(101, y, note, va="center", fontsize=8.5)
    ax.set_yticks(range(len(bars)), [b[0] for b in reversed(bars)], fontsize=9)
    ax.set_xlabel("% of the bar's parameters")
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.5, len(bars) - 0.5)
    ax.spines[["top", "right"]].set_visible(False)
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: list(GROUPS).index(names[i]))
    ax.legend([handles[i] for i in order], [names[i] for i in order], loc="upper center",
              ncol=len(names) if len(names) <= 7 else -(-len(names) // 2), fontsize=8.5,
              frameon=False,
              bbox_to_anchor=(0.5, -0.55 / (0.77 * height)))
    return fig


# ----- number formats (Part III) ---------------------------------------------------------

BIT_COLOURS = {  # one colour per field of a number format, the same in every figure
    "sign": "#f8cecc",
    "exponent": "#dae8fc",
    "mantissa": "#d5e8d4",
    "integer": "#fff2cc",
    "unused": "#eeeeee",
}


def _bit_fields(fmt) -> list[tuple[str, str, int]]:
    """(kind, letter, width) of each field of a format, most significant first."""
    if fmt.kind == "int":
        return [("sign", "S", 1), ("integer", "I", fmt.total_bits - 1)]
    fields = [("sign", "S", 1)] if fmt.signed else []
    fields += [("exponent", "E", fmt.exponent_bits), ("mantissa", "M", fmt.mantissa_bits)]
    return [f for f in fields if f[2]]


def draw_bit_layouts(formats, *, pad_to: dict[str, int] | None = None, cell: float = 0.125,
                     title: str = ""):
    """The bit layouts of number formats, one row each, most significant bit on the left.

    *formats* are :mod:`modelnotes.formats` formats (floats or integers). Every bit is one
    cell of the same width, so the rows are to scale, coloured by field
    (:data:`BIT_COLOURS`): sign, exponent and mantissa for a float, the sign and the value
    bits of a two's complement integer. Each field is outlined and labelled with its letter
    and width (``S``, ``E8``, ``M23``; a wide field spells it out). The left margin names
    the format, the right margin gives its bits, bias and special-value convention. *pad_to*
    draws a format inside a wider word: ``{"tf32": 32}`` adds, greyed and hatched, the 13
    low bits of an fp32 word that tf32 ignores. Returns the Figure.

    >>> from modelnotes.formats import FP8_E4M3FN, FP4_E2M1, INT4
    >>> fig = draw_bit_layouts([FP8_E4M3FN, FP4_E2M1, INT4])
    >>> sum(p.get_gid() == "bit" for p in fig.axes[0].patches)  # one cell per bit
    16
    >>> [t.get_text() for t in fig.axes[0].texts][:4]
    ['fp8-e4m3fn', 'S', 'E4', 'M3']
    >>> plt.close(fig)
    """
    from matplotlib.patches import Patch, Rectangle

    pad_to = pad_to or {}
    widest = max(max(f.total_bits, pad_to.get(f.name, 0)) for f in formats)
    row, gap = 1.0, 0.55
    fig, ax = plt.subplots(figsize=(widest * cell + 3.8, 0.5 + len(formats) * 0.4))
    for i, fmt in enumerate(formats):
        y = -(i * (row + gap))
        ax.text(-0.8, y + row / 2, fmt.name, ha="right", va="center", fontsize=10,
                fontweight="bold")
        x = 0
        for kind, letter, width in _bit_fields(fmt):
            for bit in range(width):
                ax.add_patch(Rectangle((x + bit, y), 1, row, facecolor=BIT_COLOURS[kind],
                                       edgecolor="#ffffff", linewidth=0.6, gid="bit"))
            ax.add_patch(Rectangle((x, y), width, row, fill=False, edgecolor="#444444",
                                   linewidth=1.0))
            name = {"S": "sign", "E": "exponent", "M": "mantissa", "I": "value"}[letter]
            label = (letter if width == 1 and letter == "S" else
                     f"{name} ({width})" if width >= 12 else f"{letter}{width}"
                     if width >= 2 else letter)
            ax.text(x + width / 2, y + row / 2, label, ha="center", va="center",
                    fontsize=8.5 if width >= 2 else 7.5)
            x += width
        padding = pad_to.get(fmt.name, fmt.total_bits) - fmt.total_bits
        if padding > 0:
            ax.add_patch(Rectangle((x, y), padding, row, facecolor=BIT_COLOURS["unused"],
                                   edgecolor="#999999", hatch="///", linewidth=0.8))
        note = f"{fmt.total_bits} bits"
        if padding > 0:
            note += f" of {fmt.total_bits + padding}"
        if fmt.kind == "int":
            note += ", two's complement"
        else:
            note += f", bias {fmt.bias}, {fmt.special}" + ("" if fmt.signed else ", unsigned")
        ax.text(x + max(padding, 0) + 0.8, y + row / 2, note, ha="left", va="center",
                fontsize=9.5, color="#333333")
    kinds = ["sign", "exponent", "mantissa"]
    if any(f.kind == "int" for f in formats):
        kinds.append("integer")
    handles = [Patch(facecolor=BIT_COLOURS[k], edgecolor="#444444",
                     label="value bits (int)" if k == "integer" else k) for k in kinds]
    if pad_to:
        handles.append(Patch(facecolor=BIT_COLOURS["unused"], edgecolor="#999999",
                             hatch="///", label="ignored"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(handles),
              frameon=False, fontsize=9.5)
    ax.set_xlim(-0.5, widest + 0.5)
    ax.set_ylim(-(len(formats) - 1) * (row + gap) - 0.3, row + 0.3)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11, pad=22)
    return fig
