"""Thin typer apps: parse options, call the library, print results."""
