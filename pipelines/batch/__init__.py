"""``recon batch``: folders of real data, scheduled locally or on Dask, with manifest, lock, resume and interruption."""
