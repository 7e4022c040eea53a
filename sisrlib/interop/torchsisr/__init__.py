"""Import the checkpoints of torchsisr (CESBIO's reference code of hal-04723225) onto this library's networks.

torchsisr writes Lightning checkpoints of its ``DoubleSISRTrainingModule``: a dictionary with ``state_dict``,
``loops``, ``callbacks``, ``optimizer_states``, ... and **no** ``hyper_parameters``. Its ``state_dict`` holds

* ``mean``, ``std``: the standardisation (reflectance units) of ``training_module.bands``, in that order;
* ``generator.sisr_model.*``: the SR network (``ESRGANGenerator`` of the paper's runs, ``CARN`` of the
  EVOLAND model and of the registration pre-training runs, where it is untrained);
* ``registration_module.*``: the flow network ``UnetOpticalFlowEstimation`` (registration pre-training runs
  and every paper SR run, which carries a copy of its pre-trained network);
* discriminator, loss and metric networks, simulation noise: ignored here.

The file is read by :func:`sisrlib.safe_load.load_weights_only` (``torch.load(weights_only=True,
map_location="cpu")``, the loader of our own checkpoints too): nothing in it runs, and a file that needs a
Python global is refused (:class:`~sisrlib.errors.UnsafeCheckpointError`). Neither Lightning nor torchsisr
code is imported.

What the weights do not say is taken, in this order, from an explicit argument, from the run configuration
hydra saved beside the checkpoint (``.hydra/config.yaml``), or from the tensor shapes; each imported object
carries a ``provenance`` mapping (item → where it came from), also logged at INFO level.

Modules, one responsibility each:

* :mod:`~sisrlib.interop.torchsisr.layout`: reading and validating the checkpoint layout, the weight-map
  helpers;
* :mod:`~sisrlib.interop.torchsisr.run_config`: the run configuration (``.hydra/config.yaml``);
* :mod:`~sisrlib.interop.torchsisr.keymaps`: which of their keys is which of ours (both directions);
* :mod:`~sisrlib.interop.torchsisr.networks`: ESRGAN / CARN rebuilt from their weights;
* :mod:`~sisrlib.interop.torchsisr.generator`: :func:`import_generator` (bands, factor, standardisation,
  the joint 10 m + 20 m model);
* :mod:`~sisrlib.interop.torchsisr.registration`: :func:`import_registration` (the flow network);
* :mod:`~sisrlib.interop.torchsisr.dn_model`: the DN-in/DN-out model (exported by :mod:`sisrlib.export`);
* :mod:`~sisrlib.interop.torchsisr.writer`: the inverse, our networks written in torchsisr's layout.
"""

from sisrlib.interop.torchsisr.dn_model import imported_dn_model
from sisrlib.interop.torchsisr.generator import (
    ImportedGenerator,
    LrToHr,
    import_generator,
)
from sisrlib.interop.torchsisr.layout import (
    GENERATOR_PREFIX,
    REGISTRATION_PREFIX,
    read_torchsisr_checkpoint,
)
from sisrlib.interop.torchsisr.registration import (
    ImportedRegistration,
    import_registration,
    is_torchsisr_checkpoint,
    load_flow_network,
)
from sisrlib.interop.torchsisr.run_config import RUN_CONFIG, ConfigArg, load_run_config
from sisrlib.interop.torchsisr.writer import torchsisr_run, write_torchsisr_run

__all__ = [
    "GENERATOR_PREFIX",
    "REGISTRATION_PREFIX",
    "RUN_CONFIG",
    "ConfigArg",
    "ImportedGenerator",
    "ImportedRegistration",
    "LrToHr",
    "import_generator",
    "import_registration",
    "imported_dn_model",
    "is_torchsisr_checkpoint",
    "load_flow_network",
    "load_run_config",
    "read_torchsisr_checkpoint",
    "torchsisr_run",
    "write_torchsisr_run",
]
