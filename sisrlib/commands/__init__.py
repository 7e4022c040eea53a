"""Subcommands of the ``sisr`` command line (see ``sisrlib.cli``)."""
