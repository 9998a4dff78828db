"""The descriptor read-out that ``mtlfaces predict`` averages into age group and gender.

The recipe's last step (``train_pretrained.py``): dlib's face descriptor of every UTKFace
face (cached, about 13 minutes on 2 cores the first time), then one logistic regression
per task (``C=1``) on the faces outside the fixed validation part. The study that chose
it is ``research/descriptor_probe.py``.
"""

import os
import time

import numpy as np

TASKS = ("gender", "age")

DESCRIPTORS_VERSION = 1  # bump when crop_descriptors changes what it computes: a new key


def cached_descriptors(images, paths, cache_dir, jobs, source=""):
    """Descriptors of ``images``, from ``cache_dir`` when a run before computed them for
    the same files (``paths``, in the same order, of the same ``source``: e.g. the
    archive's size and time) with the same :data:`DESCRIPTORS_VERSION`; and the seconds
    per face it took then."""
    import hashlib

    text = "\n".join([f"v{DESCRIPTORS_VERSION}", str(source), *map(str, paths)])
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"dlib_descriptors-{key}.npz") if cache_dir else None
    if path and os.path.exists(path):
        with np.load(path) as z:
            return z["features"], int(z["found"]), float(z["seconds_per_face"])
    t = time.time()
    from mtlfaces.descriptors import crop_descriptors

    features, found = crop_descriptors(images, n_jobs=jobs)
    per_face = (time.time() - t) * jobs / len(images)  # one core's seconds per face
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, features=features, found=found, seconds_per_face=per_face)
        os.replace(tmp, path)
    return features, found, per_face


def utkface_descriptors(data_dir, limit=None, cache_dir=None, jobs=2):
    """UTKFace at 200×200 in colour (a seeded random ``limit`` of it, or all), its labels,
    and the descriptors of its faces: ``X, y, features, found, seconds_per_face``."""
    from mtlfaces import datasets as D

    archive = os.path.join(data_dir, "UTKFace.tar.gz")
    X, y = D.load_utkface(archive, image_size=200, grayscale=False, limit=limit,
                          random_state=0)
    stat = os.stat(archive)
    members = [p.split("::")[-1] for p in y["path"]]  # the same wherever the archive lies
    return (X, y, *cached_descriptors(X, members, cache_dir, jobs,
                                      source=f"{stat.st_size} {stat.st_mtime_ns}"))


def fit_readout(features, y, C=1.0):
    """The read-out ``mtlfaces predict`` uses (``C=1``; the probe also tries others):
    age group and gender, fitted on the faces outside the fixed validation part (the
    recipe's)."""
    from mtlfaces.datasets import validation_mask
    from mtlfaces.descriptors import DescriptorReadout

    train = ~validation_mask(y)
    return DescriptorReadout(C=C).fit(features[train], y.loc[train, list(TASKS)])
