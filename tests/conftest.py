"""The shared test settings live in tests/modelsec_plugin.py, loaded for every
pytest run of this repository through pyproject.toml (``-p modelsec_plugin``),
also when pytest is given only notebooks. tests/ is on sys.path (``pythonpath``),
so the test helpers here are importable."""


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def course():
    """The digits (seed 0) and the course MLP trained on them (cached): the model the API
    and theft tests serve and attack."""
    import utils
    from utils import data, training

    utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    model = training.fit(training.preset("mlp", seed=0), ds.X_train, ds.y_train, ds.n_classes)
    return ds, model
