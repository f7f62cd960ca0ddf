"""``ns-train pixelsplat``: views of any nerfstudio dataset in, a Gaussian splat scene out.

The datamanager (``pixelsplat_ns.per_scene.datamanager``) checks the frames and the context flags; when
training starts the pipeline reads the encoder, makes the run's context plan (``context_plan``) once, hands it
to the datamanager (the refinement's targets are the other views), predicts the scene from the plan's groups
and hands the Gaussians to ``PixelSplatModel``. The tools that load a finished run (viewer, ns-render, ns-eval,
ns-export) build the pipeline without predicting (nor choosing the context) and read the Gaussians from the
checkpoint.
"""

import sys
import time
from typing import cast

import torch
from nerfstudio.pipelines.base_pipeline import VanillaPipeline
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.core.devices import check_device, free_memory_bytes
from pixelsplat_ns.nerfstudio_compat import install_process_hooks
from pixelsplat_ns.nerfstudio_compat.error_reporting import check_ns_eval_output_path
from pixelsplat_ns.render.views import OFFICIAL_NEAR_FRACTION

from .datamanager import PixelSplatDataManager
from .prediction import (
    bind_scene_encoder,
    check_fusion_options,
    configured_encoder,
    plan_scene_context,
    prediction_size_warning,
)


class PixelSplatPipeline(VanillaPipeline):
    """nerfstudio's pipeline that predicts the scene when training starts (``ns-train``, test mode "val"). The
    post-training tools build it in the other modes and read the Gaussians from the checkpoint instead, so
    they need neither the encoder nor its file. A resumed run predicts too, then loads the checkpoint over it."""

    def __init__(self, config, device, test_mode="val", world_size=1, local_rank=0, grad_scaler=None) -> None:
        install_process_hooks()  # the tools that load a run (ns-viewer, ns-eval, ...) read its checkpoint next
        check_ns_eval_output_path(sys.argv)
        check_device(device)
        check_fusion_options(config.model)
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        if test_mode != "val":  # the post-training tools load the checkpoint's Gaussians
            return
        started = time.perf_counter()
        datamanager = cast(PixelSplatDataManager, self.datamanager)
        encoder = configured_encoder(self.model.config, device)
        plan = plan_scene_context(encoder, datamanager, self.model.config)  # the one choice of the run
        datamanager.use_context_plan(plan)
        scene_encoder = bind_scene_encoder(encoder, plan, datamanager, self.model.config)
        height, width = scene_encoder.context.image_shape
        groups = len(scene_encoder.contexts)
        count, free = scene_encoder.gaussian_count(), free_memory_bytes(device)
        warning = prediction_size_warning(count, (height, width), min(height, width), free)
        if warning is not None:  # before the wait, and before memory runs out without a word
            CONSOLE.print(f"[bold yellow]{warning}")
        if groups > 1 and self.model.config.context_fusion == "deduplicate":
            fused = scene_encoder.fuse(self.model.config.fusion_depth_tolerance)
            gaussians = fused.gaussians()
            kept, predicted = fused.counts()
            CONSOLE.log(
                f"pixelsplat fused {groups} context groups ({width}x{height}): kept {kept} of {predicted} "
                f"Gaussians ({kept / predicted:.0%}) in {time.perf_counter() - started:.1f} s"
            )
        else:
            with torch.no_grad():
                gaussians = scene_encoder(progress=True)
            of_groups = f" of {groups} context groups" if groups > 1 else ""
            CONSOLE.log(
                f"pixelsplat predicted {gaussians.means.shape[1]} Gaussians from {width}x{height} context "
                f"views{of_groups} in {time.perf_counter() - started:.1f} s"
            )
        self.model.set_gaussians(gaussians)
        # The official renderer's near plane, 0.2 x the context's near, in the dataparser's units.
        self.model.set_near_plane(OFFICIAL_NEAR_FRACTION * scene_encoder.near_plane())
        if self.model.config.refine_encoder:
            self.model.refine_encoder(scene_encoder)
