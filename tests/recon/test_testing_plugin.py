"""The ``recon.testing`` pytest plugin, run in a scratch pytest session (pytester)."""

pytest_plugins = ["pytester"]

EXAMPLE = '''
import recon
from recon.testing import assert_reconstruction_quality

def test_cs_tv_quality(recon_sample_slice, recon_sample_kspace, recon_mask):
    mask = recon_mask("50pct", "cartesian", seed=0)
    image = recon.reconstruct(recon_sample_kspace, mask, "zero-filled")
    assert_reconstruction_quality(image, recon_sample_slice, min_psnr={floor}, min_ssim=0.3)
'''


def test_quality_assertion_passes_and_fails_readably(pytester):
    pytester.makepyfile(test_pass=EXAMPLE.format(floor=20), test_fail=EXAMPLE.format(floor=60))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*reconstruction quality below the required floor*", "*psnr*>= 60*FAILED*"])


def test_golden_files_are_written_then_compared(pytester):
    pytester.makepyfile(test_golden='''
import numpy as np
def test_it(recon_golden, recon_mask):
    recon_golden.check("mask", recon_mask("10pct", "vd2d", seed=3, shape=(64, 64)).astype(np.uint8))
''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1)  # no golden file yet
    pytester.runpytest("-p", "no:cacheprovider", "--recon-update-golden").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(test_golden='''
import numpy as np
def test_it(recon_golden, recon_mask):
    recon_golden.check("mask", recon_mask("10pct", "vd2d", seed=4, shape=(64, 64)).astype(np.uint8))
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mask.npy: differs from the golden file*--recon-update-golden*"])
