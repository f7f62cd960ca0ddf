"""``ns-train pixelsplat``: one scene predicted from its context views, then optionally refined.

config (light: imported by every ns-* command), datamanager and dataset (the frames, their checks, images read
as displayed), context (camera checks, the chosen views as ``Views``), context_groups (which views go together,
geometrically), context_plan (which views, in which groups, chosen once a run), scene_depth (the scene's depth
from matched features, for ``context-pairs auto``), prediction (the encoder bound to the plan's groups), fusion
(several groups' Gaussians without duplicates), splats (Gaussians <-> splatfacto's parameters), model,
refinement and loss (optional refinement after the prediction), cpu_allocator (glibc's allocator tuned for CPU
rendering), pipeline.
"""
