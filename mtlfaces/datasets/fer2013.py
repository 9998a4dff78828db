"""FER2013: ``fer2013.csv`` (``emotion,pixels,Usage``), or its images in class folders."""

import io
import os

import numpy as np

from ..tasks import FER2013_EMOTION_CODES
from ._archives import (
    DatasetError, _archive_kind, _check_exists, _decode_all, _emotion_from_folder, _frame,
    _is_image_name, _iter_members, _member_path, _report, _subset, resize_uint8)
from ._cache import _cached


# ------------------------------------------------------------------- FER2013
_FER_SPLITS = {"training": "Training", "publictest": "PublicTest", "privatetest": "PrivateTest"}


_FER_FOLDER_SPLITS = {"train": "Training", "training": "Training", "test": "Test",
                      "val": "PublicTest", "validation": "PublicTest",
                      "publictest": "PublicTest", "privatetest": "PrivateTest"}


def _parse_fer_pixels(pixels, source):
    """Vectorised parse of FER2013's space-separated pixel strings → (n, 48, 48) uint8."""
    counts = np.array([s.count(" ") + 1 for s in pixels])
    bad = np.flatnonzero(counts != 48 * 48)
    text = " ".join(pixels)
    values = np.fromstring(text, dtype=np.int32, sep=" ")
    if bad.size or values.size != len(pixels) * 2304:
        row = int(bad[0]) if bad.size else -1
        raise DatasetError(f"{source}: row {row + 2} has {counts[row]} pixel values, expected 2304")
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise DatasetError(f"{source}: pixel values outside 0-255")
    return values.astype(np.uint8).reshape(-1, 48, 48)


def _load_fer_csv(fh, source):
    import pandas as pd

    try:
        df = pd.read_csv(fh, dtype={"emotion": "Int64", "pixels": str, "Usage": str})
    except Exception as exc:
        raise DatasetError(f"{source}: not a readable FER2013 CSV ({exc})") from None
    missing = {"emotion", "pixels"} - set(df.columns)
    if missing:
        raise DatasetError(f"{source}: missing column(s) {sorted(missing)}; "
                           "expected the original emotion,pixels,Usage header")
    images = _parse_fer_pixels(df["pixels"].tolist(), source)
    codes = df["emotion"].to_numpy()
    emotions = []
    for i, code in enumerate(codes):
        if pd.isna(code) or int(code) not in FER2013_EMOTION_CODES:
            raise DatasetError(f"{source}: row {i + 2} has emotion code {code}, expected 0-6")
        emotions.append(FER2013_EMOTION_CODES[int(code)])
    usage = df["Usage"] if "Usage" in df.columns else pd.Series([None] * len(df))
    splits = [_FER_SPLITS.get(str(u).strip().lower(), str(u)) if isinstance(u, str) else None
              for u in usage]
    return images, emotions, splits


def _fer_split_from_name(name):
    parts = name.replace("\\", "/").split("/")
    prefix = parts[-1].split("_")[0].lower()
    if prefix in _FER_SPLITS:
        return _FER_SPLITS[prefix]
    for part in reversed(parts[:-2]):
        if part.lower() in _FER_FOLDER_SPLITS:
            return _FER_FOLDER_SPLITS[part.lower()]
    return None


@_cached
def load_fer2013(path, image_size=48, grayscale=True, usage=None, limit=None,
                 random_state=None, strict=False, n_jobs=2):
    """Load FER2013 from the original CSV or the per-class folder layout.

    Parameters
    ----------
    path : str or path-like
        ``fer2013.csv``; a ``.tar.gz``/``.zip``/folder holding it; or the folder
        layout ``train/<class>/*.jpg`` + ``test/<class>/*.jpg`` (folder or zip).
    image_size : int, default=48
        FER2013 images are 48×48; other sizes are resized.
    grayscale : bool, default=True
        False repeats the gray channel three times.
    usage : str or sequence of str, optional
        Keep only these splits (``"Training"``, ``"PublicTest"``, ``"PrivateTest"``,
        and ``"Test"`` for the folder layout's undivided test folder).
    limit, random_state, strict, n_jobs, cache_dir
        As in :func:`load_utkface`.

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame
        ``emotion`` labelled, ``age`` and ``gender`` None, ``split`` from the CSV's
        Usage column or the file-name prefix / folder.
    """
    path = os.fspath(path)
    _check_exists(path, "fer2013.csv, an archive holding it, or train/ and test/ class folders")
    kind = _archive_kind(path)
    skipped = []
    if kind == "file" or (kind != "dir" and path.lower().endswith(".csv")):
        with open(path, "rb") as fh:
            images, emotions, splits = _load_fer_csv(fh, path)
        names = [f"{path}#row{i + 2}" for i in range(len(emotions))]
    else:
        csv_member = None
        image_items = []
        for name, data in _iter_members(path, lambda n: n.lower().endswith(".csv")
                                        or _is_image_name(n)):
            if name.lower().endswith("fer2013.csv") or (name.lower().endswith(".csv")
                                                        and csv_member is None):
                csv_member = (name, data)
            elif _is_image_name(name):
                image_items.append((name, data))
        if csv_member is not None:
            images, emotions, splits = _load_fer_csv(io.BytesIO(csv_member[1]),
                                                     f"{path}::{csv_member[0]}")
            names = [f"{path}::{csv_member[0]}#row{i + 2}" for i in range(len(emotions))]
        elif image_items:
            images, emotions, splits, names = [], [], [], []
            decodable = []
            for name, data in image_items:
                emotion = _emotion_from_folder(name, skipped)
                if emotion is None:
                    continue
                decodable.append((name, data))
                emotions.append(emotion)
                splits.append(_fer_split_from_name(name))
                names.append(_member_path(path, name))
            X, ok, bad = _decode_all(decodable, 48, True, strict, n_jobs)
            skipped += bad
            emotions = [e for e, g in zip(emotions, ok) if g]
            splits = [s for s, g in zip(splits, ok) if g]
            names = [n for n, g in zip(names, ok) if g]
            images = X
        else:
            raise DatasetError(f"{path}: no fer2013.csv and no <split>/<emotion>/ images inside")
    images = np.asarray(images)
    keep = np.arange(len(emotions))
    if usage is not None:
        wanted = {usage} if isinstance(usage, str) else set(usage)
        unknown = wanted - {"Training", "PublicTest", "PrivateTest", "Test"}
        if unknown:
            raise ValueError(f"usage={sorted(unknown)} is not a FER2013 split; expected "
                             "'Training', 'PublicTest', 'PrivateTest' or 'Test'")
        keep = np.array([i for i in keep if splits[i] in wanted], dtype=int)
    keep = keep[_subset(len(keep), limit, random_state)]
    images = images[keep]
    if image_size != 48 or not grayscale:
        images = np.stack([resize_uint8(im, image_size) for im in images]) if len(images) \
            else images.reshape(0, image_size, image_size)
        if not grayscale:
            images = np.repeat(images[..., np.newaxis], 3, axis=-1)
    df = _frame([{"emotion": emotions[i], "split": splits[i], "source": "fer2013",
                  "path": names[i]} for i in keep])
    _report(df, skipped, path)
    return images, df
