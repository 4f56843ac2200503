"""Frozen teachers (ESM-2) and the on-disk teacher-output cache."""
