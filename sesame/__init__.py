"""Sesame: signed download links that open for a while and then close."""

__version__ = "0.1.0"
