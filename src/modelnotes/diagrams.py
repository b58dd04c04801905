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
