"""View samplers: the paper's bounded schedule and the official evaluation index."""

import json

import pytest
import torch

from helpers.chunks import plain_scene, reference_file, write_split
from pixelsplat_ns.data import (
    BoundedSamplerConfig,
    BoundedViewSampler,
    ChunkFormatError,
    EvaluationViewSampler,
    SkipReason,
    SkipScene,
    read_evaluation_index,
)


def gaps(sampler, num_frames=200, draws=200, step=0):
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(draws):
        context, target = sampler.sample("s", num_frames, generator, step)
        left, right = context[0].item(), context[-1].item()
        assert 0 <= left < right < num_frames
        assert ((left <= target) & (target <= right)).all()
        seen.add(right - left)
    return seen


@pytest.mark.parametrize("step, gap", [(0, 25), (30_000, 29), (75_000, 35), (149_999, 44), (150_000, 45), (10**6, 45)])
def test_paper_gap_warms_up_from_25_to_45(step, gap):
    assert gaps(BoundedViewSampler(BoundedSamplerConfig()), step=step) == {
        gap
    }  # 25 + int(20 * step / 150000), capped at 45


def test_paper_defaults():
    c = BoundedSamplerConfig()
    assert (c.num_context_views, c.num_target_views, c.min_distance_to_context_views) == (2, 4, 0)
    assert (c.initial_min_distance_between_context_views, c.min_distance_between_context_views) == (25, 45)
    assert c.warm_up_steps == 150_000


def test_gap_range_targets_and_extra_context_views():
    config = BoundedSamplerConfig(
        num_context_views=3,
        num_target_views=6,
        min_distance_between_context_views=4,
        max_distance_between_context_views=9,
        min_distance_to_context_views=2,
        warm_up_steps=0,
    )
    sampler = BoundedViewSampler(config)
    assert gaps(sampler) == set(range(4, 10))
    generator = torch.Generator().manual_seed(1)
    for _ in range(100):
        context, target = sampler.sample("s", 12, generator)
        left, middle, right = context.tolist()
        assert left < middle < right and target.shape == (6,)
        assert ((left + 2 <= target) & (target <= right - 2)).all()


def test_short_scene_is_skipped_with_reason():
    sampler = BoundedViewSampler(BoundedSamplerConfig())  # step 0: gap 25 needs 26 frames
    assert gaps(sampler, num_frames=26, draws=5) == {25}
    with pytest.raises(SkipScene) as caught:
        sampler.sample("short", 25)
    assert caught.value.reason == SkipReason.TOO_FEW_FRAMES and "short" in str(caught.value)


def test_same_seed_same_views():
    sampler = BoundedViewSampler(BoundedSamplerConfig(warm_up_steps=0, min_distance_between_context_views=3))

    def draw(seed: int) -> list:
        return [sampler.sample("s", 60, torch.Generator().manual_seed(seed)) for _ in range(3)]

    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(draw(7), draw(7)))


@pytest.mark.parametrize("name, scenes", [("evaluation_index_re10k.json", 6474), ("evaluation_index_acid.json", 1595)])
def test_official_index_files(name, scenes):
    index = read_evaluation_index(reference_file(name))
    entries = [e for e in index.values() if e is not None]
    assert len(entries) == scenes
    for entry in entries:
        assert len(entry.context) == 2 and entry.context[0] < entry.context[1] and len(entry.target) == 3
        assert all(entry.context[0] <= t <= entry.context[1] for t in entry.target)


def test_evaluation_sampler_reads_the_paper_views():
    path = reference_file("evaluation_index_re10k.json")
    raw = json.loads(path.read_text())
    sampler = EvaluationViewSampler(path)
    context, target = sampler.sample("5aca87f95a9412c6", 200)
    assert context.tolist() == raw["5aca87f95a9412c6"]["context"] == [58, 133]
    assert target.tolist() == raw["5aca87f95a9412c6"]["target"] == [84, 102, 129]
    three = EvaluationViewSampler(path, num_context_views=3).sample("5aca87f95a9412c6", 200)[0]
    assert three.tolist() == [58, 95, 133]
    null_key = next(k for k, v in raw.items() if v is None)
    for key in (null_key, "not-a-scene"):
        with pytest.raises(SkipScene) as caught:
            sampler.sample(key, 200)
        assert caught.value.reason == SkipReason.MISSING_INDEX_ENTRY
    with pytest.raises(SkipScene) as caught:
        sampler.sample("5aca87f95a9412c6", 133)
    assert caught.value.reason == SkipReason.TOO_FEW_FRAMES


def test_invalid_evaluation_index(tmp_path):
    path = tmp_path / "index.json"
    path.write_text("{not json")
    with pytest.raises(ChunkFormatError, match="is not valid JSON"):
        read_evaluation_index(path)
    path.write_text(json.dumps({"abc": {"context": [1], "target": [2]}}))
    with pytest.raises(ChunkFormatError, match="scene 'abc'"):
        read_evaluation_index(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ChunkFormatError, match="JSON object keyed by scene"):
        read_evaluation_index(path)
    with pytest.raises(FileNotFoundError):
        read_evaluation_index(tmp_path / "missing.json")


def test_warm_up_follows_the_step_of_each_batch_in_loader_workers(tmp_path):
    """Each example's context gap is the one of the step its batch is consumed at, whatever the prefetching
    of two workers: batch k comes from worker k % 2 and is the batch of step k."""
    from torch.utils.data import DataLoader

    from pixelsplat_ns.data import ChunkDataset, ChunkDatasetConfig

    write_split(tmp_path, "train", [[plain_scene(f"s{i}", 40) for i in range(4)]])
    sampler = BoundedViewSampler(
        BoundedSamplerConfig(
            num_target_views=1,
            warm_up_steps=10,
            initial_min_distance_between_context_views=5,
            initial_max_distance_between_context_views=5,
            min_distance_between_context_views=35,
            max_distance_between_context_views=35,
        )
    )
    data = ChunkDataset(
        ChunkDatasetConfig(roots=[tmp_path], image_shape=(16, 16), repeat=True, augment=False), sampler, batch_size=2
    )
    loader = iter(DataLoader(data, batch_size=2, num_workers=2, persistent_workers=True))
    for step in range(12):
        indices = next(loader)["context"].index
        expected = 5 + int(30 * min(step / 10, 1))
        assert (indices[:, -1] - indices[:, 0]).tolist() == [expected] * 2, step
