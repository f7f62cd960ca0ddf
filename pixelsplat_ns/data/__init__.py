"""The RealEstate10k / ACID chunk format: reading and writing chunks, the paper's view samplers, the
streaming dataset, converters to and from nerfstudio datasets, and generated datasets in the same format."""

from .chunks import ChunkFormatError, ChunkScene, ChunkWriter, read_chunk, read_index, write_chunk
from .dataset import ChunkDataset, ChunkDatasetConfig
from .samplers import BoundedSamplerConfig, BoundedViewSampler, EvaluationViewSampler, read_evaluation_index
from .scene import load_scene, read_scene, scene_views
from .skips import SkipReason, SkipScene

__all__ = [
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
    "read_chunk",
    "read_evaluation_index",
    "read_index",
    "read_scene",
    "scene_views",
    "write_chunk",
]
