"""Metrics sensitivity benchmark (torchsisr's ``bin/benchmark_metrics.py``): how image-quality metrics respond
to controlled distortions. This package's ``__init__`` imports nothing; import the module you need.

HR patches of a dataset (one band, reflectance clipped to [0, 1]) are the reference. Each is distorted by
``simulate`` with one distortion at a time (sub-pixel shift, contrast loss, Gaussian noise, periodic pattern),
crossed with every blur (MTF) level, and every metric compares the distorted patches with the reference — all
metrics on the **same** simulated patches. The FDA metrics need an "input" spectrum: ours (``fda_input:
simulated``) is the HR patch degraded by ``factor`` with MTF ``input_mtf`` and bicubic-upsampled; torchsisr's
(``fda_input: sentinel2``) is the real LR patch of the same band bicubic-upsampled. Metrics whose optional
packages or weight files are missing are skipped with a logged message (asking for one explicitly raises
``MissingDependencyError`` saying what to install or which file to supply); nothing is downloaded.

* :mod:`.params`: ``BenchmarkParams`` (the ``05_metrics_benchmark`` params files), ``DISTORTIONS``;
* :mod:`.simulation`: ``simulate`` and the 4×4 periodic patterns (ours, torchsisr's);
* :mod:`.spec`, :mod:`.registry`: ``MetricSpec``, ``METRICS`` (torchsisr's order), ``select_metrics``;
* :mod:`.dependencies`: which optional packages and weight files a metric needs, and why it cannot run;
* :mod:`.runner`: ``reference_patches``, ``run_benchmark``, ``benchmark`` (a whole params file);
* :mod:`.summary`: ``summarise``, ``summary_markdown``, ``write_outputs``.

Outputs: a long table ``benchmark.csv`` (metric, distortion, level, mtf, value), one figure per metric with
four panels (shift, contrast, noise, pattern; one curve per MTF), and a summary ``summary.{csv,md}`` of the
normalised response range of every metric to every distortion (and to blur).
"""
