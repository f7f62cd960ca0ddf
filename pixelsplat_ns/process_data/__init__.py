"""Your own data as nerfstudio scenes: the logic of ``pixelsplat-process-data`` (photos with known cameras)."""
