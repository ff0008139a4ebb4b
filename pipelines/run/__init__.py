"""``recon run``: simulate an acquisition, reconstruct with every method, measure and report."""
