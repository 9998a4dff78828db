"""Loaders for the public face datasets, in the layouts they are published in.

Every loader returns ``(X, y)``: X a uint8 array (n, size, size) for grayscale or
(n, size, size, 3) for colour, and y a DataFrame whose ``age``, ``gender`` and
``emotion`` columns use the classifier's vocabulary (None = no label), plus
metadata columns ``path``, ``split``, ``source`` and, where the dataset has them,
``age_years``, ``race``, ``subject``. ``y.attrs["skipped"]`` lists what was left
out and why; a warning says how many.

One module per job: ``_archives`` (reading folders and archives, decoding, label frames),
``_cache`` (decoded arrays on disk), ``utkface``, ``fer2013``, ``ckplus``, ``csvfile``
(the ``sample_dataset.csv`` format), ``splits`` (the fixed validation splits) and
``synthetic`` (:func:`make_shapes`). Every name is importable from here.
"""

import os

from ._archives import COLUMNS, DatasetError, decode_image, resize_uint8, with_age_in_years
from .ckplus import load_ckplus
from .csvfile import CSV_COLUMNS, load_csv, write_csv
from .fer2013 import load_fer2013
from .splits import ckplus_validation_mask, hash_holdout, utkface_validation_mask, validation_mask
from .synthetic import make_shapes
from .utkface import UTKFACE_RACES, load_utkface, parse_utkface_name

FORMATS = ("csv", "utkface", "fer2013", "ckplus")


def guess_format(path):
    """The dataset format of ``path`` from its name: a ``.csv`` file (other than FER2013's),
    or UTKFace's, FER2013's or CK+'s archive or folder; None when it cannot tell."""
    low = os.path.basename(os.path.normpath(path)).lower()
    if low.endswith(".csv") and "fer2013" not in low:
        return "csv"
    return ("utkface" if "utk" in low else "fer2013" if "fer" in low else
            "ckplus" if "ck" in low else None)


def load(path, format="auto", **kwargs):
    """Load any supported dataset: ``format`` is one of :data:`FORMATS`, or "auto" to tell it
    from the name (:func:`guess_format`). Other arguments go to that loader."""
    if format == "auto":
        format = guess_format(path)
        if format is None:
            raise DatasetError(f"{path}: cannot tell the dataset format from its name; pass "
                               f"the format ({', '.join(FORMATS)})")
    loaders = {"csv": load_csv, "utkface": load_utkface, "fer2013": load_fer2013,
               "ckplus": load_ckplus}
    if format not in loaders:
        raise ValueError(f"format={format!r}; expected 'auto' or one of {list(FORMATS)}")
    return loaders[format](path, **kwargs)


__all__ = ["FORMATS", "guess_format", "load", "COLUMNS", "CSV_COLUMNS", "DatasetError", "UTKFACE_RACES", "ckplus_validation_mask",
           "decode_image", "hash_holdout", "load_ckplus", "load_csv", "load_fer2013",
           "load_utkface", "make_shapes", "parse_utkface_name", "resize_uint8",
           "utkface_validation_mask", "validation_mask", "with_age_in_years", "write_csv"]
