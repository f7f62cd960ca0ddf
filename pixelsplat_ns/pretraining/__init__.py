"""``ns-train pixelsplat-pretrain``: generalizable training of the encoder on RealEstate10k-format chunks,
inside nerfstudio's trainer (optimizers, schedulers, checkpoints, logging, multi-GPU launcher).

config (light: imported by every ns-* command), datamanager, model, pipeline, loss (framework-free), memory
(whether a training step fits, measured before the first).
"""
