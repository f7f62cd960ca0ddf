"""Streaming RealEstate10k / ACID examples from chunk files, for training and evaluation.

Chunks are read one at a time. Each pass shuffles the chunk order with a seed shared by every process, then
gives each (DDP rank, data-loader worker) pair its own share of the chunks, so no scene is read twice in a
pass; with fewer chunks than readers, every reader opens every chunk and keeps every n-th scene instead.

The stream is a function of the seed and of the training step alone: each example knows the step of the batch
it will be in (the data loader takes whole batches from its workers in turn), the view sampler's warm-up reads
that step, and ``start_batch`` replays the draws of earlier batches without loading their images, so a resumed
run sees the same examples as an uninterrupted one. One case it cannot foresee: a frame that fails to decode
(logged as a skip) gives its slot to the next example, so batches after it are one example off in a resumed run.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from pixelsplat_ns.core.bounds import at_one_position, max_baseline
from pixelsplat_ns.core.crop import CropIntrinsics
from pixelsplat_ns.core.geometry import field_of_view
from pixelsplat_ns.core.views import Views, prepare_views

from .cameras import mirror_cameras
from .chunks import ChunkFormatError, ChunkScene, chunk_paths, read_chunk
from .samplers import ViewSampler
from .scene import load_frames, scene_cameras
from .skips import SkipCounter, SkipReason, SkipScene

LOGGER = logging.getLogger("pixelsplat_ns.data")


@dataclass
class ChunkDatasetConfig:
    roots: list[Path] = field(default_factory=list)
    """Dataset roots, each holding <split>/*.torch and <split>/index.json; keys must be unique across them."""
    split: str = "train"
    """Folder to read under each root: "train" or "test"."""
    image_shape: tuple[int, int] = (256, 256)
    """(height, width) after resizing and centre-cropping."""
    max_fov: float = 100.0
    """Scenes whose field of view exceeds this many degrees (in x or y, any frame) are skipped."""
    baseline_epsilon: float = 1e-3
    """Scenes whose context cameras are closer than this are skipped: the official rule, in the dataset's own
    units (RealEstate10k's and ACID's are alike); cameras at one position whatever the unit are skipped too."""
    make_baseline_1: bool = True
    """Rescale each example so that its context baseline is 1 (the paper's setting)."""
    augment: bool = True
    """Flip each example horizontally with probability 0.5 (the paper's training augmentation)."""
    shuffle: bool = True
    """Shuffle chunks and the scenes inside them on every pass (training); off: file order (evaluation)."""
    repeat: bool = False
    """Start a new pass when one ends (training); off: a single pass (evaluation)."""
    seed: int = 0
    """Seed of the shuffles, the samplers and the flips (same seed, same stream)."""
    crop_intrinsics: CropIntrinsics = "exact"
    """"exact" moves the principal point with the crop; "official" keeps cx, cy (see images.resize_and_crop)."""


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _generator(*seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(seed)).generate_state(1)[0]))


class ChunkDataset(IterableDataset):
    """Yields ``{"context": Views, "target": Views, "scene": key}``, each ``Views`` one scene's (made by
    ``prepare_views``: near/far from the context views, ``index`` the frame numbers); a ``DataLoader``
    batches them into ``Views`` of a batch.

    Skipped scenes are logged and counted in ``skips`` (per process: each worker has its own counter).
    """

    def __init__(
        self,
        config: ChunkDatasetConfig,
        sampler: ViewSampler,
        rank: int | None = None,
        world_size: int | None = None,
        batch_size: int = 1,
    ) -> None:
        super().__init__()
        if not config.roots:
            raise ValueError("ChunkDatasetConfig.roots is empty: give at least one dataset root")
        self.config = config
        self.sampler = sampler
        distributed_rank, distributed_world_size = _distributed()
        self.rank = distributed_rank if rank is None else rank
        self.world_size = distributed_world_size if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world size {self.world_size}")
        self.chunks = [path for root in config.roots for path in chunk_paths(Path(root) / config.split)]
        if not self.chunks:
            raise FileNotFoundError(f"no .torch chunks under {[str(Path(r) / config.split) for r in config.roots]}")
        self.skips = SkipCounter()
        self.batch_size = batch_size
        """Examples per batch of the loader that reads this dataset: what links an example to its step."""
        self.start_batch = 0
        """Batches already consumed (set before creating the loader's iterator, to resume)."""
        # In shared memory: loader workers are forked copies, so a plain attribute set by the trainer (or
        # advanced inside a worker) would never reach the next pass's workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Like ``DistributedSampler.set_epoch``: the shuffling of a pass depends on it. Call it before each
        pass when iterating without ``repeat``; with ``repeat`` each iterator also counts its own passes."""
        self._epoch.fill_(epoch)

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        shard, num_shards = self.rank * num_workers + worker_id, self.world_size * num_workers
        epoch = int(self._epoch)
        produced = 0  # examples of this worker so far, replayed ones included

        def batch_of_next_example() -> int:
            return (produced // self.batch_size) * num_workers + worker_id

        while True:
            count = 0
            for scene, generator in self._one_pass(shard, num_shards, epoch):
                batch = batch_of_next_example()
                try:
                    plan = self._plan(scene, generator, batch)
                except SkipScene as skip:
                    self.skips.record(skip)
                    continue
                produced += 1
                count += 1
                if batch < self.start_batch:
                    continue  # replayed: consumed before a resume
                try:
                    yield self._load(scene, plan)
                except SkipScene as skip:  # an undecodable frame: its slot goes to the next example
                    self.skips.record(skip)
            LOGGER.info(
                "pass %d of shard %d/%d: %d examples; %s", epoch, shard, num_shards, count, self.skips.summary()
            )
            epoch += 1
            if not self.config.repeat:
                return
            if count == 0:
                raise RuntimeError(
                    f"shard {shard} of {num_shards} found no usable scene in {len(self.chunks)} chunks "
                    f"({self.skips.summary()}); check the data, the view sampler and the skip thresholds"
                )

    def _one_pass(self, shard: int, num_shards: int, epoch: int) -> Iterator[tuple[ChunkScene, torch.Generator]]:
        """This shard's scenes of one pass, in order, with the pass's random generator."""
        chunks = self.chunks
        if self.config.shuffle:
            order = torch.randperm(len(chunks), generator=_generator(self.config.seed, epoch))
            chunks = [chunks[i] for i in order]
        by_chunk = len(chunks) >= num_shards
        if by_chunk:
            chunks = chunks[shard::num_shards]
        generator = _generator(self.config.seed, epoch, shard, num_shards)
        position = 0
        for path in chunks:
            try:
                scenes = read_chunk(path)
            except ChunkFormatError as error:
                self.skips.record(SkipScene(SkipReason.UNREADABLE_CHUNK, path.name, str(error)))
                continue
            if not by_chunk:
                kept = [s for i, s in enumerate(scenes, start=position) if i % num_shards == shard]
                position += len(scenes)
                scenes = kept
            if self.config.shuffle:
                scenes = [scenes[i] for i in torch.randperm(len(scenes), generator=generator)]
            for scene in scenes:
                yield scene, generator

    def _plan(self, scene: ChunkScene, generator: torch.Generator, step: int) -> dict:
        """The random choices of one example (views, flip) and its cameras, without loading images; raises
        ``SkipScene`` saying why the scene cannot serve."""
        c = self.config
        c2w, intrinsics = scene_cameras(scene)
        context, target = self.sampler.sample(scene.key, len(scene), generator, step)
        fov = field_of_view(intrinsics).rad2deg().max().item()
        if fov > c.max_fov:
            raise SkipScene(SkipReason.FOV_TOO_WIDE, scene.key, f"{fov:.1f} > {c.max_fov} degrees")
        baseline = max_baseline(c2w[context]).item()
        if baseline < c.baseline_epsilon or at_one_position(baseline, c2w[context, :3, 3]):
            raise SkipScene(SkipReason.NEAR_ZERO_BASELINE, scene.key, f"{baseline:.2e} < {c.baseline_epsilon}")
        flip = c.augment and torch.rand((), generator=generator).item() < 0.5
        return {"context": context, "target": target, "c2w": c2w, "intrinsics": intrinsics, "flip": flip}

    def _load(self, scene: ChunkScene, plan: dict) -> dict:
        c = self.config
        context, target = plan["context"], plan["target"]
        indices = torch.cat([context, target])
        images, intrinsics = load_frames(scene, indices, plan["intrinsics"], c.image_shape, c.crop_intrinsics)
        views, _ = prepare_views(
            images, plan["c2w"][indices], intrinsics, range(len(context)), c.make_baseline_1, index=indices
        )
        if plan["flip"]:
            views = flipped(views)
        return {
            "context": views.select(slice(0, len(context))),
            "target": views.select(slice(len(context), None)),
            "scene": scene.key,
        }


def flipped(views: Views) -> Views:
    """The views mirrored horizontally: images flipped, cameras mirrored (``mirror_cameras``)."""
    extrinsics, intrinsics = mirror_cameras(views.extrinsics, views.intrinsics)
    return views._replace(images=views.images.flip(-1), extrinsics=extrinsics, intrinsics=intrinsics)
