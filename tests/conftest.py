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
