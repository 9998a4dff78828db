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
        assert sorted(zf.namelist()) == ["model.keras", "mtlfaces.json"]
    clf = mtlfaces.load_pretrained()
    assert clf.tasks_ == ["age", "gender", "emotion"]
    assert list(clf.classes_[2]) == list(mtlfaces.EMOTIONS)


def test_astronaut_is_a_smiling_adult_woman(astronaut):
    """Eileen Collins' NASA portrait: a clearly smiling woman, about 40 at the time.

    Only what the model must get right on such a clear case is asserted: the
    gender, the emotion, and that she is an adult (not a child). The exact age
    group is not asserted: 30-44 vs 45-64 from one photo is a hard call.
    """
    clf = mtlfaces.load_pretrained()
    crop = FaceCropper(size=clf.image_size, on_missing="raise").transform([astronaut])
    age, gender, emotion = clf.predict(crop)[0]
    assert gender == "Female"
    assert emotion == "Happy"
    assert age != "Child"
    proba = clf.predict_proba(crop)
    assert proba[2][0, list(clf.classes_[2]).index("Happy")] > 0.5


def test_cli_uses_the_bundled_model_by_default(astronaut, tmp_path):
    import cv2

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    result = CliRunner().invoke(main, ["predict", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "gender Female" in result.output and "emotion Happy" in result.output


def test_readme_crop_size_sentence_is_what_the_bundled_model_says(astronaut):
    """The model card's example of a borderline answer: the astronaut's gender from a
    48-pixel crop, from FaceCropper()'s 64 pixels resized, and with the read-out."""
    import re

    from mtlfaces.analysis import FaceAnalyzer

    clf = mtlfaces.load_pretrained()
    female = list(clf.classes_[clf.tasks_.index("gender")]).index("Female")
    p48, p64 = (clf.predict_proba(FaceCropper(**kw).transform([astronaut]))[1][0, female]
                for kw in ({"size": clf.image_size}, {}))
    both = FaceAnalyzer(clf, readout=mtlfaces.load_pretrained_readout()).analyze(astronaut)[0]
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as fh:
        readme = " ".join(fh.read().split())
    sentence = readme.split("The astronaut's gender, for one,", 1)[1].split(").", 1)[0]
    assert [float(v) for v in re.findall(r"0\.\d\d", sentence)] == [
        round(p48, 2), round(p64, 2), round(both.probabilities["gender"], 2)]
    assert both.labels["gender"] == "Female"


def _readme_example():
    """The README's example: how the photo was saved, and the lines it shows."""
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as fh:
        readme = fh.read()
    block = readme.split("(`cv2.imwrite`, quality 95):\n\n```text\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines(), " ".join(readme.split())


def _fields(line):
    """A predict line's words with its probabilities taken out: (words, probabilities)."""
    import re

    return re.sub(r"\((0\.\d\d)\)", "(p)", line), [float(v) for v in re.findall(
        r"\((0\.\d\d)\)", line)]


def _predict_jpeg(astronaut, tmp_path, quality):
    """What `mtlfaces predict` (bundled model and read-out) prints for the astronaut saved
    by OpenCV as a JPEG of ``quality``, with the file's name as the README writes it."""
    import cv2

    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, quality])
    result = CliRunner().invoke(main, ["predict", str(path)])
    assert result.exit_code == 0, result.stderr
    return [line.replace(str(path), "astronaut.jpg") for line in result.output.splitlines()]


def test_readme_example_is_what_predict_prints(astronaut, tmp_path):
    """The README's example: the same lines, box, pose and answers, each probability within
    0.01 of the one shown (last-digit rounding may differ between CPUs)."""
    lines, _ = _readme_example()
    got = _predict_jpeg(astronaut, tmp_path, 95)
    assert len(got) == len(lines) == 2
    for ours, theirs in zip(got, lines):
        (words, p), (want, q) = _fields(ours), _fields(theirs)
        assert words == want and len(p) == len(q)
        assert all(abs(a - b) <= 0.0101 for a, b in zip(p, q))


def test_readme_quality_75_sentence_is_what_predict_prints(astronaut, tmp_path):
    """The sentence after the example: at quality 75 the gender probability it gives."""
    import re

    _, flat = _readme_example()
    shown = float(re.search(r"quality 75 instead .*? gender Female \((0\.\d\d)\)",
                            flat).group(1))
    got = _predict_jpeg(astronaut, tmp_path, 75)
    gender = re.search(r"gender Female \((0\.\d\d)\)", " ".join(got))
    assert gender and abs(float(gender.group(1)) - shown) <= 0.0101
