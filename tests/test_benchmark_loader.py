"""scripts/benchmarks/benchmark_loader.py, the pretraining loader's throughput, on a tiny setting so that it
cannot rot: the dataset it writes is in the chunk format with photograph-sized JPEG frames, and every worker
count it times delivers batches."""

import importlib.util
import json
from pathlib import Path

import pytest

from pixelsplat_ns.data import read_chunk

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmarks" / "benchmark_loader.py"


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_loader", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_written_dataset_is_chunks_of_realestate10k_sized_frames(benchmark, tmp_path):
    args = benchmark.Args(scenes=3, frames=30, scenes_per_chunk=2)
    written = benchmark.write_dataset(tmp_path, args)
    assert written["chunks"] == 2 and written["frames"] == 90
    assert 30e3 < min(written["bytes"]) and max(written["bytes"]) < 60e3  # a photograph's JPEG at quality 90
    index = json.loads((tmp_path / "train" / "index.json").read_text())
    scenes = [scene for path in sorted((tmp_path / "train").glob("*.torch")) for scene in read_chunk(path)]
    assert sorted(index) == [scene.key for scene in scenes] and all(len(scene) == 30 for scene in scenes)
    frame = benchmark.smooth_noise(benchmark.np.random.default_rng(0), 360, 640)
    assert frame.shape == (360, 640, 3) and frame.std() > 10  # not a flat picture


def test_every_worker_count_delivers_batches_and_the_sizing_adds_up(benchmark, capsys):
    args = benchmark.Args(
        num_workers=[0, 1],
        batch_size=2,
        steps_per_second=[3.0],
        batches=2,
        warm_up_batches=1,
        scenes=2,
        frames=30,
        scenes_per_chunk=1,
    )
    rates = benchmark.main(args)
    assert set(rates) == {0, 1} and all(rate > 0 for rate in rates.values())
    printed = capsys.readouterr().out
    assert "examples/s" in printed and "3 steps/s = 6 examples/s" in printed
    assert benchmark.workers_needed(3.0, 2, 2.5) == 3 and benchmark.workers_needed(1.0, 7, 7.0) == 1
