"""Applications built on the distillation core."""
