"""Reading image files and normalising the arrays users pass to 8-bit RGB."""

import os

import numpy as np

#: File extensions treated as images when scanning folders.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


class ImageError(ValueError):
    """An image file is missing or unreadable, or an array is not an image."""


def read_image(path):
    """Read an image file as an RGB uint8 array (h, w, 3).

    16-bit files are reduced to 8 bits, grayscale is expanded to three
    channels, alpha is dropped.

    Raises
    ------
    ImageError
        Naming the file, when it does not exist or is not a readable image.
    """
    import cv2

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works with non-ASCII paths, unlike imread
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageError(f"{path}: not a readable image (empty, truncated or not an image format)")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return as_rgb_uint8(img)


def as_rgb_uint8(image, bgr=False):
    """Convert an image array to contiguous RGB uint8 (h, w, 3).

    Parameters
    ----------
    image : ndarray
        (h, w) or (h, w, 1) grayscale, (h, w, 3) RGB, (h, w, 4) RGBA; dtype uint8,
        uint16 (0-65535), bool, or float (taken as [0, 1] when its maximum is
        at most 1, else as 0-255).
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
    elif img.dtype == np.bool_:
        out = img.astype(np.uint8) * 255
    else:
        f = img.astype(np.float64)
        if not np.isfinite(f).all():
            raise ImageError("image has NaN or infinite pixel values")
        if f.max() <= 1.0:
            f = f * 255.0
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
