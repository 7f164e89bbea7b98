"""labedge agent: the edge daemon that watches instrument folders and ships verified packages."""

__version__ = "0.1.0"
