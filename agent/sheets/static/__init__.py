"""Inline assets of the sheet and queue pages (package data, read via importlib.resources)."""
