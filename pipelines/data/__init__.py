"""The built-in sample, the training corpus and the training data of recon train."""
