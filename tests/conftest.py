import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def brain_slice() -> np.ndarray:
    """A real brain slice from the sample's test split, (256, 256) float32 in [0, 1]."""
    from pipelines.data.sample import sample

    return np.array(sample("test").images[8])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
