"""A loader's arrays kept on disk, keyed by the source file and the loader's parameters."""

import hashlib
import io
import json
import os

import numpy as np

from ._archives import _check_exists


# ------------------------------------------------------------------- caching
def _cache_path(cache_dir, source, path, params):
    st = os.stat(path)
    key = json.dumps({"path": os.path.abspath(path), "size": st.st_size, "mtime": st.st_mtime,
                      "params": params, "v": 2}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"{source}-{digest}.npz")


def _cached(loader):
    """Wrap a loader so ``cache_dir=`` stores (X, y) as .npz keyed by source and parameters."""
    import functools

    @functools.wraps(loader)
    def wrapper(path, *args, cache_dir=None, **kwargs):
        if cache_dir is None:
            return loader(path, *args, **kwargs)
        import pandas as pd

        path = os.fspath(path)
        _check_exists(path, "a dataset")
        cache = _cache_path(cache_dir, loader.__name__, path, [args, sorted(kwargs.items())])
        if os.path.exists(cache):
            with np.load(cache, allow_pickle=False) as npz:
                X = npz["X"]
                y = pd.read_json(io.StringIO(str(npz["y"])), orient="split", dtype=False)
                y = y.astype(object).where(y.notna(), None)
                skipped = json.loads(str(npz["skipped"]))
            y.attrs["skipped"] = skipped
            return X, y
        X, y = loader(path, *args, **kwargs)
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, X=X, y=y.to_json(orient="split"),
                 skipped=json.dumps(y.attrs.get("skipped", [])))
        os.replace(tmp, cache)
        return X, y

    return wrapper
