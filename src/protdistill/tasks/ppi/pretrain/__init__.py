"""General distillation: the transfer set, its batches and the backbone training loop
(a student encoder learns the teacher representation of unlabelled proteins).
Imports only tasks.ppi.common."""
