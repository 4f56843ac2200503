"""protdistill: distil protein language models into small, fast, interpretable students."""

__version__ = "0.1.0"
