"""Classical reconstructions without training: zero-filled, CS, CG-SENSE, BART and the interpolation baselines."""
