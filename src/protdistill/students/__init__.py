"""Small student models; each returns a typed output dataclass."""
