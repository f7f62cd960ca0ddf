"""Will a training step fit in memory? Measured before the first step, so that a batch too large for the
machine is refused with the batch size that fits, instead of the kernel's silent SIGKILL (or a CUDA
out-of-memory error deep inside a step).

One scene's training step (forward, loss with LPIPS when it will be used, backward) is run on the training
device on a random scene of the configured shape, and its memory is extrapolated to the batch: the step of b
scenes needs about ``before + b * (one scene's peak - before)``. On the CPU the peak is the process's resident
memory (a second scene adds less than the first one's peak over ``before``, so the extrapolation errs on the
side of caution); on CUDA, the allocator's peak.
"""

import functools
import math
from dataclasses import dataclass

import torch

from pixelsplat_ns.core.errors import OutOfMemory
from pixelsplat_ns.core.process_memory import available_bytes, peak_resident_bytes, resident_bytes
from pixelsplat_ns.core.views import prepare_views
from pixelsplat_ns.encoder import PixelSplatEncoder

from .loss import LossConfig, pretraining_loss

HEADROOM = 0.95
"""Share of the available memory a step may plan to use."""


@dataclass
class StepMemory:
    before: float
    """Bytes in use before the step (the model, the optimizer's state to come excepted)."""
    per_scene: float
    """Bytes one scene of the batch adds at the step's peak."""
    available: float
    """Bytes the step may use in all: free memory now plus what is in use."""

    def needed(self, batch_size: int) -> float:
        return self.before + batch_size * self.per_scene

    def largest_batch(self) -> int:
        return max(0, math.floor((HEADROOM * self.available - self.before) / self.per_scene))


def probe_scene(image_shape: tuple[int, int], num_context: int, num_target: int, device) -> dict:
    """One random scene of the training batches' shape: context and target views at ``image_shape``."""
    generator = torch.Generator().manual_seed(0)
    views = num_context + num_target
    extrinsics = torch.eye(4).repeat(views, 1, 1)
    extrinsics[:, 0, 3] = torch.linspace(-0.5, 0.5, views)
    intrinsics = torch.tensor([[0.86, 0, 0.5], [0, 0.86, 0.5], [0, 0, 1.0]]).repeat(views, 1, 1)
    images = torch.rand(views, 3, *image_shape, generator=generator)
    context = [0, views - 1] + list(range(1, num_context - 1))
    target = [i for i in range(views) if i not in context][:num_target] or [0]
    scene, _ = prepare_views(images, extrinsics, intrinsics, context)
    scene = scene.batched().to(device)
    return {"context": scene.select((slice(None), context)), "target": scene.select((slice(None), target))}


def _in_use(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.memory_allocated(device))
    return resident_bytes()


def _peak(device: torch.device) -> float:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    return peak_resident_bytes()


def _available(device: torch.device) -> float:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free) + float(torch.cuda.memory_allocated(device))
    return available_bytes() + resident_bytes()


def measure_step_memory(encoder: PixelSplatEncoder, scene: dict, loss: LossConfig, lpips_model, device) -> StepMemory:
    """One scene's training step, measured, as training runs it (``scene`` from ``probe_scene``, made by
    ``prepare_views`` as the training batches are); the model's weights, statistics and gradients, and the random
    generators, are as they were before."""
    device = torch.device(device)
    was_training = encoder.training
    encoder.eval()  # batch norm's running statistics stay as they are
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _in_use(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        losses, _ = pretraining_loss(encoder, scene, max(loss.lpips_start_step, 0), loss, lpips_model, prepared=True)
        functools.reduce(torch.add, losses.values()).backward()  # the total, as nerfstudio's trainer sums it
    peak = _peak(device)
    for parameter in encoder.parameters():
        parameter.grad = None
    encoder.train(was_training)
    # Adam's two moments join the gradients at the first real step: count them as part of every step.
    optimizer_state = 2 * sum(p.numel() * p.element_size() for p in encoder.parameters())
    return StepMemory(before=before + optimizer_state, per_scene=max(peak - before, 1.0), available=_available(device))


def check_batch_fits(memory: StepMemory, batch_size: int, device, preset_hint: str) -> None:
    """Refuse a batch whose step would not fit, saying which batch size would (or what else to do)."""
    needed = memory.needed(batch_size)
    if needed <= HEADROOM * memory.available:
        return
    where = "GPU" if torch.device(device).type == "cuda" else "machine"
    fits = memory.largest_batch()
    advice = (
        f"use --pipeline.datamanager.batch-size {fits}"
        if fits >= 1
        else "even one scene does not fit: use smaller images (--pipeline.datamanager.dataset.image-shape)"
    )
    raise OutOfMemory(
        f"a training step at batch {batch_size} needs about {needed / 2**30:.1f} GB ({memory.per_scene / 2**30:.1f} GB "
        f"per scene, measured on this {where}, plus {memory.before / 2**30:.1f} GB for the model and optimizer), but "
        f"{memory.available / 2**30:.1f} GB are available: {advice}, or {preset_hint}"
    )
