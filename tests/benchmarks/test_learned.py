from benchmarks.learned import check, markdown


def _row(psnr, ssim, seconds):
    return {"psnr": psnr, "psnr_std": 0.1, "ssim": ssim, "ssim_std": 0.01, "nmse": 0.01, "seconds": seconds, "ratio": 0.1}


def test_targets_are_checked_against_the_best_cs_method():
    results = {
        "10pct": {"cs-tv": _row(24.0, 0.79, 1.9), "bart-tv": _row(23.0, 0.80, 0.6), "gan-drn": _row(27.1, 0.84, 0.25)},
        "50pct": {"cs-tv": _row(45.4, 0.98, 1.5), "gan-drn": _row(45.8, 0.99, 0.35)},
    }
    checks = {item["target"].split(" (")[0]: item for item in check(results, ["gan-drn"])}
    assert checks["10pct PSNR >= best CS"]["met"]  # 27.1 >= 24.0 + 3
    assert not checks["10pct SSIM >= best CS"]["met"]  # best CS SSIM is bart-tv's 0.80; 0.84 < 0.85
    assert not checks["50pct PSNR >= best CS"]["met"]  # 45.8 < 45.9
    assert checks["10pct speed >= 4x best CS"]["measured"] == 1.9 / 0.25
    assert not checks["seconds per 256x256 slice <= 0.3"]["met"]  # the slowest mask counts
    table = markdown(results, check(results, ["gan-drn"]))
    assert "| gan-drn | 27.10" in table and "| NO |" in table


def test_every_model_is_held_to_the_others_and_covers_the_unseen_ratio():
    results = {
        "10pct": {"cs-tv": _row(24.0, 0.79, 1.9), "gan-drn": _row(27.2, 0.87, 0.25), "csr-gan": _row(27.05, 0.86, 0.25)},
        "25pct": {"cs-tv": _row(33.0, 0.95, 1.9), "gan-drn": _row(33.1, 0.95, 0.25), "csr-gan": _row(33.5, 0.96, 0.25)},
        "50pct": {"cs-tv": _row(45.4, 0.98, 1.5), "gan-drn": _row(47.0, 0.99, 0.25), "csr-gan": _row(46.0, 0.99, 0.25)},
    }
    checks = {(item["model"], item["target"].split(" (")[0]): item["met"] for item in check(results, ["gan-drn", "csr-gan"])}
    within = "PSNR within 0.5 dB of the best other learned model"
    assert checks[("csr-gan", f"10pct {within}")] and not checks[("csr-gan", f"50pct {within}")]
    assert checks[("gan-drn", f"10pct {within}")] and checks[("gan-drn", f"50pct {within}")]
    assert checks[("csr-gan", "25pct PSNR above every CS method")] and checks[("csr-gan", "10pct PSNR >= best CS")]
