"""`ppi screen`: pair scores over blocks of cached embeddings, the running top-K, the hit tables.
Uses a trained run (tasks.ppi.run) and never the other uses (interfaces, export)."""
