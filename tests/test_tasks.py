import numpy as np
import pytest

from mtlfaces import tasks


@pytest.mark.parametrize("age,group", [(0, "Child"), (17, "Child"), (17.9, "Child"),
                                       (18, "Young"), (29, "Young"), (30, "Middle Age"),
                                       (44, "Middle Age"), (45, "Old"), (64, "Old"),
                                       (65, "Very Old"), (116, "Very Old")])
def test_age_bins_follow_the_published_boundaries(age, group):
    assert tasks.age_to_group(age) == group
    assert tasks.normalize_label("age", str(age)) == group


@pytest.mark.parametrize("task,value,expected", [
    ("emotion", "anger", "Angry"), ("emotion", "ANGRY", "Angry"), ("emotion", "sadness", "Sad"),
    ("emotion", "surprised", "Surprise"), ("emotion", " Happy ", "Happy"),
    ("gender", "m", "Male"), ("gender", "F", "Female"), ("gender", "woman", "Female"),
    ("age", "middle age", "Middle Age"), ("age", "Very_Old", "Very Old"), ("age", "child", "Child"),
])
def test_dataset_spellings_are_accepted(task, value, expected):
    assert tasks.normalize_label(task, value) == expected


@pytest.mark.parametrize("value", [None, np.nan, "", "  ", float("nan")])
def test_missing_values_map_to_none(value):
    assert tasks.normalize_label("emotion", value) is None


def test_numeric_gender_needs_codes():
    with pytest.raises(ValueError, match="ambiguous"):
        tasks.normalize_label("gender", 0)
    assert tasks.normalize_label("gender", 0, codes=tasks.UTKFACE_GENDER_CODES) == "Male"
    assert tasks.normalize_label("emotion", 3, codes=tasks.FER2013_EMOTION_CODES) == "Happy"


@pytest.mark.parametrize("task,value", [("emotion", "contempt"), ("gender", "other"),
                                        ("age", -3), ("age", "teen"), ("age", 400)])
def test_unknown_labels_name_value_and_task(task, value):
    with pytest.raises(ValueError) as err:
        tasks.normalize_label(task, value)
    assert repr(value) in str(err.value) or str(value) in str(err.value)
    assert task in str(err.value)


def test_classes_by_task_reads_multi_and_single_task_estimators():
    from mtlfaces import HOGSVMClassifier
    from mtlfaces.datasets import make_shapes
    from mtlfaces.tasks import classes_by_task

    X, y = make_shapes(60, size=32, seed=1)
    multi = HOGSVMClassifier(image_size=32).fit(X, y[["age", "emotion"]])
    got = classes_by_task(multi)
    assert list(got) == ["age", "emotion"]
    assert list(got["emotion"]) == [c for c in multi.classes_[1]]
    single = HOGSVMClassifier(image_size=32).fit(X, y["emotion"].to_numpy())
    (task, classes), = classes_by_task(single).items()
    assert task == single.tasks_[0] and list(classes) == list(single.classes_)
    single.classes_ = [single.classes_, single.classes_]  # a broken estimator is named
    with pytest.raises(ValueError, match="HOGSVMClassifier: 1 tasks but 2 class arrays"):
        classes_by_task(single)
