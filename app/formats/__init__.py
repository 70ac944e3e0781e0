"""Renderings of released results: JSON, CSV, JSON-stat 2.0 and SDMX-CSV 2.0."""
