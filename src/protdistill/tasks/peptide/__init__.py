"""StructDiff: conditional peptide generation by diffusion in ESM-2 embedding space."""
