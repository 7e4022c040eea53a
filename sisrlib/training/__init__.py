"""SR training and registration pre-training (Lightning).

The LightningModule (:mod:`sisrlib.training.module`), the fit driver (:mod:`sisrlib.training.fit`) and its
callbacks, logs and run folder, the losses (:mod:`sisrlib.training.losses`). Run params live in
:mod:`sisrlib.run_params`, the Lightning-free checkpoint reader in :mod:`sisrlib.checkpoint`.
"""
