"""I/O, acquisition simulation runs, reports and the ``recon`` command line."""
