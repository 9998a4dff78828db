"""Shared fixtures: small datasets the tests build themselves, real faces from scikit-image."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
