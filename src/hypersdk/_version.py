"""The single source of hypersdk's version (read by hatchling and by ``hypersdk.__version__``)."""

__version__ = "0.1.0.dev0"
