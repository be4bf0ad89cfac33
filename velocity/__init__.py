"""velocity: fast, honest federated-learning strategy x attack sweeps."""

from velocity._core import __version__

__all__ = ["__version__"]
