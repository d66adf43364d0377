"""Deterministic image transforms that derive one domain from another, offline.

Feature-shift experiments need several domains with one class list. Real multi-domain
sets (Digits, Office-Caltech-10, PACS, DomainNet) need downloads; a *derived* domain
applies one of these transforms to every image of another domain instead, so the
scikit-learn digits or the shared CIFAR-10 copy give multi-domain data on any machine.

Every transform maps uint8 images ``(N, H, W, C)`` to uint8 images of the same shape,
is a pure function of the pixels and its parameters (no randomness), and is documented
by the formula below. Parameters are checked by :func:`check_transform`, whose errors
name the offending key.

* ``rotate`` (``degrees``, default 90): counter-clockwise rotation about the centre.
  Multiples of 90 are exact (``np.rot90``; non-square images need 180 or 360);
  other angles use PIL's bilinear rotation with black fill, same size.
* ``invert``: ``255 - x``.
* ``grayscale``: ITU-R BT.601 luma ``round(0.299 R + 0.587 G + 0.114 B)`` copied to
  every channel (the identity on one-channel images).
* ``blur`` (``sigma``, default 1.0, pixels): Gaussian blur over height and width,
  ``scipy.ndimage.gaussian_filter`` with edge pixels repeated (``mode="nearest"``) and
  the kernel cut at 4 sigma.
* ``colour_cast`` (``colour``, default [255, 160, 64], a warm orange; ``strength``,
  default 0.4): ``round((1 - strength) x + strength colour)`` per channel; three
  channels only (a cast on gray images needs ``channels: 3``).
* ``sketch``: an edge rendering: the luma's Sobel gradient magnitude, scaled per image
  so its largest value is 255 (a flat image has no edges), inverted (dark strokes on
  white paper) and copied to every channel.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from feddiff.data.errors import DataError

#: Luma weights of ITU-R BT.601 (R, G, B), as PIL's ``convert("L")`` uses.
LUMA = (0.299, 0.587, 0.114)


def _luma(images: np.ndarray) -> np.ndarray:
    """(N, H, W) float64 luma; the single channel itself for gray images."""
    x = images.astype(np.float64)
    if images.shape[-1] == 1:
        return x[..., 0]
    return x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _spread(gray: np.ndarray, channels: int) -> np.ndarray:
    return np.repeat(gray[..., np.newaxis], channels, axis=-1)


def rotate(images: np.ndarray, *, degrees: float = 90) -> np.ndarray:
    """Counter-clockwise rotation by ``degrees`` (exact for multiples of 90)."""
    if float(degrees) % 90 == 0:
        k = int(float(degrees) // 90) % 4
        if k % 2 and images.shape[1] != images.shape[2]:
            raise DataError(
                f"rotate: {degrees} degrees would swap height and width of "
                f"{images.shape[1]}x{images.shape[2]} images; use square images"
            )
        return np.ascontiguousarray(np.rot90(images, k=k, axes=(1, 2)))
    from PIL import Image

    out = np.empty_like(images)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        rotated = np.asarray(
            pil.rotate(float(degrees), resample=Image.Resampling.BILINEAR, fillcolor=0)
        )
        out[i] = rotated.reshape(img.shape)
    return out


def invert(images: np.ndarray) -> np.ndarray:
    """``255 - x``."""
    return 255 - images


def grayscale(images: np.ndarray) -> np.ndarray:
    """BT.601 luma in every channel."""
    return _spread(_to_uint8(_luma(images)), images.shape[-1])


def blur(images: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels over H and W."""
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(
        images.astype(np.float64), sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0
    )
    return _to_uint8(out)


def colour_cast(
    images: np.ndarray,
    *,
    colour: tuple[int, int, int] | list[int] = (255, 160, 64),
    strength: float = 0.4,
) -> np.ndarray:
    """Blend every pixel with ``colour`` by ``strength``."""
    if images.shape[-1] != 3:
        raise DataError(
            f"colour_cast needs 3-channel images, got {images.shape[-1]}; set channels: 3"
        )
    target = np.asarray(colour, dtype=np.float64)
    return _to_uint8((1.0 - strength) * images.astype(np.float64) + strength * target)


def sketch(images: np.ndarray) -> np.ndarray:
    """Inverted, per-image normalised Sobel edge magnitude of the luma."""
    from scipy.ndimage import sobel

    gray = _luma(images)
    magnitude = np.hypot(sobel(gray, axis=1, mode="nearest"), sobel(gray, axis=2, mode="nearest"))
    peak = magnitude.reshape(len(magnitude), -1).max(axis=1, initial=0.0)
    scaled = np.divide(
        magnitude * 255.0,
        peak[:, None, None],
        out=np.zeros_like(magnitude),
        where=peak[:, None, None] > 0,
    )
    return _spread(_to_uint8(255.0 - scaled), images.shape[-1])


#: Transforms by the name a config's ``derive.transform`` uses.
TRANSFORMS: dict[str, Callable[..., np.ndarray]] = {
    "rotate": rotate,
    "invert": invert,
    "grayscale": grayscale,
    "blur": blur,
    "colour_cast": colour_cast,
    "sketch": sketch,
}


def _number(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise DataError(f"{key} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise DataError(f"{key} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise DataError(f"{key} must be <= {high}, got {value!r}")
    return float(value)


def check_transform(name: Any, params: Mapping[str, Any]) -> None:
    """Reject an unknown transform or parameter; messages name ``transform`` or the key."""
    if name not in TRANSFORMS:
        raise DataError(f"transform: {name!r} is unknown; choose one of {sorted(TRANSFORMS)}")
    allowed = [p for p in inspect.signature(TRANSFORMS[name]).parameters if p != "images"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise DataError(f"transform {name!r} takes {allowed or 'no parameters'}, not {unknown}")
    if "degrees" in params:
        _number("degrees", params["degrees"])
    if "sigma" in params:
        _number("sigma", params["sigma"], low=0, low_open=True)
    if "strength" in params:
        _number("strength", params["strength"], low=0, high=1)
    if "colour" in params:
        colour = params["colour"]
        if not isinstance(colour, (list, tuple)) or len(colour) != 3:
            raise DataError(f"colour must be [R, G, B], got {colour!r}")
        for i, c in enumerate(colour):
            _number(f"colour[{i}]", c, low=0, high=255)


def apply_transform(images: np.ndarray, name: str, params: Mapping[str, Any]) -> np.ndarray:
    """``TRANSFORMS[name](images, **params)`` after :func:`check_transform`; same shape, uint8."""
    check_transform(name, params)
    out = TRANSFORMS[name](images, **params)
    assert out.shape == images.shape and out.dtype == np.uint8, name
    return out
