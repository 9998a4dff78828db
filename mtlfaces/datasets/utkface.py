"""UTKFace: aligned and cropped faces named ``<age>_<gender>_<race>_<date>.jpg.chip.jpg``."""

import os
import re

from ..tasks import UTKFACE_GENDER_CODES, age_to_group
from ._archives import (
    DatasetError, _check_exists, _decode_all, _frame, _is_image_name, _iter_members,
    _member_path, _report, _subset)
from ._cache import _cached


UTKFACE_RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}


# ------------------------------------------------------------------- UTKFace
_UTK_SUFFIX = re.compile(r"\.?jpg\.chip\.jpg$|\.jpg$|\.png$", re.IGNORECASE)


def parse_utkface_name(name):
    """Parse a UTKFace file name into ``{age_years, gender, race}``.

    Handles the malformed names of the real release: a space before ``.jpg``, a
    missing dot before ``jpg.chip.jpg``, and a missing race field (race None).

    Raises
    ------
    ValueError
        With the reason, when age or gender cannot be read.
    """
    base = os.path.basename(name)
    stem = _UTK_SUFFIX.sub("", base).strip()
    parts = [p.strip() for p in stem.split("_")]
    if len(parts) not in (3, 4):
        raise ValueError(f"{base}: expected <age>_<gender>_<race>_<datetime>")
    if not parts[0].isdigit():
        raise ValueError(f"{base}: age {parts[0]!r} is not a number")
    age = int(parts[0])
    if not 0 <= age <= 130:
        raise ValueError(f"{base}: age {age} is out of range")
    if parts[1] not in ("0", "1"):
        raise ValueError(f"{base}: gender {parts[1]!r} is not 0 or 1")
    race = None
    if len(parts) == 4:
        if parts[2] not in ("0", "1", "2", "3", "4"):
            raise ValueError(f"{base}: race {parts[2]!r} is not 0-4")
        race = UTKFACE_RACES[int(parts[2])]
    return {"age_years": age, "gender": UTKFACE_GENDER_CODES[int(parts[1])], "race": race}


@_cached
def load_utkface(path, image_size=64, grayscale=True, limit=None, random_state=None,
                 strict=False, n_jobs=2, crop=None):
    """Load UTKFace (aligned & cropped) from its folder or ``.tar.gz``.

    Parameters
    ----------
    path : str or path-like
        The ``UTKFace`` folder, a folder above it, or ``UTKFace.tar.gz``.
    image_size : int, default=64
        Side of the square output images.
    grayscale : bool, default=True
    limit : int, optional
        Load a seeded random subset of this many images.
    random_state : int, optional
        Seed for ``limit``.
    strict : bool, default=False
        Raise on the first unreadable image or unparsable name instead of skipping it.
    n_jobs : int, default=2
        Decoding threads.
    crop : FaceCropper, optional
        Re-crop every image through this cropper (dlib detection and alignment,
        optionally ``frontal_only=True``), as the reference pipeline did; images
        where it finds no face are skipped and reported. Its ``size`` and
        ``grayscale`` are replaced by ``image_size`` and ``grayscale``.
    cache_dir : str, optional
        Store the decoded arrays here (keyed by path, size, mtime and parameters);
        a second call with the same arguments loads them in a fraction of a second.

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame
        ``age`` (group), ``gender``, ``emotion`` (None), ``age_years``, ``race``,
        ``split`` (None: hold out a part yourself), ``source`` ("utkface"), ``path``.
    """
    path = os.fspath(path)
    _check_exists(path, "the UTKFace folder or UTKFace.tar.gz")
    rows, items, skipped = [], [], []
    for name, data in _iter_members(path, _is_image_name):
        try:
            info = parse_utkface_name(name)
        except ValueError as exc:
            if strict:
                raise DatasetError(f"{path}: {exc}") from None
            skipped.append({"path": name, "reason": "unparsable file name", "detail": str(exc)})
            continue
        base = os.path.basename(name)
        if not re.fullmatch(r"\d+_[01]_[0-4]_\d+\.jpg\.chip\.jpg", base):
            info["name_repaired"] = True
        rows.append({"age": age_to_group(info["age_years"]), "gender": info["gender"],
                     "emotion": None, "age_years": info["age_years"], "race": info["race"],
                     "split": None, "source": "utkface", "path": _member_path(path, name),
                     "name_repaired": info.get("name_repaired", False)})
        items.append((name, data))
    if not rows:
        raise DatasetError(f"{path}: no UTKFace images found (expected <age>_<gender>_<race>_"
                           "<datetime>.jpg.chip.jpg files)")
    keep = _subset(len(rows), limit, random_state)
    rows = [rows[i] for i in keep]
    items = [items[i] for i in keep]
    X, ok, bad = _decode_all(items, image_size, grayscale, strict, n_jobs, crop)
    skipped += bad
    df = _frame([r for r, good in zip(rows, ok) if good])
    _report(df, skipped, path)
    return X, df
