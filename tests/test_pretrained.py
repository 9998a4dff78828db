"""The bundled model: present, safe to load, and right on a clear case."""

import os
import zipfile

import pytest
from click.testing import CliRunner

import mtlfaces
from mtlfaces import PRETRAINED_MODEL_PATH, FaceCropper
from mtlfaces.cli import main


def test_bundled_model_is_installed_and_not_pickled():
    assert os.path.exists(PRETRAINED_MODEL_PATH)
    assert os.path.getsize(PRETRAINED_MODEL_PATH) < 30e6
    with zipfile.ZipFile(PRETRAINED_MODEL_PATH) as zf:
        assert sorted(zf.namelist()) == ["model.int8.tflite", "model.keras", "mtlfaces.json"]
    clf = mtlfaces.load_pretrained()
    assert clf.tasks_ == ["age", "gender", "emotion", "age_years"]
    assert list(clf.classes_[2]) == list(mtlfaces.EMOTIONS)
    assert [int(c) for c in clf.classes_[3]] == list(range(1, 91))  # the years 1-90


def test_astronaut_is_a_smiling_adult_woman(astronaut):
    """Eileen Collins' NASA portrait: a clearly smiling woman, about 40 at the time.

    Only what the model must get right on such a clear case is asserted: the
    gender, the emotion, and that she is an adult (not a child). The exact age
    group is not asserted: 30-44 vs 45-64 from one photo is a hard call.
    """
    clf = mtlfaces.load_pretrained()
    crop = FaceCropper(size=clf.image_size, on_missing="raise").transform([astronaut])
    age, gender, emotion, _ = clf.predict(crop)[0]
    assert gender == "Female"
    assert emotion == "Happy"
    assert age != "Child"
    proba = clf.predict_proba(crop)
    assert proba[2][0, list(clf.classes_[2]).index("Happy")] > 0.5
    # The age in years (the expected value, as analyze answers it): an adult, not elderly.
    years = proba[3][0] @ clf.classes_[3].astype(float)
    assert 20 < years < 60
    assert mtlfaces.analyze(astronaut, readout=False)[0]["age_years"] == pytest.approx(
        years, abs=1.0)  # the 8-bit copy and the photo's own crop: within a year


def test_cli_uses_the_bundled_model_by_default(astronaut, tmp_path):
    import cv2

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    result = CliRunner().invoke(main, ["predict", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "gender Female" in result.output and "emotion Happy" in result.output
