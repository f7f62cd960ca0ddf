"""The RealEstate10k / ACID chunk format: reading and writing chunks, the paper's view samplers, the
streaming dataset, converters to and from nerfstudio datasets, and generated datasets in the same format.

chunks (``<root>/<split>/NNNNNN.torch`` and ``index.json``), cameras and images (a chunk's cameras, their flip,
and its JPEG frames), samplers (the paper's context and target frames), scene (a chunk scene's frames as
``Views``), dataset (``ChunkDataset``), skips (why a scene is left out of an epoch), nerfstudio_convert
(nerfstudio datasets <-> chunks), synthetic (procedural RealEstate10k-like scenes).
"""

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
