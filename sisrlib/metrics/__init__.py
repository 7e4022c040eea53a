"""Metrics of cross-sensor super-resolution.

* :mod:`~sisrlib.metrics.fda`: radial FFT profiles and the Frequency Domain Analysis metrics (FRR, FRO, FRU);
* :mod:`~sisrlib.metrics.pixel`: per-band PSNR, SSIM, RMSE, LR / HR fidelity, HF power and TV variations;
* :mod:`~sisrlib.metrics.distortion`: geometric (flow) and radiometric distortion against the LR input;
* :mod:`~sisrlib.metrics.benchmark`: the metrics sensitivity benchmark over simulated distortions;
* :mod:`~sisrlib.metrics.dataset_analysis`: how far apart the input and target of a dataset are;
* :mod:`~sisrlib.metrics.plots`, :mod:`~sisrlib.metrics.mosaic`: figures and image mosaics.

The test-set evaluation of trained runs that combines them is :mod:`sisrlib.evaluation`.
"""
