"""Multi-GPU training, proven on the CPU: the pretraining step in 2 processes with DDP over gloo keeps the
parameters identical on both ranks while each rank reads different scenes."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pixelsplat_ns.data import BoundedSamplerConfig, ChunkDatasetConfig
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import tiny
from pixelsplat_ns.pretraining.config import PretrainDataManagerConfig, PretrainModelConfig, PretrainPipelineConfig
from pixelsplat_ns.pretraining.loss import LossConfig

pytestmark = pytest.mark.e2e


def small_pipeline(data) -> PretrainPipelineConfig:
    gap = dict(
        min_distance_between_context_views=8,
        max_distance_between_context_views=8,
        initial_min_distance_between_context_views=8,
        initial_max_distance_between_context_views=8,
    )
    return PretrainPipelineConfig(
        datamanager=PretrainDataManagerConfig(
            data=data,
            dataset=ChunkDatasetConfig(repeat=True, image_shape=(32, 32)),
            sampler=BoundedSamplerConfig(num_target_views=2, warm_up_steps=0, **gap),
            batch_size=1,
            num_workers=0,
        ),
        model=PretrainModelConfig(encoder=tiny(), loss=LossConfig(lpips_weight=0.0)),
    )


def train_rank(rank: int, world_size: int, data: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(rank)  # different initializations: DDP must broadcast rank 0's
    pipeline = small_pipeline(data).setup(device="cpu", world_size=world_size, local_rank=rank)
    scenes = []
    next_train = pipeline.datamanager.next_train

    def recording(step):
        cameras, batch = next_train(step)
        scenes.extend(batch["scene"])
        return cameras, batch

    pipeline.datamanager.next_train = recording
    parameters = pipeline.get_param_groups()["encoder"]
    initial = torch.cat([p.detach().flatten() for p in parameters]).clone()
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    for step in range(2):
        _, losses, _ = pipeline.get_train_loss_dict(step)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    final = torch.cat([p.detach().flatten() for p in parameters])
    gathered = [torch.zeros_like(final) for _ in range(world_size)]
    dist.all_gather(gathered, final)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(
            {
                "scenes": scenes,
                "max_difference": max(float((g - final).abs().max()) for g in gathered),
                "moved": float((final - initial).abs().max()),
            },
            f,
        )
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_training_keeps_parameters_identical_on_different_data(tmp_path):
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_scenes=4, seed=2, config=SyntheticConfig(height=48, width=80), test_fraction=0.0)
    mp.spawn(train_rank, args=(2, str(data), free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["max_difference"] == 0.0 for r in ranks), "parameters must stay identical across ranks"
    assert all(r["moved"] > 0 for r in ranks), "the optimizer must have changed the parameters"
    assert not set(ranks[0]["scenes"]) & set(ranks[1]["scenes"]), f"ranks read the same scenes: {ranks}"
