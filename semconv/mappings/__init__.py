"""Mapping data for genai_normalize, installed as the package `spanhouse.mappings` (YAML files only)."""
