"""The bundled tiny encoder (trained on the synthetic dataset on a CPU) ships with the package and has
learned something: on unseen synthetic scenes it beats the same architecture with random weights."""

import json

import torch

from pixelsplat_ns import load_encoder
from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER, read_encoder
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.evaluation import EvaluationConfig, evaluate


def test_bundled_encoder_loads_and_beats_random_weights(tmp_path):
    assert BUNDLED_TINY_ENCODER.is_file(), f"the bundled checkpoint is missing: {BUNDLED_TINY_ENCODER}"
    assert BUNDLED_TINY_ENCODER.stat().st_size < 10_000_000
    trained_shape = read_encoder(BUNDLED_TINY_ENCODER).image_shape
    assert tuple(trained_shape) == (144, 256), "the bundled encoder sees the sample scene at its full size"
    trained = load_encoder(BUNDLED_TINY_ENCODER)
    torch.manual_seed(0)
    untrained = PixelSplatEncoder(trained.config).eval()

    data = tmp_path / "unseen"
    write_synthetic_dataset(
        data, num_scenes=3, seed=1234, config=SyntheticConfig(height=144, width=256), test_fraction=1.0
    )
    # Context views 20 frames apart, inside the gaps it was trained on (16-24), as in the sample scene.
    scenes = json.loads((data / "evaluation_index.json").read_text())
    index = data / "gap_20.json"
    index.write_text(json.dumps({key: {"context": [4, 24], "target": [9, 14, 19]} for key in scenes}))
    config = EvaluationConfig(image_shape=trained_shape, crop_intrinsics="exact", deterministic=True)
    psnr_trained = evaluate(trained, data, index, config)["mean"]["psnr"]
    psnr_untrained = evaluate(untrained, data, index, config)["mean"]["psnr"]
    # Limits with room below the trained encoder's score and above the untrained one's (docs/benchmarks.md).
    assert psnr_trained > 23.0 and psnr_trained > psnr_untrained + 3.0, (psnr_trained, psnr_untrained)
