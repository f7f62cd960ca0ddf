"""The streaming dataset: every skip reason, sharding over workers and ranks, shuffling, augmentation."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers.chunks import marker_centroid, marker_scene, plain_scene, project_pixels, walk, write_split
from pixelsplat_ns.data import (
    BoundedSamplerConfig,
    BoundedViewSampler,
    ChunkDataset,
    ChunkDatasetConfig,
    EvaluationViewSampler,
    SkipReason,
)

SMALL_GAP = BoundedSamplerConfig(
    num_target_views=2, min_distance_between_context_views=3, max_distance_between_context_views=5, warm_up_steps=0
)


def dataset(root, sampler=None, **overrides):
    config = ChunkDatasetConfig(**{"roots": [root], "split": "train", "image_shape": (32, 32), **overrides})
    return ChunkDataset(config, sampler or BoundedViewSampler(SMALL_GAP), rank=0, world_size=1)


def test_every_skip_reason_is_counted_and_the_epoch_goes_on(tmp_path, caplog):
    undecodable = plain_scene("undecodable", 8)
    undecodable.images = [torch.tensor(list(b"\xff\xd8\xff garbage"), dtype=torch.uint8)] * 8
    nan_cameras = plain_scene("nan", 8)
    nan_cameras.cameras[3, 8] = float("nan")
    static = np.tile(np.eye(4), (8, 1, 1))
    scenes = [
        plain_scene("good", 8),
        plain_scene("wide", 8, fx=0.3),  # 2 atan(0.5 / 0.3) = 118 degrees
        plain_scene("short", 3),
        plain_scene("static", 8, c2w=static),
        undecodable,
        nan_cameras,
    ]
    write_split(tmp_path, "train", [scenes[:3], scenes[3:]])
    (tmp_path / "train" / "000002.torch").write_bytes(b"truncated")
    data = dataset(tmp_path, shuffle=False, augment=False)
    keys = [example["scene"] for example in data]
    assert keys == ["good"]
    assert data.skips.counts == Counter(
        {
            reason: 1
            for reason in (
                SkipReason.FOV_TOO_WIDE,
                SkipReason.TOO_FEW_FRAMES,
                SkipReason.NEAR_ZERO_BASELINE,
                SkipReason.UNDECODABLE_FRAME,
                SkipReason.INVALID_CAMERAS,
                SkipReason.UNREADABLE_CHUNK,
            )
        }
    )
    for text in (
        "'wide': field of view too wide: 118",
        "'short': too few frames",
        "'static': near-zero baseline",
        "'undecodable': undecodable frame",
        "'nan': invalid cameras",
        "000002.torch",
    ):
        assert text in caplog.text

    index = {"good": {"context": [0, 4], "target": [2]}, "wide": None}
    (tmp_path / "eval.json").write_text(json.dumps(index))
    evaluation = dataset(tmp_path, EvaluationViewSampler(tmp_path / "eval.json"), shuffle=False, augment=False)
    assert [e["scene"] for e in evaluation] == ["good"]
    assert evaluation.skips.counts[SkipReason.MISSING_INDEX_ENTRY] == 4  # "wide" is null, 3 scenes are absent
    assert evaluation.skips.counts[SkipReason.INVALID_CAMERAS] == 1  # cameras are checked first
    assert evaluation.skips.counts[SkipReason.UNREADABLE_CHUNK] == 1


def test_example_layout_and_near_far(tmp_path):
    write_split(tmp_path, "train", [[plain_scene("good", 8)]])
    example = next(iter(dataset(tmp_path, augment=False)))
    context, target = example["context"], example["target"]
    assert context.images.shape == (2, 3, 32, 32) and target.images.shape == (2, 3, 32, 32)
    assert context.extrinsics.shape == (2, 4, 4) and context.intrinsics.shape == (2, 3, 3)
    baseline = (context.extrinsics[0, :3, 3] - context.extrinsics[1, :3, 3]).norm()
    assert baseline.item() == pytest.approx(1.0)  # make_baseline_1
    assert torch.equal(context.near, target.near[:1].expand(2)) and (context.far > context.near).all()


def shard_keys(root, rank, world_size, workers):
    config = ChunkDatasetConfig(roots=[root], image_shape=(16, 16), augment=False, seed=3)
    data = ChunkDataset(config, BoundedViewSampler(SMALL_GAP), rank=rank, world_size=world_size)
    loader = DataLoader(data, batch_size=None, num_workers=workers)
    return [example["scene"] for example in loader]


@pytest.mark.parametrize("chunks", [6, 2])  # more chunks than readers, and fewer
def test_ranks_and_workers_share_the_scenes_exactly(tmp_path, chunks):
    keys = [f"s{i:02d}" for i in range(12)]
    per_chunk = len(keys) // chunks
    write_split(
        tmp_path,
        "train",
        [[plain_scene(k, 6) for k in keys[i : i + per_chunk]] for i in range(0, len(keys), per_chunk)],
    )
    shards = [shard_keys(tmp_path, rank, 2, 2) for rank in range(2)]
    assert sorted(shards[0] + shards[1]) == keys
    assert shards[0] and shards[1]


def test_shuffling_is_seeded_and_changes_each_pass(tmp_path):
    write_split(tmp_path, "train", [[plain_scene(f"{c}{i}", 6) for i in range(4)] for c in "abcd"])
    first = dataset(tmp_path, seed=5)
    passes = []
    for epoch in range(2):
        first.set_epoch(epoch)
        passes.append([e["scene"] for e in first])
    again = [e["scene"] for e in dataset(tmp_path, seed=5)]
    assert passes[0] == again and passes[0] != passes[1] and sorted(passes[0]) == sorted(passes[1])
    assert passes[0] != sorted(passes[0])


def test_set_epoch_reaches_forked_loader_workers(tmp_path):
    write_split(tmp_path, "train", [[plain_scene(f"{c}{i}", 6) for i in range(4)] for c in "abcd"])
    data = dataset(tmp_path, seed=5)
    loader = DataLoader(data, batch_size=None, num_workers=2, collate_fn=lambda x: x)
    orders = []
    for epoch in range(2):
        data.set_epoch(epoch)
        orders.append([example["scene"] for example in loader])
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_repeat_without_usable_scenes_stops_with_an_explanation(tmp_path):
    write_split(tmp_path, "train", [[plain_scene("short", 3)]])
    with pytest.raises(RuntimeError, match="no usable scene.*too few frames"):
        next(iter(dataset(tmp_path, repeat=True)))


def test_flip_augmentation_keeps_views_consistent(tmp_path):
    point = np.array([0.2, -0.1, 3.5])
    k = np.array([[0.7, 0.0, 0.42], [0.0, 0.9, 0.55], [0.0, 0.0, 1.0]])
    c2w = walk(8, step=0.05)
    write_split(tmp_path, "train", [[marker_scene("m", point, c2w, k, 200, 150)]])
    flips = []
    for seed in range(6):
        example = next(iter(dataset(tmp_path, seed=seed, image_shape=(96, 96))))
        for views in (example["context"], example["target"]):
            for view in range(len(views.index)):
                original = c2w[views.index[view]]
                flipped = np.sign(views.extrinsics[view, 0, 1].item()) != np.sign(original[0, 1])
                scale = np.linalg.norm(original[:3, 3]) / views.extrinsics[view, :3, 3].norm().item()
                target = point / scale * (np.array([-1.0, 1.0, 1.0]) if flipped else 1.0)
                expected = project_pixels(
                    target, views.extrinsics[view].double().numpy(), views.intrinsics[view].double().numpy(), 96, 96
                )
                assert np.abs(marker_centroid(views.images[view]) - expected).max() < 0.25
                flips.append(flipped)
    assert any(flips) and not all(flips)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resuming_at_a_batch_gives_the_uninterrupted_stream(tmp_path, num_workers):
    """Batches from ``start_batch`` on equal those of a stream read from the start (views, flips, images),
    across passes, skipped scenes and loader workers."""
    scenes = [plain_scene(f"s{i}", 12) for i in range(5)] + [plain_scene("short", 3)]
    write_split(tmp_path, "train", [scenes[:3], scenes[3:]])

    def batches(start: int, count: int) -> list[dict]:
        data = dataset(tmp_path, repeat=True)
        data.batch_size, data.start_batch = 2, start
        loader = iter(DataLoader(data, batch_size=2, num_workers=num_workers))
        return [next(loader) for _ in range(count)]

    uninterrupted, resumed = batches(0, 9), batches(6, 3)
    for expected, actual in zip(uninterrupted[6:], resumed):
        assert expected["scene"] == actual["scene"]
        for part in ("context", "target"):
            for name in ("index", "images", "extrinsics", "intrinsics", "near", "far"):
                assert torch.equal(getattr(expected[part], name), getattr(actual[part], name)), (part, name)
    assert len({key for batch in uninterrupted for key in batch["scene"]}) == 5, "several passes were read"
