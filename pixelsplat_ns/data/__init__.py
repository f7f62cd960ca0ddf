"""RealEstate10k / ACID chunks: reading, writing, view sampling and the paper's data conventions."""

from .bounds import near_far, normalize_baseline
from .chunks import ChunkFormatError, ChunkScene, ChunkWriter, read_chunk, read_index, write_chunk
from .dataset import ChunkDataset, ChunkDatasetConfig
from .samplers import (
    AllFramesSampler,
    BoundedSamplerConfig,
    BoundedViewSampler,
    EvaluationViewSampler,
    read_evaluation_index,
)
from .scene import load_scene
from .skips import SkipReason, SkipScene

__all__ = [
    "AllFramesSampler",
    "BoundedSamplerConfig",
    "BoundedViewSampler",
    "ChunkDataset",
    "ChunkDatasetConfig",
    "ChunkFormatError",
    "ChunkScene",
    "ChunkWriter",
    "EvaluationViewSampler",
    "SkipReason",
    "SkipScene",
    "load_scene",
    "near_far",
    "normalize_baseline",
    "read_chunk",
    "read_evaluation_index",
    "read_index",
    "write_chunk",
]
