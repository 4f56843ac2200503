"""Compression after distillation: structured pruning, quantization, low rank."""
