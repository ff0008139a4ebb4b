"""Training the learned models: the shared trainer, its config, losses, augmentation, checkpoints, feature network."""
