"""The single source of the plugin's version (read by hatchling and by ``PLUGIN_INFO``)."""

__version__ = "0.1.0"
