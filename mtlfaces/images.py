"""Reading image files and normalising the arrays users pass to 8-bit RGB."""

import os

import numpy as np

from ._defaults import MAX_PIXELS

#: File extensions treated as images when scanning folders.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


class ImageError(ValueError):
    """An image file is missing or unreadable, or an array is not an image."""


def check_batch(shape, single="X[np.newaxis]"):
    """Refuse a 3-D batch (n, h, w) whose last axis is a channel count (1, 3 or 4).

    Such an array is almost always one image, (h, w, c), that would be read as ``h``
    grayscale images ``w`` pixels wide and ``c`` tall, with an answer per row: an error
    that says how to add the batch axis is better than ``h`` wrong answers.
    """
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        raise ImageError(
            f"X has shape {tuple(shape)}: one image of {shape[0]}×{shape[1]} pixels with "
            f"{shape[2]} channel(s), or {shape[0]} images {shape[2]} pixels wide? Images of "
            f"width {shape[2]} are not faces, so this looks like one image: pass {single} "
            "for one image, or a 4-D batch (n, h, w, c)")


def pixel_divisors(X, where="X"):
    """What each image of the batch ``X`` (n, ...) is divided by to reach [0, 1], decided
    per image from its dtype and values, never from its neighbours: uint8 255, uint16
    65535, bool 1; other integers 255 when the image's maximum is at most 255, else 65535
    (negative values or values over 65535 are refused, naming ``where[i]``); float 1 when
    the image's maximum is at most 1, else 255. The one scale rule of the image path
    (:func:`as_rgb_uint8`) and the estimator's input (:func:`prepare_images`)."""
    n = X.shape[0]
    if X.dtype == np.uint8:
        return np.full(n, 255.0, np.float32)
    if X.dtype == np.uint16:
        return np.full(n, 65535.0, np.float32)
    if X.dtype == np.bool_:
        return np.ones(n, np.float32)
    flat = X.reshape(n, -1)
    if X.dtype.kind == "f":
        return np.where(flat.max(axis=1) <= 1.0, 1.0, 255.0).astype(np.float32)
    top, low = flat.max(axis=1), flat.min(axis=1)
    bad = np.flatnonzero((low < 0) | (top > 65535))
    if bad.size:
        i = int(bad[0])
        name = where if n == 1 and where != "X" else f"{where}[{i}]"
        raise ImageError(
            f"{name} has {X.dtype} values from {low[i]} to {top[i]}: integer images must hold "
            "8-bit (0-255) or 16-bit (0-65535) pixel values; scale it, or pass uint8/uint16")
    return np.where(top <= 255, 255.0, 65535.0).astype(np.float32)


def _header_size(data):
    """(width, height) from an image file's header without decoding it (height None when
    Pillow refuses the header as a decompression bomb and gives only the pixel count), or
    None when Pillow does not know the format (OpenCV's own limit then applies)."""
    import io
    import re

    from PIL import Image, UnidentifiedImageError

    from ._warnings import ignoring

    try:
        with ignoring():  # Pillow's own decompression-bomb warning (this runs in threads)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError as exc:
        found = re.search(r"\d+", str(exc))
        return (int(found.group()) if found else 2**62, None)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def check_pixels(width, height, max_pixels, what):
    """Raise :class:`ImageError` naming ``what`` when the image is over ``max_pixels``
    (``height`` None: ``width`` is the pixel count)."""
    pixels = width if height is None else width * height
    if max_pixels is not None and pixels > max_pixels:
        size = "" if height is None else f"{width}×{height} is "
        raise ImageError(
            f"{what}: {size}{pixels:,} pixels, over the limit of {max_pixels:,} "
            "(max_pixels; --max-pixels on the command line raises it)")


def decode_bytes(data, name, max_pixels=MAX_PIXELS):
    """Decode the bytes of an image file to RGB uint8 (h, w, 3); see :func:`read_image`."""
    import cv2

    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    if data.size:
        size = _header_size(data.tobytes())
        if size is not None:
            check_pixels(size[0], size[1], max_pixels, name)
    from ._native import captured_stderr

    # ANYCOLOR | ANYDEPTH keeps 16-bit and gray files as they are and, unlike UNCHANGED,
    # applies the EXIF orientation: a phone's portrait stored sideways comes out upright.
    with captured_stderr() as native:
        img = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if img is None:
        detail = f"; {native.text}" if native.text else ""
        raise ImageError(f"{name}: not a readable image (empty, truncated or not an image "
                         f"format{detail})")
    check_pixels(img.shape[1], img.shape[0], max_pixels, name)
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return as_rgb_uint8(img)


def read_image(path, max_pixels=MAX_PIXELS):
    """Read an image file as an RGB uint8 array (h, w, 3).

    16-bit files are reduced to 8 bits, grayscale is expanded to three channels, alpha is
    dropped, and the EXIF orientation is applied (the picture comes out as viewers show it).

    Parameters
    ----------
    path : str or path
    max_pixels : int or None, default=MAX_PIXELS
        Refuse images with more pixels than this (50 million), from the file's header,
        before decoding; None lifts the limit.

    Raises
    ------
    ImageError
        Naming the file, when it does not exist, is not a readable image, or is over
        ``max_pixels``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works with non-ASCII paths, unlike imread
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    return decode_bytes(data, path, max_pixels)


def as_rgb_uint8(image, bgr=False):
    """Convert an image array to contiguous RGB uint8 (h, w, 3).

    Parameters
    ----------
    image : ndarray
        (h, w) or (h, w, 1) grayscale, (h, w, 3) RGB, (h, w, 4) RGBA. The scale
        follows the dtype: uint8 0-255, uint16 0-65535, bool 0-1; other integers
        0-255 when their maximum is at most 255, else 0-65535 (negative values or
        values over 65535 are refused); float [0, 1] when its maximum is at most 1,
        else 0-255 (values outside [0, 255] are refused).
    bgr : bool, default=False
        The colour channels are in OpenCV's BGR order (``cv2.imread``, video frames).

    Raises
    ------
    ImageError
        When the array is empty, not 2-D/3-D, has another channel count, or has
        non-finite values.
    """
    img = np.asarray(image)
    if img.dtype == object or img.dtype.kind not in "biuf":
        raise ImageError(f"image has dtype {img.dtype}; expected numeric pixels")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise ImageError(
            f"image has shape {img.shape}; expected (h, w), (h, w, 1), (h, w, 3) or (h, w, 4)"
        )
    if img.size == 0:
        raise ImageError(f"image is empty (shape {img.shape})")
    if img.dtype == np.uint8:
        out = img
    elif img.dtype == np.uint16:
        out = (img >> 8).astype(np.uint8)
    else:
        f = img.astype(np.float64)
        if img.dtype.kind == "f":
            if not np.isfinite(f).all():
                raise ImageError("image has NaN or infinite pixel values")
            low, top = float(f.min()), float(f.max())
            if low < -0.5 or top > 255.5:
                raise ImageError(f"image has float values from {low:g} to {top:g}; float "
                                 "images must be in [0, 1] or [0, 255]")
        f *= 255.0 / float(pixel_divisors(img[np.newaxis], "image")[0])
        out = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[:, :, np.newaxis], 3, axis=2)
    elif out.shape[2] == 4:
        out = out[:, :, :3]
    if bgr:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out)


#: ITU-R BT.601 luma weights of R, G and B: the one definition of grayscale here.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_gray(rgb):
    """Luma (ITU-R BT.601, :data:`LUMA`) of RGB images, the channel axis last.

    uint8 (h, w, 3) gives uint8 (h, w), as OpenCV computes it (face crops for a grayscale
    network, frames for video tracking); float (..., 3) gives float32 (..., 1) (the
    estimator's input batches).
    """
    if rgb.dtype == np.uint8 and rgb.ndim == 3:
        import cv2

        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return (rgb @ LUMA)[..., np.newaxis].astype(np.float32)


def resize_square(image, size):
    """Resize one image (h, w) or (h, w, c) to (size, size[, c]): the one resize of the image
    path (face crops, dataset images, estimator inputs). Area filter when shrinking both
    sides, bilinear otherwise; the channel axis is kept, even a single one."""
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    out = cv2.resize(image, (size, size), interpolation=interp)
    return out.reshape((size, size) + image.shape[2:])
