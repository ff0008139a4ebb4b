"""Trust without a reference: hold-out error estimates, calibration, the guard, the trust check, naturalness."""
