"""A pytest plugin for reconstruction regression tests (registered as ``pytest11``
entry point ``recon``, so it is active wherever ``recon-mri`` is installed).

Fixtures
--------
``recon_sample_slice``
    A real brain slice from the built-in sample's test split, ``(256, 256)`` float32.
``recon_sample_kspace``
    Its fully sampled k-space, ``(256, 256)`` complex64 (centred, orthonormal).
``recon_mask``
    A factory: ``recon_mask("10pct", "cartesian", seed=0)`` returns a bool ``(256, 256)``
    mask (any shape with ``shape=``), seeded explicitly.
``recon_golden``
    Golden-file comparison: ``recon_golden.check("name", array, rtol=..., atol=...)``
    compares with ``golden/name.npy`` beside the test file; ``pytest
    --recon-update-golden`` (re)writes the files instead.

Assertion
---------
:func:`assert_reconstruction_quality` fails with a readable table of measured against
required metrics.

The sample-slice fixtures read ``pipelines.data.sample`` when they are used: the plugin
is the user's test harness for the whole toolkit, so it reaches the sample data that
``pipelines`` ships (the one import from ``recon`` up to ``pipelines``, made lazily).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def assert_reconstruction_quality(
    image,
    reference,
    min_psnr: float | None = None,
    min_ssim: float | None = None,
    max_nmse: float | None = None,
    data_range: float | None = None,
) -> dict[str, float]:
    """Assert floors on PSNR / SSIM and a ceiling on NMSE (fastMRI conventions, see
    :mod:`recon.metrics`). Returns the measured metrics.

    Shapes
    ------
    image, reference: ``(H, W)`` or ``(N, H, W)``, real or complex (magnitudes are used).
    """
    from recon import metrics  # here, so loading the plugin loads no torch (pytest starts faster)

    scores = metrics.evaluate(image, reference, data_range=data_range)
    checks = [("psnr", min_psnr, ">=", " dB"), ("ssim", min_ssim, ">=", ""), ("nmse", max_nmse, "<=", "")]
    rows, failed = [], False
    for key, bound, op, unit in checks:
        if bound is None:
            continue
        value = scores[key]
        ok = value >= bound if op == ">=" else value <= bound
        failed |= not ok
        rows.append(f"  {key:<5} {value:>12.5g}{unit:<3} {op} {bound:<10.5g} {'ok' if ok else 'FAILED'}"
                    f"   (margin {value - bound:+.4g})")
    if failed:
        raise AssertionError("reconstruction quality below the required floor:\n"
                             f"  {'metric':<5} {'measured':>15}    required\n" + "\n".join(rows))
    return scores


class Golden:
    """Compare arrays with golden ``.npy`` files, or (re)write them when updating."""

    def __init__(self, folder: Path, update: bool):
        self.folder = folder
        self.update = update

    def check(self, name: str, array, rtol: float = 1e-5, atol: float = 1e-6) -> None:
        array = np.asarray(array)
        path = self.folder / f"{name}.npy"
        if self.update:
            self.folder.mkdir(parents=True, exist_ok=True)
            np.save(path, array)
            return
        if not path.is_file():
            pytest.fail(f"no golden file {path}; run pytest --recon-update-golden to create it")
        expected = np.load(path)
        if expected.shape != array.shape:
            pytest.fail(f"{path.name}: shape {array.shape} differs from the golden {expected.shape}")
        if not np.allclose(array, expected, rtol=rtol, atol=atol):
            worst = float(np.max(np.abs(array - expected)))
            pytest.fail(f"{path.name}: differs from the golden file (max |difference| {worst:.3g}, "
                        f"rtol {rtol}, atol {atol}); if the change is intended, run pytest --recon-update-golden")


def pytest_addoption(parser) -> None:
    parser.addoption("--recon-update-golden", action="store_true", default=False,
                     help="recon: write golden files instead of comparing with them")


@pytest.fixture(scope="session")
def recon_sample_slice() -> np.ndarray:
    from pipelines.data.sample import sample

    return np.array(sample("test").images[8], dtype=np.float32)


@pytest.fixture(scope="session")
def recon_sample_kspace(recon_sample_slice) -> np.ndarray:
    from physics.fft import fft2c

    return fft2c(recon_sample_slice.astype(np.complex64))


@pytest.fixture
def recon_mask():
    from masks import make_mask, parse_preset

    def factory(preset: str = "10pct", kind: str = "cartesian", seed: int = 0, shape: tuple[int, int] = (256, 256)) -> np.ndarray:
        return make_mask(parse_preset(preset), shape, kind, seed=seed).array

    return factory


@pytest.fixture
def recon_golden(request) -> Golden:
    return Golden(Path(request.fspath).parent / "golden", request.config.getoption("--recon-update-golden"))
