"""Batches of scenes for pretraining, streamed from RealEstate10k-format chunks by DataLoader workers."""

import dataclasses
import os
from pathlib import Path

import torch
from nerfstudio.data.datamanagers.base_datamanager import DataManager
from torch.utils.data import DataLoader

from pixelsplat_ns.core.child_processes import die_with
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.views import to_device
from pixelsplat_ns.data import BoundedViewSampler, ChunkDataset
from pixelsplat_ns.nerfstudio_compat.scene_batches import SceneBatchDataManagerHooks


def check_chunk_root(data: Path, split: str) -> None:
    """Refuse a ``--data`` that is no RealEstate10k-format dataset, pointing to the tool that makes one."""
    if any((data / split).glob("*.torch")):
        return
    if (data / "transforms.json").is_file() or (data / "sparse").is_dir() or (data / "colmap").is_dir():
        raise InputError(
            f"{data} is a nerfstudio dataset (one scene), not RealEstate10k-format chunks: convert "
            f"scenes with `pixelsplat-to-chunks --data {data} --output-dir DATASET --split {split}`, or "
            f"predict this scene with `ns-train pixelsplat --data {data}`"
        )
    raise InputError(
        f"no RealEstate10k-format chunks under {data / split} (<root>/{split}/*.torch with index.json): "
        "give a dataset root, e.g. one made by pixelsplat-make-synthetic or pixelsplat-to-chunks"
    )


def global_rank(world_size: int) -> int:
    """This process's rank among all nodes (nerfstudio hands the pipeline only its rank on this node)."""
    return torch.distributed.get_rank() if world_size > 1 else 0


def loader_options(device, num_workers: int) -> dict:
    """DataLoader settings for batches bound for ``device``: pinned host memory when it is a GPU; workers that
    end with their training process (``core.child_processes``)."""
    return {
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "pin_memory": torch.device(device).type == "cuda",
        "worker_init_fn": die_with(os.getpid()) if num_workers > 0 else None,
    }


class PretrainDataManager(SceneBatchDataManagerHooks, DataManager):
    """Batches of scenes (context + target ``Views``) streamed from chunks by DataLoader workers. Batch k is
    the batch of training step k, whatever the timing (the sampler's warm-up reads k), and ``start_at``
    resumes the stream at a step (see ``ChunkDataset``). Evaluation runs over the paper's index
    (``PretrainPipeline``), not through this datamanager."""

    # nerfstudio's DataManager types this an InputDataset (one scene's images); its own code only tests it.
    train_dataset: ChunkDataset  # type: ignore[assignment]  # chunks of scenes, not one scene's images

    def __init__(self, config, device="cpu", test_mode="val", world_size=1, local_rank=0, **kwargs) -> None:
        self.config, self.device, self.test_mode = config, device, test_mode
        if config.data is None:
            raise InputError("pixelsplat-pretrain needs --data: a dataset root with train/*.torch and index.json")
        check_chunk_root(Path(config.data), config.dataset.split)
        dataset_config = dataclasses.replace(config.dataset, roots=[Path(config.data)])
        self.train_dataset = ChunkDataset(
            dataset_config,
            BoundedViewSampler(config.sampler),
            rank=global_rank(world_size),
            world_size=world_size,
            batch_size=config.batch_size,
        )
        self.eval_dataset = None
        super().__init__()

    def setup_train(self) -> None:
        loader = DataLoader(
            self.train_dataset,
            batch_size=self.config.batch_size,
            **loader_options(self.device, self.config.num_workers),
        )
        self.train_iterator = iter(loader)

    def start_at(self, step: int) -> None:
        """Continue the stream with the batch of ``step`` (on resume; earlier batches are replayed unloaded)."""
        self.train_dataset.start_batch = step
        self.setup_train()

    def next_train(self, step: int):
        self.train_count += 1
        return None, to_device(next(self.train_iterator), self.device)

    def get_train_rays_per_batch(self) -> int:
        h, w = self.config.dataset.image_shape
        return self.config.batch_size * self.config.sampler.num_target_views * h * w

    def get_datapath(self) -> Path:
        return Path(self.config.data)
