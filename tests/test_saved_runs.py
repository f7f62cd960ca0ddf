"""Runs that users saved with an earlier version keep opening: nerfstudio's tools read a run's config.yml with
its own YAML loader, which imports every class the file names, so a moved class would break them."""

from pathlib import Path

import pytest
import yaml

from helpers.cli import SAMPLE, evaluate, train

RUN_0_2_0 = Path(__file__).resolve().parent / "data" / "pixelsplat_run_config_0.2.0.yml"
"""The config.yml of `ns-train pixelsplat --data <sample scene> --output-dir /tmp/v020run`, saved by 0.2.0."""


def with_paths(text: str, data: Path, output_dir: Path, timestamp: str) -> str:
    """The 0.2.0 config pointed at this machine's sample scene and run folder (paths are per machine)."""
    data_parts = "- /\n- tmp\n- v020\n- pixelsplat_ns\n- sample_scene\n"
    output_parts = "- /\n- tmp\n- v020run\n"
    assert text.count(data_parts) == 1 and text.count(output_parts) == 1
    return (
        text.replace(data_parts, f"- {data}\n")
        .replace(output_parts, f"- {output_dir}\n")
        .replace("timestamp: 2026-12-05_212012", f"timestamp: {timestamp}")
    )


def test_the_0_2_0_config_names_classes_that_still_import():
    config = yaml.load(RUN_0_2_0.read_text(), Loader=yaml.Loader)  # nerfstudio's own loader, as ns-eval uses
    assert config._target.__name__ == "PixelSplatTrainer"
    assert "pixelsplat_ns.nerfstudio_workarounds.PixelSplatTrainer" in RUN_0_2_0.read_text()
    assert config.pipeline.model.__class__.__name__ == "PixelSplatModelConfig"


@pytest.mark.e2e
def test_a_run_saved_by_0_2_0_opens_in_ns_eval(tmp_path):
    config = train(SAMPLE, tmp_path / "outputs")  # a run folder with a checkpoint of this version
    config.write_text(with_paths(RUN_0_2_0.read_text(), SAMPLE, tmp_path / "outputs", config.parent.name))
    assert yaml.load(config.read_text(), Loader=yaml.Loader).get_checkpoint_dir() == config.parent / "nerfstudio_models"
    assert evaluate(config)["psnr"] > 15
