"""Shared fixtures: small datasets the tests build themselves, real faces from scikit-image."""

import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import pytest

from mtlfaces.datasets import make_shapes

TINY = dict(image_size=32, filters=(8, 16), dense_units=(32,), dropout=0.0, batch_size=32,
            augment=False, validation_fraction=0.0, random_state=0)


@pytest.fixture(scope="session")
def shapes():
    return make_shapes()


@pytest.fixture(scope="session")
def shapes_test():
    X, y = make_shapes(200, seed=1, missing_gender=0.0)
    return X, y


@pytest.fixture(scope="session")
def fitted(shapes):
    from mtlfaces import MultiTaskFaceClassifier

    X, y = shapes
    return MultiTaskFaceClassifier(epochs=12, **TINY).fit(X, y)


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()


def load_script(folder, name):
    """Import ``<folder>/<name>.py`` of the repository as a module (the folder goes on
    sys.path, as when the script runs)."""
    where = os.path.join(ROOT, folder)
    if where not in sys.path:
        sys.path.insert(0, where)
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}",
                                                  os.path.join(where, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (recipe trainings and benchmark runs on the datasets, 20 s to a
    minute each) are skipped unless asked for with ``-m slow`` (or any marker expression
    naming them), so the default run stays within a few minutes."""
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="a slow check (recipe training, dataset benchmark): "
                                   "run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
