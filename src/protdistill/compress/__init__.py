"""Compression after distillation: structured pruning (prune), INT8 (int8, quantize), low rank
(lowrank), one step at a time (steps) on a model family's :class:`~.task.Task`, saved as a
rebuildable directory (artifact: ``load_compressed(dir) -> (model, meta)``)."""
