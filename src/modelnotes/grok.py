"""Grok-1 and Grok-2 as compact PyTorch modules, for counting on the ``meta`` device.

transformers has no Grok class, so the book's second count of Grok's parameters comes
from this module, written from the published architecture (xai-org/grok-1 ``model.py``
for Grok-1; the Grok-2 ``config.json`` and its SGLang loader for Grok-2):

* token embedding V x d; Grok-1 ties it to the output projection, Grok-2 does not;
* per layer: grouped-query attention (q, k, v, o; no biases; RoPE), four scale-only
  RMSNorms (before and after attention, before and after the feed-forward block);
* a mixture of experts: a bias-free router d -> E and E gated (3-matrix, GELU) experts,
  top-k per token; Grok-2 adds a dense gated MLP beside the experts (``residual_moe``)
  whose output is averaged with theirs;
* a final RMSNorm.

>>> import torch
>>> tiny = GrokConfig(vocab_size=50, hidden_size=32, moe_intermediate_size=48,
...                   intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
...                   num_key_value_heads=2, head_dim=8, num_local_experts=4,
...                   num_experts_per_tok=2, residual_moe=True, tie_word_embeddings=False)
>>> GrokForCausalLM(tiny)(torch.randint(0, 50, (2, 5))).shape
torch.Size([2, 5, 50])
>>> with torch.device("meta"):
...     grok1 = GrokForCausalLM(grok1_config())
>>> sum(p.numel() for p in grok1.parameters())
315684820992
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GrokConfig:
    """The fields of a Grok ``config.json`` that decide the parameter count."""

    vocab_size: int = 131_072
    hidden_size: int = 6_144
    intermediate_size: int = 32_768  # the dense residual MLP (Grok-2 only)
    moe_intermediate_size: int = 32_768  # each expert
    num_hidden_layers: int = 64
    num_attention_heads: int = 48
    num_key_value_heads: int = 8
    head_dim: int = 128
    num_local_experts: int = 8
    num_experts_per_tok: int = 2
    residual_moe: bool = False
    tie_word_embeddings: bool = True
    rope_theta: float = 10_000.0
    rms_norm_eps: float = 1e-5
    model_type: str = "grok"

    def to_dict(self) -> dict:
        return asdict(self)


def grok1_config() -> GrokConfig:
    """Grok-1 (xai-org/grok-1): d 6144, 64 layers, 48 q / 8 kv heads of 128, 8 experts top-2,
    expert width 32768 (``ffn_size(6144, 8)``), vocab 131072, tied embedding."""
    return GrokConfig()


def grok2_config() -> GrokConfig:
    """Grok-2 (xai-org/grok-2 config.json): d 8192, 64 layers, 64 q / 8 kv heads of 128,
    8 experts top-2 of width 16384 plus a dense residual MLP of 32768, untied output."""
    return GrokConfig(hidden_size=8_192, intermediate_size=32_768, moe_intermediate_size=16_384,
                      num_attention_heads=64, residual_moe=True, tie_word_embeddings=False,
                      rope_theta=208_533_496.0)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * self.weight.float()).to(x.dtype)


def _rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate (B, H, S, D) by position, half-split (NeoX) layout."""
    d = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    ang = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)[:, None] * inv
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return (x * cos + torch.cat([-x2, x1], -1) * sin).to(x.dtype)


class GrokAttention(nn.Module):
    def __init__(self, c: GrokConfig):
        super().__init__()
        self.c = c
        h, kv, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, h * hd, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, kv * hd, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, kv * hd, bias=False)
        self.o_proj = nn.Linear(h * hd, c.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, (b, s, _) = self.c, x.shape
        q = self.q_proj(x).view(b, s, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q, k = _rope(q, c.rope_theta), _rope(k, c.rope_theta)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


class GrokMLP(nn.Module):
    """Gated feed-forward block: down(gelu(gate(x)) * up(x)), no biases."""

    def __init__(self, d: int, f: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class GrokMoE(nn.Module):
    def __init__(self, c: GrokConfig):
        super().__init__()
        self.top_k = c.num_experts_per_tok
        self.router = nn.Linear(c.hidden_size, c.num_local_experts, bias=False)
        self.experts = nn.ModuleList(GrokMLP(c.hidden_size, c.moe_intermediate_size)
                                     for _ in range(c.num_local_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        weights, chosen = self.router(flat).softmax(-1).topk(self.top_k, dim=-1)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(chosen == e)
            if rows.numel():
                out.index_add_(0, rows, expert(flat[rows]) * weights[rows, slot, None])
        return out.view_as(x)


class GrokDecoderLayer(nn.Module):
    def __init__(self, c: GrokConfig):
        super().__init__()
        self.pre_attn_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.attn = GrokAttention(c)
        self.post_attn_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.pre_moe_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.moe = GrokMoE(c)
        self.mlp = GrokMLP(c.hidden_size, c.intermediate_size) if c.residual_moe else None
        self.post_moe_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.post_attn_norm(self.attn(self.pre_attn_norm(x)))
        h = self.pre_moe_norm(x)
        f = self.moe(h)
        if self.mlp is not None:
            f = (f + self.mlp(h)) / math.sqrt(2.0)
        return x + self.post_moe_norm(f)


class GrokForCausalLM(nn.Module):
    def __init__(self, config: GrokConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(GrokDecoderLayer(config)
                                    for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))
