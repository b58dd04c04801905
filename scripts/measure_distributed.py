"""Measure the standard step on every rank of a torchrun job: DDP or FSDP2.

    torchrun --nproc-per-node N scripts/measure_distributed.py --model gpt2 --batch 8 \\
        --seq 1024 --shard fsdp --out result.json

Each rank builds the model (default init, as ``modelnotes.measure`` does), wraps it (``ddp``:
``DistributedDataParallel`` with its defaults; ``fsdp`` / ``fsdp-no-reshard``: FSDP2's
``fully_shard`` on every transformer block, then on the root, with ``reshard_after_forward``
True / False for the blocks and left to its default for the root; ``none``: no wrapper),
runs the standard step twice (``modelnotes.measure.standard_step``) and reads over the second
one, phase by phase, ``max_memory_allocated`` (absolute: weights, optimizer state, buffers
and all), ``max_memory_reserved``, and the device level (``mem_get_info``: total - free,
which includes the CUDA context and NCCL's own buffers). The batch is per GPU. Rank 0 gathers
every rank's reading and writes one JSON file: ``{"provenance": ..., "ranks": [...]}``.

Each torchrun job is one fresh set of processes: run one configuration per job. On a CPU
(``--device cpu``) the gloo backend runs the same code and nothing is read from an allocator
(a smoke test). NCCL's NVLink multicast (NVLS) is left off (``NCCL_NVLS_ENABLE=0``), as on
the book's machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # before NCCL is loaded

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

from modelnotes.measure import (  # noqa: E402
    StepSpec,
    _nbytes,
    _Phases,
    build_step_model,
    make_inputs,
    make_optimizer,
    optimizer_state_bytes,
    standard_step,
)

SHARDS = ("none", "ddp", "fsdp", "fsdp-no-reshard")


def blocks_of(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks: the largest ModuleList (GPT-2's ``transformer.h``, LLaMA's
    ``model.layers``, ...)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no ModuleList of blocks to shard")
    return max(lists, key=len)


def wrap(model: nn.Module, shard: str, device: torch.device) -> nn.Module:
    if shard == "none":
        return model
    if shard == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    from torch.distributed.fsdp import fully_shard

    reshard = shard == "fsdp"
    for block in blocks_of(model):
        fully_shard(block, reshard_after_forward=reshard)
    fully_shard(model, reshard_after_forward=None if reshard else False)
    return model


def measure(args, rank: int, device: torch.device) -> dict:
    spec = StepSpec(args.model, dtype=args.dtype, optimizer=args.optimizer, batch=args.batch,
                    seq=args.seq)
    cuda = device.type == "cuda"
    out = dict(rank=rank, world_size=dist.get_world_size(), shard=args.shard,
               spec=spec.to_dict(), label=spec.label(),
               device=torch.cuda.get_device_name(device) if cuda else "cpu",
               torch=torch.__version__, backend=dist.get_backend(),
               nccl_nvls_enable=os.environ.get("NCCL_NVLS_ENABLE"))
    if cuda:
        free, total = torch.cuda.mem_get_info(device)
        out.update(device_total_bytes=total, device_used_at_start_bytes=total - free)
        nn.Linear(1, 1, device=device)  # the first init's small block (measure.py)
    torch.manual_seed(0)
    phases = _Phases(device)
    phases.enter("build")
    model = build_step_model(spec, device)
    phases.enter("wrap")
    model = wrap(model, args.shard, device)
    phases.enter("inputs")
    inputs = make_inputs(spec, device)
    optimizer = make_optimizer(spec.optimizer, model.parameters())
    standard_step(spec, model, inputs, optimizer, phases=phases, prefix="warmup:")
    gradient_bytes, _ = standard_step(spec, model, inputs, optimizer, phases=phases)
    out.update(gradient_bytes=gradient_bytes,
               optimizer_state_bytes=optimizer_state_bytes(optimizer),
               local_parameter_bytes=_nbytes(getattr(p, "_local_tensor", p)
                                             for p in model.parameters()))
    if cuda:
        measured = ("forward", "backward", "optimizer")
        free, total = torch.cuda.mem_get_info(device)
        start, peak = phases.start, phases.peak
        out.update(
            weights_bytes=start["wrap"] - start["build"],
            wrapped_bytes=start["inputs"] - start["build"],
            before_bytes=start["forward"], after_forward_bytes=start["backward"],
            after_backward_bytes=start["optimizer"], after_bytes=start["end"],
            forward_peak_bytes=peak["forward"], backward_peak_bytes=peak["backward"],
            optimizer_peak_bytes=peak["optimizer"],
            peak_bytes=max(peak[p] for p in measured),
            peak_phase=max(measured, key=lambda p: peak[p]),
            warmup_peak_bytes=max(v for k, v in peak.items() if k.startswith("warmup:")),
            reserved_bytes=max(phases.reserved[p] for p in measured),
            reserved_after_bytes=torch.cuda.memory_reserved(device),
            device_used_bytes=total - free)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--batch", type=int, default=2, help="per GPU")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--shard", choices=SHARDS, default="ddp")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None)
    parser.add_argument("--out", required=True, help="JSON file rank 0 writes")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    use_cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if use_cuda else "gloo",
                            device_id=device if use_cuda else None)
    rank = dist.get_rank()
    try:
        result = measure(args, rank, device)
    except torch.cuda.OutOfMemoryError as error:
        result = dict(rank=rank, oom=True, error=str(error).splitlines()[0],
                      peak_bytes=torch.cuda.max_memory_allocated(device))
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, result)
    if rank == 0:
        from modelnotes.provenance import collect

        doc = {"provenance": collect().as_dict(), "ranks": gathered}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=1, default=str) + "\n")
        r = gathered[0]
        if "peak_bytes" in r and r.get("peak_bytes") is not None:
            print(f"{r.get('label')} on {len(gathered)} GPU(s) {args.shard}: peak "
                  f"{r['peak_bytes'] / 2**30:.3f} GiB ({r.get('peak_phase')})", flush=True)
        else:
            print(f"{r.get('label')} on {len(gathered)} GPU(s) {args.shard}: ran on "
                  f"{r.get('device')}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
