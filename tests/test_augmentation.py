"""The ``augment`` parameter: what it builds, what it does to images, changing it between fits."""

import numpy as np
import pytest

from mtlfaces import MultiTaskFaceClassifier, load_model
from mtlfaces._network import (AUGMENT_DEFAULTS, augmentation_layers, augmentation_spec,
                               model_augmentation)

from .conftest import TINY

STRONG = {"rotation": 0.04, "shift": 0.1, "zoom": 0.1, "contrast": 0.2, "erase": 0.5}


def _sharpness(images):
    """Mean |discrete Laplacian| of (n, h, w, 1) images, away from the filled borders."""
    x = np.asarray(images, dtype=np.float64)[..., 0]
    lap = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1]
           - x[:, 1:-1, :-2] - x[:, 1:-1, 2:])
    return float(np.abs(lap[:, 8:-8, 8:-8]).mean())


@pytest.fixture(scope="module")
def faces(astronaut):
    from skimage.color import rgb2gray
    from skimage.transform import resize

    face = resize(rgb2gray(astronaut[60:200, 160:290]), (64, 64), anti_aliasing=True)
    return np.repeat(face[None, :, :, None], 16, axis=0).astype("float32")


@pytest.mark.parametrize("augment, match", [
    ({"spin": 0.1}, r"unknown entry \['spin'\]"),
    ({"zoom": -0.1}, r"augment\['zoom'\]=-0.1"),
    ({"erase": 1.5}, r"augment\['erase'\]=1.5.*\[0, 1.0\]"),
    ({"flip": 1}, r"augment\['flip'\]=1; expected True or False"),
    ({"rotation": True}, r"augment\['rotation'\]=True"),
    ({"shift_interpolation": "cubic"}, "'nearest'.*'bilinear'"),
    ("yes", "'augment' parameter.*Got 'yes'"),
])
def test_bad_augment_is_a_clear_error_at_fit(shapes, augment, match):
    X, y = shapes
    with pytest.raises(ValueError, match=match):
        MultiTaskFaceClassifier(epochs=1, **dict(TINY, augment=augment)).fit(X[:8], y[:8])


def test_spec_defaults_and_overrides():
    assert augmentation_spec(True) == AUGMENT_DEFAULTS
    off = augmentation_spec(False)
    assert off["flip"] is False and not any(off[k] for k in STRONG)
    spec = augmentation_spec({"zoom": 0.1, "flip": False})
    assert spec["zoom"] == 0.1 and spec["flip"] is False
    assert spec["rotation"] == AUGMENT_DEFAULTS["rotation"]  # untouched entries keep defaults
    assert augmentation_layers(off, seed=0) == []
    # Without a shift its interpolation means nothing, so it cannot make specs differ.
    assert augmentation_spec({"shift": 0, "shift_interpolation": "bilinear"}) == augmentation_spec(
        {"shift": 0})


def test_whole_pixel_shifts_keep_images_sharp_and_bilinear_ones_blur(faces):
    shifted = {}
    for interpolation in ("nearest", "bilinear"):
        spec = augmentation_spec({"flip": False, "rotation": 0, "shift": 0.1,
                                  "shift_interpolation": interpolation})
        (layer,) = augmentation_layers(spec, seed=3)
        shifted[interpolation] = np.asarray(layer(faces, training=True))
    original = _sharpness(faces)
    # Whole-pixel shifts move pixels without mixing them: every value is an input value.
    assert np.isin(shifted["nearest"], faces).all()
    assert _sharpness(shifted["nearest"]) > 0.95 * original
    # A fractional bilinear shift averages neighbours: measurably blurrier.
    assert _sharpness(shifted["bilinear"]) < 0.9 * original
    assert not np.isin(shifted["bilinear"], faces).all()


def test_strong_augmentation_changes_training_images_not_inference(faces):
    layers = augmentation_layers(augmentation_spec(STRONG), seed=1)
    assert [layer.name for layer in layers] == [
        "augment_flip", "augment_rotate", "augment_shift", "augment_zoom", "augment_contrast",
        "augment_erase"]
    x_train, x_infer = faces, faces
    for layer in layers:
        x_train = layer(x_train, training=True)
        x_infer = layer(x_infer, training=False)
    x_train = np.asarray(x_train)
    np.testing.assert_array_equal(np.asarray(x_infer), faces)
    assert x_train.min() >= 0 and x_train.max() <= 1  # contrast and erasing stay in [0, 1]
    assert np.abs(x_train - faces).max(axis=(1, 2, 3)).min() > 0.05  # every image changed


def test_fitted_network_carries_its_augmentation_and_saves_it(shapes, shapes_test, tmp_path):
    X, y = shapes
    clf = MultiTaskFaceClassifier(epochs=1, **dict(TINY, augment=STRONG)).fit(X, y)
    assert model_augmentation(clf.model_) == augmentation_spec(STRONG)
    clf.save(tmp_path / "strong.mtlfaces")
    back = load_model(tmp_path / "strong.mtlfaces")  # safe-mode load of every layer
    assert model_augmentation(back.model_) == augmentation_spec(STRONG)
    assert back.get_params()["augment"] == STRONG
    for a, b in zip(back.predict_proba(shapes_test[0]), clf.predict_proba(shapes_test[0])):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_changing_augment_before_a_warm_fit_rebuilds_with_the_same_weights(shapes, shapes_test):
    X, y = shapes
    clf = MultiTaskFaceClassifier(epochs=3, **dict(TINY, augment=True)).fit(X, y)
    before = clf.predict_proba(shapes_test[0])
    old = clf.model_
    clf.set_params(augment={"erase": 0.5, "shift": 0.1}, warm_start=True)
    clf._match_augmentation()  # what the warm fit does first
    assert clf.model_ is not old
    assert model_augmentation(clf.model_)["erase"] == 0.5
    for a, b in zip(clf.predict_proba(shapes_test[0]), before):
        np.testing.assert_allclose(a, b, atol=1e-6)  # same weights, inference unchanged
    # And through the public path: the warm fit trains the rebuilt network.
    clf.set_params(augment={"contrast": 0.3})
    clf.fit(X, y)
    assert model_augmentation(clf.model_)["contrast"] == pytest.approx(0.3)
    assert model_augmentation(clf.model_)["erase"] == 0.0
    assert len(clf.history_["loss"]) == 6
    # An unchanged augment keeps the very same network.
    same = clf.model_
    clf.fit(X, y)
    assert clf.model_ is same


def test_changing_augment_and_architecture_together_is_a_clear_error(shapes):
    X, y = shapes
    clf = MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y)
    clf.set_params(augment=True, filters=(8, 32), warm_start=True)
    with pytest.raises(ValueError, match="cannot take filters=.*warm_start=False"):
        clf.fit(X, y)
