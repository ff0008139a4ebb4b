"""Training data: contrast synthesis from tissue maps, geometric and intensity
augmentation, and simulated undersampled acquisitions with a fresh mask per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from masks import make_mask, seed_from_name, split_family
from physics.acquisition import simulate_kspace
from physics.coils import compress_coils
from recon.models.learned import VIRTUAL_COILS
from recon.training.measured import draw_coil_maps, has_calibration, measured_acquisition

POISSON_POOL = 24
"""Poisson-disc masks per (ratio, shape, family) that training draws from (:meth:`AcquisitionDataset._mask`)."""

# Tissue intensities (CSF, grey matter, white matter) drawn uniformly from these ranges.
CONTRASTS = {
    "t2": ((0.8, 1.0), (0.45, 0.65), (0.3, 0.45)),
    "flair": ((0.0, 0.1), (0.6, 0.8), (0.4, 0.55)),
    "pd": ((0.7, 0.9), (0.75, 0.9), (0.6, 0.7)),
}


@dataclass(frozen=True, eq=False)
class SliceSet:
    """Images for training or validation, float32 ``(N, H, W)`` in [0, 1]; tissue maps optional.

    ``planes``: for through-plane SR only, the training subjects' volume planes that
    contain z, float32 ``(P, Z, side)`` with z first
    (:func:`pipelines.data.corpus.planes_containing_z`); :class:`recon.training.slice_data.SliceAverageDataset`
    draws half its items from them."""

    images: np.ndarray
    grey_matter: np.ndarray | None = None
    white_matter: np.ndarray | None = None
    coil_sets: tuple[np.ndarray, ...] = ()  # measured coil maps (C, h, w) complex, e.g. ODIN's 8 channels
    planes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def synthesize_contrast(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A T2-, FLAIR- or PD-like image from grey/white-matter probabilities.

    CSF is taken as the rest of the brain region ``(1 - gm - wm)`` where the T1 image
    has signal. Tissue intensities are drawn from :data:`CONTRASTS`.

    Shapes
    ------
    t1, gm, wm: ``(H, W)`` -> ``(H, W)``.
    """
    name = list(CONTRASTS)[rng.integers(len(CONTRASTS))]
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0) * (t1 > 0.02)
    c, g, w = (rng.uniform(*bounds) for bounds in CONTRASTS[name])
    return (c * csf + g * gm + w * wm).astype(np.float32)


def bias_field(shape: tuple[int, int], rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """A smooth multiplicative intensity field ``1 + strength * p(y, x)`` (low-order polynomial)."""
    ys = np.linspace(-1, 1, shape[0])[:, None]
    xs = np.linspace(-1, 1, shape[1])[None, :]
    field = sum(rng.uniform(-1, 1) * ys**i * xs**j for i in range(3) for j in range(3 - i))
    field = field / max(np.abs(field).max(), 1e-6)
    return (1 + strength * field).astype(np.float32)


def augment(images: SliceSet, index: int, rng: np.random.Generator, synthesize: float = 0.5) -> np.ndarray:
    """One augmented training image from slice ``index``: maybe another contrast, a
    bias field, flips and a 90-degree rotation; scaled to max 1."""
    image = np.asarray(images.images[index], dtype=np.float32)
    has_tissue = images.grey_matter is not None and float(images.grey_matter[index].max()) > 0
    if has_tissue and rng.random() < synthesize:
        image = synthesize_contrast(image, images.grey_matter[index], images.white_matter[index], rng)
    image = image * bias_field(image.shape, rng)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1]
    if image.shape[0] == image.shape[1]:
        image = np.rot90(image, int(rng.integers(4)))
    peak = float(image.max())
    return np.ascontiguousarray(image / peak if peak > 0 else image)


# How a resampled image returns to its grid: bilinear (the corpus's own resampling, and
# many viewers'), cubic spline, or zero-padded k-space (a scanner's ZIP interpolation).
UPSAMPLERS = ("linear", "linear", "cubic", "fourier")


def resample_resolution(image: np.ndarray, rng: np.random.Generator, shrink: tuple[float, float] = (1.1, 2.4),
                        how: str | None = None) -> np.ndarray:
    """The image as if acquired at a lower native resolution and interpolated back.

    Keeps the central ``1/s`` of k-space in each axis (``s`` uniform in ``shrink``): an
    acquisition at that resolution. Its magnitude is then interpolated back to the
    original grid by bilinear, cubic-spline or zero-padded-k-space (ZIP) interpolation
    (``how``: "linear", "cubic" or "fourier"; drawn from :data:`UPSAMPLERS` if None).
    Many real images were interpolated so (the corpus's slices too: ODIN's maps and the
    val subject's T1 are 128×128, resampled to 256), and their k-space beyond the native
    edge holds only the interpolator's replicas; a super-resolution model trained with
    such images learns to recognise the interpolator instead of inventing detail.

    Shapes
    ------
    image: ``(H, W)`` real; returns ``(H, W)`` float32, scaled to max 1.
    """
    from skimage.transform import resize

    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape
    factor = float(rng.uniform(*shrink))
    low = (max(int(round(height / factor)), 8), max(int(round(width / factor)), 8))
    # numpy's FFT with its origin at pixel 0 (not physics.fft's centred one): this is image
    # resampling, not k-space, and the shipped weights trained with --resample used it.
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    top, left = (height - low[0] + 1) // 2, (width - low[1] + 1) // 2
    block = spectrum[top : top + low[0], left : left + low[1]]
    native = np.abs(np.fft.ifft2(np.fft.ifftshift(block))) * (low[0] * low[1]) / (height * width)
    how = UPSAMPLERS[int(rng.integers(len(UPSAMPLERS)))] if how is None else how
    if how not in UPSAMPLERS:
        raise ValueError(f"how must be one of {', '.join(sorted(set(UPSAMPLERS)))}, got {how!r}")
    if how == "fourier":
        padded = np.zeros_like(spectrum)
        padded[top : top + low[0], left : left + low[1]] = np.fft.fftshift(np.fft.fft2(native))
        result = np.abs(np.fft.ifft2(np.fft.ifftshift(padded))) * (height * width) / (low[0] * low[1])
    else:
        result = resize(native, (height, width), order=1 if how == "linear" else 3, preserve_range=True)
    result = np.clip(result, 0, None).astype(np.float32)
    peak = float(result.max())
    return result / peak if peak > 0 else result


PHOTOS = ("astronaut", "brick", "camera", "cat", "clock", "coffee", "coins", "grass", "gravel", "moon", "rocket",
          "retina", "immunohistochemistry", "cell", "hubble_deep_field")


def photo_images(size: int = 256) -> np.ndarray:
    """scikit-image's bundled photographs (no download), grey, as the four quadrant
    crops and the whole centred square of each, resized to ``size``; ``(N, size, size)``
    float32 in [0, 1]."""
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.transform import resize

    out = []
    for name in PHOTOS:
        image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
        if image.ndim == 3:
            image = rgb2gray(image[..., :3] / 255.0)
        elif image.max() > 1:
            image = image / 255.0
        side = min(image.shape)
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        square = image[top: top + side, left: left + side]
        half = side // 2
        crops = [square] + [square[y: y + half, x: x + half] for y in (0, half) for x in (0, half)]
        out += [resize(crop, (size, size), anti_aliasing=True).astype(np.float32) for crop in crops]
    return np.stack(out)


def shape_images(count: int, size: int = 256, seed: int = 0) -> np.ndarray:
    """Synthetic piecewise-smooth images with texture: an elliptical object on a dark
    background (as an MRI field of view), filled with overlapping ellipses and
    polygons of random intensity, a smooth intensity ramp and filtered-noise texture.
    ``(count, size, size)`` float32 in [0, 1], a deterministic function of ``seed``."""
    from scipy.ndimage import gaussian_filter
    from skimage.draw import ellipse, polygon

    rng = np.random.default_rng([seed, 4242])
    out = np.zeros((count, size, size), np.float32)
    for index in range(count):
        image = np.zeros((size, size), np.float32)
        body = np.zeros((size, size), bool)
        rr, cc = ellipse(size / 2, size / 2, rng.uniform(0.3, 0.48) * size, rng.uniform(0.3, 0.48) * size,
                         shape=body.shape, rotation=rng.uniform(0, np.pi))
        body[rr, cc] = True
        image[body] = rng.uniform(0.2, 0.5)
        for _ in range(int(rng.integers(5, 25))):
            centre = rng.uniform(0.2, 0.8, 2) * size
            if rng.random() < 0.6:
                rr, cc = ellipse(*centre, *(rng.uniform(0.02, 0.2, 2) * size), shape=image.shape,
                                 rotation=rng.uniform(0, np.pi))
            else:
                vertices = centre + rng.uniform(-0.15, 0.15, (int(rng.integers(3, 7)), 2)) * size
                rr, cc = polygon(vertices[:, 0], vertices[:, 1], shape=image.shape)
            image[rr, cc] = rng.uniform(0.0, 1.0)
        ys, xs = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
        image *= 1 + 0.3 * (rng.uniform(-1, 1) * ys + rng.uniform(-1, 1) * xs)
        texture = gaussian_filter(rng.standard_normal((size, size)), rng.uniform(0.7, 3.0))
        image += rng.uniform(0.0, 0.15) * texture / max(float(np.abs(texture).max()), 1e-6) * (image > 0)
        image = gaussian_filter(np.clip(image, 0, None) * body, rng.uniform(0.3, 1.0))
        out[index] = image / max(float(image.max()), 1e-6)
    return out


def mix_images(images: SliceSet, sources: tuple[str, ...], seed: int = 0, shapes: int = 64) -> SliceSet:
    """``images`` with images that are not MRI added: ``photos`` (:func:`photo_images`)
    and ``shapes`` (``shapes`` images from :func:`shape_images`), at the same size.
    Added images get empty tissue maps, so contrast synthesis skips them."""
    size = images.images.shape[-1]
    extra = []
    if "photos" in sources:
        extra.append(photo_images(size))
    if "shapes" in sources:
        extra.append(shape_images(shapes, size, seed))
    if not extra:
        return images
    return combine_slice_sets([images, SliceSet(np.concatenate(extra))])


def combine_slice_sets(sets: list[SliceSet]) -> SliceSet:
    """One set from several, with every set's coil maps; tissue maps are kept (empty
    for the sets without them) when any set has them."""
    images = np.concatenate([s.images for s in sets])
    coil_sets = tuple(maps for s in sets for maps in s.coil_sets)
    stacks = [s.planes for s in sets if s.planes is not None]
    planes = np.concatenate(stacks) if stacks else None
    if all(s.grey_matter is None for s in sets):
        return SliceSet(images, coil_sets=coil_sets, planes=planes)

    def tissue(s: SliceSet, which: str) -> np.ndarray:
        value = getattr(s, which)
        return np.zeros_like(s.images) if value is None else value

    return SliceSet(images, np.concatenate([tissue(s, "grey_matter") for s in sets]),
                    np.concatenate([tissue(s, "white_matter") for s in sets]), coil_sets, planes)


def collate_acquisitions(items):
    """Batch items with different numbers of coils: k-space and maps are padded with
    all-zero coils up to the batch's largest, which change neither the forward model
    nor its adjoint (a zero map sees nothing). A batch of single-coil items keeps
    C = 1 and its all-ones maps."""
    coils = max(item[0].shape[0] for item in items)

    def pad(tensor: torch.Tensor) -> torch.Tensor:
        extra = coils - tensor.shape[0]
        return tensor if extra == 0 else torch.cat([tensor, tensor.new_zeros((extra, *tensor.shape[1:]))])

    kspace, mask, target, ratio, maps = zip(*items)
    return (torch.stack([pad(k) for k in kspace]), torch.stack(mask), torch.stack(target), torch.stack(ratio),
            torch.stack([pad(m) for m in maps]))


class AcquisitionDataset(Dataset):
    """Simulated acquisitions: each item is an image, a fresh mask and its k-space.

    Items are deterministic functions of ``(seed, epoch, index)``, so runs are
    reproducible whatever the number of workers or processes. Validation sets
    (``train=False``) use no augmentation and a mask fixed per slice.

    ``mask_type`` and ``coils`` may list several mask families and coil counts: a
    training item draws one of each (list a value twice to draw it more often); the
    validation set holds every slice at every ratio and family, its coil count
    cycling through ``coils``. ``resample_probability`` of the training items are
    resampled to a lower native resolution, ``resample_shrink`` times coarser (a range
    drawn uniformly), and interpolated back (:func:`resample_resolution`). Multi-coil items draw their maps with
    :func:`recon.training.measured.draw_coil_maps` and are compressed to at most ``virtual_coils`` coils
    (:func:`physics.coils.compress_coils`, exact for the compressed data, as at
    inference); batch them with :func:`collate_acquisitions`. ``measured`` of the
    multi-coil items (all of the validation's when above 0) are measured-like instead
    (:mod:`recon.training.measured`: correlated noise at ``measured_snr`` dB, prewhitened,
    maps estimated from the data).

    Each item: ``kspace (C, H, W)`` complex64, ``mask (1, H, W)`` bool,
    ``target (H, W)`` complex64, the ratio, and ``coil_maps (C, H, W)`` complex64 (an
    all-ones map for single-coil data).
    """

    def __init__(
        self,
        images: SliceSet,
        ratios: tuple[float, ...],
        mask_type: str | tuple[str, ...] = "cartesian",
        seed: int = 0,
        train: bool = True,
        phase_probability: float = 0.5,
        noise_probability: float = 0.3,
        noise_snr: tuple[float, float] = (25.0, 40.0),
        coils: int | tuple[int, ...] = 1,
        virtual_coils: int = VIRTUAL_COILS,
        resample_probability: float = 0.0,
        resample_shrink: tuple[float, float] = (1.1, 2.4),
        measured: float = 0.0,
        measured_snr: tuple[float, float] = (15.0, 40.0),
    ):
        self.images = images
        self.ratios = tuple(ratios)
        self.mask_types = (mask_type,) if isinstance(mask_type, str) else tuple(mask_type)
        self.seed = int(seed)
        self.train = train
        self.phase_probability = phase_probability
        self.noise_probability = noise_probability
        self.noise_snr = noise_snr
        self.coils = (int(coils),) if isinstance(coils, int) else tuple(int(c) for c in coils)
        if not self.coils or min(self.coils) < 1:
            raise ValueError(f"coils must be >= 1, got {coils}")
        if not self.mask_types:
            raise ValueError("at least one mask family is needed")
        self.virtual_coils = int(virtual_coils)
        if not 0 <= resample_probability <= 1:
            raise ValueError(f"resample_probability must be in [0, 1], got {resample_probability}")
        self.resample_probability = float(resample_probability)
        self.resample_shrink = (float(resample_shrink[0]), float(resample_shrink[1]))
        if not 0 <= measured <= 1:
            raise ValueError(f"measured must be a probability in [0, 1], got {measured}")
        self.measured, self.measured_snr = float(measured), (float(measured_snr[0]), float(measured_snr[1]))
        self.epoch = 0
        self._poisson_pool: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.images) * (1 if self.train else len(self.ratios) * len(self.mask_types))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, item: int):
        if self.train:
            index = item
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image = augment(self.images, index, rng)
            # Drawn only when asked for, so runs without it keep their random stream.
            if self.resample_probability and rng.random() < self.resample_probability:
                image = resample_resolution(image, rng, shrink=self.resample_shrink)
            ratio = self.ratios[int(rng.integers(len(self.ratios)))]
            # A single family or coil count draws nothing, so such runs keep their random stream.
            family = self.mask_types[int(rng.integers(len(self.mask_types)))] if len(self.mask_types) > 1 else self.mask_types[0]
            coils = self.coils[int(rng.integers(len(self.coils)))] if len(self.coils) > 1 else self.coils[0]
            phase = rng.random() < self.phase_probability
            snr = float(rng.uniform(*self.noise_snr)) if rng.random() < self.noise_probability else None
            # Drawn only when asked for, so runs without it keep their random stream.
            measured = coils > 1 and self.measured > 0 and rng.random() < self.measured
        else:
            index, which = item % len(self.images), item // len(self.images)
            rng = np.random.default_rng([self.seed, 10_000 + item])
            image = np.asarray(self.images.images[index], dtype=np.float32)
            ratio = self.ratios[which % len(self.ratios)]
            family = self.mask_types[which // len(self.ratios)]
            coils = self.coils[item % len(self.coils)]
            phase, snr, measured = False, None, coils > 1 and self.measured > 0
        if measured:  # a scanner's noise level, always
            snr = float(rng.uniform(*self.measured_snr))
        return self._acquire(image, ratio, family, coils, phase, snr, rng, measured)

    def _mask(self, ratio: float, shape: tuple[int, int], family: str, rng: np.random.Generator) -> np.ndarray:
        """A fresh mask of ``family`` (``kind`` or ``kind:nocal``). Poisson-disc masks take
        about a second each, so training draws one of :data:`POISSON_POOL` per (ratio,
        shape, family), each seeded from its key and made once: a resumed run sees the
        same masks."""
        kind, center_fraction = split_family(family)
        if kind != "poisson" or not self.train:
            return make_mask(ratio, shape, kind, seed=rng, center_fraction=center_fraction).array
        key = (float(ratio), tuple(shape), family, int(rng.integers(POISSON_POOL)))
        if key not in self._poisson_pool:
            seed = seed_from_name(":".join(str(part) for part in key), self.seed)
            self._poisson_pool[key] = make_mask(ratio, shape, kind, seed=seed, center_fraction=center_fraction).array
        return self._poisson_pool[key]

    def _acquire(self, image: np.ndarray, ratio: float, family: str, coils: int, phase: bool, snr: float | None,
                 rng: np.random.Generator, measured: bool = False):
        """The item of one drawn acquisition (see the class docstring; ``measured``:
        :func:`recon.training.measured.measured_acquisition`'s, for masks with a
        calibration region)."""
        mask = self._mask(ratio, image.shape, family, rng)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        mask_t = torch.from_numpy(mask)
        maps = None
        if coils > 1:
            maps = draw_coil_maps(coils, image.shape, rng, self.images.coil_sets)[None]
        if measured and has_calibration(mask):
            _, truth = simulate_kspace(torch.from_numpy(image)[None], None, phase=phase, generator=generator)
            kspace, target, maps = measured_acquisition(truth[0], mask, maps[0], snr, generator, self.virtual_coils)
            return kspace[0], mask_t[None], target[0], torch.tensor(ratio, dtype=torch.float32), maps[0]
        kspace, truth = simulate_kspace(
            torch.from_numpy(image)[None], mask_t, coil_maps=maps, noise_snr=snr, phase=phase, generator=generator
        )
        if maps is not None:
            kspace, maps = compress_coils(kspace, maps, self.virtual_coils)
        maps = torch.ones((1, *image.shape), dtype=torch.complex64) if maps is None else maps[0]
        return kspace[0], mask_t[None], truth[0], torch.tensor(ratio, dtype=torch.float32), maps
