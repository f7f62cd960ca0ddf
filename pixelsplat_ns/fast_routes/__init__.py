"""Faster routes to the same functions, chosen at run time, each equal to the straightforward arithmetic within
float rounding (the encoder's ``ComputeOptions`` switch them off).

layers (linear layers as oneDNN 1x1 convolutions, large convolutions in the Fourier domain: CPU only),
upsampling_numba (the backbone's full-resolution sum in one compiled pass: CPU only), derived_weights (weights
computed from parameters, cached while the parameters are unchanged), numba_cache (``warm_up``: every numba
kernel of the project compiled or loaded in one call: these and the renderer's).
"""
