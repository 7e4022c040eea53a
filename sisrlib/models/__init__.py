"""Super-resolution networks (generators), discriminators and the registry that builds them from params.

Every generator is an :class:`sisrlib.models.base.SRModel` working on standardised ``[B, C, H, W]`` tensors
and reporting ``factor``, ``margin`` (output px), ``receptive_field`` (output px), ``in_bands`` and
``out_bands``. Import from the modules: ``sisrlib.models.registry`` (``build_generator``,
``build_discriminator``, ``build_sisr_network``), ``sisrlib.models.params`` (``ModelParams``,
``DiscriminatorParams``; torch-free), ``sisrlib.models.esrgan``, ``.carn``, ``.bicubic``, ``.joint``,
``.discriminators``, ``.dn_model`` (``DNModel``, the DN ↔ standardised wrapper). This package module itself
imports nothing, so that reading params does not load torch.
"""
