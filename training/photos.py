"""Gathers real photographs for training, reproducibly and offline.

Sources: the photographs bundled in scikit-image's wheel, and the photographic wallpapers of Debian
packages fetched with ``apt-get download``. Images are downscaled to a long side of at most 1024 px, written
as PNG into ``train/`` and ``heldout/`` (a fixed, hash-based split) with a ``manifest.json``::

    python -m mmrealsr_training.photos --out data/photos
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
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mmrealsr_video.errors import MMRealSRVideoError, OutputError

__all__ = [
    "DEBIAN_PACKAGES",
    "DEBIAN_PHOTOS",
    "HELDOUT_FRACTION",
    "HELDOUT_KEYS",
    "HELDOUT_MINIMUM",
    "MANIFEST_NAME",
    "SKIMAGE_PHOTOS",
    "PhotoRecord",
    "PhotoSourceError",
    "assign_splits",
    "build_photo_set",
    "fetch_debian_package",
    "iter_debian_photos",
    "iter_skimage_photos",
    "main",
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
#: shots, many heavily JPEG-compressed). Session 10 looked at digikam-data 7.9.0 (one 4032x3024 photo,
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

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_MIN_LONG_SIDE_DEBIAN = 512  # wallpapers smaller than this are icons or tiles
_MIN_SHORT_SIDE = 192  # one training crop must fit


class PhotoSourceError(MMRealSRVideoError, OSError):
    """A photo source (a Debian package, a file) cannot be fetched or read."""


@dataclass(frozen=True)
class PhotoRecord:
    """One image of the photo set, as listed in the manifest.

    Attributes:
        file: path relative to the output folder, e.g. ``train/skimage-astronaut.png``.
        split: ``"train"`` or ``"heldout"``.
        key: the stable source name the split is derived from, e.g. ``skimage:astronaut``.
        source: ``"skimage"`` or the Debian package name.
        source_version: the scikit-image or package version.
        origin: the file inside the source (wheel data file or path in the package).
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


def _downscale(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return img
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _settings(max_side: int, packages: Sequence[str], fraction: float, minimum: int) -> dict[str, object]:
    return {
        "manifest_version": _MANIFEST_VERSION,
        "max_side": max_side,
        "packages": list(packages),
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
    max_side: int = 1024,
    fraction: float = HELDOUT_FRACTION,
    minimum: int = HELDOUT_MINIMUM,
    force: bool = False,
) -> dict[str, object]:
    """Writes the photo set into ``out`` (``train/``, ``heldout/``, ``manifest.json``); skips if done.

    Args:
        out: the output folder.
        cache_dir: where Debian packages are downloaded and unpacked (default: ``out/../photo-cache``).
        packages: Debian packages to take wallpapers from (empty: scikit-image only, no apt).
        max_side: the long side of the written images is at most this.
        fraction: held-out share, see :func:`assign_splits`.
        minimum: least number of held-out images.
        force: rebuild even when a complete manifest with the same settings exists.

    Returns:
        The manifest: ``settings``, ``complete`` (False when a package could not be fetched; a later
        run retries), ``images`` (records as in :class:`PhotoRecord`) and ``skipped_sources``.

    Raises:
        OutputError: ``out`` cannot be written.
    """
    settings = _settings(max_side, packages, fraction, minimum)
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

    kept = []
    for c in candidates:
        if min(c.image.shape[:2]) < _MIN_SHORT_SIDE:
            _log.info(
                "%s: skip %s: smaller than one %d px training crop", c.source, c.origin, _MIN_SHORT_SIDE
            )
        else:
            kept.append(c)
    splits = assign_splits([c.key for c in kept], fraction, minimum)

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
    parser = argparse.ArgumentParser(prog="python -m mmrealsr_training.photos", description=__doc__.splitlines()[0])
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
    parser.add_argument("--max-side", type=int, default=1024, help="long side of the written images at most")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set is already there")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    packages: Sequence[str] = () if args.no_debian else tuple(args.package or DEBIAN_PACKAGES)
    try:
        manifest = build_photo_set(
            args.out, cache_dir=args.cache, packages=packages, max_side=args.max_side, force=args.force
        )
    except MMRealSRVideoError as exc:
        _log.error("%s", exc)
        return 1
    return 0 if manifest.get("complete") else 2


if __name__ == "__main__":
    raise SystemExit(main())
