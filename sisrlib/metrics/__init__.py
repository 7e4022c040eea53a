"""Metrics of cross-sensor super-resolution: tensors in, numbers out (torch and the core modules only).

* :mod:`~sisrlib.metrics.fda`: radial FFT profiles and the Frequency Domain Analysis metrics (FRR, FRO, FRU);
* :mod:`~sisrlib.metrics.pixel`: per-band PSNR, SSIM, RMSE, LR / HR fidelity, HF power and TV variations;
* :mod:`~sisrlib.metrics.distortion`: geometric (flow) and radiometric distortion against the LR input;
* :mod:`~sisrlib.metrics.oracle`: the oracle references of simulated sites;
* :mod:`~sisrlib.metrics.iqa`: GMSD, MS-GMSD, HaarPSI (own code from the published definitions);
* :mod:`~sisrlib.metrics.perceptual`: LPIPS, PieAPP, BRISQUE per band (:mod:`~sisrlib.metrics.lpips`,
  :mod:`~sisrlib.metrics.pieapp`, :mod:`~sisrlib.metrics.brisque`; weights supplied by the user);
* :mod:`~sisrlib.metrics.accumulate`: running means over batches.

The studies that use them (evaluation, dataset analysis, metrics benchmark) are in :mod:`sisrlib.experiments`;
figures in :mod:`sisrlib.figures`.
"""
