"""Figures: the presentation layer (matplotlib, imported lazily inside the functions that draw).

Every function takes computed results (arrays, tables, the result objects of :mod:`sisrlib.experiments`) and
draws or writes them; nothing here computes a metric or reads a dataset. Files are written through
:mod:`sisrlib.atomic` (temporary name, then rename).

* :mod:`~sisrlib.figures.base`: ``pyplot()`` and ``save_figure`` (the one way a figure reaches a file);
* :mod:`~sisrlib.figures.metrics`: FFT profiles, the benchmark's metric panels, patch panels with one stretch;
* :mod:`~sisrlib.figures.mosaic`: patch mosaics as GeoTIFF (DN) and PNG quick-looks;
* :mod:`~sisrlib.figures.data`: data preparation (site layout, LR / HR mosaics, histograms);
* :mod:`~sisrlib.figures.training`: registration and training (flows, overlays, loss curves, predictions);
* :mod:`~sisrlib.figures.report`: the results report (summary bars, dose-response).

Layer: beside :mod:`sisrlib.experiments` (it may import the result types of an experiments module; an
experiments module may call a figures module; a figures module never imports the experiments module that
calls it, so there is no cycle). Core, models, data, metrics, training and deployment never import it.
"""
