"""The benchmark scripts run end to end (tiny settings; the real runs are in the README)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import quality, speed


def test_quality_benchmark_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "quality.json"
    assert quality.main(["--masks", "10pct", "--mask-types", "vd2d", "--methods", "zero-filled,cs-l1",
                         "--slices", "1", "--json", str(out)]) == 0
    assert "| cs-l1 |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["10pct vd2d"]
    assert rows["cs-l1"]["psnr"] > rows["zero-filled"]["psnr"]


def test_speed_benchmark_times_methods_physics_sizes_and_batches(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert speed.main(["--methods", "zero-filled,gan-drn", "--slices", "1", "--sizes", "64", "--batches", "1,2",
                       "--scaling-methods", "zero-filled", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "One fft2c" in printed and "batch 2" in printed
    result = json.loads(out.read_text())
    assert result["methods"]["gan-drn"]["seconds"] > result["methods"]["zero-filled"]["seconds"] > 0
    assert result["physics"]["fft2c"] > 0 and set(result["sizes"]["zero-filled"]) == {"64"}
    assert set(result["batches"]["gan-drn"]) == {"1", "2"}


def test_batch_benchmark_measures_both_worker_counts(tmp_path, capsys):
    from benchmarks import batch

    out = tmp_path / "batch.json"
    assert batch.main(["--files", "2", "--slices", "1", "--methods", "zero-filled", "--dask", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"--workers 1", "--workers 2", "Dask 1"}
    assert all(row["files"] == 2 and row["failed"] == 0 and row["slices_per_second"] > 0 for row in result.values())


def test_startup_benchmark_times_the_four_commands(tmp_path, capsys):
    from benchmarks import startup

    out = tmp_path / "startup.json"
    assert startup.main(["--repeats", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "<= 0.3 s" in printed and "| recon mask |" in printed
    assert set(json.loads(out.read_text())) == {"--help", "--version", "methods", "mask"}


def _tiny_corpus(tmp_path, split):
    """A corpus of one stand-in head volume in ``split``, at ``tmp_path / "corpus"``."""
    from pipelines.data.corpus import Source, build_corpus
    from tests.pipelines.test_corpus import _package

    package = _package(tmp_path / "pkg")
    sources = (Source("head", "pypi", "fake", "1.0", "head.nii.gz", "COPYING", "subject-a", "T1w", "nifti", split=split),)
    build_corpus(tmp_path / "corpus", sources, fetcher=lambda source, cache: package, log=lambda line: None)


def test_generalisation_benchmark_on_a_tiny_corpus(tmp_path, capsys):
    from benchmarks import generalisation

    _tiny_corpus(tmp_path, "test")
    out = tmp_path / "gen.json"
    assert generalisation.main([str(tmp_path / "corpus"), "--masks", "25pct", "--mask-types", "cartesian",
                                "--coils", "1,4", "--slices", "1", "--methods", "zero-filled,cs-tv", "--json", str(out)]) == 0
    assert "| cs-tv |" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert len(results) == 2 and all(rows["cs-tv"]["psnr"] >= rows["cs-tv"]["psnr_worst"] for rows in results.values())
    # Models measured apart merge with the baselines, and the checks read both.
    key = next(iter(results))
    single = {key: results[key]}
    model = {key: {"csr-gan": {**results[key]["cs-tv"], "psnr": results[key]["cs-tv"]["psnr"] + 1.0,
                               "psnr_slices": [p + 1.0 for p in results[key]["cs-tv"]["psnr_slices"]]}}}
    (tmp_path / "a.json").write_text(json.dumps(single))
    (tmp_path / "b.json").write_text(json.dumps(model))
    capsys.readouterr()
    assert generalisation.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    printed = capsys.readouterr().out
    assert "| best learned - best CS | 25pct cartesian, 1 coil(s): csr-gan | +1.00 dB; 0 slice(s) below zero-filled" in printed


def _trust_records(tmp_path, masks: str, mask_types: str, methods: str, slices: int):
    """``benchmarks.trust`` on the val subject of a tiny corpus, one coil: the records'
    path and content."""
    from benchmarks import trust

    _tiny_corpus(tmp_path, "val")
    records = tmp_path / "records.json"
    assert trust.main([str(tmp_path / "corpus"), "--split", "val", "--masks", masks, "--mask-types", mask_types,
                       "--coils", "1", "--slices", str(slices), "--methods", methods, "--threads", "2",
                       "--records", str(records)]) == 0
    return records, json.loads(records.read_text())


@pytest.fixture(scope="module")
def trust_records(tmp_path_factory):
    """One tiny corpus's trust records, shared by the tests that read them (a minute of work)."""
    folder = tmp_path_factory.mktemp("trust")
    return (folder, *_trust_records(folder, "25pct,50pct", "cartesian,vd2d", "zero-filled,cs-tv,gan-drn", 1))


def test_trust_benchmark_measures_calibrates_and_evaluates_on_a_tiny_corpus(trust_records, capsys):
    from benchmarks import trust

    tmp_path, records, saved = trust_records
    assert len(saved) == 2 * 2 * 3 and all(len(r["fold_nmse"]) == 4 and r["nmse"] > 0 for r in saved)
    calibration = tmp_path / "calibration.json"
    assert trust.main(["--calibrate", str(records), "--out", str(calibration)]) == 0
    fitted = json.loads(calibration.read_text())
    assert set(fitted["lines"]) <= {f"{family}:{d}d" for family in ("baseline", "cs", "learned") for d in (1, 2)}
    twice = tmp_path / "twice.json"  # several record files are fitted as one
    assert trust.main(["--calibrate", str(records), str(records), "--out", str(twice)]) == 0
    assert {key: 2 * n for key, n in fitted["points"].items()} == json.loads(twice.read_text())["points"]
    for key, (low, high) in fitted["interval_db"].items():  # the 10th and 90th percentiles of true - estimated
        assert key in fitted["lines"] and low <= high
    capsys.readouterr()
    assert trust.main(["--evaluate", str(records)]) == 0
    printed = capsys.readouterr().out
    assert "Spearman" in printed and "lowest estimated error is truly best" in printed and "guard:" in printed
    assert "stated interval [low, high] holds the true PSNR" in printed
    assert "| vd2d | 50pct | 1 |" in printed and "gan-drn guarded" in printed


def test_trust_offsets_hold_the_truth_of_the_records_they_were_fitted_on(trust_records, monkeypatch):
    from benchmarks import trust, trust_fit

    saved = [dict(record) for record in trust_records[2]
             if record["mask_type"] == "cartesian" and record["method"] in ("zero-filled", "cs-tv")]
    monkeypatch.setattr(trust_fit, "OFFSET_MIN_POINTS", 2)
    offsets = trust.fit_offsets(saved)
    assert set(offsets) == {"baseline:cartesian:1c", "baseline:cartesian", "cs:cartesian:1c", "cs:cartesian"}
    assert all(entry["points"] == 2 for entry in offsets.values())
    trust.apply(saved, {"lines": {}, "offsets": offsets})
    for record in saved:  # two records per entry: the median is their mean, the interval reaches both
        assert record["est_low"] - 1e-6 <= record["psnr"] <= record["est_high"] + 1e-6
        assert record["est_high"] - record["est_low"] > 0
    # a second source whose shift differs by more than OFFSET_MAX_SPREAD_DB: no offset carries
    for shift, kept in ((1.0, True), (trust_fit.OFFSET_MAX_SPREAD_DB + 2.0, False)):
        other = [{**record, "source": "other", "psnr": record["psnr"] + shift} for record in saved]
        assert bool(trust.fit_offsets(saved + other)) == kept


def test_trust_offset_intervals_hold_a_subject_the_fit_never_saw(trust_records, monkeypatch):
    # each source is judged by the others' offset: two sources 2 dB apart give an interval
    # that reaches 2 dB either way (the plain residuals about the pooled median: 1 dB)
    from benchmarks import trust, trust_fit

    saved = [dict(record) for record in trust_records[2] if record["mask_type"] == "cartesian" and record["method"] == "cs-tv"]
    monkeypatch.setattr(trust_fit, "OFFSET_MIN_POINTS", 2)
    shift = 2.0
    other = [{**record, "source": "other", "psnr": record["psnr"] + shift} for record in saved]
    entry = trust.fit_offsets(saved + other)["cs:cartesian:1c"]
    low, high = entry["interval_db"]
    assert entry["sources"] == 2 and low <= -shift + 0.5 and high >= shift - 0.5


def test_trust_benchmark_with_noise_records_the_noisy_and_measured_regimes_from_one_reconstruction(tmp_path, capsys):
    from benchmarks import trust

    _tiny_corpus(tmp_path, "val")
    records = tmp_path / "noisy.json"
    assert trust.main([str(tmp_path / "corpus"), "--split", "val", "--masks", "25pct", "--mask-types", "poisson",
                       "--coils", "4", "--slices", "2", "--noise-snr", "20,30", "--methods", "zero-filled",
                       "--threads", "2", "--records", str(records)]) == 0
    saved = json.loads(records.read_text())
    assert [(r["slice"], r["snr"], r["regime"]) for r in saved] == [
        (0, 20.0, "noisy"), (0, 20.0, "measured"), (1, 30.0, "noisy"), (1, 30.0, "measured")]
    for noisy, measured in (saved[:2], saved[2:]):
        assert noisy["seconds"] == measured["seconds"]  # one reconstruction, two references
        assert noisy["noise_floor"] > 0 and measured["noise_floor"] == 0
        # judged against the clean image, the noise-free residuals are the smaller
        assert np.mean(noisy["fold_nmse"]) < np.mean(measured["fold_nmse"])
    # the noisy regimes fit entries of their own, never the clean ones
    fitted = trust.fit_offsets([{**r, "source": f"{r['source']}{i % 2}"} for i, r in enumerate(saved * 4)])
    assert fitted and all(key.endswith(("-noisy", "-measured")) for key in fitted)


def test_trust_calibration_merge_keeps_no_stale_offset_of_a_refitted_mask_family():
    from benchmarks import trust

    entry = {"offset_db": 1.0, "interval_db": [-1.0, 1.0], "points": 9}
    earlier = {"lines": {}, "offsets": {"cs:equispaced": entry, "cs:radial:1c": entry, "cs:cartesian:1c": entry}}
    fitted = {"lines": {}, "offsets": {"cs:cartesian:1c": {**entry, "offset_db": 2.0}}}
    merged = trust.merge(earlier, fitted, {"1d"}, {"cartesian", "equispaced"})
    # equispaced was refitted and left out (its sources disagreed): it stays out
    assert merged["offsets"] == {"cs:radial:1c": entry, "cs:cartesian:1c": {**entry, "offset_db": 2.0}}


def test_trust_benchmark_measures_a_raw_scanner_file(tmp_path, capsys):
    # gre.dat's k-space is about 1e-6: the stored residuals keep their significant digits
    # (rounding them to 8 decimals stored zeros, and estimates of 211 dB)
    from benchmarks import trust

    records = tmp_path / "raw.json"
    gre = Path(__file__).parents[1] / "data" / "twix" / "gre.dat"
    assert trust.main(["--raw", str(gre), "--masks", "25pct", "--mask-types", "poisson", "--methods",
                       "zero-filled,cs-tv", "--threads", "1", "--records", str(records)]) == 0
    saved = json.loads(records.read_text())
    assert [(r["source"], r["coils"], r["method"]) for r in saved] == [("gre", 2, "zero-filled"), ("gre", 2, "cs-tv")]
    trust.apply(saved, {"lines": {}})
    for record in saved:
        assert min(record["fold_nmse"]) > 0 and 10 < record["psnr"] < 40
        assert abs(record["true_psnr_like_est"] - record["psnr"]) < 3  # the RSS reference's range
    capsys.readouterr()
    assert trust.main(["--evaluate", str(records)]) == 0
    assert "family poisson" in capsys.readouterr().out


def test_trust_benchmark_on_super_resolution_keeps_the_other_calibration_lines(tmp_path, capsys):
    from benchmarks import trust

    records, saved = _trust_records(tmp_path, "lowres-2x", "lowres", "zero-filled,bicubic,mpp-gan", 2)
    assert {r["kind"] for r in saved} == {"block"} and all(len(r["spectrum"]) == 2 for r in saved)
    calibration = tmp_path / "calibration.json"
    earlier = {"lines": {"cs:1d": [0.0, 1.0], "learned:block": [5.0, 5.0]}, "points": {"cs:1d": 9}, "fitted_on": "old"}
    calibration.write_text(json.dumps(earlier))
    assert trust.main(["--calibrate", str(records), "--out", str(calibration)]) == 0
    written = json.loads(calibration.read_text())
    assert written["lines"]["cs:1d"] == [0.0, 1.0] and written["points"]["cs:1d"] == 9  # another kind: kept
    assert "learned:block" not in written["lines"] or written["lines"]["learned:block"] != [5.0, 5.0]
    assert "1d from the earlier fit" in written["fitted_on"]


def test_superres_benchmark_runs_in_plane_and_through_plane_on_a_tiny_corpus(tmp_path, capsys):
    from benchmarks import superres
    from recon.weights import WEIGHTS_DIR

    _tiny_corpus(tmp_path, "test")
    out = tmp_path / "sr.json"
    assert superres.main([str(tmp_path / "corpus"), "--factors", "2", "--slices", "1", "--methods", "zero-filled,bicubic",
                          "--through-plane", "4", "--z-weights", str(WEIGHTS_DIR / "soup-gan-z.pt"), "--threads", "1",
                          "--json", str(out)]) == 0
    tables = json.loads(out.read_text())
    through = tables["through-plane 4x"]
    assert set(through) == {"cubic", "sinc", "soup-gan"} and all(row["psnr"] > 10 for row in through.values())
    assert "**through-plane 4x**" in capsys.readouterr().out


def test_interpolation_check_recovers_a_bilinear_upsampling_exactly_and_nothing_else():
    from skimage.transform import resize

    from benchmarks import superres

    native = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32) + 0.5
    upsampled = np.stack([resize(image, (64, 64), order=1, preserve_range=True) for image in native]).astype(np.float32)
    assert min(superres.interpolation_check(upsampled, 2)) > 100  # the block determines the slice
    assert max(superres.interpolation_check(resize(native, (2, 64, 64), order=3).astype(np.float32), 2)) < 60
    assert max(superres.interpolation_check(upsampled, 4)) < 60  # a 4x block is not enough


def test_superres_checks_compare_against_the_best_tv_method_run():
    from benchmarks import superres

    def row(psnr):
        return {"psnr": psnr, "dc_residual_max": 1e-7, "seconds": 0.05}

    table = {"zero-filled": row(30.0), "cs-tv": row(30.5), "bart-tv": row(31.2), "mpp-gan": row(31.0)}
    lines = superres.checks({"in-plane 2x": table})
    assert "mpp-gan - bart-tv | -0.20 dB | > 0 | no" in lines  # cs-tv alone would have said yes
    del table["bart-tv"]
    assert "mpp-gan - cs-tv | +0.50 dB | > 0 | yes" in superres.checks({"in-plane 2x": table})


def test_raw_benchmark_reports_seconds_memory_and_quality_per_file(tmp_path, capsys):
    from benchmarks import raw

    out = tmp_path / "raw.json"
    gre = Path(raw.ROOT) / "tests" / "data" / "twix" / "gre.dat"
    assert raw.main([str(gre), "--masks", "50pct", "--mask-types", "cartesian", "--methods", "zero-filled,cs-tv",
                     "--json", str(out)]) == 0
    row, *anchor = json.loads(out.read_text())
    assert row["file"] == "gre.dat" and row["peak_mib"] > 50 and row["seconds"] > 0
    assert row["methods"]["cs-tv"]["psnr"] > row["methods"]["zero-filled"]["psnr"]
    assert "| gre.dat | 50pct" in capsys.readouterr().out
    if shutil.which("bart"):  # BART alone from twixread, with the same mask and reference
        (bart,) = anchor
        assert bart["file"] == "gre.dat" and bart["ratio"] == row["ratio"]
        assert bart["methods"]["bart-chain-tv"]["psnr"] > row["methods"]["zero-filled"]["psnr"]
    else:
        assert anchor == []


def test_adapt_benchmark_compares_shipped_and_adapted_weights(tmp_path, capsys):
    from benchmarks import adapt

    _tiny_corpus(tmp_path, "test")
    out = tmp_path / "adapt.json"
    assert adapt.main([str(tmp_path / "corpus"), "--mask", "25pct", "--slices", "2", "--seconds", "1e9", "--steps", "3", "--invert",
                       "--threads", "1", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["head"]
    assert row["slices"] == 2 and row["adaptation"]["adapt_steps"] == 3  # bounded by steps, not the machine's speed
    assert row["adapted"]["psnr"] > 0 and row["gan-drn"]["psnr"] > 0 and "| head | 2 |" in capsys.readouterr().out


def test_tour_benchmark_runs_a_readme_command(tmp_path, capsys):
    from benchmarks import tour

    out = tmp_path / "tour.json"
    assert tour.main(["--only", "mask", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["mask"]
    assert result["exit"] == 0 and result["command"].startswith("recon mask --mask 10pct")
    assert tour.main(["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "recon run --mask 25pct --coils 8 --noise-snr 30" in printed and "gre.dat --mask 25pct" in printed


def test_ablation_benchmark_adds_one_property_per_row(tmp_path, capsys):
    from benchmarks import ablation

    out = tmp_path / "ablation.json"
    assert ablation.main(["--slices", "1", "--rows", "2,3", "--snr", "15", "--methods", "zero-filled,cs-tv",
                          "--threads", "1", "--json", str(out)]) == 0
    assert "| + noise |" in capsys.readouterr().out
    clean, noisy = json.loads(out.read_text())
    assert (clean["row"], noisy["row"]) == ("clean", "+ noise")
    assert noisy["scores"]["cs-tv"][0] < clean["scores"]["cs-tv"][0]  # 15 dB of noise costs CS too


def test_volume_benchmark_scores_each_method_and_other_weights_on_a_small_volume(tmp_path, capsys):
    import nibabel as nib

    from benchmarks import volume

    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in (24, 40, 36)], indexing="ij")
    head = 0.6 * (sum((axis / 0.8) ** 2 for axis in grid) < 1) + 0.4 * (sum((axis / 0.4) ** 2 for axis in grid) < 1)
    nib.save(nib.Nifti1Image(head.astype(np.float32), np.eye(4)), tmp_path / "head.nii.gz")
    weights = str(Path(volume.__file__).resolve().parents[1] / "recon" / "weights" / "gan-drn.pt")
    out = tmp_path / "volume.json"
    assert volume.main(["--volume", str(tmp_path / "head.nii.gz"), "--masks", "25pct", "--methods", "zero-filled,cs-tv",
                        "--bart-methods", "", "--weights", f"gan-drn={weights}", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())[0]["methods"]
    assert list(rows) == ["zero-filled", "cs-tv", f"gan-drn@{weights}"]
    planes = len(rows["zero-filled"]["plane_psnr"])
    for name in ("cs-tv", f"gan-drn@{weights}"):
        assert len(rows[name]["plane_psnr"]) == planes and rows[name]["psnr"] > rows["zero-filled"]["psnr"]
        assert rows[name]["planes_below_zero_filled"] <= planes and rows[name]["seconds_with_maps"] > rows[name]["seconds"]
    assert "zero-filled" in capsys.readouterr().out


def test_trust_benchmark_on_3d_planes_records_them_as_recon_run_judges_them_and_fits_their_own_entries(tmp_path):
    import nibabel as nib

    from benchmarks import trust
    from recon.trust.calibration import REGIMES

    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in (24, 40, 36)], indexing="ij")
    head = 0.6 * (sum((axis / 0.8) ** 2 for axis in grid) < 1) + 0.4 * (sum((axis / 0.4) ** 2 for axis in grid) < 1)
    nib.save(nib.Nifti1Image(head.astype(np.float32), np.eye(4)), tmp_path / "head.nii.gz")
    records = tmp_path / "planes.json"
    assert trust.main(["--planes", str(tmp_path / "head.nii.gz"), "--masks", "25pct", "--mask-types", "poisson",
                       "--methods", "zero-filled,cs-tv", "--plane-count", "3", "--threads", "1",
                       "--records", str(records)]) == 0
    saved = json.loads(records.read_text())
    assert len(saved) == 12 and {(r["mask_type"], r["coils"]) for r in saved} == {("poisson@planes", 8)}
    assert len({r["slice"] for r in saved}) == 3
    for regime in ("noisy", "measured"):  # against the noise-free volume, and against the full scan's RSS image
        mine = [r for r in saved if r["regime"] == regime]
        assert len(mine) == 6 and len({r["data_range"] for r in mine}) == 1  # one peak for the volume's planes
    noisy, measured = ([r for r in saved if r["regime"] == regime and r["method"] == "cs-tv"] for regime in REGIMES[1:])
    assert all(n["seconds"] == m["seconds"] and n["psnr"] != m["psnr"] for n, m in zip(noisy, measured))  # one reconstruction
    # the planes fit their own entries alone, never the slice entries a 2-D acquisition uses
    fitted = trust.fit_offsets([{**r, "source": f"{r['source']}{i % 2}"} for i, r in enumerate(saved * 4)])
    assert set(fitted) == {f"{family}:{name}@planes:mc-{regime}" for family in ("baseline", "cs")
                           for name in ("poisson", "2d") for regime in ("noisy", "measured")}
    # and the guard's leads of their own (a learned twin of cs-tv: estimated as far ahead as it is)
    twin = [{**r, "method": "gan-drn", "family": "learned"} for r in saved if r["method"] == "cs-tv"]
    fitted = trust.fit([{**r, "source": f"{r['source']}{i % 2}"} for i, r in enumerate((saved + twin) * 4)])
    assert set(fitted["guard_lead_db"]) == {"noisy@planes", "measured@planes"}
    assert all(abs(lead) < 0.01 for lead in fitted["guard_lead_db"].values())


def test_trust_records_can_draw_a_new_mask_for_every_slice():
    """``--mask-per-slice``: each slice's mask is seeded by source and slice, so the
    calibration sees many draws; without it, a source's slices share one draw."""
    import numpy as np

    from benchmarks import trust

    images = np.random.default_rng(0).random((3, 48, 48)).astype(np.float32)
    shared = trust.measure(images, "tiny", "25pct", "cartesian", 1, ["zero-filled"], 2)
    drawn = trust.measure(images, "tiny", "25pct", "cartesian", 1, ["zero-filled"], 2, mask_per_slice=True)
    assert [r["mask_seed"] for r in shared] == ["tiny"] * 3 and len({str(r["unmeasured"]) for r in shared}) == 1
    assert [r["mask_seed"] for r in drawn] == ["tiny:0", "tiny:1", "tiny:2"] and [r["slice"] for r in drawn] == [0, 1, 2]
    assert len({str(r["unmeasured"]) for r in drawn}) > 1  # the draws differ


def test_trust_records_with_espirit_maps_give_each_slice_its_own_maps():
    """``--espirit`` on noise-free slices: the maps are estimated for every slice of the
    batch, and each slice is reconstructed with its own (a batch of maps once met one
    slice's k-space and failed)."""
    import numpy as np

    from benchmarks import trust

    images = np.random.default_rng(1).random((2, 48, 48)).astype(np.float32)
    records = trust.measure(images, "tiny", "25pct", "cartesian", 4, ["gan-drn"], 2, espirit=True)
    alone = trust.measure(images[1:], "tiny", "25pct", "cartesian", 4, ["gan-drn"], 2, espirit=True)
    assert [r["slice"] for r in records] == [0, 1]
    assert records[1]["psnr"] == pytest.approx(alone[0]["psnr"], abs=0.02)


def test_the_benchmarks_bart_chains_narrow_the_ecalib_kernel_to_the_centre():
    """BART's ``ecalib`` needs a kernel narrower than the calibration region: its default
    6 where the centre allows, else 2 lines narrower than the centre."""
    from benchmarks.common import ecalib_kernel

    assert ecalib_kernel((24, 24)) == 6 and ecalib_kernel((24, 10)) == 6
    assert ecalib_kernel((24, 5)) == 3 and ecalib_kernel((6, 24)) == 4


@pytest.mark.parametrize("mask_type", ["cartesian", "vd2d"])
def test_draw_intervals_widen_the_intervals_to_the_draws_spread_and_keep_every_estimate(trust_records, monkeypatch,
                                                                                        mask_type):
    """``--draw-intervals``: the 1-D and 2-D entries' stated intervals take in records with a mask
    drawn per slice (a spread of 3 dB between draws reaches the interval, which never
    narrows), while every estimate, and so every verdict of the guard, stays; one-draw
    records change nothing."""
    from benchmarks import trust, trust_fit

    monkeypatch.setattr(trust_fit, "OFFSET_MIN_POINTS", 2)
    saved = [dict(record) for record in trust_records[2] if record["mask_type"] == mask_type]
    calibration = trust.fit([dict(record) for record in saved])
    assert trust_fit.draw_intervals(calibration, saved) == {**calibration, "offsets": calibration["offsets"],
                                                            "interval_db": calibration["interval_db"]}
    drawn = [{**record, "mask_seed": f"tiny:{draw}", "psnr": record["psnr"] + shift}
             for draw, shift in enumerate((-3.0, 0.0, 3.0)) for record in saved]
    updated = trust_fit.draw_intervals(calibration, drawn)
    changed = {key: entry for key, entry in updated["offsets"].items() if "interval_from" in entry}
    assert changed and all(entry["interval_db"][0] <= -2.5 and entry["interval_db"][1] >= 2.5 for entry in changed.values())
    for key, entry in changed.items():  # joined with the subjects' interval: it never narrows
        low, high = calibration["offsets"][key]["interval_db"]
        assert entry["interval_db"][0] <= low and entry["interval_db"][1] >= high
    before, after = [dict(record) for record in drawn], [dict(record) for record in drawn]
    trust.apply(before, calibration)
    trust.apply(after, updated)
    assert [r["est_psnr"] for r in before] == [r["est_psnr"] for r in after]
    assert sum(r["est_low"] <= r["psnr"] <= r["est_high"] for r in after) > sum(
        r["est_low"] <= r["psnr"] <= r["est_high"] for r in before)
    assert trust_fit.draw_intervals(updated, drawn)["offsets"] == updated["offsets"]  # a rerun starts from the subjects'
    # records whose methods got ESPIRiT maps join too, one draw or not, each condition's interval apart
    espirit = [{**record, "maps": "espirit", "psnr": record["psnr"] - 6.0} for record in saved]
    both = trust_fit.draw_intervals(calibration, drawn + espirit)
    assert all(both["offsets"][key]["interval_db"][0] <= -5.5 and both["offsets"][key]["interval_db"][1]
               == updated["offsets"][key]["interval_db"][1] and "with ESPIRiT maps" in both["offsets"][key]["interval_from"]
               for key in changed)
    # a method with entries of its own widens an interval of its own, on its family's offset
    monkeypatch.setattr(trust_fit, "OWN_INTERVAL_METHODS", ("gan-drn",))
    own = trust_fit.draw_intervals(calibration, drawn)
    borrowed = {key: entry for key, entry in own["offsets"].items() if key.startswith("gan-drn:")}
    assert borrowed and all(entry["offset_db"] == own["offsets"][entry["offset_from"]]["offset_db"]
                            and entry["interval_db"][1] >= 2.5 for entry in borrowed.values())
    family = {entry["offset_from"] for entry in borrowed.values()}
    assert all(own["offsets"][key]["interval_db"] == calibration["offsets"][key]["interval_db"] for key in family)


def test_method_offsets_fit_a_method_on_its_own_and_a_family_refit_keeps_them(trust_records, monkeypatch):
    """``--method-offsets``: entries keyed by the method (``gan-drn:cartesian:1c``), fitted
    as a family's are; a later ``--calibrate`` of the same mask families keeps them."""
    from benchmarks import trust, trust_fit

    monkeypatch.setattr(trust_fit, "OFFSET_MIN_POINTS", 2)
    saved = [dict(record) for record in trust_records[2] if record["mask_type"] == "cartesian"]
    own = trust.fit_method_offsets([dict(record) for record in saved if record["method"] == "gan-drn"])
    # single-coil records only: no entry without a coil group, which would serve 8 coils too
    assert set(own) == {"gan-drn:cartesian:1c"}
    both = trust.fit_method_offsets([{**record, "coils": coils} for record in saved if record["method"] == "gan-drn"
                                     for coils in (1, 8)])
    assert set(both) == {"gan-drn:cartesian:1c", "gan-drn:cartesian:mc", "gan-drn:cartesian"}
    family = trust.fit_offsets([dict(record) for record in saved])
    assert own["gan-drn:cartesian:1c"]["offset_db"] == pytest.approx(
        float(np.median([r["psnr"] - r["est_psnr"] for r in _applied(saved, {"lines": {}}) if r["method"] == "gan-drn"])))
    merged = trust.merge({"lines": {}, "offsets": {**own, "cs:cartesian:1c": family["cs:cartesian:1c"]}},
                         {"lines": {}, "offsets": {}}, set(), {"cartesian"})
    assert set(merged["offsets"]) == set(own)  # the family's cartesian entry is refitted (here: away), the method's stay
    # from the command line, --offset-methods fits the methods named and no other
    calibration = trust_records[0] / "method-offsets.json"
    calibration.write_text(json.dumps({"lines": {}, "offsets": {}, "method_offsets_fitted_on": "cg-sense-records"}))
    assert trust.main(["--method-offsets", str(trust_records[1]), "--offset-methods", "gan-drn",
                       "--out", str(calibration)]) == 0
    written = json.loads(calibration.read_text())
    assert {key.split(":")[0] for key in written["offsets"]} == {"gan-drn"}
    # each method keeps where its own offsets came from
    assert written["method_offsets_fitted_on"] == {"cg-sense": "cg-sense-records", "gan-drn": trust_records[1].name}


def _applied(records, calibration):
    from benchmarks import trust

    records = [dict(record) for record in records]
    trust.apply(records, calibration)
    return records
