"""Gathers real photographs for training, reproducibly and offline.

Sources: the photographs bundled in scikit-image's wheel, the photographic wallpapers of Debian packages
fetched with ``apt-get download``, and the test-set photographs (Kodak24, McMaster, BSD100, Urban100,
Sun-Hays80) that public GitHub repositories carry, read from local git mirrors of them (nothing is
downloaded for those: pass the mirrors). Images are downscaled to a long side of at most 1024 px, written as
PNG into ``train/`` and ``heldout/`` (a fixed, hash-based split) with a ``manifest.json`` that names the
source, version (package version, repository commit) and path of each::

    python -m mmrealsr_training.photos --out data/photos \
        [--github-mirror cszn/FFDNet=MIRROR_DIR --github-mirror jbhuang0604/SelfExSR=MIRROR_DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import subprocess
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mmrealsr_video.errors import MMRealSRVideoError, OutputError

__all__ = [
    "DEBIAN_PACKAGES",
    "DEBIAN_PHOTOS",
    "GITHUB_PHOTOS",
    "HELDOUT_FRACTION",
    "HELDOUT_KEYS",
    "HELDOUT_MINIMUM",
    "MANIFEST_NAME",
    "RESERVED_REPOS",
    "SKIMAGE_PHOTOS",
    "GitHubPhotoFolder",
    "PhotoRecord",
    "PhotoSourceError",
    "assign_splits",
    "build_photo_set",
    "fetch_debian_package",
    "is_reserved",
    "iter_debian_photos",
    "iter_github_photos",
    "iter_skimage_photos",
    "main",
    "parse_github_mirror",
]

_log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
#: Share of the images held out (by hash of their source name), and the least number held out.
HELDOUT_FRACTION = 0.12
HELDOUT_MINIMUM = 6
#: Keys held out whatever their hash: the six held out when the set had 21 images (EveningGlow and astronaut
#: only by the minimum top-up), so that they stay held out as the set grows and held-out scores stay
#: comparable. Keys not in the set are ignored.
HELDOUT_KEYS: frozenset[str] = frozenset(
    {
        "plasma-workspace-wallpapers:ColdRipple",
        "plasma-workspace-wallpapers:EveningGlow",
        "plasma-workspace-wallpapers:Kite",
        "skimage:astronaut",
        "skimage:coffee",
        "skimage:gravel",
    }
)
_MANIFEST_VERSION = 1

#: scikit-image's bundled photographs: (name, file in ``skimage/data``). Left out on purpose: microscopy,
#: medical and astronomical images (cell, ihc, retina, hubble_deep_field...), synthetic ones (checkerboard,
#: logo, text, page, phantom), too small ones (coins, horse, clock) and the right half of the stereo pair
#: (a near-copy of the left). Entries whose file is not in the wheel (``eagle`` needs a download) are skipped.
SKIMAGE_PHOTOS: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut.png"),
    ("coffee", "coffee.png"),
    ("chelsea", "chelsea.png"),
    ("rocket", "rocket.jpg"),
    ("motorcycle", "motorcycle_left.png"),
    ("camera", "camera.png"),
    ("moon", "moon.png"),
    ("grass", "grass.png"),
    ("gravel", "gravel.png"),
    ("brick", "brick.png"),
    ("eagle", "eagle.png"),
)

DEBIAN_PACKAGES: tuple[str, ...] = (
    "gnome-backgrounds",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
)

#: The wallpapers of each package that are photographs, chosen by looking at every image of
#: gnome-backgrounds 43.1, plasma-workspace-wallpapers 5.27.5, mate-backgrounds 1.26.0 and
#: lomiri-wallpapers-16.04 / -20.04 20.04.0 (Debian 12). Names are Plasma wallpaper folders or file stems;
#: unlisted images are skipped.
#:
#: - gnome-backgrounds 43: all rendered or vector art (adwaita, blobs, grid, licorice, pixels, symbolic,
#:   truchet, vnc, wood...).
#: - plasma-workspace-wallpapers: Altai, Autumn, Canopee, Cascade, Cluster, Elarun, Flow, FlyingKonqui,
#:   Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal, PastelHills, Patak, SafeLanding, Shell and Volna
#:   are rendered or vector art.
#: - mate-backgrounds: every ``nature/`` image is a photograph (macro shots of plants, insects, water,
#:   wood; a dune; a storm); ``desktop/`` (logos, stripes, blurred Ubuntu MATE glows) and ``abstract/``
#:   (the Elephants painting in three sizes, vector shapes, plain white PNGs) are not.
#: - lomiri-wallpapers-16.04: photographs but for umang (a colour-gradient render); analogpattern is a
#:   colour-tinted close-up of a textured surface.
#: - lomiri-wallpapers-20.04: only Kleiber (a nuthatch) is a photograph; Fossa and Painting-Colors are
#:   vector art, Infinite-Sea a composite of a rendered sea and the Milky Way.
#:
#: Looked at and left out of :data:`DEBIAN_PACKAGES`: lomiri-wallpapers (two rendered Ubuntu-orange
#: gradients), ukui-wallpapers 20.04.3 (all vector or rendered art), sway-backgrounds 1.7 (a logo on
#: a gradient, in several sizes), mypaint-data-extras 2.0.1 (tileable paper and canvas textures, nearly
#: flat) and opencv-doc (sample images of at most ~512 px, mostly test charts, stereo and calibration
#: shots, many heavily JPEG-compressed), digikam-data 7.9.0 (one 4032x3024 photo,
#: the rest interface art and LUTs), gcompris-qt-data 3.1 (its images sit in resource archives; two
#: screenshots), kodi-data (skins and screenshots), stellarium-data 0.22.2 (astronomical images, a
#: few landscape panoramas with cut-out skies), tuxpaint-stamps-default (cut-outs on transparency) and
#: supertuxkart-data (about a thousand game textures: many made from photographs of rock, gravel,
#: sand or bark, but edited, tiled, sharpened or painted over, and normal maps among them; a curated
#: handful could add texture, none is added).
DEBIAN_PHOTOS: dict[str, frozenset[str]] = {
    "gnome-backgrounds": frozenset(),
    "plasma-workspace-wallpapers": frozenset(
        {
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        }
    ),
    "mate-backgrounds": frozenset(
        {
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        }
    ),
    "lomiri-wallpapers-16.04": frozenset(
        {
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "analogpattern_by_Peter_Nerlich",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        }
    ),
    "lomiri-wallpapers-20.04": frozenset({"Kleiber_by_Lukas_Baubkus"}),
}


@dataclass(frozen=True)
class GitHubPhotoFolder:
    """A folder of photographs in a public GitHub repository, read from a local mirror of it.

    Attributes:
        repo: ``owner/name`` on GitHub.
        folder: the folder in the repository (files directly in it; not recursive).
        set_name: the test set's usual name; it starts the key of each photo (``Kodak24:kodim01``), so a
            photo keeps its split if the set is later read from another repository.
        suffix: the ending of the ground-truth files' names (``_HR.png`` where LR inputs sit beside them);
            it is cut from the name in the key.
        scenes: groups of file stems cut from one photograph; each group takes the split of its first.
    """

    repo: str
    folder: str
    set_name: str
    suffix: str
    scenes: tuple[tuple[str, ...], ...] = ()


#: The test sets taken from GitHub repositories, each looked at image by image (real photographs, none
#: synthetic, none under 256 px on its short side):
#:
#: - cszn/FFDNet ``testsets/``: Kodak24 (the Kodak PhotoCD images, 768x512, lossless) and McMaster (18
#:   500x500 crops of high-resolution photographs; crops of one scene are kept in one split). Its CBSD68
#:   is a subset of BSD100 (every one of the 68 matches a BSD100 image) and BSD68 the same in gray, so
#:   neither is listed; Set12 holds Set14 images and RNI6/RNI15 are noisy, without ground truth.
#: - jbhuang0604/SelfExSR ``data/``: the ground truths (``*_HR.png``) of BSD100 (the BSD300 test set),
#:   Urban100 (buildings, at the x4 crop: full size) and Sun-Hays80 (scenes, at the x8 crop: about
#:   1024 px). Its Set5 and Set14 are reserved for independent review, like every Set5/Set14 folder.
#:
#: Never taken (:func:`is_reserved`): the Real-ESRGAN and MM-RealSR repositories (their sample inputs
#: are reserved for independent review) and any Set5 or Set14 folder.
GITHUB_PHOTOS: tuple[GitHubPhotoFolder, ...] = (
    GitHubPhotoFolder("cszn/FFDNet", "testsets/Kodak24", "Kodak24", ".png"),
    GitHubPhotoFolder(
        "cszn/FFDNet",
        "testsets/McMaster",
        "McMaster",
        ".tif",
        # Looked at side by side: the same drapery, still life, painter, sewing table, vegetables, fridge
        # door, fruit basket and flower bed.
        scenes=(
            ("1", "2"),
            ("3", "4"),
            ("5", "6"),
            ("7", "8"),
            ("10", "11"),
            ("12", "13"),
            ("14", "15"),
            ("16", "17"),
        ),
    ),
    GitHubPhotoFolder("jbhuang0604/SelfExSR", "data/BSD100/image_SRF_3", "BSD100", "_SRF_3_HR.png"),
    GitHubPhotoFolder("jbhuang0604/SelfExSR", "data/Urban100/image_SRF_4", "Urban100", "_SRF_4_HR.png"),
    GitHubPhotoFolder("jbhuang0604/SelfExSR", "data/Sun-Hays80/image_SRF_8", "Sun-Hays80", "_SRF_8_HR.png"),
)

#: Repositories whose images are never taken: their sample inputs are kept for independent review.
RESERVED_REPOS: frozenset[str] = frozenset({"xinntao/Real-ESRGAN", "TencentARC/MM-RealSR"})
# Set5 and Set14, the classic SR sets, are reserved too, wherever they sit (Set5/, set14_HR/, Set14-x4/...).
_RESERVED_FOLDER = re.compile(r"(^|/)set[ _-]?(5|14)(?![0-9])[^/]*(/|$)", re.IGNORECASE)

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_MIN_LONG_SIDE_DEBIAN = 512  # wallpapers smaller than this are icons or tiles
_MIN_SHORT_SIDE = 192  # one training crop must fit
_MIN_SHORT_SIDE_GITHUB = 256  # and, for test-set photos, one evaluation crop (those held out are scored)
# Fewer distinct colours than this in a colour image: a chart, a logo or a flat rendering, not a
# photograph. The fewest among the listed test sets' colour photographs: 2915 (Urban100 img_066, black
# and white with a faint tint), then 4440, 4862...; gray photographs are not counted.
_MIN_COLOURS = 1024
# Grey 32x32 thumbnails whose correlation is above this, at the same aspect ratio, show one photograph.
_DUPLICATE_CORRELATION = 0.98
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


class PhotoSourceError(MMRealSRVideoError, OSError):
    """A photo source (a Debian package, a file) cannot be fetched or read."""


@dataclass(frozen=True)
class PhotoRecord:
    """One image of the photo set, as listed in the manifest.

    Attributes:
        file: path relative to the output folder, e.g. ``train/skimage-astronaut.png``.
        split: ``"train"`` or ``"heldout"``.
        key: the stable source name the split is derived from, e.g. ``skimage:astronaut``,
            ``Kodak24:kodim01`` (crops of one scene take the split of the scene's first key).
        source: ``"skimage"``, the Debian package name, or ``"github:OWNER/NAME"``.
        source_version: the scikit-image or package version, or the repository's commit.
        origin: the file inside the source (wheel data file, path in the package or repository).
        width: written width in pixels.
        height: written height.
        original_width: width of the source image.
        original_height: height of the source image.
        gray: whether the source is a grayscale photograph (stored as three equal channels).
    """

    file: str
    split: str
    key: str
    source: str
    source_version: str
    origin: str
    width: int
    height: int
    original_width: int
    original_height: int
    gray: bool


@dataclass(frozen=True)
class _Candidate:
    key: str
    slug: str
    source: str
    source_version: str
    origin: str
    image: np.ndarray  # H x W x 3 uint8, RGB
    gray: bool
    split_key: str = ""  # the key the split is drawn from, when not its own (a crop of one scene)


def _hash_score(key: str) -> float:
    """A stable number in [0, 1) for a key (the first 64 bits of its SHA-256)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) / 2.0**64


def assign_splits(
    keys: Sequence[str],
    fraction: float = HELDOUT_FRACTION,
    minimum: int = HELDOUT_MINIMUM,
    pinned: Collection[str] = HELDOUT_KEYS,
) -> dict[str, str]:
    """Splits source names into ``"train"`` and ``"heldout"``, deterministically.

    A key is held out when it is in ``pinned`` or the SHA-256 of its name maps below ``fraction``, so a
    key keeps its split whatever else is in the set. When that holds out fewer than ``minimum`` keys, the
    keys with the lowest hash scores are added until ``minimum`` is reached (the top-up stops at half of
    the keys).

    Args:
        keys: distinct source names.
        fraction: the share to hold out, in [0, 1].
        minimum: the least number of held-out keys.
        pinned: keys held out whatever their hash (those not in ``keys`` are ignored).

    Returns:
        A split name for every key.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"assign_splits: fraction must be in [0, 1], got {fraction}")
    if len(set(keys)) != len(keys):
        raise ValueError("assign_splits: keys must be distinct")
    ranked = sorted(keys, key=lambda k: (_hash_score(k), k))
    pinned = frozenset(pinned)
    held = {k for k in ranked if k in pinned or _hash_score(k) < fraction}
    wanted = min(minimum, len(keys) // 2)
    for k in ranked:  # lowest scores first: the hash-chosen keys, then the next ones
        if len(held) >= wanted:
            break
        held.add(k)
    return {k: "heldout" if k in held else "train" for k in keys}


def _as_rgb(img: np.ndarray) -> tuple[np.ndarray, bool]:
    """uint8 H x W x 3 RGB from a gray, RGB or RGBA array; also whether it was gray."""
    if img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2), True
    if img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img), False


def _read_rgb(path: Path) -> tuple[np.ndarray, bool]:
    flat = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if flat is None:
        raise PhotoSourceError(f"cannot decode image {path}")
    return _decoded_rgb(flat)


def _decoded_rgb(flat: np.ndarray) -> tuple[np.ndarray, bool]:
    """RGB uint8 and whether it is gray, from what ``cv2.imread``/``imdecode`` returned."""
    if flat.dtype == np.uint16:
        flat = (flat // 257).astype(np.uint8)
    if flat.ndim == 3:
        code = cv2.COLOR_BGRA2RGB if flat.shape[2] == 4 else cv2.COLOR_BGR2RGB
        rgb = cv2.cvtColor(flat, code)
        gray = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
        return rgb, gray
    return _as_rgb(flat)


def iter_skimage_photos() -> Iterator[_Candidate]:
    """The photographs of ``SKIMAGE_PHOTOS`` found in the installed scikit-image wheel (no download)."""
    try:
        import skimage.data
    except ImportError:
        _log.warning("scikit-image is not installed: no photographs from it (pip install scikit-image)")
        return
    folder = Path(skimage.data.__file__).parent
    version = importlib.metadata.version("scikit-image")
    for name, filename in SKIMAGE_PHOTOS:
        path = folder / filename
        if not path.is_file():
            _log.info("skimage: skip %s: %s is not bundled in scikit-image %s", name, filename, version)
            continue
        rgb, gray = _read_rgb(path)
        yield _Candidate(
            key=f"skimage:{name}",
            slug=f"skimage-{name}",
            source="skimage",
            source_version=version,
            origin=f"skimage/data/{filename}",
            image=rgb,
            gray=gray,
        )


def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    _log.debug("running %s", " ".join(cmd))
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)


def fetch_debian_package(package: str, cache_dir: Path) -> tuple[Path, str]:
    """Downloads a Debian package with ``apt-get download`` (once) and extracts it with ``dpkg-deb -x``.

    Args:
        package: the package name.
        cache_dir: where ``debs/`` and ``extracted/`` are kept between runs.

    Returns:
        The extraction root and the package version.

    Raises:
        PhotoSourceError: apt-get or dpkg-deb is missing or fails (``apt-get update`` is tried once).
    """
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        try:
            result = _run(["apt-get", "download", package], cwd=debs)
            if result.returncode != 0:
                _log.info("apt-get download %s failed; running apt-get update and trying again", package)
                _run(["apt-get", "update"])
                result = _run(["apt-get", "download", package], cwd=debs)
        except FileNotFoundError as exc:
            raise PhotoSourceError(f"apt-get is not available to fetch {package}: {exc}") from exc
        if result.returncode != 0:
            raise PhotoSourceError(f"apt-get download {package} failed: {result.stderr.strip()[-500:]}")
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise PhotoSourceError(f"apt-get download {package} left no {package}_*.deb in {debs}")
    deb = found[-1]
    try:
        version = _run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()
        root = cache_dir / "extracted" / deb.stem
        if not (root / ".complete").is_file():
            root.mkdir(parents=True, exist_ok=True)
            result = _run(["dpkg-deb", "-x", str(deb), str(root)])
            if result.returncode != 0:
                raise PhotoSourceError(f"dpkg-deb -x {deb} failed: {result.stderr.strip()[-500:]}")
            (root / ".complete").write_text(version + "\n")
    except FileNotFoundError as exc:
        raise PhotoSourceError(f"dpkg-deb is not available to unpack {deb}: {exc}") from exc
    _log.info("%s %s: unpacked in %s", package, version, root)
    return root, version


_PLASMA_IMAGE = re.compile(r"usr/share/wallpapers/(?P<name>[^/]+)/contents/(?P<set>images[^/]*)/[^/]+$")
_SIZE_NAME = re.compile(r"^(\d+)x(\d+)$")


def _pixel_count(path: Path) -> int:
    m = _SIZE_NAME.match(path.stem)
    if m:
        return int(m.group(1)) * int(m.group(2))
    return path.stat().st_size  # a stand-in that only ranks files of one wallpaper


def iter_debian_photos(package: str, root: Path, version: str) -> Iterator[_Candidate]:
    """The photographs in an unpacked wallpaper package: ``DEBIAN_PHOTOS`` entries, largest size only.

    Plasma ships each wallpaper at several sizes (most as links to the largest); only the largest real
    file of each wallpaper (and of its dark variant) is a candidate.
    """
    allowed = DEBIAN_PHOTOS.get(package, frozenset())
    best: dict[str, Path] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() not in _IMAGE_SUFFIXES:
            if path.suffix.lower() in {".svg", ".svgz", ".xml"}:
                _log.info("%s: skip %s: not a raster photograph", package, rel)
            continue
        if path.is_symlink():
            continue  # another size of a wallpaper, linked to a real file
        m = _PLASMA_IMAGE.search(rel)
        if m is not None:
            name = m.group("name") + ("" if m.group("set") == "images" else f"-{m.group('set')}")
        elif "/contents/" in rel:
            continue  # screenshots and previews
        else:
            name = path.stem
        if name not in best or _pixel_count(path) > _pixel_count(best[name]):
            best[name] = path
    for name, path in sorted(best.items()):
        rel = path.relative_to(root).as_posix()
        base = name.split("-images")[0]
        if base not in allowed:
            _log.info("%s: skip %s (%s): not in the list of photographs", package, name, rel)
            continue
        rgb, gray = _read_rgb(path)
        if max(rgb.shape[:2]) < _MIN_LONG_SIDE_DEBIAN:
            _log.info("%s: skip %s: %dx%d is too small", package, rel, rgb.shape[1], rgb.shape[0])
            continue
        yield _Candidate(
            key=f"{package}:{name}",
            slug=f"{package}-{name}",
            source=package,
            source_version=version,
            origin=rel,
            image=rgb,
            gray=gray,
        )


def is_reserved(repo: str, path: str = "") -> bool:
    """Whether a repository, or a path in it, is kept for independent review and must not be taken:
    the Real-ESRGAN and MM-RealSR repositories, and any Set5 or Set14 folder."""
    return repo.casefold() in {r.casefold() for r in RESERVED_REPOS} or bool(_RESERVED_FOLDER.search(path))


def _git(mirror: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(mirror), *args], capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise PhotoSourceError(f"git is not available to read the mirror {mirror}: {exc}") from exc


def _mirror_commit(mirror: Path) -> str:
    result = _git(mirror, "rev-parse", "--verify", "HEAD^{commit}")
    if result.returncode != 0:
        raise PhotoSourceError(
            f"{mirror} is not a git repository with a commit: {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout.decode().strip()


def _looks_synthetic(rgb: np.ndarray, gray: bool) -> bool:
    if gray:
        return False
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    return int(np.unique(packed).size) < _MIN_COLOURS


def iter_github_photos(
    repo: str, mirror: Path, folders: Sequence[GitHubPhotoFolder] = GITHUB_PHOTOS
) -> Iterator[_Candidate]:
    """The photographs of ``folders`` entries for ``repo``, read from ``mirror``'s HEAD commit.

    ``mirror`` is a clone of the repository, bare or not; nothing is fetched. Files that are absent
    (snapshots may leave large files out), Git LFS pointers, links, undecodable files, renderings (few
    colours) and images under 256 px are skipped with a log line.

    Args:
        repo: ``owner/name``.
        mirror: the local git repository.
        folders: the table to take folders from (entries of other repositories are ignored).

    Raises:
        PhotoSourceError: the repository is reserved, the mirror cannot be read, or a listed folder is
            not in it.
    """
    if is_reserved(repo):
        raise PhotoSourceError(f"{repo}: its images are reserved for independent review; never taken")
    commit = _mirror_commit(mirror)
    for entry in (f for f in folders if f.repo == repo):
        if is_reserved(repo, entry.folder):
            raise PhotoSourceError(f"{repo}: {entry.folder} is reserved for independent review; never taken")
        listing = _git(mirror, "ls-tree", "-l", commit, "--", entry.folder.rstrip("/") + "/")
        lines = listing.stdout.decode("utf-8", errors="replace").splitlines()
        if listing.returncode != 0 or not lines:
            raise PhotoSourceError(f"{repo}@{commit[:12]}: no folder {entry.folder} in the mirror {mirror}")
        scene_of = {stem: group[0] for group in entry.scenes for stem in group}
        for line in lines:
            meta, path = line.split("\t", 1)
            mode, kind, blob, _size = meta.split()
            name = path.rsplit("/", 1)[-1]
            if kind != "blob" or mode == "120000" or not name.endswith(entry.suffix):
                continue
            stem = name[: -len(entry.suffix)]
            data = _git(mirror, "cat-file", "blob", blob)
            if data.returncode != 0:
                _log.warning("%s: skip %s: not in the mirror (too large for the snapshot?)", repo, path)
                continue
            if data.stdout.startswith(_LFS_POINTER):
                _log.info("%s: skip %s: a Git LFS pointer, not the image", repo, path)
                continue
            flat = cv2.imdecode(np.frombuffer(data.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
            if flat is None:
                _log.warning("%s: skip %s: cannot be decoded as an image", repo, path)
                continue
            rgb, gray = _decoded_rgb(flat)
            if min(rgb.shape[:2]) < _MIN_SHORT_SIDE_GITHUB:
                _log.info("%s: skip %s: %dx%d is too small", repo, path, rgb.shape[1], rgb.shape[0])
                continue
            if _looks_synthetic(rgb, gray):
                _log.info("%s: skip %s: too few colours for a photograph", repo, path)
                continue
            key = f"{entry.set_name}:{stem}"
            yield _Candidate(
                key=key,
                slug=f"{entry.set_name}-{stem}",
                source=f"github:{repo}",
                source_version=commit,
                origin=path,
                image=rgb,
                gray=gray,
                split_key=f"{entry.set_name}:{scene_of[stem]}" if stem in scene_of else key,
            )


def parse_github_mirror(spec: str) -> tuple[str, Path]:
    """``OWNER/NAME=DIR``, or a ``DIR`` whose folder name (or its parent's) is ``OWNER+NAME``, as
    ``(owner/name, DIR)``.

    Raises:
        PhotoSourceError: the repository cannot be told from ``spec``.
    """
    if "=" in spec:
        repo, _, folder = spec.partition("=")
        if re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            return repo, Path(folder)
        raise PhotoSourceError(f"--github-mirror {spec}: expected OWNER/NAME=DIR")
    path = Path(spec)
    for part in (path.resolve().name, path.resolve().parent.name):
        m = re.fullmatch(r"([\w.-]+)\+([\w.-]+)", part)
        if m:
            return f"{m.group(1)}/{m.group(2)}", path
    raise PhotoSourceError(f"--github-mirror {spec}: cannot tell the repository; write OWNER/NAME={spec}")


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A zero-mean, unit-norm 32x32 grey thumbnail: two copies of one photograph correlate near 1."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    t = np.asarray(cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA), np.float64).ravel()
    t = t - float(t.mean())
    return t / max(float(np.linalg.norm(t)), 1e-6)


def _downscale(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return img
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _settings(
    max_side: int, packages: Sequence[str], github: Mapping[str, str], fraction: float, minimum: int
) -> dict[str, object]:
    return {
        "manifest_version": _MANIFEST_VERSION,
        "max_side": max_side,
        "packages": list(packages),
        "github_commits": dict(sorted(github.items())),
        "heldout_fraction": fraction,
        "heldout_minimum": minimum,
        "heldout_keys": sorted(HELDOUT_KEYS),
    }


def _existing(out: Path, settings: dict[str, object]) -> dict[str, object] | None:
    """The manifest in ``out`` if it was made with ``settings``, is complete and all its files exist."""
    path = out / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        _log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    if manifest.get("settings") != settings or not manifest.get("complete"):
        return None
    images = manifest.get("images", [])
    if not all((out / rec["file"]).is_file() for rec in images):
        return None
    return dict(manifest)


def build_photo_set(
    out: Path,
    *,
    cache_dir: Path | None = None,
    packages: Sequence[str] = DEBIAN_PACKAGES,
    github_mirrors: Mapping[str, Path] | None = None,
    github_folders: Sequence[GitHubPhotoFolder] = GITHUB_PHOTOS,
    max_side: int = 1024,
    fraction: float = HELDOUT_FRACTION,
    minimum: int = HELDOUT_MINIMUM,
    force: bool = False,
) -> dict[str, object]:
    """Writes the photo set into ``out`` (``train/``, ``heldout/``, ``manifest.json``); skips if done.

    A photograph from a GitHub mirror that repeats one already taken (the same picture in two test
    sets, or among the wallpapers) is skipped; crops of one scene share a split.

    Args:
        out: the output folder.
        cache_dir: where Debian packages are downloaded and unpacked (default: ``out/../photo-cache``).
        packages: Debian packages to take wallpapers from (empty: scikit-image only, no apt).
        github_mirrors: local git mirrors of GitHub repositories, by ``owner/name``, to read the
            ``github_folders`` of that repository from (none: no GitHub photos).
        github_folders: the table of folders to take (default :data:`GITHUB_PHOTOS`).
        max_side: the long side of the written images is at most this.
        fraction: held-out share, see :func:`assign_splits`.
        minimum: least number of held-out images.
        force: rebuild even when a complete manifest with the same settings exists.

    Returns:
        The manifest: ``settings`` (with the commit of each mirror), ``complete`` (False when a package
        could not be fetched or a mirror lacks a listed folder; a later run retries), ``images`` (records
        as in :class:`PhotoRecord`) and ``skipped_sources``.

    Raises:
        OutputError: ``out`` cannot be written.
        PhotoSourceError: a mirror is of a reserved repository, of one with no folder in the table, or
            cannot be read.
    """
    mirrors = dict(github_mirrors or {})
    for repo in mirrors:
        if is_reserved(repo):
            raise PhotoSourceError(f"{repo}: its images are reserved for independent review; never taken")
        if not any(f.repo == repo for f in github_folders):
            raise PhotoSourceError(f"{repo}: no photo folder of it is listed (see GITHUB_PHOTOS)")
    commits = {repo: _mirror_commit(mirror) for repo, mirror in mirrors.items()}
    settings = _settings(max_side, packages, commits, fraction, minimum)
    if not force:
        done = _existing(out, settings)
        if done is not None:
            images = done.get("images")
            count = len(images) if isinstance(images, list) else 0
            _log.info("%s already holds the photo set (%d images); nothing to do", out, count)
            return done
    cache = cache_dir if cache_dir is not None else out.parent / "photo-cache"

    candidates = list(iter_skimage_photos())
    skipped_sources: list[str] = []
    for package in packages:
        try:
            root, version = fetch_debian_package(package, cache)
        except PhotoSourceError as exc:
            _log.error("%s: skipped: %s", package, exc)
            skipped_sources.append(package)
            continue
        candidates.extend(iter_debian_photos(package, root, version))
    for repo in dict.fromkeys(f.repo for f in github_folders):  # table order: which of two copies is kept
        if repo not in mirrors:
            continue
        try:
            candidates.extend(list(iter_github_photos(repo, mirrors[repo], github_folders)))
        except PhotoSourceError as exc:
            _log.error("%s: skipped: %s", repo, exc)
            skipped_sources.append(f"github:{repo}")

    kept: list[_Candidate] = []
    thumbnails: list[tuple[np.ndarray, float]] = []
    for c in candidates:
        if min(c.image.shape[:2]) < _MIN_SHORT_SIDE:
            _log.info(
                "%s: skip %s: smaller than one %d px training crop", c.source, c.origin, _MIN_SHORT_SIDE
            )
            continue
        thumb, aspect = _thumbnail(c.image), c.image.shape[1] / c.image.shape[0]
        if c.source.startswith("github:"):
            twin = next(
                (
                    kept[i]
                    for i, (t, a) in enumerate(thumbnails)
                    if abs(a / aspect - 1.0) < 0.03 and float(t @ thumb) > _DUPLICATE_CORRELATION
                ),
                None,
            )
            if twin is not None:
                _log.info("%s: skip %s: the same photograph as %s", c.source, c.origin, twin.key)
                continue
        kept.append(c)
        thumbnails.append((thumb, aspect))
    split_keys = {c.key: c.split_key or c.key for c in kept}
    by_split_key = assign_splits(sorted(set(split_keys.values())), fraction, minimum)
    splits = {key: by_split_key[split_key] for key, split_key in split_keys.items()}

    try:
        old = out / MANIFEST_NAME
        if old.is_file():
            # Files of an earlier build that this one does not write again must not linger in train/.
            for rec in json.loads(old.read_text()).get("images", []):
                (out / rec["file"]).unlink(missing_ok=True)
        for split in ("train", "heldout"):
            (out / split).mkdir(parents=True, exist_ok=True)
        records = []
        for c in kept:
            img = _downscale(c.image, max_side)
            rel = f"{splits[c.key]}/{c.slug}.png"
            tmp = out / f"{rel}.tmp.png"
            if not cv2.imwrite(
                str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3]
            ):
                raise OutputError(f"cannot write {tmp}")
            os.replace(tmp, out / rel)
            records.append(
                PhotoRecord(
                    file=rel,
                    split=splits[c.key],
                    key=c.key,
                    source=c.source,
                    source_version=c.source_version,
                    origin=c.origin,
                    width=img.shape[1],
                    height=img.shape[0],
                    original_width=c.image.shape[1],
                    original_height=c.image.shape[0],
                    gray=c.gray,
                )
            )
            _log.info("%s: %s -> %s (%dx%d)", c.source, c.origin, rel, img.shape[1], img.shape[0])
        manifest: dict[str, object] = {
            "settings": settings,
            "complete": not skipped_sources,
            "skipped_sources": skipped_sources,
            "images": [asdict(r) for r in sorted(records, key=lambda r: r.file)],
        }
        tmp_manifest = out / f"{MANIFEST_NAME}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp_manifest, out / MANIFEST_NAME)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the photo set into {out}: {exc}") from exc
    counts: dict[str, int] = {}
    for r in records:
        counts[f"{r.source}/{r.split}"] = counts.get(f"{r.source}/{r.split}", 0) + 1
    _log.info(
        "photo set in %s: %d train, %d held out (%s)",
        out,
        sum(r.split == "train" for r in records),
        sum(r.split == "heldout" for r in records),
        ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
    )
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m mmrealsr_training.photos --out data/photos``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmrealsr_training.photos", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (train/, heldout/, manifest.json)"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="download cache (default: OUT/../photo-cache)"
    )
    parser.add_argument(
        "--package",
        action="append",
        default=None,
        help=f"Debian package to take wallpapers from, repeatable (default: {' '.join(DEBIAN_PACKAGES)})",
    )
    parser.add_argument("--no-debian", action="store_true", help="scikit-image photographs only, no apt")
    parser.add_argument(
        "--github-mirror",
        action="append",
        default=[],
        metavar="OWNER/NAME=DIR",
        help="a local git mirror of a repository listed in GITHUB_PHOTOS to take its test-set photographs "
        "from, repeatable (DIR alone when it is named OWNER+NAME or sits in such a folder)",
    )
    parser.add_argument("--max-side", type=int, default=1024, help="long side of the written images at most")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set is already there")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    packages: Sequence[str] = () if args.no_debian else tuple(args.package or DEBIAN_PACKAGES)
    try:
        mirrors = dict(parse_github_mirror(spec) for spec in args.github_mirror)
        manifest = build_photo_set(
            args.out,
            cache_dir=args.cache,
            packages=packages,
            github_mirrors=mirrors,
            max_side=args.max_side,
            force=args.force,
        )
    except MMRealSRVideoError as exc:
        _log.error("%s", exc)
        return 1
    return 0 if manifest.get("complete") else 2


if __name__ == "__main__":
    raise SystemExit(main())
