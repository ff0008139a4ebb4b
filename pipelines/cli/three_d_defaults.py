"""What ``recon run --acquisition 3d`` takes when the command line does not say."""

COILS = 8
"""A 3-D head acquisition is multi-coil: 8 simulated birdcage coils (``--coils``)."""

SNR = 30.0
"""Noise at this SNR in dB (``--noise-snr``): a scanner's 3-D data always carries noise,
and noise-free 10 % (ky, kz) planes through estimated maps make the learned models'
exact consistency step diverge (docs/results.md, "3-D acquisitions")."""

ESTIMATE_PLANES = 8
"""The error estimate (and the guard) runs on this many evenly spread readout planes
(``--estimate-slices``): the guard judges the volume as one
(:func:`pipelines.run.volume.whole_volume`), and every plane would cost each method its
hold-out reconstructions again."""
