"""crow.blur_faces and crow.MotionDetector (bindings/python/src/vision.rs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import crow


def astronaut(models: Path) -> np.ndarray:
    Image = pytest.importorskip("PIL.Image")
    with Image.open(models / "images" / "astronaut.png") as im:
        return np.asarray(im.convert("RGB"))


def test_blur_faces_masks_the_astronaut(vision_models: Path) -> None:
    image = astronaut(vision_models)
    original = image.copy()
    masked, faces = crow.blur_faces(image, models=vision_models)
    np.testing.assert_array_equal(image, original)  # the input is not touched
    assert masked.dtype == np.uint8 and masked.shape == image.shape
    assert len(faces) >= 1
    x, y, w, h, score = faces[0]
    assert score > 0.5 and w > 20 and h > 20
    face = (slice(int(y), int(y + h)), slice(int(x), int(x + w)))
    change = np.abs(masked[face].astype(int) - image[face].astype(int)).mean()
    assert change > 10, change
    # Far from the face nothing changed.
    np.testing.assert_array_equal(masked[-50:, :50], image[-50:, :50])
    # The detector finds no face above 0.5 in what came out.
    _, after = crow.blur_faces(masked, models=vision_models)
    assert after == []


@pytest.mark.parametrize("mode", ["pixelate", "solid"])
def test_other_modes(vision_models: Path, mode: str) -> None:
    image = astronaut(vision_models)
    masked, faces = crow.blur_faces(image, mode, models=vision_models)
    x, y, w, h, _ = faces[0]
    region = masked[int(y) : int(y + h), int(x) : int(x + w)]
    if mode == "solid":
        assert (region == 0).all()
    else:
        assert len(np.unique(region.reshape(-1, 3), axis=0)) < 200


def test_blur_faces_checks_its_input(vision_models: Path, tmp_path: Path) -> None:
    with pytest.raises(crow.ValidationError, match="uint8"):
        crow.blur_faces(np.zeros((10, 10, 3), dtype=np.float32), models=vision_models)
    with pytest.raises(crow.ValidationError, match=r"\(height, width, 3\)"):
        crow.blur_faces(np.zeros((10, 10), dtype=np.uint8), models=vision_models)
    with pytest.raises(crow.ValidationError, match="blur, pixelate, solid"):
        crow.blur_faces(np.zeros((10, 10, 3), dtype=np.uint8), "smudge", models=vision_models)
    with pytest.raises(crow.ModelNotFoundError, match="make models"):
        crow.blur_faces(np.zeros((64, 64, 3), dtype=np.uint8), models=tmp_path)
    # A face-free image comes back equal.
    plain = np.full((64, 96, 3), 120, dtype=np.uint8)
    out, faces = crow.blur_faces(plain, models=vision_models)
    assert faces == [] and np.array_equal(out, plain)


def test_motion_detector() -> None:
    det = crow.MotionDetector()
    still = np.full((240, 320, 3), 90, dtype=np.uint8)
    first = det.detect(still)
    assert first["boxes"] == [] and not first["lighting_change"]
    moved = still.copy()
    moved[100:160, 100:150] = 250
    m = det.detect(moved)
    assert len(m["boxes"]) == 1
    x, y, w, h, _ = m["boxes"][0]
    assert 80 <= x <= 110 and 80 <= y <= 110 and w >= 40 and h >= 50
    assert 0 < m["fraction"] < 0.2
    lights = np.full((240, 320, 3), 250, dtype=np.uint8)
    assert det.detect(lights)["lighting_change"]
    det.reset()
    assert det.detect(still)["boxes"] == []
    assert "MotionDetector(height=100" in repr(det)
    with pytest.raises(crow.ValidationError, match="alpha"):
        crow.MotionDetector(alpha=0)
    with pytest.raises(crow.ValidationError, match="uint8"):
        det.detect(still.astype(np.int16))
