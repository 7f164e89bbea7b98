"""The facility's catalog: every stored package and every device's latest status, in SQLite (the
default, a file beside the store) or PostgreSQL (``catalog_url = "postgresql://..."``, shared by
several receivers). Only the receiver writes; ``labedge fleet`` reads. See docs/facility.md."""
from facility.catalog.catalog import Catalog, CatalogError, open_catalog

__all__ = ["Catalog", "CatalogError", "open_catalog"]
