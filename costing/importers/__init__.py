"""Importers: official publication formats -> canonical table editions (one module per format)."""
