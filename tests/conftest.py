import numpy as np
import pytest

from pipelines.common.runtime import tune_openmp

tune_openmp()  # before torch loads OpenMP: the suite must not crawl on a loaded machine

import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def brain_slice() -> np.ndarray:
    """A real brain slice from the sample's test split, (256, 256) float32 in [0, 1]."""
    from pipelines.data.sample import sample

    return np.array(sample("test").images[8])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def plane_weights(tmp_path, monkeypatch):
    """A weights folder with gan-drn's grid weights ``grid.pt`` and weights for 3-D
    planes ``planes.pt`` (empty files and their cards), which the learned models then
    choose from in place of the shipped ones; returns the folder."""
    import json

    from recon.models import learned
    from recon.weights import shipped_weights

    for name, sampling in (("grid", None), ("planes", "plane")):
        (tmp_path / f"{name}.pt").write_bytes(b"")
        card = {"model": "gan-drn", "trained_ratios": [0.08, 0.3], **({"sampling": sampling} if sampling else {})}
        (tmp_path / f"{name}.json").write_text(json.dumps(card))
    monkeypatch.setattr(learned, "shipped_weights",
                        lambda model, sampling="grid": shipped_weights(model, tmp_path, sampling))
    return tmp_path
