"""A model with an age_years head answers the age in years: records, CSV, Parquet, pictures."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mtlfaces
from mtlfaces.tasks import YEARS_TASK, answer, median_years

from .conftest import TINY


@pytest.fixture(scope="module")
def years_model(tmp_path_factory):
    """A small network with age group, gender and a head over the years 20, 30 and 70; its
    answers are steered by what it learnt, not fixed."""
    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.datasets import make_shapes

    X, y = make_shapes(120, seed=3)
    years = np.random.RandomState(0).choice([20, 30, 70], len(X))
    y = pd.DataFrame({"gender": y["gender"], YEARS_TASK: years})
    clf = MultiTaskFaceClassifier(tasks=("gender", YEARS_TASK), **dict(TINY, epochs=2)).fit(X, y)
    path = tmp_path_factory.mktemp("years") / "years.mtlfaces"
    clf.save(path)
    return clf, path


def test_the_answer_for_years_is_the_median_age():
    """The median of the distribution, interpolated within the year that reaches half (each
    year spans halfway to its neighbours), not the expected value."""
    years = np.arange(1, 6)
    assert answer(YEARS_TASK, [0, 0, 1, 0, 0], years) == (3.0, None)
    # Expected value 2.6; the median stays with the larger mass, a third into year 1.
    assert answer(YEARS_TASK, [0.6, 0, 0, 0, 0.4], years) == (1.3, None)
    assert median_years([[0.6, 0, 0, 0, 0.4], [0.2] * 5], years) == pytest.approx([4 / 3, 3.0])
    # Classes in any order, unnormalised rows.
    assert median_years([2, 2, 2, 4], [4, 3, 2, 1]) == pytest.approx(2.0)
    # Uneven years: the year reaching half spans from halfway below to halfway above.
    assert answer(YEARS_TASK, [0.5, 0.5, 0.0], np.array([20, 30, 70])) == (25.0, None)
    assert answer(YEARS_TASK, [0.1, 0.1, 0.8], [20, 30, 70]) == (57.7, None)
    assert answer("age", [0.1, 0.7, 0.2], np.array(["Child", "Young", "Old"], object)) == \
        ("Young", pytest.approx(0.7))


def test_records_carry_the_age_in_years_without_its_distribution(years_model, astronaut):
    clf, _ = years_model
    record = mtlfaces.analyze(astronaut, clf)[0]
    assert record["status"] == "ok"
    proba = clf.predict_proba(mtlfaces.pipeline.FaceAnalyzer(clf).detect(astronaut)[0].crop[None])
    median = median_years(proba[clf.tasks_.index(YEARS_TASK)][0], [20, 30, 70])
    assert record[YEARS_TASK] == pytest.approx(median, abs=0.06)
    assert 20 <= record[YEARS_TASK] <= 70
    assert f"{YEARS_TASK}_probability" not in record
    assert set(record["distributions"]) == {"gender"}
    frame = mtlfaces.analyze(astronaut, clf, as_frame=True)
    assert frame[YEARS_TASK].dtype.kind == "f"
    assert not [c for c in frame.columns if c.startswith(YEARS_TASK + ".")]


def test_the_cli_writes_the_age_in_years_to_csv_json_and_parquet(years_model, astronaut,
                                                                 tmp_path):
    import cv2

    from mtlfaces.cli import main

    _, path = years_model
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut[:, :, ::-1])
    runner = CliRunner()
    out = runner.invoke(main, ["predict", str(photo), "--model", str(path), "--csv",
                               str(tmp_path / "a.csv"), "--probabilities", "--no-descriptor"])
    assert out.exit_code == 0, out.output
    # The summary names the age without a probability (it has none).
    assert f"{YEARS_TASK} {float(pd.read_csv(tmp_path / 'a.csv')[YEARS_TASK].iloc[0])}" in out.output
    table = pd.read_csv(tmp_path / "a.csv")
    assert YEARS_TASK in table.columns and f"{YEARS_TASK}_probability" not in table.columns
    assert "gender.Female" in table.columns
    assert not [c for c in table.columns if c.startswith(YEARS_TASK + ".")]
    assert 20 <= float(table[YEARS_TASK].iloc[0]) <= 70
    out = runner.invoke(main, ["predict", str(photo), "--model", str(path), "--json",
                               str(tmp_path / "a.jsonl"), "--no-descriptor"])
    assert out.exit_code == 0, out.output
    record = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert record[YEARS_TASK] == pytest.approx(float(table[YEARS_TASK].iloc[0]))
    from mtlfaces.distributed import columns_for

    types = dict(columns_for({"gender": ["Female", "Male"], YEARS_TASK: ["20", "30", "70"]}))
    assert types[YEARS_TASK] == "float64" and f"{YEARS_TASK}.20" not in types


def test_pictures_show_the_age_in_years_after_the_group():
    from mtlfaces.annotate import label_line
    from mtlfaces.pipeline import FaceResult

    face = FaceResult((10, 10, 90, 90), 1.0, None, {"age": "Middle Age", "gender": "Male",
                                                    YEARS_TASK: 38.4}, {})
    assert label_line(face) == "Middle Age, 38 years, Male"


def test_tracking_smooths_the_years_like_any_distribution():
    from mtlfaces.pipeline import FaceResult
    from mtlfaces.tracking import relabel

    classes = {YEARS_TASK: np.array([20, 30, 70])}
    face = FaceResult((0, 0, 10, 10), 1.0, None, {}, {},
                      distributions={YEARS_TASK: np.array([0.2, 0.0, 0.8])}, classes=classes)
    relabel([face], classes)
    assert face.labels[YEARS_TASK] == 57.7 and face.probabilities[YEARS_TASK] is None
    assert YEARS_TASK not in face.row()["distributions"] and face.row()[YEARS_TASK] == 57.7


def test_evaluate_scores_the_age_in_years_as_an_error_not_a_class(years_model):
    """``evaluate`` (and ``mtlfaces evaluate``) scores the years head as analyze answers it,
    the median age, against the true age: a face older than the head's oldest year counts
    its whole error; faces without an age are left out."""
    from mtlfaces.datasets import make_shapes
    from mtlfaces.evaluation import evaluate, format_report

    clf, _ = years_model
    X, y = make_shapes(30, seed=11)
    ages = np.random.RandomState(1).choice([5.0, 33.0, 104.0], len(X)).astype(object)
    ages[:4] = None
    y = pd.DataFrame({"gender": y["gender"], YEARS_TASK: ages,
                      "race": ["a", "b"] * (len(X) // 2),
                      "age": [None if a is None else mtlfaces.tasks.age_to_group(a)
                              for a in ages]})
    report = evaluate(clf, X, y)
    answered = median_years(clf.predict_proba(X)[clf.tasks_.index(YEARS_TASK)], [20, 30, 70])
    known = np.array([a is not None for a in ages])
    error = np.abs(answered[known] - ages[known].astype(float))
    years = report[YEARS_TASK]
    assert years["n"] == len(X) - 4
    assert years["mae"] == pytest.approx(error.mean())
    assert years["mae"] > 20  # 104-year-olds are at least 34 years from any answer
    assert years["median_ae"] == pytest.approx(np.median(error))
    race = np.array(["a", "b"] * (len(X) // 2))[known]
    assert years["by_group"]["race"]["a"]["mae"] == pytest.approx(error[race == "a"].mean())
    signed = answered[known] - ages[known].astype(float)
    old = ages[known].astype(float) == 104  # answered at most 70 here: too young, by group
    assert years["by_group"]["age"]["Very Old"]["bias"] == pytest.approx(signed[old].mean())
    assert years["by_group"]["age"]["Very Old"]["bias"] <= -34
    assert years["bias"] == pytest.approx(signed.mean())
    assert years["by_group"]["race"]["b"]["bias"] == pytest.approx(signed[race == "b"].mean())
    assert "accuracy" in report["gender"] and "confusion_matrix" not in years
    # The labels come from the same pass through the network: predict's answers.
    g = clf.tasks_.index("gender")
    labelled = y["gender"].notna().to_numpy()
    assert report["gender"]["accuracy"] == pytest.approx(np.mean(
        clf.predict(X)[labelled, g] == y["gender"].to_numpy()[labelled]))
    # score() is the mean accuracy: the years (an error) stay out of it.
    assert clf.score(X, y) == pytest.approx(clf.score(X, y[["gender"]]))
    with pytest.raises(ValueError, match="none of the model's tasks"):
        clf.score(X, y[[YEARS_TASK]])
    text = format_report(report)
    assert f"{YEARS_TASK}: mean absolute error {years['mae']:.2f} years" in text
    assert "gender: accuracy" in text


def test_the_cli_evaluate_reports_years_beside_accuracies(years_model, tmp_path):
    import cv2

    from mtlfaces.cli import main
    from mtlfaces.datasets import make_shapes

    _, path = years_model
    X, y = make_shapes(12, seed=5)
    rows = []
    for i, (img, g) in enumerate(zip(X, y["gender"])):
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        rows.append(f"{i}.png,{20 + 4 * i},{g if isinstance(g, str) else ''}")
    (tmp_path / "faces.csv").write_text("image,age,gender\n" + "\n".join(rows) + "\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "faces.csv"), "--model",
                                       str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"{YEARS_TASK}: mean absolute error" in result.output
    assert "gender: accuracy" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report[YEARS_TASK]["n"] == 12 and report[YEARS_TASK]["mae"] >= 0
    # The mean accuracy is over the classification tasks only (here gender alone).
    assert f"mean accuracy over tasks: {report['gender']['accuracy']:.3f}" in result.output
    assert cv2.imread(str(out / "confusion.png")) is not None
