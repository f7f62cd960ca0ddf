"""Tensors computed from parameters alone (a composed kernel, a kernel's spectrum), kept between calls while
autograd does not need them: at inference the weights never change, so they are computed once."""

from typing import Callable, Sequence, TypeVar, cast

import torch
from torch import Tensor

from pixelsplat_ns.core.torch_versions import autocast_dtype

T = TypeVar("T")


class DerivedWeights:
    """A per-module cache, keyed by the parameters' storage and version counters.

    Each entry holds its parameters' storages, so no other tensor can take their addresses while it lives;
    in-place updates (optimizer steps, ``load_state_dict``) bump the version counters. Writes through
    ``.data`` bypass those counters and are not seen. The key includes the autocast state of the parameters'
    device: a value computed under autocast (in bfloat16, say) is not reused outside it, nor the reverse."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[list[Tensor], tuple, object]] = {}

    def __call__(self, name: str, parameters: Sequence[Tensor], compute: Callable[[], T]) -> T:
        if torch.is_grad_enabled() and any(p.requires_grad for p in parameters):
            self._entries.pop(name, None)
            return compute()
        key = (
            autocast_dtype(parameters[0].device.type),
            *((p.data_ptr(), p._version, p.dtype, p.device) for p in parameters),
        )
        entry = self._entries.get(name)
        if entry is None or entry[1] != key:
            entry = self._entries[name] = ([p.detach() for p in parameters], key, compute())
        # Each name is filled by one call site, whose ``compute`` always returns the same type.
        return cast(T, entry[2])
