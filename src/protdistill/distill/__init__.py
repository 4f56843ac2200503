"""Distillation core: pure losses, weighted objectives, feature hooks, training loop."""
