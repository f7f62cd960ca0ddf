"""The encoder's random draws (the depth bins of each pixel, the order of the other views' embeddings) from one
generator for the whole batch, or from one generator per example.

Per example, an example's draws do not depend on the batch it shares: training on N devices with batch b each
draws for every example what one device with batch N x b draws for it, which is what makes the two runs' averaged
gradients equal (``pretraining.model``). One generator (``torch.Generator``) or none (torch's global one) draws
as the official code does: one stream for the batch.
"""

from typing import Optional, Sequence, Union

import numpy as np
import torch
from jaxtyping import Float, Int64
from torch import Tensor

Generators = Union[None, torch.Generator, Sequence[torch.Generator]]
"""None (torch's global generator), one generator for the batch, or one per example (in batch order)."""


def per_example_generators(step: int, first_example: int, count: int, device) -> list[torch.Generator]:
    """Generators for ``count`` examples of training step ``step``, the first being example ``first_example`` of
    the step's global batch (over every process). Each is seeded by (step, example), through numpy's
    ``SeedSequence`` so that nearby pairs give unrelated streams."""
    seeds = [np.random.SeedSequence([step, first_example + i]).generate_state(1)[0] for i in range(count)]
    return [torch.Generator(device).manual_seed(int(seed)) for seed in seeds]


def _device_of(generator: Optional[torch.Generator], fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


def uniform(shape: tuple[int, ...], device: torch.device, generator: Generators) -> Float[Tensor, "*shape"]:
    """``torch.rand(shape)`` on ``device``; with one generator per example, example i's values (``[i]``) come
    from generator i alone. Raises ``ValueError`` when the generators do not match the batch (``shape[0]``)."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(shape, device=device, generator=generator)
    _check_count(generator, shape[0])
    return torch.stack([torch.rand(shape[1:], device=device, generator=g) for g in generator])


def permutations(batch: int, n: int, device: torch.device, generator: Generators) -> Int64[Tensor, "batch n"]:
    """A random order of ``n`` items for each example: one order shared by the batch from a single generator (as
    the official code draws it), one per example from per-example generators. Raises ``ValueError`` when the
    generators do not match ``batch``."""
    if generator is None or isinstance(generator, torch.Generator):
        order = torch.randperm(n, generator=generator, device=_device_of(generator, device)).to(device)
        return order.expand(batch, n)
    _check_count(generator, batch)
    return torch.stack([torch.randperm(n, generator=g, device=g.device).to(device) for g in generator])


def _check_count(generators: Sequence[torch.Generator], batch: int) -> None:
    if len(generators) != batch:
        raise ValueError(f"{len(generators)} per-example generators for a batch of {batch} examples")
