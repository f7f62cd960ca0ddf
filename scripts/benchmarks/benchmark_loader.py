"""Throughput of the pretraining data path: examples per second that ``ns-train pixelsplat-pretrain``'s loader
delivers with 0, 1, 2, ... DataLoader workers, and how many workers a GPU at a given step rate needs.

The data: a RealEstate10k-sized dataset written in the chunk format (``pixelsplat_ns.data.chunks``): frames of
360 x 640 pixels stored as JPEG (smooth colour noise of several octaves, so that a frame's JPEG is about as
large as a photograph's; the mean size is printed), cameras panning sideways; or an existing dataset root
(``--data``, e.g. RealEstate10k itself). The data path: ``PretrainDataManager`` as ``ns-train`` builds it
(``ChunkDataset`` + ``BoundedViewSampler`` through torch's ``DataLoader``, the loader options of training),
the paper's settings (256 x 256, 2 context + 4 target views, flips on), on the CPU device (no pinned memory).
Each setting first reads ``--warm-up-batches`` batches per worker (worker start-up, first chunks), then times
``--batches`` batches. The files are in the page cache (just written or read): disk reads are not measured.
With 0 workers the main process loads the data with its torch threads (``--threads``), which contend for
cores that other work keeps busy.

The workers a GPU needs: at S steps per second and batch B per GPU, a rank consumes S x B examples per
second; one worker delivers what the 1-worker setting measured (a worker with a core of its own; each rank
has its own workers). What step rate a GPU reaches is an input (``--steps-per-second``), not measured here.

    .venv/bin/python scripts/benchmarks/benchmark_loader.py [--num-workers 0 1 2] [--batch-size 7]
        [--steps-per-second 1 2 4] [--data ROOT] [--scenes 16] [--batches 20] [--threads N]
"""

import gc
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import tyro
from jaxtyping import UInt8
from PIL import Image

from pixelsplat_ns.data.cameras import encode_chunk_cameras
from pixelsplat_ns.data.chunks import ChunkScene, ChunkWriter
from pixelsplat_ns.data.images import encode_jpeg
from pixelsplat_ns.pretraining.config import PretrainDataManagerConfig

FRAME_SHAPE = (360, 640)
"""RealEstate10k's frame (height, width) in pixels."""
NOISE_OCTAVES = ((4, 0.45), (16, 0.3), (64, 0.15), (256, 0.1))
"""(cells across a frame's width, amplitude) of each octave of a scene's colour noise."""
PAN_PIXELS = 4
"""Sideways shift of the view between consecutive frames, in pixels."""


@dataclass
class Args:
    num_workers: list[int] = field(default_factory=lambda: [0, 1, 2])
    """DataLoader worker counts to time (--pipeline.datamanager.num-workers)."""
    batch_size: int = 7
    """Scenes per batch and GPU (--pipeline.datamanager.batch-size; the paper: 7)."""
    steps_per_second: list[float] = field(default_factory=list)
    """GPU training step rates (steps per second and GPU) to size the workers for; none: no sizing."""
    batches: int = 20
    """Batches timed per setting, after the warm-up."""
    warm_up_batches: int = 3
    """Batches read per worker (per setting) before timing starts; more than the loader's prefetch (2 a
    worker), so that no batch made before the timing counts."""
    data: Optional[Path] = None
    """An existing dataset root (<root>/train/*.torch) to read instead of writing one."""
    output_dir: Optional[Path] = None
    """Where to write the dataset, kept afterwards (default: a temporary folder, removed at the end)."""
    scenes: int = 16
    """Scenes of the written dataset."""
    frames: int = 150
    """Frames per written scene."""
    scenes_per_chunk: int = 4
    """Scenes per written chunk file (each worker reads its own chunks: keep chunks >= workers)."""
    jpeg_quality: int = 90
    """JPEG quality of the written frames."""
    image_shape: tuple[int, int] = (256, 256)
    """(height, width) of the training images (--pipeline.datamanager.dataset.image-shape)."""
    seed: int = 0
    """Seed of the written frames and of the data stream."""
    threads: Optional[int] = None
    """torch threads of the main process, which loads the data itself with 0 workers (default: torch's
    choice; workers always use 1)."""


def smooth_noise(rng: np.random.Generator, height: int, width: int) -> UInt8[np.ndarray, "height width 3"]:
    """Colour noise of several octaves (``NOISE_OCTAVES``, counted across ``FRAME_SHAPE``'s width), each a
    random grid enlarged by PIL's bicubic resize: smooth areas and edges at every scale, like a photograph."""
    total = np.zeros((height, width, 3))
    for cells, amplitude in NOISE_OCTAVES:
        grid_width = max(2, cells * width // FRAME_SHAPE[1])
        grid_height = max(2, cells * height // FRAME_SHAPE[1])
        grid = rng.integers(0, 256, size=(grid_height, grid_width, 3), dtype=np.uint8)
        enlarged = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
        total += amplitude * np.asarray(enlarged, dtype=np.float64)
    return np.clip(total, 0, 255).astype(np.uint8)


def panning_scene(key: str, frames: int, quality: int, rng: np.random.Generator) -> ChunkScene:
    """One scene: ``frames`` views of 360 x 640 panning across a noise picture (``PAN_PIXELS`` a frame) with
    cameras moving sideways to match (RealEstate10k-like intrinsics, 90 degrees across)."""
    height, width = FRAME_SHAPE
    picture = smooth_noise(rng, height, width + PAN_PIXELS * (frames - 1))
    images = [
        encode_jpeg(np.ascontiguousarray(picture[:, i * PAN_PIXELS : i * PAN_PIXELS + width]), quality)
        for i in range(frames)
    ]
    c2w = torch.eye(4).repeat(frames, 1, 1)
    c2w[:, 0, 3] = 0.02 * torch.arange(frames)  # sideways, in scene units
    intrinsics = torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.5 * width / height, 0.5], [0.0, 0.0, 1.0]])
    cameras = encode_chunk_cameras(c2w, intrinsics.expand(frames, 3, 3))
    timestamps = 33_367 * torch.arange(frames, dtype=torch.int64)  # 29.97 frames per second, in microseconds
    return ChunkScene(key, f"benchmark://{key}", timestamps, cameras, images)


def write_dataset(root: Path, args: Args) -> dict:
    """Write ``args.scenes`` panning scenes into ``<root>/train``; returns what was written (sizes in bytes)."""
    rng = np.random.default_rng(args.seed)
    frame_bytes = []
    with ChunkWriter(root / "train", max_chunk_bytes=2**62) as writer:
        for index in range(args.scenes):
            scene = panning_scene(f"benchmark{index:05d}", args.frames, args.jpeg_quality, rng)
            frame_bytes += [image.numel() for image in scene.images]
            writer.add(scene)
            if (index + 1) % args.scenes_per_chunk == 0:
                writer.flush()
    return {"chunks": len(list((root / "train").glob("*.torch"))), "frames": len(frame_bytes), "bytes": frame_bytes}


def examples_per_second(root: Path, num_workers: int, args: Args) -> float:
    """Examples per second that the training datamanager delivers with ``num_workers`` workers."""
    config = PretrainDataManagerConfig(data=root, batch_size=args.batch_size, num_workers=num_workers)
    config.dataset.image_shape = args.image_shape
    config.dataset.seed = args.seed
    datamanager = config.setup(device="cpu")
    step = 0
    for _ in range(args.warm_up_batches * max(1, num_workers)):
        datamanager.next_train(step)
        step += 1
    start = time.perf_counter()
    for _ in range(args.batches):
        datamanager.next_train(step)
        step += 1
    seconds = time.perf_counter() - start
    del datamanager  # its persistent workers stop with their iterator
    gc.collect()
    return args.batches * args.batch_size / seconds


def workers_needed(steps_per_second: float, batch_size: int, per_worker: float) -> int:
    """Workers that deliver ``steps_per_second`` batches of ``batch_size`` examples a second, each worker
    ``per_worker`` examples a second."""
    return math.ceil(steps_per_second * batch_size / per_worker)


def main(args: Args) -> dict[int, float]:
    """Print the throughput of each worker count (and the sizing); returns {workers: examples per second}."""
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="benchmark_loader_") as temporary:
        root = args.data
        if root is None:
            root = args.output_dir or Path(temporary)
            start = time.perf_counter()
            written = write_dataset(root, args)
            print(
                f"wrote {args.scenes} scenes x {args.frames} frames of {FRAME_SHAPE[0]} x {FRAME_SHAPE[1]} in "
                f"{written['chunks']} chunks to {root} in {time.perf_counter() - start:.1f} s: JPEG quality "
                f"{args.jpeg_quality}, {np.mean(written['bytes']) / 1e3:.1f} kB a frame on average "
                f"({np.min(written['bytes']) / 1e3:.1f}-{np.max(written['bytes']) / 1e3:.1f}), "
                f"{sum(written['bytes']) / 1e6:.0f} MB",
                flush=True,
            )
        print(
            f"batch {args.batch_size}, {args.image_shape[0]} x {args.image_shape[1]}, 2 context + 4 target views, "
            f"flips on; {args.batches} batches timed after {args.warm_up_batches} per worker",
            flush=True,
        )
        print(f"{'workers':>7} {'examples/s':>10} {'per worker':>10} {'s/batch':>8}", flush=True)
        rates = {}
        for num_workers in args.num_workers:
            rate = rates[num_workers] = examples_per_second(root, num_workers, args)
            each = f"{rate / num_workers:10.1f}" if num_workers else f"{'-':>10}"
            print(f"{num_workers:>7} {rate:10.1f} {each} {args.batch_size / rate:8.3f}", flush=True)
    with_workers = sorted(n for n in rates if n > 0)
    if args.steps_per_second and with_workers:
        n = with_workers[0]
        per_worker = rates[n] / n
        print(
            f"workers per GPU at batch {args.batch_size}, one worker = {per_worker:.1f} examples/s "
            f"({n}-worker setting):"
        )
        for steps in args.steps_per_second:
            needed = workers_needed(steps, args.batch_size, per_worker)
            print(f"  {steps:g} steps/s = {steps * args.batch_size:g} examples/s: {needed} workers", flush=True)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads in the main process, {os.cpu_count()} CPUs",
        flush=True,
    )
    return rates


if __name__ == "__main__":
    main(tyro.cli(Args))
