"""Looking inside a built model: tensor shapes by running it, parameters by module.

torchinfo gives the whole summary; these helpers answer the narrower questions the
book asks, such as "what shape leaves each VGG block?", by running the real module
with forward hooks.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> for row in trace_shapes(net, torch.randn(3, 4), types=(nn.Linear,)):
...     print(row.name, row.kind, row.output_shape, row.parameters)
0 Linear (3, 8) 40
2 Linear (3, 2) 18
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn


@dataclass(frozen=True)
class ShapeRow:
    """One module's call: qualified name, class, output shape, parameters inside it."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int


def _first_tensor(output: object) -> torch.Tensor | None:
    """The tensor a module call produced (HF modules return tuples and dataclasses)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def trace_shapes(model: nn.Module, *args, types: tuple[type, ...] = (),
                 names: Iterable[str] = (), select: Callable[[str, nn.Module], bool] | None = None,
                 **kwargs) -> list[ShapeRow]:
    """Run ``model(*args, **kwargs)`` and record the output shape of selected submodules.

    A submodule is recorded if it is an instance of one of *types*, its qualified name
    is in *names*, or *select(name, module)* is true. Rows come in call order; a module
    called twice appears twice. Gradients are off: this inspects, it does not train.
    """
    wanted = set(names)
    rows: list[ShapeRow] = []
    handles = []

    def hook_for(name: str, module: nn.Module):
        params = sum(p.numel() for p in module.parameters())

        def hook(_module, _inputs, output):
            tensor = _first_tensor(output)
            shape = tuple(tensor.shape) if tensor is not None else ()
            rows.append(ShapeRow(name, type(module).__name__, shape, params))

        return hook

    for name, module in model.named_modules():
        if not name:
            continue
        chosen = (isinstance(module, types) if types else False) or name in wanted or (
            select is not None and select(name, module))
        if chosen:
            handles.append(module.register_forward_hook(hook_for(name, module)))
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def parameters_by_child(model: nn.Module) -> dict[str, int]:
    """Parameters of each direct child, tied tensors attributed to the first child that owns them.

    The values add up to the model's unique parameter count.

    >>> from torch import nn
    >>> parameters_by_child(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    {'0': 40, '1': 0, '2': 18}
    """
    seen: set[int] = set()
    counts: dict[str, int] = {}
    for child_name, child in model.named_children():
        total = 0
        for p in child.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        counts[child_name] = total
    direct = sum(p.numel() for p in model.parameters(recurse=False) if id(p) not in seen)
    if direct:
        counts["(own)"] = direct
    return counts
