"""The ``corral`` command line (see ``corral --help``)."""

from corral.cli._app import main
from corral.cli._common import app

__all__ = ["app", "main"]
