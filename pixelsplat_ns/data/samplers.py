"""View samplers: which frames of a scene are the context views and which are the targets."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Int64
from torch import Tensor

from .chunks import ChunkFormatError
from .skips import SkipReason, SkipScene

Views = tuple[Int64[Tensor, " context"], Int64[Tensor, " target"]]


@runtime_checkable  # so that a run-time type checker can check an argument annotated with it
class ViewSampler(Protocol):
    def sample(self, key: str, num_frames: int, generator: torch.Generator | None = None, step: int = 0) -> Views:
        """Context and target frame indices for the batch of training step ``step``; raises ``SkipScene`` when
        the scene cannot serve."""
        ...


@dataclass
class BoundedSamplerConfig:
    """Defaults are the paper's RealEstate10k / ACID training values (``bounded_re10k.yaml``)."""

    num_context_views: int = 2
    """Context views: the two ends of the gap, plus random distinct frames inside it when more than 2."""
    num_target_views: int = 4
    """Target views, drawn independently (repeats allowed) between the context views."""
    min_distance_between_context_views: int = 45
    """Smallest context gap in frames after the warm-up."""
    max_distance_between_context_views: int = 45
    """Largest context gap in frames after the warm-up."""
    min_distance_to_context_views: int = 0
    """Targets keep at least this many frames away from the context views."""
    warm_up_steps: int = 150_000
    """Steps over which the gap grows linearly from the initial to the final values (0: no warm-up)."""
    initial_min_distance_between_context_views: int = 25
    """Smallest context gap at step 0."""
    initial_max_distance_between_context_views: int = 25
    """Largest context gap at step 0."""


class BoundedViewSampler:
    """The paper's training sampler: a context gap that widens with the global step, targets in between."""

    def __init__(self, config: BoundedSamplerConfig) -> None:
        self.config = config

    def gap_bounds(self, step: int) -> tuple[int, int]:
        """(min, max) context gap at training step ``step``, before clipping to the scene's length."""
        c = self.config
        if c.warm_up_steps <= 0:
            return c.min_distance_between_context_views, c.max_distance_between_context_views
        fraction = step / c.warm_up_steps

        def schedule(initial: int, final: int) -> int:
            return min(initial + int((final - initial) * fraction), final)

        return (
            schedule(c.initial_min_distance_between_context_views, c.min_distance_between_context_views),
            schedule(c.initial_max_distance_between_context_views, c.max_distance_between_context_views),
        )

    def sample(self, key: str, num_frames: int, generator: torch.Generator | None = None, step: int = 0) -> Views:
        c = self.config
        min_gap, max_gap = self.gap_bounds(step)
        max_gap = min(num_frames - 1, max_gap)
        min_gap = max(2 * c.min_distance_to_context_views, min_gap)
        if max_gap < min_gap:
            raise SkipScene(SkipReason.TOO_FEW_FRAMES, key, f"{num_frames} frames, context gap needs {min_gap}")
        gap = int(torch.randint(min_gap, max_gap + 1, (), generator=generator))
        left = int(torch.randint(num_frames - gap, (), generator=generator))
        right = left + gap
        target = torch.randint(
            left + c.min_distance_to_context_views,
            right + 1 - c.min_distance_to_context_views,
            (c.num_target_views,),
            generator=generator,
        )
        num_extra = c.num_context_views - 2
        if num_extra > gap - 1:
            raise SkipScene(SkipReason.TOO_FEW_FRAMES, key, f"gap {gap} cannot hold {num_extra} extra context views")
        extra = left + 1 + torch.randperm(gap - 1, generator=generator)[:num_extra]
        context = torch.cat([torch.tensor([left]), extra, torch.tensor([right])])
        return context, target


@dataclass(frozen=True)
class IndexEntry:
    context: tuple[int, ...]
    target: tuple[int, ...]


def read_evaluation_index(path: Path) -> dict[str, IndexEntry | None]:
    """The official evaluation index: ``{scene key: {"context": [i, j], "target": [a, b, c]} | null}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation index {path} does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ChunkFormatError(f"evaluation index {path} is not valid JSON ({error})") from error
    if not isinstance(raw, dict):
        raise ChunkFormatError(f"evaluation index {path} must be a JSON object keyed by scene")
    index: dict[str, IndexEntry | None] = {}
    for key, entry in raw.items():
        if entry is None:
            index[key] = None
            continue
        valid = (
            isinstance(entry, dict)
            and all(
                isinstance(entry.get(f), list) and all(isinstance(i, int) and i >= 0 for i in entry[f])
                for f in ("context", "target")
            )
            and len(entry["context"]) >= 2
        )
        if not valid:
            raise ChunkFormatError(
                f"evaluation index {path}, scene {key!r}: expected null or "
                f'{{"context": [i, j], "target": [a, ...]}} with non-negative integers, found {entry!r}'
            )
        index[key] = IndexEntry(tuple(entry["context"]), tuple(entry["target"]))
    return index


class EvaluationViewSampler:
    """The paper's evaluation views, read from an official index file. With ``num_context_views=3`` a
    third context view is put midway between the two (the official 3-view evaluation)."""

    def __init__(self, index_path: Path, num_context_views: int = 2) -> None:
        self.index = read_evaluation_index(index_path)
        self.num_context_views = num_context_views

    def sample(self, key: str, num_frames: int, generator: torch.Generator | None = None, step: int = 0) -> Views:
        entry = self.index.get(key)
        if entry is None:
            reason = "is null in" if key in self.index else "is not in"
            raise SkipScene(SkipReason.MISSING_INDEX_ENTRY, key, f"scene {reason} the evaluation index")
        context = list(entry.context)
        if self.num_context_views == 3 and len(context) == 2:
            context.insert(1, (context[0] + context[1]) // 2)
        if max(context + list(entry.target)) >= num_frames:
            raise SkipScene(
                SkipReason.TOO_FEW_FRAMES,
                key,
                f"index needs frame {max(context + list(entry.target))} but the scene has {num_frames}",
            )
        return torch.tensor(context), torch.tensor(entry.target)
