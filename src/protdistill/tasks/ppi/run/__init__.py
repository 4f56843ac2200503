"""The stages of `ppi run` — prepare -> teacher (+ head) -> backbone -> train -> evaluate — and the
orchestrator (pipeline), plus loading a trained run's student and its per-protein embeddings.
Imports tasks.ppi.common and tasks.ppi.pretrain."""
