"""Shared test settings live in utils/pytest_plugin.py (a pytest11 plugin), so
they also apply when pytest is given only notebooks. This file only makes the
test helpers in tests/ importable."""
