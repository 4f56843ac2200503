"""What every PPI stage shares: the run configuration, validated records / splits / batches, the
binned teacher maps, classification metrics and the rank-shared teacher-cache filling.
Imports nothing else from tasks.ppi."""
