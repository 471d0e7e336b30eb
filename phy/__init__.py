"""Sionna links for JSCC codecs."""
