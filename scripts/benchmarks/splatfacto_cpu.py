"""nerfstudio's splatfacto on the CPU, for comparisons only: train it from a random initialization for a fixed
wall time and score its held-out views with the paper's PSNR.

splatfacto calls gsplat's CUDA ``rasterization`` and moves its intrinsics to CUDA unconditionally, and its LPIPS
metric downloads AlexNet weights; none of that runs on a CPU-only, offline machine. This script runs
splatfacto unchanged otherwise (its model, optimizers, learning rates, resolution schedule and gsplat's
``DefaultStrategy`` densification) with three substitutions made in its own process only:

* ``rasterization`` is the project's ``rasterize``, which has gsplat 1.4.0's classic semantics on CPU tensors
  (numba compositing) and returns the ``means2d`` / ``radii`` the strategy densifies from;
* densification reads the plain ``means2d`` gradient (``--pipeline.model.use-absgrad False``: gsplat's
  absgrad is a CUDA-kernel output) with the original 3DGS threshold 0.0002 in place of splatfacto's 0.0008
  (which is tuned for absgrad);
* LPIPS is left out (NaN); the PSNR reported is ``pixelsplat_ns.metrics.psnr``, the one ns-eval reports for
  ``pixelsplat``, on the same nerfstudio-data held-out views.

    .venv/bin/python scripts/benchmarks/splatfacto_cpu.py --data DIR --seconds 15 [--output-dir DIR]

Prints one JSON line (its last line of output; also written to the run folder's result.json): held-out PSNR
and the number of held-out views, training steps run (the first, untimed one included), seconds of training
after the first step, Gaussians at the end. The scene needs held-out views
(nerfstudio-data holds out 10% of 10 or more images).
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

DENSIFY_GRAD_THRESHOLD = 0.0002
"""3DGS's threshold on the mean screen-space gradient norm (Kerbl et al. 2023), for plain (not abs) gradients."""


@dataclass
class Args:
    data: Path
    """A nerfstudio scene (transforms.json), as given to ns-train --data."""
    seconds: float
    """Wall time of the training loop after its first step (which compiles: numba's kernels, if not cached, and
    splatfacto's ``torch.compile``d view matrix); training stops at the first step that ends past it."""
    output_dir: Path = Path("outputs/splatfacto_cpu")
    """Where the run is written: nerfstudio's config.yml and the checkpoint of its last step, and result.json
    (the printed line). Kept for inspection: nerfstudio's ns-* tools cannot load a splatfacto run on this
    machine (splatfacto needs gsplat's CUDA rasterizer, and LPIPS weights from the internet)."""
    seed: int = 42


class TimeUp(Exception):
    """Raised from a training step that ends past the wall-time budget."""


class NoLpips(torch.nn.Module):
    """Stands in for torchmetrics' LPIPS, whose AlexNet weights cannot be downloaded here."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *args) -> torch.Tensor:
        return torch.tensor(float("nan"))


def substitute_cpu_parts() -> None:
    """Point splatfacto at the CPU rasterizer and away from CUDA and LPIPS (this process only)."""
    import nerfstudio.models.splatfacto as splatfacto
    import torchmetrics.image.lpip

    from pixelsplat_ns.render.gsplat_drop_in import rasterization

    if torch.cuda.is_available():
        raise SystemExit("a GPU is present: run `ns-train splatfacto` itself")
    splatfacto.rasterization = rasterization
    torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity = NoLpips
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # splatfacto's `K = ...get_intrinsics_matrices().cuda()`


def make_trainer(args: Args):
    """``ns-train splatfacto --data DATA --pipeline.model.random-init True`` (with the substitutions above)."""
    from nerfstudio.configs.method_configs import method_configs

    config = method_configs["splatfacto"]
    config.pipeline.datamanager.data = args.data
    config.output_dir = args.output_dir
    config.vis = "tensorboard"
    config.machine.device_type = "cpu"
    config.machine.seed = args.seed
    config.pipeline.model.random_init = True
    config.pipeline.model.use_absgrad = False
    config.pipeline.model.densify_grad_thresh = DENSIFY_GRAD_THRESHOLD
    # No evaluation inside the timed loop: the held-out views are scored once, after it.
    config.steps_per_eval_image = config.steps_per_eval_batch = config.steps_per_eval_all_images = 10**9
    config.set_timestamp()
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def train_for(trainer, seconds: float) -> tuple[int, float]:
    """Run ``trainer.train()`` until a step ends past ``seconds`` after the first one; (steps run, seconds
    taken after the first step)."""
    iteration = trainer.train_iteration
    steps, start = 0, None

    def timed_iteration(step):
        nonlocal steps, start
        result = iteration(step)
        steps += 1
        start = start or time.perf_counter()
        if time.perf_counter() - start >= seconds:
            raise TimeUp
        return result

    trainer.train_iteration = timed_iteration
    try:
        trainer.train()
    except TimeUp:
        pass
    return steps, time.perf_counter() - start


@torch.no_grad()
def held_out_psnr(pipeline) -> tuple[float, int]:
    """Mean PSNR (``pixelsplat_ns.metrics.psnr``) over the datamanager's evaluation views, and their number."""
    from pixelsplat_ns.metrics import psnr

    pipeline.eval()
    scores = []
    for camera, batch in pipeline.datamanager.fixed_indices_eval_dataloader:
        outputs = pipeline.model.get_outputs_for_camera(camera)
        rendered = outputs["rgb"]
        # As splatfacto's own metrics take it: uint8 to [0, 1], RGBA onto the background.
        truth = pipeline.model.composite_with_background(
            pipeline.model.get_gt_img(batch["image"]), outputs["background"]
        )
        scores.append(psnr(truth.permute(2, 0, 1)[None], rendered.permute(2, 0, 1)[None]).item())
    return sum(scores) / len(scores), len(scores)


def main(args: Args) -> None:
    if not (args.data / "transforms.json").is_file():
        raise SystemExit(f"--data {args.data}: no transforms.json there; give a nerfstudio scene folder")
    substitute_cpu_parts()
    trainer = make_trainer(args)
    if len(trainer.pipeline.datamanager.eval_dataset) == 0:
        raise SystemExit(
            f"--data {args.data} has no held-out views to score (nerfstudio-data holds out 10% of 10 "
            "or more images): give a larger capture"
        )
    steps, seconds = train_for(trainer, args.seconds)
    trainer.save_checkpoint(steps - 1)
    score, views = held_out_psnr(trainer.pipeline)
    result = json.dumps(
        {
            "psnr": score,
            "views": views,
            "steps": steps,
            "seconds": round(seconds, 1),
            "gaussians": trainer.pipeline.model.num_points,
        }
    )
    (trainer.base_dir / "result.json").write_text(result)
    print(result, flush=True)


if __name__ == "__main__":
    main(tyro.cli(Args))
