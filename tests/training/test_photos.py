"""Gathering the photo set: the fixed split, and the scikit-image part into a temporary folder (no apt)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmrealsr_training.photos import (
    DEBIAN_PACKAGES,
    DEBIAN_PHOTOS,
    HELDOUT_KEYS,
    HELDOUT_MINIMUM,
    MANIFEST_NAME,
    assign_splits,
    build_photo_set,
    iter_debian_photos,
)

pytest.importorskip("skimage.data")


def test_split_is_deterministic_disjoint_and_stable() -> None:
    keys = [f"source:{i}" for i in range(200)]
    a = assign_splits(keys)
    assert a == assign_splits(list(reversed(keys)))
    assert set(a) == set(keys) and set(a.values()) == {"train", "heldout"}
    held = {k for k, v in a.items() if v == "heldout"}
    assert 0.06 * len(keys) < len(held) < 0.2 * len(keys)
    # A key's split does not depend on the rest of the set (beyond the minimum top-up).
    b = assign_splits(keys[:100])
    assert {k for k, v in b.items() if v == "heldout"} == held & set(keys[:100])


def test_split_holds_out_a_minimum() -> None:
    keys = [f"k{i}" for i in range(20)]
    split = assign_splits(keys)
    assert sum(v == "heldout" for v in split.values()) >= HELDOUT_MINIMUM
    tiny = assign_splits(["a", "b", "c"])
    assert sum(v == "heldout" for v in tiny.values()) == 1  # at most half held out
    with pytest.raises(ValueError, match="distinct"):
        assign_splits(["a", "a"])


def test_pinned_keys_stay_held_out_as_the_set_grows() -> None:
    keys = sorted(HELDOUT_KEYS) + [f"source:{i}" for i in range(200)]
    split = assign_splits(keys)
    assert all(split[k] == "heldout" for k in HELDOUT_KEYS)
    assert {k for k, v in split.items() if v == "heldout" and k not in HELDOUT_KEYS} == {
        k for k, v in assign_splits(keys[len(HELDOUT_KEYS) :]).items() if v == "heldout"
    }
    # Without pins, the same keys split by their hash alone.
    unpinned = assign_splits(keys, pinned=())
    assert sum(v == "heldout" for v in unpinned.values()) < sum(v == "heldout" for v in split.values())


def test_every_default_package_has_a_curated_list() -> None:
    assert set(DEBIAN_PACKAGES) <= set(DEBIAN_PHOTOS)
    assert sum(len(DEBIAN_PHOTOS[p]) for p in DEBIAN_PACKAGES) >= 30


def test_skimage_photos_gathered_into_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    manifest = build_photo_set(out, packages=(), max_side=256)
    images = manifest["images"]
    assert isinstance(images, list) and len(images) >= 8
    assert manifest["complete"] is True
    on_disk = json.loads((out / MANIFEST_NAME).read_text())
    assert on_disk == manifest
    splits = {rec["split"] for rec in images}
    assert splits == {"train", "heldout"}
    assert not {rec["key"] for rec in images if rec["split"] == "train"} & {
        rec["key"] for rec in images if rec["split"] == "heldout"
    }
    for rec in images:
        path = out / rec["file"]
        assert path.parent.name == rec["split"]
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.ndim == 3 and img.shape[2] == 3
        assert max(img.shape[:2]) <= 256 and (img.shape[1], img.shape[0]) == (rec["width"], rec["height"])
        assert rec["source"] == "skimage"
    keys = [rec["key"] for rec in images]
    assert "skimage:astronaut" in keys and len(set(keys)) == len(keys)

    # Idempotent: a second run with the same settings rewrites nothing.
    stamps = {rec["file"]: (out / rec["file"]).stat().st_mtime_ns for rec in images}
    again = build_photo_set(out, packages=(), max_side=256)
    assert again == manifest
    assert stamps == {rec["file"]: (out / rec["file"]).stat().st_mtime_ns for rec in images}


def test_debian_tree_keeps_listed_photographs_at_their_largest_size(tmp_path: Path) -> None:
    """A fake unpacked Plasma package: sizes as links, a screenshot, an SVG, an unlisted wallpaper."""
    root = tmp_path / "pkg"
    rng = np.random.default_rng(0)
    for name in ("Path", "Volna"):
        folder = root / "usr/share/wallpapers" / name / "contents" / "images"
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "800x600.jpg"), rng.integers(0, 255, (600, 800, 3), dtype=np.uint8))
        cv2.imwrite(str(folder / "640x480.jpg"), rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
        (folder / "1920x1080.jpg").symlink_to(folder / "800x600.jpg")
        cv2.imwrite(
            str(folder.parent / "screenshot.jpg"), rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
        )
    (root / "usr/share/wallpapers/Path/contents/images/x.svg").write_text("<svg/>")
    found = list(iter_debian_photos("plasma-workspace-wallpapers", root, "1.0"))
    assert [c.key for c in found] == ["plasma-workspace-wallpapers:Path"]
    assert found[0].origin.endswith("Path/contents/images/800x600.jpg")
    assert found[0].image.shape == (600, 800, 3)


def test_debian_flat_folder_keeps_listed_photographs_by_file_stem(tmp_path: Path) -> None:
    """A fake unpacked MATE package: photographs under ``nature/``, art under ``abstract/``, a link."""
    rng = np.random.default_rng(1)
    nature = tmp_path / "usr/share/backgrounds/mate/nature"
    abstract = tmp_path / "usr/share/backgrounds/mate/abstract"
    nature.mkdir(parents=True)
    abstract.mkdir(parents=True)
    cv2.imwrite(str(nature / "Wood.jpg"), rng.integers(0, 255, (400, 640, 3), dtype=np.uint8))
    cv2.imwrite(str(nature / "Dune.jpg"), rng.integers(0, 255, (100, 300, 3), dtype=np.uint8))  # too small
    cv2.imwrite(str(abstract / "Flow.png"), rng.integers(0, 255, (400, 640, 3), dtype=np.uint8))
    (tmp_path / "usr/share/backgrounds/Aqua.jpg").symlink_to(nature / "Wood.jpg")
    found = list(iter_debian_photos("mate-backgrounds", tmp_path, "1.26.0-1"))
    assert [c.key for c in found] == ["mate-backgrounds:Wood"]
    assert found[0].origin == "usr/share/backgrounds/mate/nature/Wood.jpg"
    assert found[0].slug == "mate-backgrounds-Wood"
