"""``ns-train pixelsplat``: one scene predicted from its context views, then optionally refined.

config (light: imported by every ns-* command), datamanager, context, context_plan (which views, chosen once
a run), prediction, model, refinement, splats, loss, pipeline.
"""
