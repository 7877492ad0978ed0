"""Importers of real buildings into the contract tables."""
