"""Turning user images into the network's input: shape checks, colour, size, scale."""

import math

import numpy as np

from .images import LUMA  # noqa: F401  (the 0.3 name)
from .images import check_batch, pixel_divisors, resize_square, to_gray


class PixelTypeError(TypeError, ValueError):
    """X holds values that are not numbers (both a TypeError and a ValueError)."""


def _as_float_images(X):
    """Validate X and return (images as float32 (n, h, w, c), value range max)."""
    if isinstance(X, (list, tuple)) and len(X) and all(hasattr(x, "shape") for x in X):
        shapes = {np.shape(x) for x in X}
        if len(shapes) > 1:
            raise ValueError(
                f"X is a list of images of different shapes {sorted(shapes)[:3]}...; "
                "pass images of one size or crop them with mtlfaces.FaceCropper first"
            )
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("Sparse data was passed for X, but dense data is required: images are "
                        "dense arrays (use X.toarray() if you really mean it)")
    try:
        X = np.asarray(X)
    except Exception as exc:  # ragged nested lists
        raise ValueError(f"X could not be read as an image array: {exc}") from None
    if X.dtype == object or X.dtype.kind in "USV":
        try:
            X = X.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise PixelTypeError(
                f"X has non-numeric values (dtype {X.dtype}): {exc}; expected pixel values"
            ) from None
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported: X has complex values; expected real pixels")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {X.dtype}; expected numeric pixel values")
    if X.ndim == 0 or X.ndim == 1:
        raise ValueError(
            f"X has shape {X.shape}; expected images (n, h, w), (n, h, w, c) or flattened "
            "images (n, h*w*c). Reshape your data: a single image is X[np.newaxis]"
        )
    if X.shape[0] == 0:
        raise ValueError(f"X is empty: 0 sample(s) (shape={X.shape}) while a minimum of 1 "
                         "is required; at least one image is needed")
    if X.ndim == 2 and X.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if X.ndim > 4:
        raise ValueError(f"X has shape {X.shape}; expected at most 4 dimensions (n, h, w, c)")
    if X.ndim == 3:
        check_batch(X.shape)
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).sum())
        raise ValueError(
            f"X contains {bad} NaN or infinite pixel value(s); clean or drop those images first"
        )
    scale = pixel_divisors(X)
    X = X.astype(np.float32, copy=False)
    if X.ndim == 2:
        X = _unflatten(X)
    elif X.ndim == 3:
        X = X[..., np.newaxis]
    if X.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"X has shape {X.shape}: the last axis ({X.shape[-1]}) is not a channel axis of "
            "1, 3 or 4; pass (n, h, w) grayscale or (n, h, w, c) with c in (1, 3, 4)"
        )
    if X.shape[-1] == 4:  # RGBA: drop alpha
        X = X[..., :3]
    return X, scale


def _unflatten(X):
    """Reshape flattened rows (n, d) into images.

    d = s*s (grayscale) or 3*s*s (RGB) becomes a square image. Any other d is
    taken as a one-row grayscale image (1, d) so the estimator still behaves like
    a scikit-learn classifier on generic feature vectors; that is not a good model
    for tabular data, only a well-defined one.
    """
    n, d = X.shape
    side = math.isqrt(d)
    if side * side == d and side > 1:
        return X.reshape(n, side, side, 1)
    side = math.isqrt(d // 3) if d % 3 == 0 else 0
    if side > 1 and 3 * side * side == d:
        return X.reshape(n, side, side, 3)
    return X.reshape(n, 1, d, 1)


#: ITU-R 601 luma weights of R, G, B: how colour images become grayscale.
def to_grayscale(images):
    """(n, h, w, 3) RGB float → (n, h, w, 1) with the :data:`~mtlfaces.images.LUMA` weights."""
    return to_gray(images)


def resize_images(images, size):
    """Resize a float (n, h, w, c) batch to (n, size, size, c) (:func:`resize_square`)."""
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    out = np.empty((n, size, size, c), dtype=np.float32)
    for i in range(n):
        out[i] = resize_square(images[i], size)
    return out


def prepare_images(X, image_size, grayscale):
    """Validate and convert images to the network input.

    Parameters
    ----------
    X : array-like
        (n, h, w), (n, h, w, c) with c in {1, 3, 4}, or flattened (n, d). A 3-D array
        whose last axis is 1, 3 or 4 is refused: it is one image, not a batch (pass
        ``X[np.newaxis]``).
        The scale is decided per image, so an image's answer never depends on the rest of
        its batch: uint8 images are 0-255, uint16 0-65535, bool 0-1; other integer images
        are 0-255 when their maximum is at most 255, else 0-65535 (negative values or
        values over 65535 are refused); float images are [0, 1] when their maximum is at
        most 1, else 0-255.
    image_size : int
        Side of the square network input.
    grayscale : bool
        Convert to one channel (True) or to three (False).

    Returns
    -------
    ndarray of float32, shape (n, image_size, image_size, 1 or 3); pixel images
    end up in [0, 1] (values are not clipped, so generic features keep their sign).
    """
    images, scale = _as_float_images(X)
    images = images / scale.reshape((-1,) + (1,) * (images.ndim - 1))
    if grayscale and images.shape[-1] == 3:
        images = to_grayscale(images)
    elif not grayscale and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return resize_images(images, image_size)
