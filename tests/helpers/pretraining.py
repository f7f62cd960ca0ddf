"""``ns-train pixelsplat-pretrain`` at a size that trains in seconds on a CPU, as the tests run it."""

import subprocess
from pathlib import Path

from helpers.cli import ns

SMALL = [
    "--pipeline.datamanager.batch-size",
    "1",
    "--pipeline.datamanager.num-workers",
    "1",
    "--pipeline.datamanager.dataset.image-shape",
    "32",
    "32",
    "--pipeline.model.loss.lpips-weight",
    "0",
    "--pipeline.model.encoder.backbone.resnet.block",
    "basic",
    "--pipeline.model.encoder.backbone.resnet.layers",
    "1",
    "1",
    "1",
    "--pipeline.model.encoder.backbone.vit.embed-dim",
    "96",
    "--pipeline.model.encoder.backbone.vit.depth",
    "1",
    "--pipeline.model.encoder.backbone.vit.num-heads",
    "3",
    "--pipeline.datamanager.sampler.warm-up-steps",
    "0",
    *[
        arg
        for name in ("min", "max")
        for arg in (
            f"--pipeline.datamanager.sampler.{name}-distance-between-context-views",
            "8",
            f"--pipeline.datamanager.sampler.initial-{name}-distance-between-context-views",
            "8",
        )
    ],
]


def pretrain(data: Path, out: Path, *flags) -> subprocess.CompletedProcess:
    """``ns-train pixelsplat-pretrain`` on ``data`` into ``out`` at the SMALL size, run from ``out``'s folder;
    ``flags`` come after SMALL's (and override them)."""
    return ns("ns-train", "pixelsplat-pretrain", "--data", data, "--output-dir", out, *SMALL, *flags, cwd=out.parent)
