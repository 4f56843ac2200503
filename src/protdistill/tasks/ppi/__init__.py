"""Protein-protein interaction distillation."""
