"""The renderer's numba CPU kernels, one module per stage, each kernel with a hand-written backward pass:

- ``sh``: gsplat's SH basis and its gradient at one direction, helpers of the projection kernels;
- ``projection``: projection and SH colours, one Gaussian at a time (``project_and_shade_numba``);
- ``tiles``: the compositing's layout: pixel boxes, depth order, per-tile lists (``build_layout``);
- ``compositing``: each tile walked front to back, and back to front for the gradients (``composite_numba``).
(``pixelsplat_ns.fast_routes.numba_cache.warm_up`` compiles them all, with the encoder's, in one call.)

This file imports nothing: ``rasterize`` imports ``projection`` and ``compositing`` at the first render that
uses them, through ``untraced.import_untraced`` (the viewer's interrupt landing half-way through numba's
import would break every later render; see ``untraced.py``), and importing ``pixelsplat_ns.render`` never
imports numba.

numba compiles the kernels on first use and keeps them on disk (``cache=True``, in ``__pycache__`` beside
these files). Its cache is checked against the file of the kernel it holds only, not the files of the
kernels that one calls nor the constants it reads: after editing ``sh.py``, ``tiles.py`` or the constants of
``render/compositing.py``, delete that ``__pycache__`` (or touch ``projection.py`` and ``compositing.py``), or
their callers keep the old code.
"""
