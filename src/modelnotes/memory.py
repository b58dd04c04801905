"""Predicting a standard step's GPU memory from the config alone: no model is built.

The *standard step* is :mod:`modelnotes.measure`'s: the second training step (or one
inference forward), read with ``torch.cuda.max_memory_allocated`` phase by phase, in
absolute bytes. :func:`predict` replays it as a ledger of allocations:

* exact terms: weights, gradients, optimizer state, inputs, each tensor rounded up to the
  caching allocator's 512-byte granule (``measure.MIN_BLOCK``);
* activations: what the family's implementation saves for backward, as a closed form in
  B, S, h, a, f, V, L (checked against ``saved_tensors_hooks`` counts in the tests);
* transients: the tensors alive at each phase's peak that are not saved (the logits while
  the loss is computed, the gradients of the log-softmax at the start of the backward, the
  ``foreach`` AdamW temporaries);
* other: the cuBLAS workspaces, a constant read off the H100 measurements
  (``modelnotes/data/reference_measurements.json``, torch 2.11), see :data:`WORKSPACE`.

The phases follow the measurement::

    before          = weights + optimizer state + inputs + workspaces
    after forward   = before + saved activations
    forward peak    = after forward + forward transients (logits ...)
    backward peak   = after forward + backward transients
    after backward  = before + gradients
    optimizer peak  = after backward + optimizer temporaries
    after           = before

>>> p = predict("gpt2", batch=8, seq=1024)
>>> p.peak_phase, round(p.peak_bytes / 2**30, 2)
('backward', 14.13)
>>> round(predict("gpt2", mode="inference", batch=8, seq=1024).peak_bytes / 2**30, 2)
2.05

Covered, training (with AdamW, SGD or SGD with momentum) and inference, in fp32, amp-bf16
and bf16, with sdpa attention, with and without activation checkpointing for the
transformers: GPT-2 (all sizes; eager attention too, except with amp), BERT (masked LM for
training, ``BertModel`` for inference), T5, LLaMA-style decoders (grouped-query attention
included), ResNet, VGG and the course LSTM. Every case of the accuracy sweep
(:mod:`modelnotes.sweep`, 657 cases on an H100) is checked against its measurement by the
tests. amp-fp16 and the combinations not listed raise ``NotImplementedError`` with the reason.

Only the arithmetic is here: importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

MIN_BLOCK = 512  # the caching allocator's granule (measure.MIN_BLOCK, kept equal by a test)
MiB = 2**20

# "other": what ``before`` holds besides weights, optimizer state and inputs, read off the
# H100 reference measurements (torch 2.11). fp32 training: 65 MiB in every case (GPT-2 with
# SGD exactly; ResNet, T5, LSTM, VGG within 1 MiB), which is cuBLAS's workspaces: one per
# handle and stream, 32 MiB each on an H100, and training uses two handles (the forward on
# the main thread, the backward on autograd's), plus 1 MiB; inference one, 33 MiB. The amp
# and bf16 values are GPT-2's readings, not explained term by term: amp holds 8.5 MiB more
# (cuBLASLt's half-precision kernels, presumably); bf16 15.75 MiB more, part of which is the
# allocator's unsplit blocks around the bf16 Adam state (the weights' are replayed, see
# allocated_bytes; the state, allocated during the first step among freed activations,
# cannot be). BERT reads 105 MiB (40 MiB unexplained): not fitted here.
# Inference: 33 MiB, one handle's workspace and 1 MiB, in every inference case of the H100
# sweep (modelnotes/data/sweep.json: every model, fp32, amp and bf16, within 1 MiB).
WORKSPACE = {("train", "fp32"): 65 * MiB, ("train", "amp"): 73.5 * MiB,
             ("train", "bf16"): 80.75 * MiB, ("inference", "fp32"): 33 * MiB,
             ("inference", "amp"): 33 * MiB, ("inference", "bf16"): 33 * MiB}
# transformers (5.x) models leave one small block allocated besides their parameters
# (measure.StepMeasurement.predicted_weights_bytes's note): 512 bytes
HF_EXTRA_BLOCK = 512

# Facts about configs that the step's rules need, kept here because this module imports no
# torch (the command line checks its arguments with them before anything heavy is imported).
TORCH_FAMILIES = {"vgg": "cnn", "resnet": "cnn", "lstm": "rnn"}  # model_type: family
_LEARNED_POSITIONS = {"gpt2": ("n_positions", 1024), "bert": ("max_position_embeddings", 512)}


def position_limit(config: dict) -> int | None:
    """The longest sequence a model with learned position embeddings takes (its config's
    field, or the transformers default); None for a model without such a table.

    >>> position_limit({"model_type": "gpt2"}), position_limit({"model_type": "t5"})
    (1024, None)
    """
    entry = _LEARNED_POSITIONS.get(config.get("model_type"))
    if entry is None:
        return None
    key, default = entry
    return config.get(key) or default

def rounded(nbytes: int, granule: int = MIN_BLOCK) -> int:
    """Bytes the allocator hands out for a request: a multiple of 512, at least 512
    (*granule* 1 gives the bytes themselves, as the CPU's tensors hold them).

    >>> rounded(1), rounded(512), rounded(513), rounded(513, granule=1)
    (512, 512, 1024, 513)
    """
    return max(granule, -(-int(nbytes) // granule) * granule)


# The allocator's pools (measure.py's constants, c10/cuda/CUDACachingAllocator.cpp)
SMALL_SIZE, SMALL_SEGMENT, LARGE_SEGMENT = 2**20, 2 * 2**20, 20 * 2**20
MIN_LARGE_ALLOC, ROUND_LARGE = 10 * 2**20, 2 * 2**20


def allocated_bytes(requests: list[int]) -> int:
    """What the caching allocator counts as allocated after *requests* (bytes, in order,
    nothing freed): best fit, a block split only if the rest is at least 512 B (small pool)
    or more than 1 MiB (large pool), else handed out whole. The same replay as
    ``measure.simulate_allocations`` (a test keeps them equal), without torch.

    >>> allocated_bytes([1_572_864, 18_874_368]) / 2**20  # the 18 MiB gets 18.5 MiB whole
    20.0
    """
    from bisect import bisect_left, insort

    free: dict[bool, list[int]] = {True: [], False: []}  # small pool?, sorted free sizes
    total = 0
    for request in requests:
        size = rounded(request)
        small = size <= SMALL_SIZE
        blocks = free[small]
        i = bisect_left(blocks, size)
        if i < len(blocks):
            block = blocks.pop(i)
        elif small:
            block = SMALL_SEGMENT
        elif size < MIN_LARGE_ALLOC:
            block = LARGE_SEGMENT
        else:
            block = -(-size // ROUND_LARGE) * ROUND_LARGE
        rest = block - size
        if (rest >= MIN_BLOCK) if small else (rest > SMALL_SIZE):
            insort(blocks, rest)
            total += size
        else:
            total += block
    return total


@dataclass(frozen=True)
class Prediction:
    """A standard step, predicted: the phase readings of :class:`measure.StepMeasurement`,
    the peak and its phase, and the split of the peak into components."""

    label: str
    before_bytes: int
    forward_peak_bytes: int
    after_forward_bytes: int
    backward_peak_bytes: int | None  # None for inference
    after_backward_bytes: int | None
    optimizer_peak_bytes: int | None
    after_bytes: int
    peak_bytes: int
    peak_phase: str  # forward, backward or optimizer
    components: dict[str, int] = field(default_factory=dict)  # at the peak; sums to it

    def phase_bytes(self) -> dict[str, int]:
        """Each phase's peak, as the measurement names them."""
        out = {"forward": self.forward_peak_bytes}
        if self.backward_peak_bytes is not None:
            out.update(backward=self.backward_peak_bytes, optimizer=self.optimizer_peak_bytes)
        return out


# ----- what a step needs to know -------------------------------------------------------------

@dataclass(frozen=True)
class _Step:
    """The spec's fields (checked by measure.StepSpec when one is given; else taken as they
    come, so that no torch is needed)."""

    config: dict
    mode: str
    dtype: str  # fp32, amp-bf16, amp-fp16, bf16
    optimizer: str | None
    batch: int
    seq: int | None
    checkpointing: bool
    attn: str | None
    label: str

    @property
    def train(self) -> bool:
        return self.mode == "train"

    @property
    def amp(self) -> bool:
        return self.dtype.startswith("amp-")

    @property
    def weight_size(self) -> int:  # bytes per parameter element
        return 2 if self.dtype == "bf16" else 4

    @property
    def compute_size(self) -> int:  # bytes per element of matmul outputs
        return 4 if self.dtype == "fp32" else 2

    @property
    def precision(self) -> str:  # the key of WORKSPACE
        return "amp" if self.amp else self.dtype


def _step(model, mode="train", dtype="fp32", optimizer=None, batch=1, seq=None,
          checkpointing=False, attn=None) -> _Step:
    if hasattr(model, "model") and hasattr(model, "mode"):  # a measure.StepSpec
        s = model
        return _Step(s.config, s.mode, s.dtype, s.optimizer, s.batch, s.seq, s.checkpointing,
                     s.attn, s.label())
    from .params import named_config

    config = dict(model) if isinstance(model, dict) else named_config(model)
    if mode == "train" and optimizer is None:
        optimizer = "adamw"
    if attn is None and config["model_type"] in ("gpt2", "bert", "t5"):
        attn = "sdpa"
    name = model if isinstance(model, str) else f"config:{config['model_type']}"
    parts = [name, mode, dtype, *([optimizer] if optimizer else []), f"B={batch}",
             *([f"S={seq}"] if seq is not None else []), *(["ckpt"] if checkpointing else []),
             *([attn] if attn not in (None, "sdpa") else [])]
    return _Step(config, mode, dtype, optimizer, batch, seq, checkpointing, attn,
                 " ".join(parts))


@dataclass(frozen=True)
class _Ledger:
    """One family's answer: tensor sizes (bytes, unrounded) of the parameters, the inputs,
    the activations saved by the forward (all layers), and the transients at each peak."""

    parameters: list[int]  # numel of each parameter tensor, in allocation order
    inputs: list[int]  # bytes of each input tensor
    saved: int  # bytes saved for backward (training) once the forward is over
    forward_transient: int  # alive at the forward's peak on top of what is saved
    backward_transient: int  # alive at the backward's peak on top of what is saved
    extra_weight_bytes: int = 0  # allocated with the weights besides the parameters
    buffers: list[int] = field(default_factory=list)  # bytes of each buffer, after them
    backward_gradients: int = 0  # the part of backward_transient that is parameter gradients
    workspace: int | None = None  # "other" besides the inputs, if not WORKSPACE's


# ----- GPT-2 ---------------------------------------------------------------------------------

def gpt2_shapes(c: dict) -> list[int]:
    """numel of GPT-2's parameters (LM head tied to the embedding, so not repeated).

    >>> sum(gpt2_shapes({"n_embd": 768, "n_layer": 12, "vocab_size": 50257}))
    124439808
    """
    h, L = c["n_embd"], c["n_layer"]
    f = c.get("n_inner") or 4 * h
    V, P = c.get("vocab_size", 50257), c.get("n_positions", 1024)
    layer = [h, h, 3 * h * h, 3 * h, h * h, h, h, h, h * f, f, f * h, h]
    return [V * h, P * h, *layer * L, h, h]


@dataclass(frozen=True)
class GPT2Terms:
    """GPT-2's saved activations, split by where they come from (bytes, before rounding
    except where a tensor is small enough for the rounding to matter).

    Per layer (N = B*S tokens, e = activation bytes, fp32 4 or bf16 2, and the MLP's
    ``gelu_new``, written out as seven elementwise ops, saves five f-sized tensors):

    * fp32/bf16: ``e*N*(h [ln_1 in] + h [ln_1 out] + 3h [c_attn out: q, k, v are views]
      + h [attention out, c_proj's input] + h [ln_2 in] + h [ln_2 out] + f [c_fc out]
      + 4f [tanh out, 0.5x, 1+tanh, gelu out])`` = ``e*N*(8h + 5f)``, 28·e·N·h for f = 4h;
    * amp (CUDA autocast lists): layer norms stay fp32 and only their bf16 casts are saved;
      ``pow`` is in autocast's fp32 list, so the GELU runs in fp32 from there on:
      ``N*(4h + 2h + 6h + 2h + 4h + 2h) + N*f*(4 + 4 + 4 + 2 + 2)`` = N(20h + 16f), plus the
      bf16 copies of every matmul weight (autocast's cast, saved by the matmul); on the CPU
      (no fp32 pow) N(20h + 10f);
    * attention: sdpa saves its log-sum-exp, fp32 (B, a, S) (the CUDA memory-efficient
      kernel that fp32 uses pads S to a multiple of 32); eager saves the (B, a, S, S)
      probabilities instead, and with attention dropout a 1-byte mask and the dropped copy;
    * layer norm statistics: mean and rstd, fp32 (B, S), two per layer norm;
    * dropout (resid_pdrop): a 1-byte mask (CUDA's native_dropout; the CPU keeps a mask
      in the activations' dtype) per dropout, two per layer;
    * checkpointing (non-reentrant): a layer keeps only its input, ``e*N*h``.

    Once per model: position ids, the embedding dropout mask, the last residual, ln_f's
    input, statistics and output (its bf16 cast in amp), and the loss: transformers'
    ``ForCausalLMLoss`` upcasts the logits to fp32 and cross-entropy's log-softmax saves its
    fp32 (N, V) output; the shifted labels (N int64).
    """

    per_layer: int
    layers: int
    model: int
    logits: int  # (N, V) in the compute dtype: a transient, not saved

    @property
    def saved(self) -> int:
        return self.per_layer * self.layers + self.model


def gpt2_terms(c: dict, B: int, S: int, *, dtype: str = "fp32", attn: str = "sdpa",
               checkpointing: bool = False, device: str = "cuda") -> GPT2Terms:
    """The closed form of :class:`GPT2Terms` (*device* "cpu" gives the CPU's kernels: CPU
    dropout masks are as wide as the activations, and the CPU's sdpa pads nothing).

    >>> t = gpt2_terms({"n_embd": 768, "n_head": 12, "n_layer": 12, "vocab_size": 50257},
    ...                8, 1024)
    >>> round(t.per_layer / (8 * 1024 * 768 * 4), 2)  # 28 N h fp32, masks, statistics, lse
    28.52
    """
    h, L, a = c["n_embd"], c["n_layer"], c["n_head"]
    f = c.get("n_inner") or 4 * h
    V = c.get("vocab_size", 50257)
    N = B * S
    p_resid = c.get("resid_pdrop", 0.1)
    p_embd = c.get("embd_pdrop", 0.1)
    p_attn = c.get("attn_pdrop", 0.1)
    amp = dtype.startswith("amp-")
    e = 2 if dtype == "bf16" else 4  # residual stream and layer norms
    cuda = device == "cuda"
    g = MIN_BLOCK if cuda else 1  # CPU tensors are counted unrounded
    mask = 1 if cuda else (2 if dtype != "fp32" else 4)  # dropout's saved mask per element

    if amp:
        # the GELU: CUDA autocast runs pow in fp32, and from there the GELU stays fp32
        # (4+4+4 bytes: x cast, tanh, 1+tanh; 2+2: 0.5x, the bf16 cast for c_proj); CPU
        # autocast has no fp32 pow, so its five f-sized tensors stay bf16
        gelu = 16 if cuda else 10
        layer = N * (20 * h + gelu * f) + 2 * (3 * h * h + h * h + 2 * h * f)
    else:
        layer = e * N * (8 * h + 5 * f)
    # mean and rstd: fp32 on CUDA (the accumulation type), the input's dtype on the CPU
    stat = 4 if cuda or dtype != "bf16" else 2
    stats = 4 * rounded(stat * N, g)  # two layer norms, mean and rstd each
    layer += stats
    if p_resid:
        layer += 2 * rounded(mask * N * h, g)
    attn_dtype = 2 if (amp or dtype == "bf16") else 4
    if attn == "sdpa":
        # fp32 runs the memory-efficient kernel (pads S to 32), half types the flash one
        S_lse = ceil(S / 32) * 32 if (cuda and attn_dtype == 4) else S
        layer += rounded(4 * B * a * S_lse, g)
        if p_attn and cuda:
            layer += 2 * g  # the kernel's philox seed and offset
    else:
        probs = B * a * S * S
        layer += probs * attn_dtype
        if p_attn:
            layer += probs * (mask + attn_dtype)

    model = rounded(8 * S, g)  # position ids, saved by the embedding
    if p_embd:  # the embeddings are fp32 in amp: a CPU mask that wide
        model += rounded((4 if amp and not cuda else mask) * N * h, g)
    model += 2 * rounded(stat * N, g)  # ln_f statistics
    if amp:
        model += 4 * N * h + 2 * N * h + 2 * V * h  # ln_f in, its bf16 cast, lm_head copy
    else:
        model += 2 * e * N * h  # ln_f in and out
    # log-softmax output (fp32), shifted labels, nll's total_weight (an fp32 scalar)
    model += 4 * N * V + rounded(8 * N, g) + rounded(4, g)
    if checkpointing:
        # non-reentrant checkpointing keeps each layer's input (the residual) only
        layer = e * N * h
    return GPT2Terms(layer, L, model, (2 if (amp or dtype == "bf16") else 4) * N * V)


def _gpt2(s: _Step) -> _Ledger:
    c = s.config
    B, S = s.batch, s.seq
    N, V, h = B * S, c.get("vocab_size", 50257), c["n_embd"]
    inputs = [8 * N]  # input_ids; labels is the same tensor
    if s.amp and s.attn == "eager":
        # CUDA autocast runs eager's softmax in fp32 and casts back: not derived yet
        raise NotImplementedError("GPT-2: amp with eager attention has no closed form yet")
    t = gpt2_terms(c, B, S, dtype=s.dtype, attn=s.attn, checkpointing=s.checkpointing)
    half = s.dtype != "fp32"
    if not s.train:
        # inference keeps nothing: the peak is the lm_head matmul, its output (the logits)
        # next to its input, ln_f's output (fp32 in amp, where autocast also makes that
        # input's bf16 cast and the tied weight's, (V, h): under inference_mode autocast
        # caches no weight casts, so only this one matmul's are alive). Read against the
        # sweep's 108 GPT-2 inference cases: exact up to 0.9 MiB of allocator slack.
        forward = t.logits + (2 if s.dtype == "bf16" else 4) * N * h
        if s.amp:
            forward += rounded(2 * N * h) + rounded(2 * V * h)
        return _Ledger(gpt2_shapes(c), inputs, 0, forward, 0, HF_EXTRA_BLOCK)
    # the forward's peak is the log-softmax: logits (compute dtype), their fp32 upcast
    # (a copy in amp and bf16), and the output, which is saved; plus the label shift and,
    # in amp, ln_f's fp32 output, which the model still holds
    forward = t.logits + (4 * N * V if half else 0) + 8 * N + (4 * N * h if s.amp else 0)
    # the backward's peak is its first node: nll's gradient (N, V) fp32 and log-softmax's
    # gradient, while the log-softmax output is still saved; the labels are released
    backward = 2 * 4 * N * V - rounded(8 * N)
    if s.checkpointing and s.amp:
        # autocast caches the bf16 casts of the layers' weights and biases (leaves that
        # require grad; addmm casts bias, then weight) until the forward leaves autocast:
        # without checkpointing the matmuls save them, with it they are alive only then, on
        # top at the loss (gpt2-medium: 576 MiB; replayed as fresh allocations)
        f = c.get("n_inner") or 4 * h
        casts = [3 * h, 3 * h * h, h, h * h, f, h * f, h, f * h]
        forward += allocated_bytes([2 * n for n in casts] * c["n_layer"])
    if s.checkpointing:
        # later, each layer's backward first recomputes that layer's forward: where a layer
        # saves more than the loss's two (N, V) gradients, that is the peak (a lower bound:
        # the gradients accumulated by then come on top)
        full = gpt2_terms(c, B, S, dtype=s.dtype, attn=s.attn).per_layer
        backward = max(backward, full)
    return _Ledger(gpt2_shapes(c), inputs, t.saved, forward, backward, HF_EXTRA_BLOCK)


# ----- BERT (masked LM) ------------------------------------------------------------------------

def bert_shapes(c: dict, head: str = "mlm") -> list[int]:
    """numel of BertForMaskedLM's parameters (*head* "mlm": no pooler; the decoder tied to
    the word embedding, its bias separate) or of BertModel's (*head* "pooler": the pooler's
    dense layer instead of the MLM head).

    >>> sum(bert_shapes({"hidden_size": 768, "num_hidden_layers": 12}))
    109514298
    >>> sum(bert_shapes({"hidden_size": 768, "num_hidden_layers": 12}, head="pooler"))
    109482240
    """
    h, L = c.get("hidden_size", 768), c.get("num_hidden_layers", 12)
    f = c.get("intermediate_size", 3072)
    V, P = c.get("vocab_size", 30522), c.get("max_position_embeddings", 512)
    T = c.get("type_vocab_size", 2)
    layer = [h * h, h] * 4 + [h, h, f * h, f, h * f, h, h, h]
    tail = [h * h, h] if head == "pooler" else [h * h, h, h, h, V]
    return [V * h, P * h, T * h, h, h, *layer * L, *tail]


def bert_terms(c: dict, B: int, S: int, *, dtype: str = "fp32", attn: str = "sdpa",
               device: str = "cuda") -> tuple[int, int, int]:
    """(per layer, once per model, logits) bytes saved by BertForMaskedLM's forward and loss.

    Per layer (pure fp32 or bf16, e bytes): ``e*N*(h [input, shared by q, k, v] + 3h [q, k,
    v: three Linear outputs] + h [attention out, the output dense's input] + h [LN input]
    + h [LN out] + f [intermediate out, GELU's input] + f [GELU out] + h [LN input])`` =
    ``e*N*(8h + 2f)``; then layer norm statistics (4), two hidden-dropout masks, and the
    attention kernel's log-sum-exp (sdpa) or probabilities (eager), as for GPT-2.
    Once: token_type_ids (1, S) int64, the embeddings' LN input, statistics and dropout
    mask; the MLM head: the last layer's output, dense out, GELU out, LN statistics and
    out; the loss: ``CrossEntropyLoss`` on the logits as they are (no upcast: bf16 stays
    bf16), whose log-softmax output is saved, and its total_weight scalar.

    amp (CUDA autocast; checked against saved_tensors_hooks on an H100): the residual
    stream and the layer norms stay fp32, and no layer norm's output is saved, only the bf16
    casts that the Linears take of it (one per Linear: q, k and v cast the layer input
    three times). Per layer ``N*(2*3h [casts] + 2*3h [q, k, v] + 2h [attention out]
    + 4h [LN input] + 2h [cast for the intermediate] + 2f + 2f [GELU in, out] + 4h [LN
    input])`` = N(24h + 4f), the masks, statistics and log-sum-exp as above, and the bf16
    copies of the layer's weights. Once: the embeddings' LN input (fp32); the MLM head: the
    cast of the last layer's output, the transform's weight copy, GELU's bf16 input, the
    head LN's fp32 input (the upcast GELU output), the cast of its output, the decoder's
    weight copy (V, h); the loss: the bf16 logits and the fp32 log-softmax (both are
    packed: CUDA's log-softmax reads the bf16 logits and writes fp32).

    >>> per_layer, model, logits = bert_terms({}, 8, 512)
    >>> round(per_layer / (8 * 512 * 768 * 4), 2)
    16.52
    """
    h, L, a = c.get("hidden_size", 768), c.get("num_hidden_layers", 12), c.get(
        "num_attention_heads", 12)
    f = c.get("intermediate_size", 3072)
    V = c.get("vocab_size", 30522)
    N = B * S
    p_hidden = c.get("hidden_dropout_prob", 0.1)
    p_attn = c.get("attention_probs_dropout_prob", 0.1)
    cuda = device == "cuda"
    g = MIN_BLOCK if cuda else 1
    amp = dtype.startswith("amp-")
    e = 2 if dtype == "bf16" else 4
    mask = 1 if cuda else e
    stat = 4 if cuda or dtype != "bf16" else 2
    if amp:
        layer = N * (24 * h + 4 * f) + 2 * (4 * h * h + 2 * h * f)
    else:
        layer = e * N * (8 * h + 2 * f)
    layer += 4 * rounded(stat * N, g)
    if p_hidden:
        layer += 2 * rounded(mask * N * h, g)
    if attn == "sdpa":
        # fp32: the memory-efficient kernel (S padded to 32); bf16 and amp: the H100 runs
        # cuDNN's attention, whose (B, a, S, 1) statistics are the same fp32 bytes
        S_lse = ceil(S / 32) * 32 if (cuda and e == 4 and not amp) else S
        layer += rounded(4 * B * a * S_lse, g)
        if p_attn and cuda:
            layer += 2 * g
    else:
        if amp:
            raise NotImplementedError("BERT: amp with eager attention has no closed form yet")
        probs = B * a * S * S
        layer += probs * e + (probs * (mask + e) if p_attn else 0)
    # embeddings: token_type_ids (1, S) int64 (a gather from the buffer), LN input, stats
    model = rounded(8 * S, g) + e * N * h + 2 * rounded(stat * N, g)
    if p_hidden:
        model += rounded(mask * N * h, g)
    if amp:
        # MLM head: casts of its input and of its LN output, GELU's input, LN's fp32 input,
        # the transform's and the decoder's weight copies; the loss: fp32 log-softmax
        model += 3 * 2 * N * h + 4 * N * h + 2 * h * h + 2 * V * h + 2 * rounded(stat * N, g)
        model += 2 * N * V + 4 * N * V + rounded(4, g)  # bf16 logits, fp32 log-softmax
        return layer, model, 2 * N * V
    model += 4 * e * N * h + 2 * rounded(stat * N, g)  # MLM head
    model += e * N * V + rounded(e, g)  # log-softmax output, total_weight
    return layer, model, e * N * V


# amp: what the forward leaves allocated beyond what it saves, read off the sweep (BERT, 9
# cases, B 1..16, S 128..512): 33 to 43 MiB, falling slowly with N; the saved bytes
# themselves match saved_tensors_hooks on an H100 exactly. Not explained term by term
# (autocast's cast bookkeeping or the allocator's unsplit blocks among the weight copies).
BERT_AMP_FORWARD_EXTRA = 38 * MiB


def bert_inference_peak(c: dict, B: int, S: int, dtype: str = "fp32") -> int:
    """Bytes alive at the peak of BertModel's inference forward on top of weights and
    inputs (``inference_mode``: nothing is saved, each tensor is freed when its last
    reference goes).

    In a layer past the first, BertModel still holds the embeddings' output (its local
    ``embedding_output``), the encoder loop the layer's input, the layer its attention
    output; r bytes each (fp32, amp: 4; bf16: 2). The peak is at the GELU (its input and
    output, (N, f) in the compute dtype c: 4 fp32, 2 amp and bf16), or at the output layer
    norm: the GELU output still held, the dense output, the residual sum and the norm's
    output (r bytes: amp adds bf16 to fp32). In amp, a Linear that reads the (N, f)
    activations also holds a bf16 copy of its (f, h) weight, the peak of small batches.
    """
    h, f = c.get("hidden_size", 768), c.get("intermediate_size", 3072)
    N = B * S
    r = 2 if dtype == "bf16" else 4
    e = 4 if dtype == "fp32" else 2
    held = 3 * r * N * h
    peak = max(held + 2 * e * N * f, held + e * N * f + e * N * h + 2 * r * N * h)
    if dtype.startswith("amp-"):
        peak = max(peak, held + 2 * N * f + 2 * N * h + 2 * h * f)
    return peak


def _bert(s: _Step) -> _Ledger:
    c = s.config
    N, h, V = s.batch * s.seq, c.get("hidden_size", 768), c.get("vocab_size", 30522)
    P = c.get("max_position_embeddings", 512)
    buffers = [8 * P, 8 * P]  # position_ids and token_type_ids, (1, P) int64
    if not s.train:
        # measure.py builds config["architectures"][0] for inference (the catalogue's
        # bert-base-uncased: BertModel)
        arch = (c.get("architectures") or ["BertForMaskedLM"])[0]
        if arch != "BertModel":
            raise NotImplementedError(f"BERT inference: only BertModel has a closed form "
                                      f"(got {arch})")
        forward = bert_inference_peak(c, s.batch, s.seq, s.dtype)
        return _Ledger(bert_shapes(c, head="pooler"), [8 * N], 0, forward, 0, HF_EXTRA_BLOCK,
                       buffers)
    layer, model, logits = bert_terms(c, s.batch, s.seq, dtype=s.dtype, attn=s.attn)
    if s.checkpointing and s.amp:
        L = c.get("num_hidden_layers", 12)
        f = c.get("intermediate_size", 3072)
        saved = L * rounded(4 * N * h) + model
        casts = [h, h * h] * 4 + [f, h * f, h, f * h]
        forward = logits + 4 * N * h + allocated_bytes([2 * n for n in casts] * L)
        return _Ledger(bert_shapes(c), [8 * N], saved, forward, max(4 * N * V, layer),
                       HF_EXTRA_BLOCK, buffers)
    if s.checkpointing:
        # non-reentrant checkpointing keeps each layer's input (the residual stream) only;
        # each layer's backward first recomputes that layer: where one layer's activations
        # exceed the loss's two (N, V) gradients, that is the backward's peak
        L = c.get("num_hidden_layers", 12)
        saved = L * s.weight_size * N * h + model
        return _Ledger(bert_shapes(c), [8 * N], saved, logits, max(2 * logits, layer),
                       HF_EXTRA_BLOCK, buffers)
    saved = layer * c.get("num_hidden_layers", 12) + model
    if s.amp:
        # forward and backward transients read off the sweep (B=16 S=512, B=8 S=128):
        # forward 2NV + 4Nh (476.9 + 24 MiB measured 501.1; an (N, V) bf16 temporary of the
        # loss and the last layer's fp32 output, which amp does not save); backward one
        # (N, V) fp32 gradient, 4NV (954.0 MiB measured, 120.0 at B=8 S=128)
        saved += BERT_AMP_FORWARD_EXTRA
        return _Ledger(bert_shapes(c), [8 * N], saved, logits + 4 * N * h, 4 * N * V,
                       HF_EXTRA_BLOCK, buffers)
    # forward peak: the logits next to their log-softmax; backward peak: the gradients of
    # both, (N, V) each, while the log-softmax output is still saved
    return _Ledger(bert_shapes(c), [8 * N], saved, logits, 2 * logits, HF_EXTRA_BLOCK,
                   buffers)


# ----- LLaMA (LlamaForCausalLM: RMSNorm, rotary positions, SwiGLU) ---------------------------

def llama_shapes(c: dict) -> list[int]:
    """numel of LlamaForCausalLM's parameters (no biases; untied head unless configured).

    >>> sum(llama_shapes({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    ...                   "intermediate_size": 128, "vocab_size": 100}))
    95040
    """
    h, L, a = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
    kv, hd = c.get("num_key_value_heads") or a, c.get("head_dim") or h // a
    f, V = c["intermediate_size"], c.get("vocab_size", 32000)
    layer = [h, a * hd * h, kv * hd * h, kv * hd * h, h * a * hd, h, f * h, f * h, h * f]
    head = [] if c.get("tie_word_embeddings", False) else [V * h]
    return [V * h, *layer * L, h, *head]


def _llama_dims(c: dict) -> tuple[int, int, int, int, int, int, int]:
    """(h, L, a, kv, head_dim, f, V) of a LLaMA-style config."""
    h, L, a = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
    kv, hd = c.get("num_key_value_heads") or a, c.get("head_dim") or h // a
    if a % kv:
        raise NotImplementedError(f"LLaMA: {a} heads do not share {kv} key-value heads evenly")
    return h, L, a, kv, hd, c["intermediate_size"], c.get("vocab_size", 32000)


def _llama_layer_weights(c: dict) -> list[int]:
    """numel of one decoder layer's matmul weights: q, k, v, o, gate, up, down."""
    h, _, a, kv, hd, f, _ = _llama_dims(c)
    return [a * hd * h, kv * hd * h, kv * hd * h, h * a * hd, f * h, f * h, h * f]


def llama_math_attention(c: dict, dtype: str, device: str = "cuda") -> bool:
    """Whether sdpa runs its math path (probabilities materialised): fp32 on CUDA with
    grouped-query attention, which transformers hands over with ``enable_gqa`` (d <= 256)
    and CUDA's memory-efficient kernel does not take; the CPU's flash kernel takes it."""
    h, _, a, kv, hd, _, _ = _llama_dims(c)
    return device == "cuda" and dtype == "fp32" and kv < a and hd <= 256


def llama_saved(c: dict, B: int, S: int, *, dtype: str = "fp32", device: str = "cuda",
                checkpointing: bool = False, per_layer: bool = False) -> int:
    """Bytes LlamaForCausalLM's forward and loss save (fp32, bf16 or amp; sdpa without
    dropout), N = B*S, d = head_dim, kv key-value heads (kv < a: grouped-query attention),
    e bytes per element:

    * per layer ``N*h*(4 + 2e)`` per RMSNorm (it upcasts: x in fp32, a copy in bf16;
      x*rsqrt cast back and the weighted output in e bytes), then ``e*N*(a*d [q after RoPE]
      + 2 kv*d [k after RoPE, v] + a*d [attention out] + 4f [gate, up, SiLU(gate),
      SiLU*up])``, two rsqrt (N, fp32) and the kernel's log-sum-exp (B, a, S) fp32;
      RoPE's ``q*cos + rotate_half(q)*sin`` keeps cos and sin, not q. With fewer key-value
      heads, transformers' sdpa path passes ``enable_gqa=True`` (no mask, d <= 256) and the
      kernel saves k and v as they are, kv*d per token; otherwise (d > 256) ``repeat_kv``
      copies them to a*d, and the copies are what is saved;
    * once: cos and sin (1, S, d), the final RMSNorm and its rsqrt, the shifted labels, the
      fp32 log-softmax (N, V) of ``ForCausalLMLoss`` and total_weight;
    * amp: see the comment in the code. The CPU's and CUDA's autocast lists differ in ops
      (pow, rsqrt) that this forward only applies to fp32 tensors, so the CPU check holds
      for both;
    * checkpointing (transformers' non-reentrant): a layer keeps only its input, the
      residual stream (e*N*h; fp32 in amp); what the layer saves is recomputed in the
      backward. *per_layer* gives one layer's bytes without checkpointing.

    Checked against saved_tensors_hooks on the CPU and on an H100 (tests), and on the H100
    sweep (cs336-lm, checkpointing: after the forward within 10 MiB of the measured rise).
    """
    h, L, a, kv, hd, f, V = _llama_dims(c)
    N, e = B * S, 2 if dtype == "bf16" else 4
    amp = dtype.startswith("amp-")
    g = MIN_BLOCK if device == "cuda" else 1
    cuda = device == "cuda"
    S_lse = ceil(S / 32) * 32 if (cuda and dtype == "fp32") else S
    # enable_gqa, or repeat_kv's copies (a view, no copy, where one kv head is expanded)
    kv_saved = kv if (hd <= 256 or kv == 1) else a
    attention = a * hd + 2 * kv_saved * hd + a * hd  # q, k after RoPE, v, out: per token
    # the flash or memory-efficient kernel's log-sum-exp and, on CUDA, its philox seed and
    # offset (saved even without dropout: two small tensors, 512 bytes each)
    lse = rounded(4 * B * a * S_lse, g) + (2 * g if cuda else 0)
    if llama_math_attention(c, dtype, device):
        # fp32 with enable_gqa on CUDA: the memory-efficient kernel takes no GQA, so sdpa
        # runs its math path, which saves the scaled q, k and v repeated to a heads, and the
        # (B, a, S, S) fp32 probabilities (no log-sum-exp); RoPE's q and k are not kept.
        # Checked on an H100 (torch 2.11, transformers 5.17) against saved_tensors_hooks:
        # a = 8, kv = 2 and 1, B = 2 and 3, S = 100 and 128, to the byte per layer
        attention = 4 * a * hd
        lse = rounded(4 * B * a * S * S, g)
    if amp:
        # the residual stream and the norms stay fp32 (x, x*rsqrt: 8 bytes per h), each of
        # the five projections that read a norm casts it to bf16 anew (autocast caches
        # only the weights' casts), sdpa takes bf16 casts of q, k, v; all weights' bf16
        # copies are saved by their matmuls
        weights = 2 * sum(_llama_layer_weights(c))
        layer = N * (2 * 8 * h + 5 * 2 * h + 2 * attention + 2 * 4 * f) + weights
        once = 2 * rounded(4 * S * hd, g) + 8 * N * h + 2 * N * h + 2 * V * h
    else:
        norm = (4 + 2 * e) * N * h  # the fp32 copy (bf16: a new tensor) and two e-byte outputs
        layer = 2 * norm + e * N * (attention + 4 * f)
        once = 2 * rounded(e * S * hd, g) + norm
    layer += 2 * rounded(4 * N, g) + lse  # rsqrt, the kernel's log-sum-exp
    if per_layer:
        return layer
    once += rounded(4 * N, g) + rounded(8 * N, g) + rounded(4 * N * V, g) + rounded(4, g)
    if checkpointing:
        layer = rounded((4 if amp else e) * N * h, g)  # the layer's input
    return L * layer + once


def _llama(s: _Step) -> _Ledger:
    c = s.config
    h, L, a, kv, hd, f, V = _llama_dims(c)
    B, S = s.batch, s.seq
    N = B * S
    shapes = llama_shapes(c)
    c_size = s.compute_size  # matmul outputs: fp32, else bf16
    r_size = 2 if s.dtype == "bf16" else 4  # residual stream and norm outputs (fp32 in amp)
    # the last matmul, lm_head: the logits, next to its input (the final norm's output) and,
    # in amp, the bf16 casts of that input and of the (V, h) weight
    head = c_size * N * V + r_size * N * h
    if s.amp:
        head += rounded(2 * N * h) + rounded(2 * V * h)
    if not s.train:
        # inference keeps nothing; autocast caches no weight casts under inference_mode.
        # The peak is lm_head's, unless a layer's MLP needs more: the residual, the norm's
        # output, SiLU(gate), up and their product (3f, matmul dtype), in amp with one
        # (f, h) weight cast (an estimate: the logits are the peak in every sweep case;
        # those, cs336-lm fp32/amp/bf16, agree within 2 MiB)
        mlp = 2 * r_size * N * h + 3 * c_size * N * f + (2 * f * h if s.amp else 0)
        # the math path (fp32 GQA, see llama_math_attention): the scores and the
        # probabilities, (B, a, S, S) fp32 each, next to the residual, the norm's output
        # and q, k, v repeated (an estimate, not measured)
        attention = 0
        if llama_math_attention(c, s.dtype):
            attention = 2 * 4 * B * a * S * S + 4 * N * (2 * h + 3 * a * hd)
        return _Ledger(shapes, [8 * N], 0, max(head, mlp, attention), 0, HF_EXTRA_BLOCK)
    saved = llama_saved(c, B, S, dtype=s.dtype, checkpointing=s.checkpointing)
    # as GPT-2 (see _gpt2): logits, their fp32 upcast (amp, bf16), the label shift, and in
    # amp the final norm's fp32 output, which the model still holds
    logits = c_size * N * V
    forward = logits + (4 * N * V if s.dtype != "fp32" else 0) + 8 * N + (4 * N * h if s.amp
                                                                           else 0)
    if llama_math_attention(c, s.dtype) and not s.checkpointing:
        # the math path's scores, (B, a, S, S) fp32, next to the probabilities that the
        # last layer saves: the forward's peak where they outweigh the loss's (an estimate)
        forward = max(forward, 4 * B * a * S * S)
    backward = 2 * 4 * N * V - rounded(8 * N)  # nll's and log-softmax's (N, V) gradients
    gradients = 0
    if s.checkpointing:
        if s.amp:
            # autocast caches the bf16 cast of every layer weight (a leaf that requires
            # grad) until the forward leaves autocast; without checkpointing the matmuls save
            # them anyway, with it they are alive only then: on top at the loss. Each is a
            # fresh allocation (replayed: the (f, h) casts leave unsplit blocks); the sweep
            # reads 75-88 MiB above their 3750 MiB for cs336-lm, the replay 90 MiB
            forward += allocated_bytes([2 * n for n in _llama_layer_weights(c)] * L)
        # the backward's last layer (the first): its forward recomputed (all it saves),
        # its input and the gradient flowing in, with every parameter's gradient allocated
        # but the embedding's, which comes last (an estimate; the optimizer's peak is
        # higher in every sweep case)
        grads = sum(rounded(n * s.weight_size) for n in shapes)
        if not c.get("tie_word_embeddings", False):
            grads -= rounded(V * h * s.weight_size)
        last = (grads + llama_saved(c, B, S, dtype=s.dtype, per_layer=True)
                + 2 * r_size * N * h - saved)
        if last > backward:
            backward, gradients = last, grads
    return _Ledger(shapes, [8 * N], saved, forward, backward, HF_EXTRA_BLOCK,
                   backward_gradients=gradients)


# ----- T5 (T5ForConditionalGeneration, ReLU feed-forward) --------------------------------------

def t5_shapes(c: dict) -> list[int]:
    """numel of T5ForConditionalGeneration's parameters (v1.0: LM head tied to the shared
    embedding; one relative-attention-bias table per stack, in its first layer).

    >>> sum(t5_shapes({"d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6,
    ...                "num_heads": 8, "vocab_size": 32128}))
    60506624
    """
    h, dk, f, a = c.get("d_model", 512), c.get("d_kv", 64), c.get("d_ff", 2048), c.get(
        "num_heads", 8)
    L = c.get("num_layers", 6)
    Ld = c.get("num_decoder_layers") or L
    V, buckets, inner = c.get("vocab_size", 32128), c.get(
        "relative_attention_num_buckets", 32), dk * a
    attention = [h * inner] * 3 + [inner * h]
    ff = [h * f, f * h]
    encoder = [*attention, buckets * a, h, *ff, h] + [*attention, h, *ff, h] * (L - 1) + [h]
    decoder = ([*attention, buckets * a, h, *attention, h, *ff, h]
               + [*attention, h, *attention, h, *ff, h] * (Ld - 1) + [h])
    return [V * h, *encoder, *decoder]


def t5_saved(c: dict, B: int, S: int, *, self_attention: str = "eager",
             cross_attention: str = "eager", device: str = "cuda") -> int:
    """Bytes T5ForConditionalGeneration's forward and loss save (fp32; the target has the
    input's length S), N = B*S, inner = num_heads*d_kv:

    * each T5LayerNorm (an RMS norm written out): its input, the rsqrt (N fp32), the
      normalised x and the weighted output: ``3h`` per token and N*4 bytes;
    * each attention: q, k, v (k, v over the encoder for cross-attention), the output
      (o's input): ``4 inner``; then the kernel: eager (and the path the H100 took for a
      self-attention with T5's position bias, see :func:`_t5`) keeps the (B, a, S, S)
      probabilities and, with dropout, a mask and the dropped copy; the memory-efficient
      sdpa kernel keeps a log-sum-exp (B, a, S) and, with dropout, a seed and an offset;
    * the ReLU feed-forward: ReLU's output (N, f) and, with dropout, the mask and the
      dropped copy (wo's input);
    * dropout (dropout_rate) on the embeddings, on every sub-layer's output, after each
      stack's final norm: a mask each (1 byte on CUDA, 4 on the CPU);
    * once: the bucket indices (S, S) int64 of each stack, the decoder's input ids (B, S),
      the encoder's output (kept by every cross-attention's k and v), the scaled (by
      d_model**-0.5) decoder output and the loss's fp32 log-softmax (N, V), total_weight.
    """
    h, dk, f, a = c.get("d_model", 512), c.get("d_kv", 64), c.get("d_ff", 2048), c.get(
        "num_heads", 8)
    L = c.get("num_layers", 6)
    Ld = c.get("num_decoder_layers") or L
    V, inner, p = c.get("vocab_size", 32128), dk * a, c.get("dropout_rate", 0.1)
    N, cuda = B * S, device == "cuda"
    g = MIN_BLOCK if cuda else 1
    mask = 1 if cuda else 4
    drop = rounded(mask * N * h, g) if p else 0  # one dropout of an (N, h) tensor
    norm = 3 * rounded(4 * N * h, g) + rounded(4 * N, g)

    def attention(kind: str) -> int:
        core = 4 * rounded(4 * N * inner, g)
        if kind == "eager":
            probs = B * a * S * S
            return core + rounded(4 * probs, g) + (rounded((mask + 4) * probs, g) if p else 0)
        return core + rounded(4 * B * a * ceil(S / 32) * 32, g) + (2 * g if p else 0)

    ff = norm + rounded(4 * N * f, g) + drop
    if p:
        ff += rounded(mask * N * f, g) + rounded(4 * N * f, g)
    encoder_layer = norm + attention(self_attention) + drop + ff
    decoder_layer = (norm + attention(self_attention) + drop
                     + norm + attention(cross_attention) + drop + ff)
    once = 2 * rounded(8 * S * S, g) + rounded(8 * N, g)  # buckets, decoder input ids
    once += 2 * (drop + (rounded(4 * N * h, g) + rounded(4 * N, g) + rounded(4 * N * h, g))
                 + drop)  # each stack: embedding dropout, final norm (x, rsqrt, normed), dropout
    once += 2 * rounded(4 * N * h, g)  # encoder output, scaled decoder output
    once += rounded(4 * N * V, g) + rounded(4, g)  # log-softmax, total_weight
    return L * encoder_layer + Ld * decoder_layer + once


def t5_saved_cuda(c: dict, B: int, S: int, dtype: str = "fp32",
                  granule: int = MIN_BLOCK) -> int:
    """Bytes T5ForConditionalGeneration's training forward and loss save on CUDA with sdpa
    (torch 2.11, transformers 5.17; the target has the input's length S), N = B*S,
    P = B*a*S*S, inner = num_heads*d_kv, e the compute dtype's bytes (fp32 4, amp and bf16
    2), r the residual stream's (bf16 2, else 4). Every term is a count of tensors read off
    ``saved_tensors_hooks`` on an H100 (t5-small, B = 2, S = 96 and 160: exact to the byte
    in fp32, amp-bf16 and bf16, see ``tests/test_memory.py``); with only t5-small (6 + 6
    layers) measured, how a count splits between encoder and decoder layers is the reading
    noted with it.

    * each T5LayerNorm (nNorm = 2 per encoder layer, 3 per decoder layer, one final norm per
      stack): its input and the normalised x (r bytes each; the output is counted as the
      next Linear's input), the rsqrt (N fp32); in bf16 also ``x.to(float32)``, pow's input;
    * the Linears' (N, h) inputs: fp32 and bf16 ``2 per self-attention (the normed input
      that q, k, v share, o's input) + 1 per cross-attention (q's: o's input is the kernel's
      output, counted there) + 1 per feed-forward (wi's) + 2`` (the encoder's output, read
      by every cross-attention's k and v; the scaled decoder output, the LM head's input);
      amp: the bf16 casts, one per Linear, ``4 per self-attention + 3 per cross-attention
      (q, k, v) + 1 per feed-forward + 1`` (the LM head's), and the bf16 copy of every
      Linear weight (the LM head's too, (V, h), tied to the fp32 embedding);
    * self-attention: T5's position bias is a float mask that requires grad, and sdpa runs
      its math path, in fp32 even for bf16 (it upcasts q, k, v): copies of q, k^T, v
      (fp32, N*inner each), the softmax output and its dropped copy (fp32 P each) and the
      dropout mask (P bools); plus one position-bias mask (1, a, S, S) in the compute dtype;
    * cross-attention (no mask): the fused kernel, q, k, v and its output (e bytes, N*inner
      each), the fp32 log-sum-exp (B, a, S) (fp32 runs the memory-efficient kernel, which
      pads S to 32) and, with dropout, the philox seed and offset (int64 scalars);
    * the ReLU feed-forward: ReLU's output and wo's input (the dropped copy, e bytes N*f
      each), the mask (N*f bools);
    * a dropout mask (N*h bools) per sub-layer, and on each stack's embeddings and output;
    * once: the bucket indices (S, S) int64 of each stack, the causal condition (1, 1, S, S)
      bools of each decoder layer's mask, the decoder's input ids and the labels (B, S)
      int64; the loss: ``CrossEntropyLoss`` on the logits as they come, so its log-softmax
      is bf16 in bf16, fp32 in fp32 and in amp (autocast's fp32 list), where the bf16
      logits are kept too; the total_weight scalar.
    """
    h, dk, f, a = c.get("d_model", 512), c.get("d_kv", 64), c.get("d_ff", 2048), c.get(
        "num_heads", 8)
    Le = c.get("num_layers", 6)
    Ld = c.get("num_decoder_layers") or Le
    V, inner, p = c.get("vocab_size", 32128), dk * a, c.get("dropout_rate", 0.1)
    N, P = B * S, B * a * S * S
    amp = dtype.startswith("amp-")
    e = 4 if dtype == "fp32" else 2
    r = 2 if dtype == "bf16" else 4
    nS, nC, nF = Le + Ld, Ld, Le + Ld  # self-attentions, cross-attentions, feed-forwards
    nNorm = nS + nC + nF + 2

    def R(nbytes: int) -> int:  # granule 1: the storages' bytes, as the hooks see them
        return rounded(nbytes, granule)
    t = nNorm * (2 * R(r * N * h) + R(4 * N) + (R(4 * N * h) if dtype == "bf16" else 0))
    if amp:
        t += (4 * nS + 3 * nC + nF + 1) * R(2 * N * h)
        t += 2 * (4 * inner * h * (nS + nC) + 2 * h * f * nF + V * h)  # weight copies
    else:
        t += (2 * nS + nC + nF + 2) * R(e * N * h)
    t += nS * (3 * R(4 * N * inner) + 2 * R(4 * P) + (R(P) if p else 0))
    S_lse = ceil(S / 32) * 32 if dtype == "fp32" else S
    t += nC * (4 * R(e * N * inner) + R(4 * B * a * S_lse) + (2 * R(8) if p else 0))
    t += nF * (2 * R(e * N * f) + (R(N * f) if p else 0))
    if p:
        t += (nS + nC + nF + 4) * R(N * h)
    t += 2 * R(8 * S * S) + Ld * R(S * S) + 2 * R(8 * N) + R(e * a * S * S)
    t += R((2 if dtype == "bf16" else 4) * N * V) + (R(2 * N * V) if amp else 0)
    t += R(2 if dtype == "bf16" else 4)  # total_weight
    return t


def t5_inference_peak(c: dict, B: int, S: int, dtype: str = "fp32") -> int:
    """Bytes alive at the peak of T5ForConditionalGeneration's inference forward (decoder
    input = the (B, S) labels, ``use_cache=False``) on top of weights and inputs: the LM
    head, where the (N, V) logits (compute dtype) are written while the encoder's output
    (the decoder's cross-attention input), the decoder's output and its scaled copy
    (``* d_model**-0.5``) are held, r bytes each (fp32 and amp: 4, bf16: 2); in amp also
    the bf16 cast of the scaled output and of the (V, h) LM-head weight (tied to the shared
    embedding). The sweep's 27 inference cases agree to 2.3 % (the largest gap, bf16 B=1
    S=512, 4.6 MiB)."""
    h, V = c.get("d_model", 512), c.get("vocab_size", 32128)
    N = B * S
    r = 2 if dtype == "bf16" else 4
    e = 4 if dtype == "fp32" else 2
    peak = e * N * V + 3 * r * N * h
    if dtype.startswith("amp-"):
        peak += 2 * N * h + 2 * V * h
    return peak


def _t5(s: _Step) -> _Ledger:
    c = s.config
    if not s.train:
        if (c.get("architectures") or ["T5ForConditionalGeneration"])[0] != \
                "T5ForConditionalGeneration":
            raise NotImplementedError("T5 inference: only T5ForConditionalGeneration has a "
                                      "closed form")
        return _Ledger(t5_shapes(c), [8 * s.batch * s.seq], 0,
                       t5_inference_peak(c, s.batch, s.seq, s.dtype), 0, HF_EXTRA_BLOCK)
    if s.amp and s.dtype != "amp-bf16":
        raise NotImplementedError("T5: amp-fp16 has no closed form yet")
    if s.attn == "eager":
        raise NotImplementedError("T5: eager attention on CUDA has no closed form yet")
    N, V, h = s.batch * s.seq, c.get("vocab_size", 32128), c.get("d_model", 512)
    a, f = c.get("num_heads", 8), c.get("d_ff", 2048)
    Le = c.get("num_layers", 6)
    Ld = c.get("num_decoder_layers") or Le
    inner = c.get("d_kv", 64) * a
    e = 4 if s.dtype == "fp32" else 2  # compute dtype
    r = 2 if s.dtype == "bf16" else 4  # residual stream
    logits = e * N * V
    # the decoder's output (and, where not saved, its scaled copy and the encoder's output,
    # fp32 in amp: the cross-attentions and the LM head keep bf16 casts) held by the model
    # at the loss
    held = r * N * h
    # backward peak: the two (N, V) gradients of nll and log-softmax (fp32 4 bytes, bf16
    # 2); amp: one fp32 (N, V) gradient (the sweep: 4NV on top of the saved bytes, as BERT)
    backward = 4 * N * V if s.amp else 2 * logits
    if not s.checkpointing:
        saved = t5_saved_cuda(c, s.batch, s.seq, s.dtype)
        # forward peak: the logits next to their log-softmax (amp keeps the bf16 logits
        # saved; its 2NV transient is read off the sweep, as BERT's)
        forward = (2 * N * V + 3 * held) if s.amp else logits + held
    else:
        # non-reentrant checkpointing keeps each block's inputs: the hidden states, the
        # encoder's output (every decoder block's), the position biases that the first block
        # of each stack returns and the others take, (1, a, S, S) each: the two learned ones
        # (fp32 in amp: the bias embedding is not autocast) and the cross-attention's zeros
        # (the query's dtype). Outside the blocks, each stack's embedding dropout mask and
        # final norm (input, normed x, rsqrt, bf16's fp32 upcast, dropout mask), the LM
        # head's input (amp: its bf16 cast and the (V, h) weight copy), the decoder's input
        # ids and the labels, the loss. Read against the sweep's 27 ckpt cases: the blocks'
        # inputs 12 r N h, the rest to 2 MiB.
        p = c.get("dropout_rate", 0.1)
        pb = rounded((4 if s.amp else e) * a * s.seq ** 2)
        saved = (Le + Ld + 1) * rounded(r * N * h) + 2 * pb + rounded(e * a * s.seq ** 2)
        norm = 2 * rounded(r * N * h) + rounded(4 * N) + (
            rounded(4 * N * h) if s.dtype == "bf16" else 0)
        saved += 2 * (norm + (2 * rounded(N * h) if p else 0))
        saved += rounded(2 * N * h) + 2 * V * h if s.amp else rounded(r * N * h)
        saved += 2 * rounded(8 * N)
        saved += rounded((2 if s.dtype == "bf16" else 4) * N * V) + (
            rounded(2 * N * V) if s.amp else 0) + rounded(2 if s.dtype == "bf16" else 4)
        forward = (2 * N * V + 2 * held) if s.amp else logits + held
        if s.amp:
            # autocast caches the bf16 casts of the blocks' weights (leaves that require
            # grad) until the forward leaves autocast: without checkpointing the matmuls
            # save them, with it they are alive only then (as GPT-2's)
            casts = [h * inner] * 4 + [h * f, f * h]
            forward += allocated_bytes([2 * n for n in casts * Le
                                        + ([h * inner] * 8 + [h * f, f * h]) * Ld])
        # each block's backward first recomputes it: where a decoder block saves more than
        # the loss's gradients, that is the backward's peak (a lower bound)
        more = dict(c, num_decoder_layers=Ld + 1, num_layers=Le)
        block = (t5_saved_cuda(more, s.batch, s.seq, s.dtype)
                 - t5_saved_cuda(dict(c, num_decoder_layers=Ld, num_layers=Le), s.batch,
                                 s.seq, s.dtype))
        backward = max(backward, block)
    # the backward's end: every gradient, and the shared embedding's (V, h) gradient from
    # one of its three uses (encoder, decoder, LM head) while it is accumulated (the sweep's
    # small cases: 1.2 MiB over it)
    ws = 2 if s.dtype == "bf16" else 4
    gradients = allocated_bytes([ws * n for n in t5_shapes(c)])
    backward = max(backward, gradients + rounded(ws * V * h) - saved)
    # "other": the two cuBLAS workspaces, 64 MiB in every dtype (the sweep's 54 T5 training
    # cases read 64 to 65 MiB besides weights, state and inputs; GPT-2's amp and bf16
    # extras do not appear)
    return _Ledger(t5_shapes(c), [8 * N], saved, forward, backward, HF_EXTRA_BLOCK,
                   workspace=64 * MiB)


# ----- CNNs (torchvision ResNet and VGG), images 3x224x224 ----------------------------------

IMAGE = 224
# cuDNN's convolutions, as the H100 measurements (torch 2.11) read: every convolution's
# forward holds, besides its input and output, a copy of its input (channels padded to a
# multiple of 8 in bf16, as the tensor cores' NHWC layout wants them; as they are in fp32)
# and an output-sized buffer, as if it ran in NHWC and converted both ways. Read off the
# inference peaks, which are that one convolution: VGG-16's conv1_2 (4 maps of 64x224x224,
# B = 16, 64 in fp32, amp and bf16 to 0.1 MiB) and ResNet-18's stem (B = 32, 128: the
# pixels' copy plus twice conv1's output, to 0.5 MiB). At B = 1 cuDNN picks other kernels
# (VGG fp32 holds one map fewer, ResNet fp32 3 MiB more): not modelled.
CONV_PAD_16BIT = 8


def _bn(C: int) -> list[int]:
    return [C, C]  # weight, bias (running statistics are buffers: see _bn_buffers)


def resnet_shapes(c: dict, dtype: str = "fp32") -> tuple[list[int], list[int]]:
    """(parameter numels, buffer bytes) of a torchvision ResNet, in registration order
    (*dtype* bf16: the running statistics are made in the default dtype, bf16).

    >>> p, b = resnet_shapes({"block": "basic", "layers": [2, 2, 2, 2]})
    >>> sum(p), len(b)
    (11689512, 60)
    """
    from .params import RESNET_DEPTHS

    block, layers = (RESNET_DEPTHS[c["depth"]] if c.get("depth") is not None
                     else (c["block"], list(c["layers"])))
    groups, base = c.get("groups", 1), c.get("width_per_group", 64)
    exp = 1 if block == "basic" else 4
    params, bns, inplanes = [3 * 64 * 49, *_bn(64)], [64], 64
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for b in range(n):
            stride = 2 if (s > 0 and b == 0) else 1
            if block == "basic":
                params += [inplanes * planes * 9, *_bn(planes), planes * planes * 9, *_bn(planes)]
                bns += [planes, planes]
            else:
                w = int(planes * (base / 64.0)) * groups
                params += [inplanes * w, *_bn(w), w * w * 9 // groups, *_bn(w),
                           w * planes * exp, *_bn(planes * exp)]
                bns += [w, w, planes * exp]
            if stride != 1 or inplanes != planes * exp:
                params += [inplanes * planes * exp, *_bn(planes * exp)]
                bns.append(planes * exp)
            inplanes = planes * exp
    nc = c.get("num_classes", 1000)
    params += [512 * exp * nc, nc]
    # each BN's running_mean, running_var (the default dtype) and num_batches_tracked (an
    # int64 scalar)
    e = 2 if dtype == "bf16" else 4
    buffers = [b for C in bns for b in (e * C, e * C, 8)]
    return params, buffers


@dataclass(frozen=True)
class CNNTerms:
    """A CNN's forward, op by op (bytes, rounded as the device's allocator rounds).

    ``saved``: what the forward and loss save for backward (training); ``forward_extra``:
    the most the forward holds on top of what is saved by then (the convolutions' copies,
    see :data:`CONV_PAD_16BIT`), counted past the end of the forward; ``inference``: the
    most that is alive at once in an inference forward (the inputs left out)."""

    saved: int
    forward_extra: int
    inference: int
    casts: int = 0  # amp: the weights' bf16 copies among the saved
    largest_cast: int = 0


class _CNNWalk:
    """Walks a CNN's forward, keeping three tallies: saved (training), the forward's peak
    over saved (training), alive (inference). Activations are *e* bytes: 4 in fp32, 2 in
    bf16 and amp (conv and linear outputs are bf16 under autocast; batch norm, max-pool
    and ReLU are in no autocast list and keep their input's dtype)."""

    def __init__(self, B: int, dtype: str, device: str):
        self.B, self.amp, self.cuda = B, dtype.startswith("amp-"), device == "cuda"
        self.e = 4 if dtype == "fp32" else 2
        self.g = MIN_BLOCK if self.cuda else 1
        self.mask = 1 if self.cuda else (4 if dtype == "fp32" else 2)
        # batch norm's mean and inverse std, nll's total_weight: fp32 on CUDA, the input's
        # dtype on the CPU
        self.stat = 2 if (dtype == "bf16" and not self.cuda) else 4
        self.saved = self.peak = self.alive = self.casts = self.largest_cast = 0

    def r(self, nbytes: int) -> int:
        return rounded(nbytes, self.g)

    def map(self, C: int, H: int, size: int | None = None) -> int:
        return self.r((size or self.e) * self.B * C * H * H)

    def op(self, saved: int, extra: int, alive: int) -> None:
        self.saved += saved
        self.peak = max(self.peak, self.saved + extra)
        self.alive = max(self.alive, alive)

    def conv(self, C_in: int, H_in: int, C_out: int, H_out: int, weight: int, held: int,
             pixels: bool = False) -> int:
        """A convolution (or a Linear with H = 1) whose input is *held* (0: the pixels);
        the output's bytes."""
        out = self.map(C_out, H_out)
        copy = tmp = 0
        if self.cuda and H_in > 1:  # cuDNN's copies (a Linear is a cuBLAS matmul: none)
            pad = -(-C_in // CONV_PAD_16BIT) * CONV_PAD_16BIT if self.e == 2 else C_in
            copy, tmp = self.map(pad, H_in), out
        # amp: autocast's bf16 copy of the weight, saved for backward (and of the pixels,
        # the first convolution's input)
        cast = self.r(2 * weight) if self.amp else 0
        self.casts += cast
        self.largest_cast = max(self.largest_cast, cast)
        if self.amp and pixels:
            cast += self.map(3, IMAGE, 2)
        self.op(out + cast, copy + tmp, held + cast + copy + tmp + out)
        return out

    def bn(self, C: int, x: int, held: int, kept: bool = True) -> int:
        """Batch norm of the map *x* (ReLU in place after it): saves its input (counted as
        the conv's output) and fp32 mean and inverse std; its output is the next op's
        input, saved (*kept*), or only added to (a downsampled identity)."""
        self.op((x if kept else 0) + 2 * self.r(self.stat * C), 0, held + 2 * x)
        return x

    def maxpool(self, C: int, H_out: int, x: int, held: int) -> int:
        out, indices = self.map(C, H_out), self.map(C, H_out, 8)
        self.op(out + indices, 0, held + x + out + indices)
        return out

    def loss(self, classes: int) -> None:
        """The log-softmax output (fp32: autocast upcasts) and nll's total_weight."""
        self.op(self.r((2 if self.e == 2 and not self.amp else 4) * self.B * classes)
                + self.r(self.stat), 0, 0)

    def terms(self) -> CNNTerms:
        return CNNTerms(self.saved, max(0, self.peak - self.saved), self.alive, self.casts,
                        self.largest_cast)


def resnet_terms(c: dict, B: int, *, dtype: str = "fp32", device: str = "cuda") -> CNNTerms:
    """A torchvision ResNet's :class:`CNNTerms`. Saved, with E_s the elements of one
    (B, C, H, W) map at a block's output:

    * stem: conv1's output (BN's input), BN's output (ReLU in place keeps it: the max-pool's
      input), the max-pool's int64 indices and its output (the first block's input);
    * basic block: conv1 out, bn1 out (= relu out = conv2 in), conv2 out, the sum
      (``out += identity`` then ReLU, in place: the block's output): 4 maps, plus the
      downsample conv's output where there is one;
    * bottleneck: conv1, bn1, conv2, bn2 outputs at the width w, conv3 out and the sum;
    * BN's saved mean and inverse std (C fp32 each); the pooled (B, 512x) features, the
      classifier's log-softmax (B, classes) and nll's total_weight scalar;
    * amp: autocast's bf16 copies of the pixels and of every conv and fc weight.

    Inference keeps a block's input (the identity) while the block runs.
    """
    from .params import RESNET_DEPTHS

    w_ = _CNNWalk(B, dtype, device)
    block, layers = (RESNET_DEPTHS[c["depth"]] if c.get("depth") is not None
                     else (c["block"], list(c["layers"])))
    groups, base = c.get("groups", 1), c.get("width_per_group", 64)
    exp = 1 if block == "basic" else 4
    H = IMAGE // 2  # conv1 has stride 2
    x = w_.conv(3, IMAGE, 64, H, 3 * 64 * 49, 0, pixels=True)
    x = w_.bn(64, x, 0)
    H = (H + 1) // 2  # the max-pool: stride 2, padding 1
    x = w_.maxpool(64, H, x, 0)
    inplanes = 64
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for b in range(n):
            stride = 2 if (s > 0 and b == 0) else 1
            H_in, H = H, H // stride
            out_c = planes * exp
            if block == "basic":
                convs = [(inplanes, H_in, planes, H, inplanes * planes * 9),
                         (planes, H, planes, H, planes * planes * 9)]
            else:
                w = int(planes * (base / 64.0)) * groups
                # torchvision puts the stride on the 3x3 conv (conv2)
                convs = [(inplanes, H_in, w, H_in, inplanes * w),
                         (w, H_in, w, H, w * w * 9 // groups),
                         (w, H, out_c, H, w * out_c)]
            y, y_held = x, 0  # the block's input is held as the identity, not twice
            for C_in, Hi, C_out, Ho, weight in convs:
                y = w_.conv(C_in, Hi, C_out, Ho, weight, x + y_held)
                y = w_.bn(C_out, y, x)
                y_held = y
            if stride != 1 or inplanes != out_c:
                d = w_.conv(inplanes, H_in, out_c, H, inplanes * out_c, x + y)
                w_.bn(out_c, d, x + y, kept=False)
            x, inplanes = y, out_c  # out += identity; relu: in place
    nc = c.get("num_classes", 1000)
    pooled = w_.r(w_.e * B * 512 * exp)
    w_.op(pooled, 0, x + pooled)
    w_.conv(512 * exp, 1, nc, 1, 512 * exp * nc, pooled)  # fc: logits, not saved ...
    w_.saved -= w_.map(nc, 1)  # ... (the log-softmax saves its output)
    w_.loss(nc)
    return w_.terms()


def resnet_saved(c: dict, B: int, *, dtype: str = "fp32", device: str = "cuda") -> int:
    """Bytes a torchvision ResNet's forward and loss save for backward (:func:`resnet_terms`)."""
    return resnet_terms(c, B, dtype=dtype, device=device).saved


def vgg_shapes(c: dict) -> list[int]:
    """Parameter numels of a torchvision VGG (no batch norm).

    >>> sum(vgg_shapes({"cfg": "D"}))
    138357544
    """
    from .params import _Fields, _vgg_cfg

    params, c_in = [], 3
    for v in _vgg_cfg(_Fields(c)):
        if v != "M":
            params += [c_in * v * 9, v]
            c_in = v
    nc = c.get("num_classes", 1000)
    return params + [512 * 49 * 4096, 4096, 4096 * 4096, 4096, 4096 * nc, nc]


def vgg_terms(c: dict, B: int, *, dtype: str = "fp32", device: str = "cuda") -> CNNTerms:
    """A torchvision VGG's (no batch norm) :class:`CNNTerms`. Saved: each conv's output
    (ReLU in place keeps it; it is the next conv's or the max-pool's input), each max-pool's
    int64 indices and output, the 7x7 adaptive pool's output, in the classifier two ReLU
    outputs, two dropout masks (1 byte on CUDA, the activations' width on the CPU) and their
    outputs, the log-softmax (B, classes) and nll's total_weight scalar; amp adds autocast's
    bf16 copies of the pixels and of every weight. Inference: dropout is the identity."""
    from .params import _Fields, _vgg_cfg

    w_ = _CNNWalk(B, dtype, device)
    C, H, x, first = 3, IMAGE, 0, True
    for v in _vgg_cfg(_Fields(c)):
        if v == "M":
            H //= 2
            x = w_.maxpool(C, H, x, 0)
        else:
            x = w_.conv(C, H, v, H, C * v * 9, x, pixels=first)
            C, first = v, False
    pooled = w_.map(512, 7)  # the adaptive average pool's output
    w_.op(pooled, 0, x + pooled)
    x = pooled
    nc = c.get("num_classes", 1000)
    for n_in in (512 * 49, 4096):
        x = w_.conv(n_in, 1, 4096, 1, n_in * 4096, x)  # its output: ReLU's, in place
        w_.op(w_.r(w_.mask * B * 4096) + x, 0, 0)  # dropout's mask and output (training)
    w_.conv(4096, 1, nc, 1, 4096 * nc, x)
    w_.saved -= w_.map(nc, 1)  # the logits are not saved
    w_.loss(nc)
    return w_.terms()


def vgg_saved(c: dict, B: int, *, dtype: str = "fp32", device: str = "cuda") -> int:
    """Bytes a torchvision VGG saves for backward (:func:`vgg_terms`)."""
    return vgg_terms(c, B, dtype=dtype, device=device).saved


# Besides weights, optimizer state and inputs, a CNN's (and the LSTM's) training step starts
# with 65 MiB allocated in every precision (every ResNet-18, VGG-16 and LSTM training case of
# the H100 sweep, within 1 MiB): the two cuBLAS workspaces of WORKSPACE's fp32 training,
# whatever the dtype. Inference holds WORKSPACE's 33 MiB like the transformers.
CUDNN_FAMILY_WORKSPACE = 65 * MiB


def _cnn(s: _Step) -> _Ledger:
    c, B = s.config, s.batch
    if s.dtype == "amp-fp16":
        raise NotImplementedError("CNNs: amp-fp16 has no closed form yet")
    size = 2 if s.dtype == "bf16" else 4
    inputs = [size * B * 3 * IMAGE * IMAGE, 8 * B]  # pixels, labels
    if c["model_type"] == "resnet":
        params, buffers = resnet_shapes(c, s.dtype)
        t = resnet_terms(c, B, dtype=s.dtype)
    else:
        params, buffers = vgg_shapes(c), []
        t = vgg_terms(c, B, dtype=s.dtype)
    if not s.train:
        return _Ledger(params, inputs, 0, t.inference, 0, buffers=buffers)
    # The backward's peak: a CNN's parameters sit at its end (last stage, classifier) and
    # its activations at its start, so nearly every gradient is allocated before much is
    # freed: the gradients' bytes (ResNet-18: 46.3 MiB measured for 46.8 of gradients).
    grads = sum(rounded(s.weight_size * n) for n in params)
    # amp: each layer's bf16 weight copy is released once its gradient is made (bf16, then
    # cast to the fp32 .grad): at the peak all are gone but, at worst, the largest one's
    return _Ledger(params, inputs, t.saved, t.forward_extra,
                   grads - t.casts + t.largest_cast,
                   backward_gradients=grads, buffers=buffers, workspace=CUDNN_FAMILY_WORKSPACE)


# ----- the course LSTM (nn.LSTM + Linear on the last step), cuDNN ---------------------------

# cuDNN's RNN workspace (forward, and again in the backward), opaque on the CPU: read off
# H100 measurements (torch 2.11, cuDNN 9.19) of nn.LSTM(100, 256, 2) for S in 1..2000 and
# B in 1..256 (a probe beside the sweep) and checked on the sweep's 54 LSTM cases. In
# elements of the activations' dtype (e bytes) per batch element and hidden unit it grows
# by 5.5 per step up to 256 steps, then by 1.39 per step (inference; training up to ~400
# steps), while training from ~500 steps holds 3.82 per step for the whole sequence; plus
# 16 (training) or 20 (inference) whatever S; on top of a constant 20 MiB (18.25 MiB in
# bf16 and amp).
LSTM_WORKSPACE = 20 * MiB
LSTM_WORKSPACE_16BIT = 18.25 * MiB


def lstm_workspace(S: int, B: int, h: int, e: int, train: bool) -> int:
    """Bytes of cuDNN's RNN workspace (see :data:`LSTM_WORKSPACE`)."""
    if train and S >= 500:
        per = 3.82 * S
    else:
        per = 5.5 * min(S, 256) + 1.39 * max(0, S - 256)
    per += 16 if train else 20  # per batch element, whatever S
    base = LSTM_WORKSPACE_16BIT if e == 2 else LSTM_WORKSPACE
    return int(base + e * B * h * per)


def lstm_shapes(c: dict) -> tuple[list[int], list[int]]:
    """(LSTM parameter numels, classifier numels) of the course LSTM classifier.

    >>> sum(map(sum, lstm_shapes({"input_size": 100, "hidden_size": 256, "num_layers": 2,
    ...                           "num_classes": 10})))
    895498
    """
    n_in, h, L = c["input_size"], c["hidden_size"], c.get("num_layers", 1)
    rnn = []
    for layer in range(L):
        rnn += [4 * h * (n_in if layer == 0 else h), 4 * h * h, 4 * h, 4 * h]
    nc = c["num_classes"]
    return rnn, [nc * h, nc]


def lstm_saved(c: dict, B: int, S: int, *, dtype: str = "fp32") -> int:
    """Bytes the course LSTM's training forward and loss keep for backward (cuDNN):

    * cuDNN's reserve space: per step, layer and batch element the four gates and the cell
      state (5h), and the hidden state of every layer but the top one, whose hidden states
      are the output: ``e*S*B*h*(6L - 1)`` bytes plus 256 (checked to the byte on the H100
      with ``saved_tensors_hooks``: 11,264,256 B for S = 1000, B = 1, fp32);
    * the output y (S, B, h), which the classifier's input ``out[-1]`` is a view of;
    * the zero initial states h0, c0 (L, B, h);
    * the flat weight buffer, where the parameters are not one already: bf16 (cuDNN does
      not take bf16 in ``flatten_parameters``, so each forward packs a copy) and amp
      (autocast's bf16 copies, packed); amp also keeps the bf16 cast of the input and the
      classifier weight's;
    * the log-softmax (B, classes) (fp32 under autocast) and nll's total_weight."""
    n_in, h, L = c["input_size"], c["hidden_size"], c.get("num_layers", 1)
    nc = c["num_classes"]
    amp = dtype.startswith("amp-")
    e = 4 if dtype == "fp32" else 2
    rnn, _ = lstm_shapes(c)
    saved = rounded(e * S * B * h * (6 * L - 1) + 256) + rounded(e * S * B * h)
    saved += 2 * rounded(e * L * B * h)
    if dtype != "fp32":
        saved += rounded(2 * sum(rnn))
    if amp:
        saved += rounded(2 * S * B * n_in) + rounded(2 * nc * h)
    saved += rounded((2 if dtype == "bf16" else 4) * B * nc) + rounded(4)
    return saved


def _lstm(s: _Step) -> _Ledger:
    c, B, S = s.config, s.batch, s.seq
    if s.dtype == "amp-fp16":
        raise NotImplementedError("the LSTM: amp-fp16 has no closed form yet")
    if c.get("bidirectional") or c.get("proj_size"):
        raise NotImplementedError("the LSTM: only one direction without projection")
    n_in, h, L = c["input_size"], c["hidden_size"], c.get("num_layers", 1)
    rnn, fc = lstm_shapes(c)
    e = 4 if s.dtype == "fp32" else 2
    inputs = [s.weight_size * S * B * n_in, 8 * B]  # sequence, labels
    y = rounded(e * S * B * h)
    packed = rounded(2 * sum(rnn)) if s.dtype != "fp32" else 0  # bf16 weights, packed
    cast = rounded(2 * S * B * n_in) if s.amp else 0  # autocast's bf16 copy of the input
    ws = lstm_workspace(S, B, h, e, s.train)
    if not s.train:
        # the output, the workspace, h0 and c0, the packed weights and the input's cast
        forward = y + ws + 2 * rounded(e * L * B * h) + packed + cast
        return _Ledger(rnn + fc, inputs, 0, forward, 0)
    saved = lstm_saved(c, B, S, dtype=s.dtype)
    # the backward's peak is cuDNN's backward: the output's gradient (zeros but the last
    # step, from out[-1]'s backward), the input's (cuDNN computes it though nothing needs
    # it), the packed weights' gradient and the workspace again
    grads = sum(rounded(s.weight_size * n) for n in rnn + fc)
    backward = y + rounded(e * S * B * n_in) + rounded(e * sum(rnn)) + ws
    return _Ledger(rnn + fc, inputs, saved, ws, max(backward, grads),
                   workspace=CUDNN_FAMILY_WORKSPACE)


_FAMILIES = {"gpt2": _gpt2, "bert": _bert, "t5": _t5, "llama": _llama, "resnet": _cnn, "vgg": _cnn,
             "lstm": _lstm}


# ----- the step ----------------------------------------------------------------------------

def _optimizer_terms(name: str | None, params: int) -> tuple[int, int]:
    """(state, temporaries of step()) for *params* bytes of rounded parameter tensors.

    AdamW keeps exp_avg and exp_avg_sq (its ``step`` counters are CPU scalars);
    the foreach implementation's ``_foreach_sqrt(exp_avg_sq)`` is one parameter-sized
    temporary list. SGD with momentum keeps one buffer and updates in place.
    """
    if name == "adamw":
        return 2 * params, params
    if name == "sgd-momentum":
        return params, 0
    return 0, 0


def predict(model, mode: str = "train", dtype: str = "fp32", optimizer: str | None = None,
            batch: int = 1, seq: int | None = None, checkpointing: bool = False,
            attn: str | None = None) -> Prediction:
    """Predict the standard step of *model* (a catalogue name, a config dict, or a
    ``measure.StepSpec`` with the other arguments left out).

    >>> p = predict("gpt2", batch=8, seq=1024, optimizer="sgd")
    >>> p.components["optimizer"], p.label
    (0, 'gpt2 train fp32 sgd B=8 S=1024')
    """
    s = _step(model, mode, dtype, optimizer, batch, seq, checkpointing, attn)
    mt = s.config["model_type"]
    if mt not in _FAMILIES:
        raise NotImplementedError(f"no activation closed form for model_type {mt!r} yet "
                                  f"(done: {', '.join(_FAMILIES)})")
    ledger = _FAMILIES[mt](s)
    # every parameter-sized list (gradients, each optimizer state, foreach temporaries) is
    # as many fresh allocations as the weights: replayed like them, since a tensor just
    # above a multiple of 2 MiB (from 10 MiB up) leaves its segment's rest unsplit, counted
    # as allocated (the CS336 LM's (6400, 1600) fp32 matrices: 0.94 MiB each, 180 MiB per
    # list; the sweep's after-backward readings carry exactly that)
    sizes = [n * s.weight_size for n in ledger.parameters]
    params = allocated_bytes(sizes)
    # the weights are the first allocations of the process: replay the allocator on them
    # (bf16's smaller tensors leave unsplit blocks that rounding alone misses)
    weights = allocated_bytes([n * s.weight_size for n in ledger.parameters]
                              + ledger.buffers) + ledger.extra_weight_bytes
    inputs = sum(rounded(n) for n in ledger.inputs)
    other = int(WORKSPACE[(s.mode, s.precision)] if ledger.workspace is None
                else ledger.workspace)
    if not s.train:
        before = weights + inputs + other
        forward = before + ledger.forward_transient
        return Prediction(s.label, before, forward, before, None, None, None, before,
                          forward, "forward",
                          dict(weights=weights, gradients=0, optimizer=0,
                               activations=ledger.forward_transient, other=inputs + other))
    state, temporaries = _optimizer_terms(s.optimizer, params)
    before = weights + state + inputs + other
    after_forward = before + ledger.saved
    forward_peak = after_forward + ledger.forward_transient
    after_backward = before + params
    # the backward ends holding every gradient: where the weights outweigh the activations
    # (large models, small batches) that, not the loss's start, bounds its peak from below
    backward_peak = max(after_forward + ledger.backward_transient, after_backward)
    optimizer_peak = after_backward + temporaries
    phases = {"forward": forward_peak, "backward": backward_peak, "optimizer": optimizer_peak}
    phase = max(phases, key=phases.get)
    # the split at the peak: (gradients, activations) on top of weights, state and other
    if phase == "forward":
        gradients, activations = 0, ledger.saved + ledger.forward_transient
    elif phase == "optimizer" or backward_peak == after_backward:
        gradients, activations = params, 0
    else:
        gradients = ledger.backward_gradients
        activations = ledger.saved + ledger.backward_transient - gradients
    components = dict(weights=weights, gradients=gradients,
                      optimizer=state + (temporaries if phase == "optimizer" else 0),
                      activations=activations, other=inputs + other)
    return Prediction(s.label, before, forward_peak, after_forward, backward_peak,
                      after_backward, optimizer_peak, before, phases[phase], phase, components)


# ----- the KV cache ---------------------------------------------------------------------------

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}


def kv_cache_bytes(model, batch: int, seq: int, dtype: str = "bf16", *,
                   latent: bool = True) -> int:
    """Bytes of the KV cache after *seq* tokens for *batch* sequences (nominal: elements times
    bytes, no allocator rounding), for a catalogue/named model or a config dict.

    Per layer and token, a cache keeps a key and a value per key-value head:
    ``2 * kv_heads * head_dim`` numbers. That is multi-head attention when ``kv_heads`` is
    the number of heads ``a`` (GPT-2, the CS336 LM), grouped-query attention when fewer
    (LLaMA, Qwen3, Grok: 8 or 4). DeepSeek-V3's multi-head latent attention needs only the
    compressed latent and the shared rotary key, ``r_kv + d_r`` numbers (``latent=True``,
    what inference engines keep, and what recent transformers versions cache);
    ``latent=False`` gives the up-projected keys and values of every head, what an
    implementation that expands the latent before caching keeps (the inference chapter of
    the book checks which one the installed transformers caches). T5 also keeps the cross-attention's keys
    and values of the (here equally long) encoder output. Encoders keep no cache.

    >>> kv_cache_bytes("gpt2", 1, 1024, "fp32") / 2**20  # 2 * 12 layers * 768 * 1024 * 4
    72.0
    >>> per_token = lambda name, **kw: kv_cache_bytes(name, 1, 1, "bf16", **kw)
    >>> per_token("deepseek-v3"), per_token("deepseek-v3", latent=False)
    (70272, 4997120)
    >>> per_token("qwen3-235b-a22b")  # 94 layers * 2 * 4 kv heads * 128 * 2 bytes
    192512
    """
    from .params import named_config

    c = dict(model) if isinstance(model, dict) else named_config(model)
    c = c.get("text_config") or c  # LLaMA 4: the language model's config
    size = DTYPE_BYTES[dtype]
    tokens = batch * seq
    mt = c["model_type"]
    if mt == "bert":
        raise ValueError("an encoder keeps no KV cache: each forward sees the whole input")
    if mt == "gpt2":
        return 2 * c["n_layer"] * c["n_embd"] * tokens * size
    if mt == "t5":
        layers = c.get("num_decoder_layers") or c["num_layers"]
        inner = c["num_heads"] * c["d_kv"]
        return 2 * 2 * layers * inner * tokens * size  # self- and cross-attention
    L, h, a = c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"]
    if mt == "deepseek_v3":
        if latent:
            return L * (c["kv_lora_rank"] + c["qk_rope_head_dim"]) * tokens * size
        key = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
        return L * a * (key + c["v_head_dim"]) * tokens * size
    kv_heads = c.get("num_key_value_heads") or a
    head_dim = c.get("head_dim") or h // a
    return 2 * L * kv_heads * head_dim * tokens * size
