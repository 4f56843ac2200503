"""Readers, validation and atomic writers for user data."""
