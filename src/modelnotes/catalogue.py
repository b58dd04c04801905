"""The catalogue: every model the book talks about, built by name from a config.

Nothing is downloaded. Each entry builds its module from a configuration object
(random initialisation), so structure, parameter counts and memory behave exactly
as for the pretrained checkpoint of the same name; only the weight values differ.

>>> "gpt2" in names()
True
>>> model = build("course-lstm")
>>> sum(p.numel() for p in model.parameters())
895498
>>> build("gpt-5")
Traceback (most recent call last):
...
modelnotes.catalogue.UnknownModelError: unknown model 'gpt-5'; known models: bert-base-uncased, course-lstm, cs336-lm, gpt2, gpt2-large, gpt2-medium, gpt2-xl, resnet18, t5-small, vgg16
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


class UnknownModelError(ValueError):
    """Raised for a name the catalogue does not know."""


@dataclass(frozen=True)
class Entry:
    """One catalogue entry: how to build the model and what it is."""

    name: str
    family: str  # "cnn", "rnn", "encoder", "encoder-decoder", "decoder"
    description: str
    builder: Callable[[], nn.Module]
    config: Callable[[], object] | None = None  # the config object, for families that have one


class CourseLSTM(nn.Module):
    """The course's sequence classifier: a 2-layer LSTM (100 -> 256) and a Linear 256 -> 10.

    Input follows PyTorch's default ``batch_first=False`` layout, (S, B, 100); the
    classifier reads the top layer's hidden state at the last time step.

    >>> x = torch.randn(7, 3, 100)  # (S, B, input_size)
    >>> CourseLSTM()(x).shape
    torch.Size([3, 10])
    """

    def __init__(self, input_size: int = 100, hidden_size: int = 256, num_layers: int = 2,
                 num_classes: int = 10):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (S, B, hidden_size): top layer's h_t for every t
        return self.fc(out[-1])  # (B, num_classes)


# ----- configs -------------------------------------------------------------------------

GPT2_SHAPES = {  # name: (n_embd, n_layer, n_head), from the published GPT-2 configs
    "gpt2": (768, 12, 12),
    "gpt2-medium": (1024, 24, 16),
    "gpt2-large": (1280, 36, 20),
    "gpt2-xl": (1600, 48, 25),
}


def gpt2_config(name: str):
    from transformers import GPT2Config

    n_embd, n_layer, n_head = GPT2_SHAPES[name]
    return GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head)


def bert_config():
    from transformers import BertConfig

    return BertConfig()  # the defaults are bert-base-uncased's config


def t5_config():
    from transformers import T5Config

    return T5Config()  # the defaults are t5-small's config


def cs336_config():
    """The CS336 assignment-1 LM: GPT-2 XL's shape in a LLaMA-style decoder.

    Pre-norm RMSNorm, RoPE (no learned positions), SwiGLU feed-forward, no biases,
    and an output projection separate from the token embedding.
    """
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=50_257,
        max_position_embeddings=1_024,
        num_hidden_layers=48,
        hidden_size=1_600,
        num_attention_heads=25,
        num_key_value_heads=25,
        intermediate_size=6_400,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
    )


# ----- builders ------------------------------------------------------------------------

def _vgg16() -> nn.Module:
    from torchvision.models import vgg16

    return vgg16(weights=None)


def _resnet18() -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None)


def _bert() -> nn.Module:
    from transformers import BertModel

    return BertModel(bert_config())


def _t5() -> nn.Module:
    from transformers import T5ForConditionalGeneration

    return T5ForConditionalGeneration(t5_config())


def _gpt2(name: str) -> Callable[[], nn.Module]:
    def build_gpt2() -> nn.Module:
        from transformers import GPT2LMHeadModel

        return GPT2LMHeadModel(gpt2_config(name))

    return build_gpt2


def _cs336() -> nn.Module:
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(cs336_config())


_ENTRIES = [
    Entry("vgg16", "cnn", "VGG16 (torchvision, no batch norm), 1000 ImageNet classes", _vgg16),
    Entry("resnet18", "cnn", "ResNet-18 (torchvision), basic residual blocks", _resnet18),
    Entry("course-lstm", "rnn", "2-layer LSTM 100->256 and a Linear 256->10 classifier",
          CourseLSTM),
    Entry("bert-base-uncased", "encoder", "BERT-base encoder with pooler (BertModel)", _bert,
          bert_config),
    Entry("t5-small", "encoder-decoder", "T5-small with its tied LM head", _t5, t5_config),
    *(Entry(name, "decoder", f"GPT-2 {name.removeprefix('gpt2').lstrip('-') or 'small'} "
            "with its tied LM head", _gpt2(name), lambda name=name: gpt2_config(name))
      for name in GPT2_SHAPES),
    Entry("cs336-lm", "decoder",
          "CS336 assignment-1 LM: GPT-2 XL shape, RMSNorm + RoPE + SwiGLU, untied head",
          _cs336, cs336_config),
]
CATALOGUE: dict[str, Entry] = {entry.name: entry for entry in _ENTRIES}


def names() -> list[str]:
    """Sorted names of every catalogue model."""
    return sorted(CATALOGUE)


def entry(name: str) -> Entry:
    """The catalogue entry called *name*; :class:`UnknownModelError` if there is none."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(names())}") from None


def build(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Build catalogue model *name* with random weights on *device* (cpu, cuda or meta).

    On ``meta`` no memory is allocated, which is how the book inspects models far
    larger than the machine: shapes and parameter counts are all there.

    >>> model = build("gpt2-xl", device="meta")
    >>> next(model.parameters()).device
    device(type='meta')
    """
    spec = entry(name)
    with torch.device(device):
        return spec.builder()


def unique_parameter_count(model: nn.Module) -> int:
    """Number of distinct parameter elements: a tied weight is counted once.

    ``model.parameters()`` already yields a shared tensor once; this function says so in
    its name, because summaries that walk modules (torchinfo) count a tied embedding twice.

    >>> unique_parameter_count(build("t5-small", device="meta"))
    60506624
    """
    return sum(p.numel() for p in model.parameters())  # yields each shared tensor once
