"""The bundled tiny encoder (trained on the synthetic dataset on a CPU) ships with the package and has
learned something: on unseen synthetic scenes it beats the same architecture with random weights."""

import torch

from pixelsplat_ns import load_encoder
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.checkpoints import BUNDLED_TINY_ENCODER
from pixelsplat_ns.evaluation import EvaluationConfig, evaluate


def test_bundled_encoder_loads_and_beats_random_weights(tmp_path):
    assert BUNDLED_TINY_ENCODER.is_file(), f"the bundled checkpoint is missing: {BUNDLED_TINY_ENCODER}"
    assert BUNDLED_TINY_ENCODER.stat().st_size < 10_000_000
    trained = load_encoder(BUNDLED_TINY_ENCODER)
    torch.manual_seed(0)
    untrained = PixelSplatEncoder(trained.config).eval()

    data = tmp_path / "unseen"
    write_synthetic_dataset(data, num_scenes=4, seed=1234, config=SyntheticConfig(height=72, width=128), test_fraction=0.5)
    config = EvaluationConfig(image_shape=(64, 64), crop_intrinsics="exact", deterministic=True)
    index = data / "evaluation_index.json"
    psnr_trained = evaluate(trained, data, index, config)["mean"]["psnr"]
    psnr_untrained = evaluate(untrained, data, index, config)["mean"]["psnr"]
    assert psnr_trained > psnr_untrained + 3.0, (psnr_trained, psnr_untrained)
