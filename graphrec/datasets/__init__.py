"""Adapters that turn public data sets (and a synthetic shop) into the canonical input layout."""
