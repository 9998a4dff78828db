"""The three tasks mtlfaces predicts and the label vocabulary of each.

Every loader, estimator and report goes through :func:`normalize_labels`, so a
spelling accepted in one place is accepted everywhere and an unknown value is
rejected with an error naming the value and the task.
"""

import math
import numbers

import numpy as np

AGE_GROUPS = ("Child", "Young", "Middle Age", "Old", "Very Old")
#: Lower bound (years, inclusive) of each age group, in the order of AGE_GROUPS.
AGE_GROUP_BOUNDS = (0, 18, 30, 45, 65)
GENDERS = ("Female", "Male")
EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

#: The tasks with a fixed vocabulary, in the order predictions are returned.
TASKS = {"age": AGE_GROUPS, "gender": GENDERS, "emotion": EMOTIONS}

#: FER2013's integer codes (``emotion`` column of ``fer2013.csv``).
FER2013_EMOTION_CODES = dict(enumerate(EMOTIONS))
#: UTKFace's gender codes in its file names.
UTKFACE_GENDER_CODES = {0: "Male", 1: "Female"}

_AGE_ALIASES = {
    "child": "Child", "children": "Child", "kid": "Child",
    "young": "Young", "young adult": "Young",
    "middle age": "Middle Age", "middle-age": "Middle Age",
    "middle_age": "Middle Age", "middleage": "Middle Age", "middle aged": "Middle Age",
    "middle-aged": "Middle Age",
    "old": "Old", "senior": "Old",
    "very old": "Very Old", "very-old": "Very Old", "very_old": "Very Old",
    "veryold": "Very Old", "elderly": "Very Old",
}
_GENDER_ALIASES = {
    "female": "Female", "f": "Female", "woman": "Female", "women": "Female",
    "male": "Male", "m": "Male", "man": "Male", "men": "Male",
}
_EMOTION_ALIASES = {
    "angry": "Angry", "anger": "Angry",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear", "afraid": "Fear", "scared": "Fear",
    "happy": "Happy", "happiness": "Happy", "joy": "Happy",
    "sad": "Sad", "sadness": "Sad",
    "surprise": "Surprise", "surprised": "Surprise",
    "neutral": "Neutral",
}
_ALIASES = {"age": _AGE_ALIASES, "gender": _GENDER_ALIASES, "emotion": _EMOTION_ALIASES}


def is_missing(value):
    """Return True for the values that mean "no label": None, NaN, pd.NA, ''."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, numbers.Real):
        return math.isnan(value)
    try:  # pd.NA, pd.NaT, np.datetime64('NaT') and friends
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def age_to_group(age):
    """Bin a numeric age in years into one of :data:`AGE_GROUPS`.

    Raises
    ------
    ValueError
        If ``age`` is negative, not finite, or above 130.
    """
    age = float(age)
    if not math.isfinite(age) or age < 0 or age > 130:
        raise ValueError(
            f"age {age!r} is not a valid age in years; expected a number in [0, 130] "
            f"or one of {list(AGE_GROUPS)}"
        )
    group = 0
    for i, bound in enumerate(AGE_GROUP_BOUNDS):
        if age >= bound:
            group = i
    return AGE_GROUPS[group]


def age_distribution(years, sigma):
    """Spread ages over :data:`AGE_GROUPS`: the label-distribution targets of ``age_sigma``.

    Parameters
    ----------
    years : array-like of float, shape (n,)
        Ages in years; NaN where there is none.
    sigma : float
        Standard deviation (years) of the normal distribution centred on the
        middle of each year of age (``floor(age) + 0.5``).

    Returns
    -------
    ndarray of shape (n, len(AGE_GROUPS))
        Each row the distribution's mass in each group (it sums to 1; the age's
        own group gets the most); a row of zeros where the age is NaN.

    Raises
    ------
    ValueError
        If an age is outside [0, 130] or ``sigma`` is not positive.
    """
    from scipy.special import ndtr

    years = np.asarray(years, dtype=np.float64).reshape(-1)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma={sigma!r}; expected a positive number of years")
    known = ~np.isnan(years)
    bad = known & ((years < 0) | (years > 130) | ~np.isfinite(years))
    if bad.any():
        raise ValueError(f"age {years[bad][0]!r} is not a valid age in years; expected a "
                         "number in [0, 130]")
    centre = np.floor(years[known]) + 0.5
    below = ndtr((np.asarray(AGE_GROUP_BOUNDS[1:], dtype=np.float64)[None, :]
                  - centre[:, None]) / sigma)  # mass below each inner bound
    cdf = np.concatenate([np.zeros((len(centre), 1)), below, np.ones((len(centre), 1))], 1)
    out = np.zeros((len(years), len(AGE_GROUPS)))
    out[known] = np.diff(cdf, axis=1)
    return out


def normalize_label(task, value, codes=None):
    """Map one raw label to the task's canonical spelling.

    Parameters
    ----------
    task : {"age", "gender", "emotion"}
        The task the label belongs to.
    value : object
        A class name in any accepted spelling (case-insensitive), a numeric age
        for ``task="age"``, or an integer code listed in ``codes``.
    codes : dict, optional
        Integer codes and what they mean (e.g. :data:`FER2013_EMOTION_CODES`).
        Integers are only accepted for gender and emotion when the caller says
        what they mean, because datasets disagree (UTKFace: 0 = male).

    Returns
    -------
    str or None
        The canonical label, or None when ``value`` is missing.

    Raises
    ------
    ValueError
        If the value is not a label of ``task``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks are {list(TASKS)}")
    if is_missing(value):
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode()
    if isinstance(value, (numbers.Number, np.number)) and not isinstance(value, bool):
        if codes is not None:
            if value in codes:
                return normalize_label(task, codes[value])
            raise ValueError(
                f"{value!r} is not a {task} code; known codes are {sorted(codes)}"
            )
        if task == "age":
            return age_to_group(value)
        raise ValueError(
            f"numeric {task} label {value!r} is ambiguous; pass codes= saying what "
            f"the numbers mean, or use one of {list(TASKS[task])}"
        )
    if isinstance(value, str):
        text = value.strip()
        if task == "age":
            try:
                return age_to_group(float(text))
            except ValueError:
                pass
        key = " ".join(text.lower().split())
        if key in _ALIASES[task]:
            return _ALIASES[task][key]
        if codes is not None and key.lstrip("-").isdigit() and int(key) in codes:
            return normalize_label(task, codes[int(key)])
    raise ValueError(
        f"{value!r} is not a valid {task} label; expected one of {list(TASKS[task])}"
        + (" or an age in years" if task == "age" else "")
    )


def normalize_labels(task, values, codes=None):
    """Vectorised :func:`normalize_label`: returns an object array, None = missing."""
    cache = {}
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        try:
            key = (type(value), value)
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in cache:
            out[i] = cache[key]
            continue
        label = normalize_label(task, value, codes=codes)
        if key is not None and not is_missing(value):
            cache[key] = label
        out[i] = label
    return out


#: A head of this name is a distribution over ages in years (its classes are years): its
#: answer is an age, a number (:func:`median_years`), not its most probable class
#: (:func:`answer`).
YEARS_TASK = "age_years"


def median_years(distributions, classes):
    """The age in years that a :data:`YEARS_TASK` head answers: the median of each
    distribution (a row of ``distributions``) over ``classes``, the years, interpolated
    within the year where half the probability is reached (each year's probability spread
    evenly from halfway to the year below to halfway to the year above).

    The median, not the expected value: it is the answer with the least expected absolute
    error, and on UTKFace's validation faces it errs less than the expected value, most on
    children and the very old, towards whom the expected value leans least
    (``research/years_answer.py`` measures it; its table is in research/RESULTS.md).
    """
    p = np.atleast_2d(np.asarray(distributions, dtype=np.float64))
    years = np.asarray(classes, dtype=np.float64)
    order = np.argsort(years)
    years, p = years[order], p[:, order]
    p = p / p.sum(axis=1, keepdims=True)
    cdf = np.cumsum(p, axis=1)
    k = np.minimum((cdf < 0.5).sum(axis=1), len(years) - 1)  # first year reaching half
    rows = np.arange(len(p))
    below = np.where(k > 0, cdf[rows, np.maximum(k - 1, 0)], 0.0)
    mids = (years[1:] + years[:-1]) / 2
    lower = np.concatenate([[years[0] - 0.5], mids])[k]
    upper = np.concatenate([mids, [years[-1] + 0.5]])[k]
    share = np.clip((0.5 - below) / np.maximum(p[rows, k], 1e-12), 0.0, 1.0)
    out = lower + share * (upper - lower)
    return out if np.ndim(distributions) > 1 else out[0]


def answer(task, distribution, classes):
    """A face's answer for ``task`` from its probability ``distribution`` over ``classes``.

    Returns
    -------
    (label, probability)
        The most probable class (as text) and its probability; for :data:`YEARS_TASK`,
        the age in years (:func:`median_years`, rounded to 0.1) and None.
    """
    if task == YEARS_TASK:
        return round(float(median_years(distribution, classes)), 1), None
    distribution = np.asarray(distribution, dtype=np.float64)
    k = int(np.argmax(distribution))
    return str(classes[k]), float(distribution[k])


def classes_by_task(estimator):
    """``{task: classes}`` of a fitted mtlfaces estimator, from its public attributes.

    ``classes_`` is a list of arrays (one per task) for a multi-task model and a
    single array for one fitted on a 1-D y; this reads either the same way.

    Parameters
    ----------
    estimator : MultiTaskFaceClassifier or HOGSVMClassifier
        A fitted estimator (it has ``tasks_`` and ``classes_``).
    """
    tasks = list(estimator.tasks_)
    classes = estimator.classes_
    if not isinstance(classes, list):
        classes = [classes]
    if len(classes) != len(tasks):
        raise ValueError(f"{type(estimator).__name__}: {len(tasks)} tasks but "
                         f"{len(classes)} class arrays")
    return dict(zip(tasks, classes))
