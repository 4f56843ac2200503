"""DeepSC-style semantic communication with distilled receivers."""
