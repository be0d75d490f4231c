"""Layers used identically by two or more networks (one concept per file)."""
