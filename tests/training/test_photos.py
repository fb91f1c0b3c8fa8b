"""Gathering the photo set: the fixed split, the scikit-image part into a temporary folder (no apt), and
the GitHub test-set source read from a small git repository made here (no network)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmrealsr_training.photos import (
    DEBIAN_PACKAGES,
    DEBIAN_PHOTOS,
    GITHUB_PHOTOS,
    HELDOUT_KEYS,
    HELDOUT_MINIMUM,
    MANIFEST_NAME,
    SKIMAGE_PHOTOS,
    GitHubPhotoFolder,
    PhotoSourceError,
    assign_splits,
    build_photo_set,
    is_reserved,
    iter_debian_photos,
    iter_github_photos,
    main,
    parse_github_mirror,
)

skdata = pytest.importorskip("skimage.data")


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


# --------------------------------------------------------------------------------------------------
# Test-set photographs from local mirrors of GitHub repositories

_REPO = "someone/sr-testsets"
_FOLDER = "testsets/Demo"
_TABLE = (GitHubPhotoFolder(_REPO, _FOLDER, "Demo", ".png", scenes=(("ihc", "cat"),)),)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A bare clone, in a folder named OWNER+NAME, of a repository with two photographs made from
    scikit-image data and the files the source must skip; returns (mirror, commit)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    work = tmp_path_factory.mktemp("work")
    _git(work, "init", "-q")
    folder = work / _FOLDER
    _write(folder / "ihc.png", skdata.immunohistochemistry())  # 512x512, not in SKIMAGE_PHOTOS
    _write(folder / "cat.png", skdata.chelsea()[::-1])  # 451x300, upside down: not skimage's chelsea
    _write(folder / "tiny.png", cv2.resize(skdata.coffee(), (300, 200)))  # under 256 px
    _write(folder / "again.png", cv2.resize(skdata.astronaut(), (384, 384)))  # skimage's astronaut again
    _write(
        folder / "chart.png",
        np.kron(np.arange(64, dtype=np.uint8).reshape(8, 8), np.ones((40, 40), np.uint8))[..., None].repeat(
            3, 2
        )
        * np.array([4, 2, 1], np.uint8),
    )
    (folder / "lfs.png").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n")
    (folder / "cat_LR.jpg").write_bytes(b"not the ground truth: another suffix")
    _write(work / "testsets/Set14/baboon.png", skdata.astronaut())  # reserved, never read
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "test sets")
    bare = tmp_path_factory.mktemp("mirrors") / "someone+sr-testsets" / "repo"
    _git(work, "clone", "-q", "--bare", str(work), str(bare))
    return bare, _git(work, "rev-parse", "HEAD")


def test_github_folders_are_listed_and_not_reserved() -> None:
    assert {f.set_name for f in GITHUB_PHOTOS} >= {"Kodak24", "McMaster", "BSD100", "Urban100"}
    assert len({f.set_name for f in GITHUB_PHOTOS}) == len(GITHUB_PHOTOS)
    for f in GITHUB_PHOTOS:
        assert not is_reserved(f.repo, f.folder), f
        assert all(stem for group in f.scenes for stem in group)
    for repo in ("xinntao/Real-ESRGAN", "TencentARC/MM-RealSR", "tencentarc/mm-realsr"):
        assert is_reserved(repo)
    for path in ("testsets/Set5", "data/Set14/image_SRF_2", "set14_HR", "Set5/x.png", "a/set_5/b"):
        assert is_reserved("someone/repo", path), path
    for path in ("testsets/Set12", "testsets/set3c", "testsets/Kodak24", "data/Set50", "data/BSD100"):
        assert not is_reserved("someone/repo", path), path


def test_test_sets_move_no_existing_photo_between_splits() -> None:
    """The wallpapers and scikit-image photos keep their splits when the test sets join them: their
    pinned keys already reach the minimum, so only each key's own hash decides."""
    existing = [f"skimage:{name}" for name, _ in SKIMAGE_PHOTOS] + [
        f"{package}:{name}" for package in DEBIAN_PACKAGES for name in DEBIAN_PHOTOS[package]
    ]
    added = [f"{f.set_name}:img_{i:03d}" for f in GITHUB_PHOTOS for i in range(100)]
    alone, together = assign_splits(existing), assign_splits(existing + added)
    assert alone == {k: together[k] for k in existing}
    assert 0.06 * len(added) < sum(together[k] == "heldout" for k in added) < 0.2 * len(added)


def test_parse_github_mirror(tmp_path: Path) -> None:
    assert parse_github_mirror("cszn/FFDNet=/m/x") == ("cszn/FFDNet", Path("/m/x"))
    named = tmp_path / "cszn+FFDNet" / "repo"
    assert parse_github_mirror(str(named)) == ("cszn/FFDNet", named)
    assert parse_github_mirror(str(named.parent)) == ("cszn/FFDNet", named.parent)
    with pytest.raises(PhotoSourceError, match="OWNER/NAME"):
        parse_github_mirror(str(tmp_path / "somewhere"))
    with pytest.raises(PhotoSourceError, match="OWNER/NAME=DIR"):
        parse_github_mirror("not a repo=/m/x")


@pytest.mark.slow  # its fixture runs git
def test_github_mirror_photos_skip_what_is_not_a_photograph(mirror: tuple[Path, str]) -> None:
    path, commit = mirror
    found = {c.key: c for c in iter_github_photos(_REPO, path, _TABLE)}
    # tiny: too small; chart: a few colours; lfs: a pointer; cat_LR.jpg: not the ground truth's suffix.
    assert sorted(found) == ["Demo:again", "Demo:cat", "Demo:ihc"]
    cat = found["Demo:cat"]
    assert (cat.source, cat.source_version, cat.origin) == (f"github:{_REPO}", commit, f"{_FOLDER}/cat.png")
    assert cat.image.shape == (300, 451, 3) and np.array_equal(cat.image, skdata.chelsea()[::-1])
    assert cat.split_key == "Demo:ihc" and found["Demo:ihc"].split_key == "Demo:ihc"
    assert found["Demo:again"].split_key == "Demo:again"
    with pytest.raises(PhotoSourceError, match="no folder"):
        list(iter_github_photos(_REPO, path, (GitHubPhotoFolder(_REPO, "testsets/None", "None", ".png"),)))
    with pytest.raises(PhotoSourceError, match="reserved"):
        list(iter_github_photos(_REPO, path, (GitHubPhotoFolder(_REPO, "testsets/Set14", "Set14", ".png"),)))
    with pytest.raises(PhotoSourceError, match="reserved"):
        list(iter_github_photos("xinntao/Real-ESRGAN", path))


@pytest.mark.slow  # its fixture runs git
def test_github_mirror_photos_gathered_with_repo_commit_and_path(
    mirror: tuple[Path, str], tmp_path: Path
) -> None:
    path, commit = mirror
    # minimum=0: the top-up of a set this small (a dozen photos) would move photos between splits as it
    # grows; the real set holds out more than the minimum by its pinned keys alone, so never tops up.
    plain = build_photo_set(tmp_path / "plain", packages=(), max_side=256, minimum=0)
    out = tmp_path / "photos"
    mirrors = {_REPO: path}
    manifest = build_photo_set(
        out, packages=(), github_mirrors=mirrors, github_folders=_TABLE, max_side=256, minimum=0
    )
    assert manifest["complete"] is True
    settings = manifest["settings"]
    assert isinstance(settings, dict) and settings["github_commits"] == {_REPO: commit}
    images = manifest["images"]
    assert isinstance(images, list)
    records = {rec["key"]: rec for rec in images}
    github = {k: r for k, r in records.items() if r["source"] == f"github:{_REPO}"}
    # "again" is skimage's astronaut at another size: the same photograph is taken once.
    assert sorted(github) == ["Demo:cat", "Demo:ihc"]
    for name, rec in (("cat", github["Demo:cat"]), ("ihc", github["Demo:ihc"])):
        assert rec["source_version"] == commit and rec["origin"] == f"{_FOLDER}/{name}.png"
        assert rec["file"] == f"{rec['split']}/Demo-{name}.png" and (out / rec["file"]).is_file()
    assert github["Demo:cat"]["split"] == github["Demo:ihc"]["split"]  # one scene, one split
    assert (github["Demo:cat"]["width"], github["Demo:cat"]["height"]) == (256, 170)
    # Adding photographs moves none of those already there from one split to the other.
    before = plain["images"]
    assert isinstance(before, list)
    assert {r["key"]: r["split"] for r in before} == {
        k: r["split"] for k, r in records.items() if not k.startswith("Demo:")
    }

    # The same mirror again: nothing to do.
    again = build_photo_set(
        out, packages=(), github_mirrors=mirrors, github_folders=_TABLE, max_side=256, minimum=0
    )
    assert again == manifest


@pytest.mark.slow  # its fixture runs git
def test_github_mirror_errors(mirror: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = mirror
    with pytest.raises(PhotoSourceError, match="reserved"):
        build_photo_set(tmp_path, packages=(), github_mirrors={"xinntao/Real-ESRGAN": path})
    with pytest.raises(PhotoSourceError, match="no photo folder"):
        build_photo_set(tmp_path, packages=(), github_mirrors={"someone/else": path}, github_folders=_TABLE)
    with pytest.raises(PhotoSourceError, match="not a git repository"):
        build_photo_set(tmp_path, packages=(), github_mirrors={_REPO: tmp_path}, github_folders=_TABLE)
    # A listed folder that the mirror lacks: the repository is skipped, the set marked incomplete.
    missing = (*_TABLE, GitHubPhotoFolder(_REPO, "testsets/Gone", "Gone", ".png"))
    manifest = build_photo_set(
        tmp_path / "photos", packages=(), github_mirrors={_REPO: path}, github_folders=missing, max_side=256
    )
    assert manifest["complete"] is False and manifest["skipped_sources"] == [f"github:{_REPO}"]
    assert (
        main(["--out", str(tmp_path / "cli"), "--no-debian", "--github-mirror", str(path)]) == 1
    )  # not listed
