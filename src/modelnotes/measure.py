"""Measuring on the GPU: what a model's weights occupy once they are on the device.

The prediction is exact. Each parameter and buffer is one allocation from PyTorch's CUDA
caching allocator, which (with its default settings, see ``c10/cuda/CUDACachingAllocator.cpp``)

* rounds every request up to a multiple of 512 bytes;
* serves requests of at most 1 MiB from 2 MiB segments (the small pool) and larger ones
  from 20 MiB segments, or, from 10 MiB up, from a segment of the request rounded up to
  2 MiB (the large pool);
* takes the smallest free block that fits, and splits it only if what is left is at least
  512 bytes (small pool) or more than 1 MiB (large pool); otherwise the whole block is
  handed out and counted as allocated.

:func:`predicted_resident_bytes` replays exactly that for a model's tensors in the order
they are created, which is what ``torch.cuda.memory_allocated()`` grows by when the model
is built on the GPU.

>>> from torch import nn
>>> rounded_bytes(nn.Linear(10, 3))  # weight 120 B -> 512, bias 12 B -> 512
1024
>>> big = nn.Sequential(nn.Linear(1024, 384, bias=False), nn.Linear(4608, 1024, bias=False))
>>> [t.numel() * 4 / 2**20 for t in allocation_order(big)]  # MiB requested
[1.5, 18.0]
>>> predicted_resident_bytes(big) / 2**20  # the 18 MiB request gets the 18.5 MiB leftover whole
20.0

The second half of this module measures a whole *standard step* (training or inference),
phase by phase, in a fresh process: :class:`StepSpec` says what to run, :func:`measure_step`
runs it and returns a :class:`StepMeasurement`.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .catalogue import CATALOGUE, build, names, unique_parameter_count
from .memory import TORCH_FAMILIES as _TORCH_FAMILIES
from .memory import position_limit

# The caching allocator's constants (c10/cuda/CUDACachingAllocator.cpp, default settings).
MIN_BLOCK = 512  # every request is rounded up to a multiple of this
SMALL_SIZE = 2**20  # requests up to 1 MiB use the small pool
SMALL_SEGMENT = 2 * 2**20  # the small pool grows by 2 MiB segments
LARGE_SEGMENT = 20 * 2**20  # requests between 1 and 10 MiB get a 20 MiB segment
MIN_LARGE_ALLOC = 10 * 2**20  # from here on a segment is the request rounded up to ...
ROUND_LARGE = 2 * 2**20  # ... a multiple of 2 MiB


def _rounded(nbytes: int) -> int:
    return max(MIN_BLOCK, -(-nbytes // MIN_BLOCK) * MIN_BLOCK)


def _segment_size(rounded: int) -> int:
    if rounded <= SMALL_SIZE:
        return SMALL_SEGMENT
    if rounded < MIN_LARGE_ALLOC:
        return LARGE_SEGMENT
    return -(-rounded // ROUND_LARGE) * ROUND_LARGE


def allocation_order(model: nn.Module) -> list[torch.Tensor]:
    """Parameters and buffers in the order modules register them, each shared tensor once."""
    seen: set[int] = set()
    order = []
    for module in model.modules():
        for tensor in [*module._parameters.values(), *module._buffers.values()]:
            if tensor is not None and id(tensor) not in seen:
                seen.add(id(tensor))
                order.append(tensor)
    return order


def rounded_bytes(model: nn.Module) -> int:
    """Sum over tensors of their size rounded up to the allocator's 512-byte granule."""
    return sum(_rounded(t.numel() * t.element_size()) for t in allocation_order(model))


def simulate_allocations(request_bytes: list[int]) -> int:
    """Bytes the caching allocator counts as allocated after these requests (no frees)."""
    free = {"small": [], "large": []}  # sizes of free blocks, kept sorted for best fit
    allocated = 0
    for request in request_bytes:
        size = _rounded(request)
        pool = "small" if size <= SMALL_SIZE else "large"
        blocks = free[pool]
        index = bisect.bisect_left(blocks, size)
        block = blocks.pop(index) if index < len(blocks) else _segment_size(size)
        remaining = block - size
        if remaining >= MIN_BLOCK if pool == "small" else remaining > SMALL_SIZE:
            bisect.insort(blocks, remaining)
            allocated += size
        else:
            allocated += block
    return allocated


def predicted_resident_bytes(model: nn.Module) -> int:
    """Bytes ``memory_allocated()`` grows by when *model* is built on a CUDA device."""
    return simulate_allocations([t.numel() * t.element_size() for t in allocation_order(model)])


@dataclass(frozen=True)
class WeightsMeasurement:
    """Weights of one catalogue model on one device: counted, predicted, measured."""

    name: str
    parameters: int
    parameter_bytes: int  # 4 bytes per fp32 parameter: the textbook answer
    buffer_bytes: int  # non-learned tensors that live on the device too
    rounded_bytes: int  # parameters + buffers, each rounded up to 512 bytes
    predicted_bytes: int  # what the caching allocator counts: rounding plus unsplit blocks
    measured_bytes: int | None  # memory_allocated() growth; None where there is no GPU
    device: str


def measure_weights(name: str, device: torch.device | str) -> WeightsMeasurement:
    """Build catalogue model *name* on *device* and measure the memory its tensors take.

    On a CPU (a preview build) nothing is measured: ``measured_bytes`` is None, and the
    model is built on ``meta`` so that no memory is spent.
    """
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    if on_gpu:
        # The first random initialisation on the GPU in a process leaves one small block
        # allocated (512 bytes on the H100 this book was first built on): let it happen
        # before the baseline, so that it is not charged to the first model measured.
        nn.Linear(1, 1, device=device)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
    model = build(name, device=device if on_gpu else "meta")
    measured = None
    if on_gpu:
        torch.cuda.synchronize(device)
        measured = torch.cuda.memory_allocated(device) - before
    parameters = unique_parameter_count(model)
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    result = WeightsMeasurement(name, parameters, parameter_bytes, buffer_bytes,
                                rounded_bytes(model), predicted_resident_bytes(model), measured,
                                str(device))
    del model
    if on_gpu:
        gc.collect()
        torch.cuda.empty_cache()
    return result


# ===== The standard step: a whole step, phase by phase, in a fresh process ================
#
# What is measured (Part IV's reference point): the model built from its config with default
# init on the device; two steps, of which the second is measured, so that the optimizer's
# state exists; at each phase boundary ``synchronize()`` and ``reset_peak_memory_stats()``,
# so that each phase's peak is its own. Numbers are absolute ``memory_allocated`` readings:
# weights, optimizer state, inputs, cuBLAS workspaces and all. Each measurement runs in a new
# Python process, because a process's allocator keeps what earlier work left in its cache.

MODES = ("train", "inference")
DTYPES = ("fp32", "amp-bf16", "amp-fp16", "bf16")
OPTIMIZERS = ("adamw", "sgd", "sgd-momentum")
ATTENTIONS = ("sdpa", "eager")
TRANSFORMER_FAMILIES = ("encoder", "encoder-decoder", "decoder")
MAX_WARMUP_STEPS = 8  # amp-fp16: GradScaler may skip early steps (inf grads); retry this often
TIMELINE_ENTRIES = 1_000_000  # allocation events kept by _record_memory_history

_VOCAB_DEFAULTS = {"gpt2": 50_257, "bert": 30_522, "t5": 32_128}  # the HF configs' defaults


class MeasurementError(RuntimeError):
    """The measuring process failed for a reason other than running out of memory."""


def _decoder_types() -> dict[str, tuple[str, str]]:
    from .params import _DECODER_FAMILIES

    return {"gpt2": ("GPT2Model", "GPT2LMHeadModel"), **_DECODER_FAMILIES}


def _config_of(model: Any) -> dict:
    """The config dict of a catalogue name, a config.json path or a config dict."""
    from .params import load_config, named_config

    if isinstance(model, Mapping):
        config = dict(model)
    elif isinstance(model, str) and model in CATALOGUE:
        config = named_config(model)
    elif isinstance(model, str) and (model.endswith(".json") or os.path.isfile(model)):
        config = load_config(model)  # ValueError with a one-line reason
    elif isinstance(model, str):
        raise ValueError(f"unknown model {model!r}: neither a catalogue name "
                         f"({', '.join(names())}) nor a config.json")
    else:
        raise ValueError("model must be a catalogue name, a config.json path or a config "
                         f"dict, not {type(model).__name__}")
    if "model_type" not in config:
        raise ValueError(f"the config of {_short_name(model)} has no 'model_type'")
    return config


def _short_name(model: Any) -> str:
    if isinstance(model, str):
        return Path(model).stem if model.endswith(".json") else model
    return f"config:{model.get('model_type', '?')}" if isinstance(model, Mapping) else "?"


def _family_of(config: dict) -> str:
    mt = config["model_type"]
    if mt in _TORCH_FAMILIES:
        return _TORCH_FAMILIES[mt]
    if mt == "bert":
        return "encoder"
    if mt == "t5":
        return "encoder-decoder"
    if mt in _decoder_types():
        return "decoder"
    supported = ", ".join(sorted([*_TORCH_FAMILIES, "bert", "t5", *_decoder_types()]))
    raise ValueError(f"model_type {mt!r} cannot be measured (supported: {supported})")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(allowed)}")


@dataclass(frozen=True)
class StepSpec:
    """One standard step: model, training or inference, precision, optimizer and shape.

    *model* is a catalogue name, the path of a Hugging Face style ``config.json``, or such a
    config as a dict. *seq* is the sequence length of a language model or the number of time
    steps of the LSTM; images are always 3x224x224, so a CNN takes no *seq*. Impossible
    values raise a one-line ``ValueError``; defaults are filled in (``adamw`` to train,
    ``sdpa`` attention for transformers).

    >>> StepSpec("gpt2", batch=8, seq=1024)
    StepSpec(model='gpt2', mode='train', dtype='fp32', optimizer='adamw', batch=8,
             seq=1024, checkpointing=False, attn='sdpa')
    >>> StepSpec("resnet18", batch=0)
    Traceback (most recent call last):
    ...
    ValueError: batch must be a positive integer, got 0
    >>> StepSpec("resnet18", batch=32, checkpointing=True)
    Traceback (most recent call last):
    ...
    ValueError: activation checkpointing is not supported for resnet18: only transformers
    have gradient_checkpointing_enable()
    """

    model: str | dict
    mode: str = "train"
    dtype: str = "fp32"
    optimizer: str | None = None  # "adamw" when training; always None for inference
    batch: int = 1
    seq: int | None = None  # tokens (language models) or time steps (LSTM); None for images
    checkpointing: bool = False
    attn: str | None = None  # "sdpa" (default) or "eager" for transformers; None otherwise

    def __post_init__(self) -> None:
        if hasattr(self.model, "to_dict") and not isinstance(self.model, Mapping):
            object.__setattr__(self, "model", self.model.to_dict())  # a transformers config
        config = _config_of(self.model)
        family = _family_of(config)
        name = _short_name(self.model)
        _choice("mode", self.mode, MODES)
        _choice("dtype", self.dtype, DTYPES)
        if self.mode == "train":
            if self.optimizer is None:
                object.__setattr__(self, "optimizer", "adamw")
            _choice("optimizer", self.optimizer, OPTIMIZERS)
        elif self.optimizer is not None:
            raise ValueError(f"inference takes no optimizer (got {self.optimizer!r})")
        _positive_int("batch", self.batch)
        if family == "cnn":
            if self.seq is not None:
                raise ValueError(f"{name} takes images (3x224x224): seq does not apply")
        else:
            if self.seq is None:
                raise ValueError(f"{name} needs seq (the sequence length)")
            _positive_int("seq", self.seq)
            limit = position_limit(config)
            if limit is not None and self.seq > limit:
                raise ValueError(f"seq {self.seq} is longer than {name}'s {limit} learned "
                                 "positions")
        if not isinstance(self.checkpointing, bool):
            raise ValueError(f"checkpointing must be True or False, got {self.checkpointing!r}")
        if self.checkpointing and family not in TRANSFORMER_FAMILIES:
            raise ValueError(f"activation checkpointing is not supported for {name}: only "
                             "transformers have gradient_checkpointing_enable()")
        if self.checkpointing and self.mode == "inference":
            raise ValueError("activation checkpointing applies to training, not inference")
        if family in TRANSFORMER_FAMILIES:
            if self.attn is None:
                object.__setattr__(self, "attn", "sdpa")
            _choice("attention implementation", self.attn, ATTENTIONS)
        elif self.attn is not None:
            raise ValueError(f"{name} has no attention: attn does not apply")
        if family == "rnn" and (config.get("bidirectional") or config.get("proj_size")):
            raise ValueError("only a one-directional LSTM without projection can be measured")

    @property
    def config(self) -> dict:
        """The model's config as a dict (the catalogue's entry, the file, or the dict)."""
        return _config_of(self.model)

    @property
    def family(self) -> str:
        """cnn, rnn, encoder, encoder-decoder or decoder.

        >>> StepSpec("t5-small", seq=8).family
        'encoder-decoder'
        """
        return _family_of(self.config)

    def label(self) -> str:
        """A short name for progress lines and tables.

        >>> StepSpec("gpt2", dtype="amp-bf16", batch=8, seq=1024, checkpointing=True).label()
        'gpt2 train amp-bf16 adamw B=8 S=1024 ckpt'
        >>> StepSpec("resnet18", mode="inference", batch=64).label()
        'resnet18 inference fp32 B=64'
        """
        parts = [_short_name(self.model), self.mode, self.dtype]
        parts += [self.optimizer] if self.optimizer else []
        parts += [f"B={self.batch}"] + ([f"S={self.seq}"] if self.seq is not None else [])
        parts += ["ckpt"] if self.checkpointing else []
        parts += [self.attn] if self.attn not in (None, "sdpa") else []
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepSpec:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown step field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def parse(cls, text: str) -> StepSpec:
        """A spec from ``MODEL[,key=value...]`` or from a JSON object.

        >>> StepSpec.parse("gpt2,batch=8,seq=1024,dtype=amp-bf16,checkpointing=yes").label()
        'gpt2 train amp-bf16 adamw B=8 S=1024 ckpt'
        >>> StepSpec.parse('{"model": "course-lstm", "batch": 4, "seq": 10}').batch
        4
        """
        text = text.strip()
        if text.startswith("{"):
            try:
                return cls.from_dict(json.loads(text))
            except json.JSONDecodeError as error:
                raise ValueError(f"spec is not valid JSON: {error.msg}") from None
        model, *pairs = [part.strip() for part in text.split(",")]
        values: dict[str, Any] = {"model": model}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"expected key=value in spec, got {pair!r}")
            key = key.strip().replace("-", "_")
            if key in ("batch", "seq"):
                try:
                    values[key] = int(value)
                except ValueError:
                    raise ValueError(f"{key} must be an integer, got {value!r}") from None
            elif key == "checkpointing":
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(f"checkpointing must be yes or no, got {value!r}")
                values[key] = value.lower() in ("1", "true", "yes", "on")
            else:
                values[key] = None if value.lower() == "none" else value
        return cls.from_dict(values)


# ----- model, inputs, optimizer ----------------------------------------------------------

def _transformers_class(spec: StepSpec) -> str:
    """Training: the family's loss-bearing head (BERT: BertForMaskedLM, since BertModel has
    no loss). Inference: the catalogue's own class, or the config's ``architectures[0]``."""
    config = spec.config
    mt = config["model_type"]
    if spec.mode == "train" or not config.get("architectures"):
        return {"bert": "BertForMaskedLM", "t5": "T5ForConditionalGeneration",
                **{k: v[1] for k, v in _decoder_types().items()}}[mt]
    return config["architectures"][0]


def _construct(spec: StepSpec) -> nn.Module:
    config = spec.config
    if spec.family not in TRANSFORMER_FAMILIES:
        if isinstance(spec.model, str) and spec.model in CATALOGUE:
            return CATALOGUE[spec.model].builder()
        return _torch_model_from_config(config)
    import transformers

    from .params import _hf_config

    if isinstance(spec.model, str) and spec.model in CATALOGUE:
        hf = CATALOGUE[spec.model].config()  # the very object the catalogue builds from
    else:
        hf = _hf_config(config, config["model_type"])
    if config["model_type"] == "t5" and getattr(hf, "decoder_start_token_id", None) is None:
        # t5-small's config.json starts the decoder with the pad id, 0; the bare T5Config of
        # recent transformers has no such field, and T5 cannot shift its labels without it
        hf.decoder_start_token_id = hf.pad_token_id if hf.pad_token_id is not None else 0
    if spec.attn != "sdpa":
        # sdpa is transformers' own default (it falls back to eager where a model has no
        # sdpa path in the installed version: the measurement reports what was used)
        hf._attn_implementation = spec.attn
    return getattr(transformers, _transformers_class(spec))(hf)


def _torch_model_from_config(config: dict) -> nn.Module:
    """A VGG, ResNet or LSTM classifier from its config dict, as :func:`params.build_meta`
    builds it, but with default initialisation."""
    from .catalogue import CourseLSTM
    from .params import _Fields, torchvision_module

    if config["model_type"] in ("vgg", "resnet"):
        return torchvision_module(config)
    f = _Fields(config)
    return CourseLSTM(f("input_size"), f("hidden_size"), f("num_layers", 1), f("num_classes"))


def build_step_model(spec: StepSpec, device: torch.device | str) -> nn.Module:
    """The spec's model on *device*: default init, weight dtype, attention, checkpointing,
    and ``train()`` or ``eval()``.

    ``bf16`` builds with bf16 as the default dtype, as ``from_pretrained(dtype=bf16)`` does:
    every parameter is bf16 (so is the optimizer state that mirrors it) and no fp32 copy is
    ever allocated; buffers a model makes in a fixed dtype (RoPE's ``inv_freq``) keep it.

    >>> model = build_step_model(StepSpec("course-lstm", dtype="bf16", seq=3), "meta")
    >>> {p.dtype for p in model.parameters()}, model.training
    ({torch.bfloat16}, True)
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16 if spec.dtype == "bf16" else torch.float32)
    try:
        with torch.device(device):
            model = _construct(spec)
    finally:
        torch.set_default_dtype(previous)
    if spec.checkpointing:
        kwargs = {"use_reentrant": False}  # PyTorch's recommended form, explicit for every version
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
            model.activation_checkpointing_enable(kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return model.train(spec.mode == "train")


def _vocab_size(config: dict) -> int:
    if config.get("vocab_size"):
        return int(config["vocab_size"])
    mt = config["model_type"]
    if mt in _VOCAB_DEFAULTS:
        return _VOCAB_DEFAULTS[mt]
    from transformers import AutoConfig

    return AutoConfig.for_model(mt).vocab_size


def make_inputs(spec: StepSpec, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random inputs for one step of *spec*, made on *device*.

    * language models: ``input_ids`` (B, S) uniform over the vocabulary, and ``labels``,
      which *is* ``input_ids`` (no copy): a causal LM shifts it, BERT's masked LM predicts
      every position, T5 takes it as the (B, S) decoder target;
    * images: ``pixels`` (B, 3, 224, 224) ~ N(0, 1) and ``labels`` (B,) over the classes;
    * the LSTM: ``sequence`` (S, B, input_size) ~ N(0, 1) and ``labels`` (B,).

    Floating inputs have the weights' dtype: bf16 for ``bf16``, else fp32 (autocast casts).

    >>> shapes = lambda d: {k: (tuple(v.shape), v.dtype) for k, v in d.items()}
    >>> shapes(make_inputs(StepSpec("gpt2", batch=2, seq=5)))
    {'input_ids': ((2, 5), torch.int64), 'labels': ((2, 5), torch.int64)}
    >>> shapes(make_inputs(StepSpec("course-lstm", dtype="bf16", batch=4, seq=7)))
    {'sequence': ((7, 4, 100), torch.bfloat16), 'labels': ((4,), torch.int64)}
    """
    config, family = spec.config, spec.family
    B = spec.batch
    floating = torch.bfloat16 if spec.dtype == "bf16" else torch.float32
    rand = dict(device=device, generator=generator)
    if family in TRANSFORMER_FAMILIES:
        ids = torch.randint(0, _vocab_size(config), (B, spec.seq), **rand)  # (B, S)
        return {"input_ids": ids, "labels": ids}
    if family == "cnn":
        classes = config.get("num_classes", 1000)
        pixels = torch.randn(B, 3, 224, 224, dtype=floating, **rand)  # (B, 3, 224, 224)
        return {"pixels": pixels, "labels": torch.randint(0, classes, (B,), **rand)}
    sequence = torch.randn(spec.seq, B, config["input_size"], dtype=floating,
                           **rand)  # (S, B, input_size)
    return {"sequence": sequence,
            "labels": torch.randint(0, config["num_classes"], (B,), **rand)}  # (B,)


def make_optimizer(name: str, parameters) -> torch.optim.Optimizer:
    """``adamw`` (PyTorch defaults), ``sgd`` (no state) or ``sgd-momentum`` (0.9).

    >>> make_optimizer("sgd-momentum", nn.Linear(2, 2).parameters()).defaults["momentum"]
    0.9
    """
    _choice("optimizer", name, OPTIMIZERS)
    if name == "adamw":
        return torch.optim.AdamW(parameters)
    return torch.optim.SGD(parameters, lr=1e-3, momentum=0.9 if name == "sgd-momentum" else 0)


def _nbytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the optimizer's state tensors (Adam's two moments, SGD's momentum).

    The per-parameter ``step`` counters are left out: one scalar each, kept on the CPU.
    """
    return _nbytes(v for state in optimizer.state.values() for k, v in state.items()
                   if k != "step" and isinstance(v, torch.Tensor))


# ----- the step ------------------------------------------------------------------------

class _Phases:
    """Names the phase in progress and, on CUDA, reads the allocator at every boundary:
    the finished phase's peak, what is allocated as the next begins; then resets the peak,
    so that each phase's peak is its own."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.current = "setup"
        self.peak: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        self.start: dict[str, int] = {}

    def enter(self, name: str) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self.peak[self.current] = torch.cuda.max_memory_allocated(self.device)
            self.reserved[self.current] = torch.cuda.max_memory_reserved(self.device)
            self.start[name] = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.current = name


def _autocast(spec: StepSpec, device: torch.device):
    if spec.dtype.startswith("amp-"):
        dtype = torch.bfloat16 if spec.dtype == "amp-bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


def _forward(spec: StepSpec, model: nn.Module, inputs: dict[str, torch.Tensor]):
    """The loss when training; None for inference (the outputs are dropped at once)."""
    train = spec.mode == "train"
    family = spec.family
    if family in TRANSFORMER_FAMILIES:
        kwargs: dict[str, Any] = {"input_ids": inputs["input_ids"]}
        if family != "encoder":
            kwargs["use_cache"] = False  # a forward pass, not generation: no KV cache kept
        if train:
            kwargs["labels"] = inputs["labels"]
        elif family == "encoder-decoder":
            kwargs["decoder_input_ids"] = inputs["labels"]  # (B, S)
        outputs = model(**kwargs)
        return outputs.loss if train else None
    logits = model(inputs["pixels"] if family == "cnn" else inputs["sequence"])  # (B, classes)
    return nn.functional.cross_entropy(logits, inputs["labels"]) if train else None


def standard_step(spec: StepSpec, model: nn.Module, inputs: dict[str, torch.Tensor],
                  optimizer: torch.optim.Optimizer | None = None,
                  scaler: torch.amp.GradScaler | None = None, *,
                  phases: _Phases | None = None, prefix: str = "") -> tuple[int, bool]:
    """One step of *spec*: (gradient bytes before the update, whether GradScaler skipped it).

    Training: forward and loss (under autocast for amp), ``backward()`` (outside autocast;
    scaled for amp-fp16), ``optimizer.step()``, ``zero_grad(set_to_none=True)``. Only the
    loss leaves the forward: the model's outputs (logits) are dropped, as a loop that does
    not log them drops them. Inference: one forward under ``torch.inference_mode()``.

    >>> spec = StepSpec("course-lstm", batch=2, seq=3)
    >>> model = build_step_model(spec, "cpu")
    >>> optimizer = make_optimizer(spec.optimizer, model.parameters())
    >>> grads, skipped = standard_step(spec, model, make_inputs(spec), optimizer)
    >>> grads == 4 * sum(p.numel() for p in model.parameters()), skipped
    (True, False)
    >>> optimizer_state_bytes(optimizer) == 2 * grads  # AdamW: two fp32 moments
    True
    """
    device = next(model.parameters()).device
    mark = phases.enter if phases is not None else (lambda name: None)
    if spec.mode == "inference":
        mark(prefix + "forward")
        with torch.inference_mode(), _autocast(spec, device):
            _forward(spec, model, inputs)
        mark(prefix + "end")
        return 0, False
    mark(prefix + "forward")
    with _autocast(spec, device):
        loss = _forward(spec, model, inputs)
    mark(prefix + "backward")
    (scaler.scale(loss) if scaler is not None else loss).backward()
    del loss
    mark(prefix + "optimizer")
    gradient_bytes = _nbytes(p.grad for p in model.parameters())
    skipped = False
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = scaler.get_scale() < scale  # the scale drops exactly when a step is skipped
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    mark(prefix + "end")
    return gradient_bytes, skipped


# ----- the measurement -------------------------------------------------------------------

CATEGORY_NAMES = {"Parameter": "parameters", "Buffer": "buffers", "Gradient": "gradients",
                  "Activation": "activations", "Temp": "temporaries",
                  "Optstate": "optimizer_state", "Other": "other", "Total": "total"}


@dataclass(frozen=True)
class StepMeasurement:
    """The memory of one standard step, measured. Byte counts are None where not measured
    (on a CPU, or past the phase where the run ran out of memory).

    Nominal sizes (elements x bytes, no allocator rounding) come first; then the allocator's
    readings (``memory_allocated``): ``before`` the measured step, the peak of each phase,
    what is allocated after each; then ``reserved`` (the caching allocator's segments) and
    the device-level reading (``mem_get_info``: total - free, so CUDA context and libraries
    too). Inference has only a forward phase.
    """

    spec: StepSpec
    device: str  # "NVIDIA H100 80GB HBM3", or "cpu"
    torch: str
    transformers: str
    architecture: str | None = None  # the class that was built
    attn: str | None = None  # the attention implementation the model reports
    parameters: int | None = None
    parameter_bytes: int | None = None
    buffer_bytes: int | None = None
    gradient_bytes: int | None = None  # all .grad tensors at the end of backward
    optimizer_state_bytes: int | None = None  # after the measured step
    input_bytes: int | None = None
    weights_bytes: int | None = None  # memory_allocated() growth while the model is built
    # predicted_resident_bytes() of the model; transformers 5.17 models measured 512 bytes
    # more on an H100 (one small block besides parameters and buffers), the others equal
    predicted_weights_bytes: int | None = None
    before_bytes: int | None = None  # allocated as the measured step starts
    forward_peak_bytes: int | None = None
    after_forward_bytes: int | None = None
    backward_peak_bytes: int | None = None
    after_backward_bytes: int | None = None
    optimizer_peak_bytes: int | None = None
    after_bytes: int | None = None  # allocated once the step is over (zero_grad included)
    peak_bytes: int | None = None  # max_memory_allocated() over the step (OOM: failing phase)
    reserved_bytes: int | None = None  # max_memory_reserved() over the measured step
    reserved_after_bytes: int | None = None  # memory_reserved() after it
    device_total_bytes: int | None = None
    device_used_at_start_bytes: int | None = None  # total - free once CUDA is initialised
    device_used_bytes: int | None = None  # total - free after the measured step
    process_bytes: int | None = None  # this process per nvidia-smi (MiB granular), if found
    warmup_steps: int = 0
    warmup_peak_bytes: int | None = None  # max_memory_allocated() over the last warm-up step
    skipped_step: bool | None = None  # amp-fp16: GradScaler skipped the measured update
    oom: bool = False
    oom_phase: str | None = None  # build, inputs, warmup:forward, ..., forward, backward, ...
    error: str | None = None  # the out-of-memory message, one line
    alloc_conf: str | None = None  # PYTORCH_CUDA_ALLOC_CONF, if set: it changes the numbers
    timeline_path: str | None = None
    categories: dict[str, Any] | None = None  # MemTracker's split of a third step

    @property
    def cached_bytes(self) -> int | None:
        """Reserved but not allocated at the peak: the caching allocator's slack."""
        if self.reserved_bytes is None or self.peak_bytes is None:
            return None
        return self.reserved_bytes - self.peak_bytes

    @property
    def outside_allocator_bytes(self) -> int | None:
        """Device memory in use that PyTorch's allocator does not hold: CUDA context,
        loaded kernels, library handles (and other processes on the GPU, if any)."""
        if self.device_used_bytes is None or self.reserved_after_bytes is None:
            return None
        return self.device_used_bytes - self.reserved_after_bytes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepMeasurement:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["spec"] = StepSpec.from_dict(data["spec"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> StepMeasurement:
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """One line: peak, phases, reserved and device level, in GiB."""
        def g(n):
            return "-" if n is None else f"{n / 2**30:.2f}"

        head = f"{self.spec.label()}: "
        if self.oom:
            return head + f"OOM in {self.oom_phase} (peak {g(self.peak_bytes)} GiB)"
        if self.peak_bytes is None:
            return head + f"not measured on {self.device}"
        phases = f"fwd {g(self.forward_peak_bytes)}"
        if self.spec.mode == "train":
            phases += f" bwd {g(self.backward_peak_bytes)} opt {g(self.optimizer_peak_bytes)}"
        return (head + f"peak {g(self.peak_bytes)} GiB ({phases}; before {g(self.before_bytes)}"
                f" after {g(self.after_bytes)}) reserved {g(self.reserved_bytes)}"
                f" device {g(self.device_used_bytes)}")


def _is_oom(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError, all versions
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        s in text for s in ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED",
                            "CUDNN_STATUS_ALLOC_FAILED"))


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _process_bytes() -> int | None:
    """This process's device memory per nvidia-smi; None where it cannot tell (no tool, or
    a container whose PIDs differ from the driver's)."""
    from .provenance import _run

    text = _run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                 "--format=csv,noheader,nounits"])
    for line in (text or "").splitlines():
        pid, _, mib = line.partition(",")
        if pid.strip() == str(os.getpid()) and mib.strip().isdigit():
            return int(mib) * 2**20
    return None


def _categories(spec: StepSpec, model, inputs, optimizer, scaler,
                device: torch.device) -> dict[str, Any]:
    """MemTracker's split of one more step (the third): peak and after, by category, next
    to ``max_memory_allocated`` over that same step. An error is reported, not raised.

    MemTracker sees tensors only: not the cuBLAS/cuDNN workspaces that the allocator also
    serves (about 65 MiB on an H100 with torch 2.11). Its peak was 0.995 of
    ``max_memory_allocated`` for GPT-2 (B=8, S=1024), 0.94 for ResNet-18 (B=64) and 0.17
    for the course LSTM (B=8, S=20), where the workspaces are most of the memory.
    """
    try:
        from torch.distributed._tools.mem_tracker import MemTracker

        tracker = MemTracker()
        tracker.track_external(model, *([optimizer] if optimizer is not None else []),
                               *inputs.values())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        with tracker:
            standard_step(spec, model, inputs, optimizer, scaler)
        measured = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            measured = torch.cuda.max_memory_allocated(device)

        def split(kind: str) -> dict[str, int]:
            snapshot = tracker.get_tracker_snapshot(kind)
            mine = next((v for k, v in snapshot.items() if torch.device(k) == device), {})
            return {CATEGORY_NAMES.get(getattr(k, "value", k), str(k)): v
                    for k, v in mine.items()}

        peak, after = split("peak"), split("current")
        total = peak.get("total")
        return {"step": 3, "peak": peak, "after": after, "peak_total": total,
                "max_memory_allocated": measured,
                "ratio": total / measured if total and measured else None}
    except Exception as error:  # the split is optional: say why it failed
        return {"error": _first_line(error)}


def measure_step_in_process(spec: StepSpec, device: torch.device | str | None = None, *,
                            timeline: str | os.PathLike | None = None,
                            categories: bool = False) -> StepMeasurement:
    """Run and measure *spec* in this process: the work behind :func:`measure_step`.

    Readings depend on what the process did before (the allocator's cache, cuBLAS
    workspaces), so reference numbers come from :func:`measure_step`, which calls this in a
    fresh process. On a CPU nothing is read from an allocator: the byte counts are None and
    only the nominal sizes (and MemTracker's split) are filled in. Running out of memory is
    a result: ``oom=True`` and the phase it happened in.
    """
    from .provenance import _version, measurement_device

    spec = spec if isinstance(spec, StepSpec) else StepSpec.parse(spec)
    device = torch.device(device) if device is not None else measurement_device()
    cuda = device.type == "cuda"
    if cuda and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    train = spec.mode == "train"
    out: dict[str, Any] = dict(
        spec=spec, device=torch.cuda.get_device_name(device) if cuda else device.type,
        torch=torch.__version__, transformers=_version("transformers"),
        alloc_conf=os.environ.get("PYTORCH_CUDA_ALLOC_CONF"))
    phases = _Phases(device)
    optimizer = scaler = None
    recording = False
    try:
        if cuda:
            free, total = torch.cuda.mem_get_info(device)  # creates the CUDA context
            out.update(device_total_bytes=total, device_used_at_start_bytes=total - free)
            # The first random initialisation leaves one small block allocated (see
            # measure_weights): let it happen here, so that it is not charged to the weights.
            nn.Linear(1, 1, device=device)
            if timeline is not None:
                # Python stacks only: symbolising C++ frames at dump time can take minutes
                torch.cuda.memory._record_memory_history(max_entries=TIMELINE_ENTRIES,
                                                         stacks="python")
                recording = True
        torch.manual_seed(0)
        phases.enter("build")
        model = build_step_model(spec, device)
        config = getattr(model, "config", None)
        out.update(architecture=type(model).__name__,
                   attn=getattr(config, "_attn_implementation", None),
                   parameters=unique_parameter_count(model),
                   parameter_bytes=_nbytes(model.parameters()),
                   buffer_bytes=_nbytes(model.buffers()),
                   predicted_weights_bytes=predicted_resident_bytes(model))
        phases.enter("inputs")
        inputs = make_inputs(spec, device)
        out["input_bytes"] = _nbytes(inputs.values())
        if train:
            optimizer = make_optimizer(spec.optimizer, model.parameters())
            if spec.dtype == "amp-fp16":
                scaler = torch.amp.GradScaler(device.type)
        for warmup in range(1, MAX_WARMUP_STEPS + 1):
            _, skipped = standard_step(spec, model, inputs, optimizer, scaler, phases=phases,
                                       prefix="warmup:")
            out["warmup_steps"] = warmup
            if not skipped:  # the optimizer's state now exists
                break
        gradient_bytes, skipped = standard_step(spec, model, inputs, optimizer, scaler,
                                                phases=phases)
        if train:
            out.update(gradient_bytes=gradient_bytes,
                       optimizer_state_bytes=optimizer_state_bytes(optimizer),
                       skipped_step=skipped if scaler is not None else None)
        if cuda:
            measured = ["forward", "backward", "optimizer"] if train else ["forward"]
            free, total = torch.cuda.mem_get_info(device)
            out.update(peak_bytes=max(phases.peak[p] for p in measured),
                       reserved_bytes=max(phases.reserved[p] for p in measured),
                       reserved_after_bytes=torch.cuda.memory_reserved(device),
                       device_used_bytes=total - free, process_bytes=_process_bytes())
        if recording:
            out["timeline_path"] = _dump_timeline(timeline)
            recording = False
        if categories:
            out["categories"] = _categories(spec, model, inputs, optimizer, scaler, device)
    except Exception as error:
        if not _is_oom(error):
            raise
        out.update(oom=True, oom_phase=phases.current, error=_first_line(error))
        if cuda:  # the most that was allocated at once in the failing phase
            out["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    finally:
        if recording:
            out["timeline_path"] = _dump_timeline(timeline)
    if cuda:
        out.update(_phase_readings(phases))
    return StepMeasurement(**out)


def _phase_readings(phases: _Phases) -> dict[str, int]:
    """The allocator's readings at the boundaries that were reached (all, unless OOM)."""
    start, peak, readings = phases.start, phases.peak, {}
    for name, (first, last) in {"weights_bytes": ("build", "inputs")}.items():
        if last in start:
            readings[name] = start[last] - start[first]
    for name, key in [("before_bytes", "forward"), ("after_forward_bytes", "backward"),
                      ("after_backward_bytes", "optimizer"), ("after_bytes", "end")]:
        if key in start:
            readings[name] = start[key]
    for name, key in [("forward_peak_bytes", "forward"), ("backward_peak_bytes", "backward"),
                      ("optimizer_peak_bytes", "optimizer")]:
        if key in peak:
            readings[name] = peak[key]
    warmup = [v for k, v in peak.items() if k.startswith("warmup:")]
    if warmup:
        readings["warmup_peak_bytes"] = max(warmup)
    return readings


def _dump_timeline(path: str | os.PathLike) -> str:
    """Save the allocation history (open it at https://pytorch.org/memory_viz) and stop."""
    path = str(Path(path).resolve())
    torch.cuda.memory._dump_snapshot(path)
    torch.cuda.memory._record_memory_history(enabled=None)
    return path


def measure_step(spec: StepSpec | str, *, timeline: bool | str | os.PathLike = False,
                 categories: bool = False, device: str | None = None,
                 timeout: float | None = None) -> StepMeasurement:
    """Measure *spec* in a fresh Python process (``python -m modelnotes.measure``).

    *timeline*: True (a temporary file) or a path: the allocation history of the build, the
    warm-up and the measured step, as a pickle for ``torch.cuda.memory``'s viewer (CUDA
    only). *categories*: MemTracker's split of a third step (parameters, buffers, gradients,
    activations, temporaries, optimizer state). *device*: default the GPU if there is one.
    Running out of memory is a result (``oom=True``); any other failure of the child
    raises :class:`MeasurementError` with its last line of stderr.
    """
    spec = spec if isinstance(spec, StepSpec) else StepSpec.parse(spec)
    command = [sys.executable, "-m", "modelnotes.measure", spec.to_json(), "--json"]
    if device is not None:
        command += ["--device", str(device)]
    if timeline:
        if timeline is True:
            handle, timeline = tempfile.mkstemp(prefix="modelnotes-timeline-",
                                                suffix=".pickle")
            os.close(handle)
        command += ["--timeline", str(timeline)]
    if categories:
        command.append("--categories")
    src = str(Path(__file__).resolve().parents[1])  # the directory that holds modelnotes/
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [src, os.environ.get("PYTHONPATH")])))
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MeasurementError(f"{spec.label()}: no result within {timeout} s") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no output)"]
        raise MeasurementError(f"{spec.label()}: the measuring process failed "
                               f"(exit {result.returncode}): {lines[-1]}")
    for line in reversed(result.stdout.strip().splitlines()):
        if line.startswith("{"):
            return StepMeasurement.from_json(line)
    raise MeasurementError(f"{spec.label()}: the measuring process printed no result")


def measure_steps_in_process(specs: list[StepSpec], device: torch.device | str | None = None):
    """Measure *specs* one after the other in this process, yielding each
    :class:`StepMeasurement` as it is done: the worker behind :mod:`modelnotes.sweep`.

    Between cases everything the last one made is released, cuBLAS's workspaces included,
    and ``empty_cache()`` returns the cached segments to the driver, so that each case starts
    from the allocator state of a fresh process (the GPU tests compare the readings with
    fresh processes case by case).
    """
    device = torch.device(device) if device is not None else None
    for spec in specs:
        result = measure_step_in_process(spec, device)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            # cuBLAS keeps its workspaces (allocator blocks) for the life of the process; a
            # fresh process makes them during the first step, after the weights, so drop them
            # too, or the next case's weights would fill the gaps around them
            clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
            if clear is not None:
                clear()
            torch.cuda.empty_cache()
        yield result


def main(argv: list[str] | None = None) -> int:
    """``python -m modelnotes.measure SPEC [--device D] [--timeline PATH] [--categories]
    [--json]``: measure one step in this (fresh) process. Exit 2 on a bad spec.

    ``--serve`` instead measures the cases sent on stdin (``{"spec": ..., "fraction": F}`` a
    line) one after the other in this process (:func:`measure_steps_in_process`), each capped
    to its fraction of the GPU, printing one JSON line each: the worker of
    :func:`modelnotes.sweep.run`."""
    import argparse
    import warnings

    parser = argparse.ArgumentParser(prog="python -m modelnotes.measure",
                                     description="Measure one standard step in this process.")
    parser.add_argument("spec", nargs="?",
                        help="MODEL[,key=value...] or a JSON object (StepSpec fields)")
    parser.add_argument("--serve", action="store_true",
                        help="measure the cases given on stdin, one JSON object a line")
    parser.add_argument("--device", help="cuda (default when there is one) or cpu")
    parser.add_argument("--timeline", help="save the allocation history to this pickle")
    parser.add_argument("--categories", action="store_true",
                        help="MemTracker's split of a third step")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if (args.spec is not None) + args.serve != 1:
        print("measure: give one SPEC or --serve", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.serve:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        print("ready", flush=True)
        for line in sys.stdin:  # {"spec": {...}, "fraction": F or null}, one case a line
            order = json.loads(line)
            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(order.get("fraction") or 1.0)
            spec = StepSpec.from_dict(order["spec"])
            for result in measure_steps_in_process([spec], args.device):
                print(result.to_json(), flush=True)
        return 0
    try:
        spec = StepSpec.parse(args.spec)
    except ValueError as error:
        print(f"measure: {error}", file=sys.stderr)
        return 2
    if spec.family in TRANSFORMER_FAMILIES:  # the others never import transformers
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # config notes on stderr are not results
    result = measure_step_in_process(spec, args.device, timeline=args.timeline,
                                     categories=args.categories)
    print(result.to_json() if args.json else result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
