"""Write the example photos and masks in ``examples/`` from images bundled with scikit-image and
scikit-learn (see examples/LICENSES.md). Run once: ``python scripts/make_examples.py``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inpaintstudio import io as image_io

OUT = Path(__file__).resolve().parent.parent / "examples"


def _mask(shape: tuple[int, int], draw) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    draw(canvas)
    return canvas


def _save(name: str, rgb: np.ndarray, mask: np.ndarray) -> None:
    image_io.save_image(OUT / f"{name}.png", rgb)
    grey = np.dstack([mask] * 3)
    image_io.save_image(OUT / f"{name}_mask.png", grey)


def main() -> None:
    from skimage import data
    from sklearn.datasets import load_sample_images

    OUT.mkdir(exist_ok=True)
    astronaut = cv2.resize(data.astronaut(), (384, 384), interpolation=cv2.INTER_AREA)
    # the flag patch on the shoulder
    _save("astronaut", astronaut, _mask(astronaut.shape[:2], lambda m: cv2.ellipse(m, (300, 300), (26, 20), 0, 0,
                                                                                     360, 255, -1)))
    samples = {Path(name).stem: image for name, image in zip(load_sample_images().filenames,
                                                              load_sample_images().images)}
    china = cv2.resize(samples["china"], (480, 320), interpolation=cv2.INTER_AREA)
    _save("china", china, _mask(china.shape[:2], lambda m: cv2.line(m, (40, 60), (200, 110), 255, 9)))
    flower = cv2.resize(samples["flower"], (480, 320), interpolation=cv2.INTER_AREA)
    _save("flower", flower, _mask(flower.shape[:2], lambda m: cv2.circle(m, (360, 90), 28, 255, -1)))


if __name__ == "__main__":
    main()
