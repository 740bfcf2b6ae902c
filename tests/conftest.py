"""The shared test settings live in tests/modelsec_plugin.py, loaded for every
pytest run of this repository through pyproject.toml (``-p modelsec_plugin``),
also when pytest is given only notebooks. tests/ is on sys.path (``pythonpath``),
so the test helpers here are importable."""
