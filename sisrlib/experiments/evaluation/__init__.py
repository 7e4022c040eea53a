"""Test-set evaluation of super-resolution models (torchsisr's test step and ``bin/test.py``): metrics table,
FFT profiles, mosaics. This package's ``__init__`` imports nothing; import the module you need:

* :mod:`.params`: ``EvaluationParams``, ``RunSpec`` (the ``04_evaluation_*`` params files);
* :mod:`.batches`: test batches, paths, devices, the bicubic input (shared with the dataset analysis);
* :mod:`.runs`: run discovery (``expand_runs``, ``resolve_checkpoint``, ``variant_of``, ``dataset_of``);
* :mod:`.predict`: a batch → the single DN input of a :class:`sisrlib.predictors.Predictor` → reflectance;
* :mod:`.oracle`: the oracle references of simulated sites; :mod:`.ceilings`: the reference images that bound
  what a family of models can reach there;
* :mod:`.loop`: the metric loop and its accumulators (``evaluate_predictors``), with :mod:`.rows` (FDA
  rows), :mod:`.simulation` (the "sim" inputs) and :mod:`.perceptual` (LPIPS, PieAPP, BRISQUE);
* :mod:`.conventions`: the metric conventions an evaluation used (ours or torchsisr's);
* :mod:`.writers`: ``metrics.csv``, ``runs.csv``, per-model outputs; :mod:`.files`: the names of the files the
  report gathers;
* :mod:`.calibration`: calibration of the geometric measure, margin fitting;
* :mod:`.tables`: table formatting for notebooks and the command line;
* :mod:`.runner`: ``evaluate`` / ``evaluate_runs``, the whole evaluation of a params file.

Figures of an evaluation are drawn by :mod:`sisrlib.figures.evaluation`.
"""
