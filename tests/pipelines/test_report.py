"""The HTML report: its content, and how it renders in a real browser (headless Chromium)."""

import json
import re
import shutil
import subprocess

import pytest

from pipelines.cli.main import main

PROBE = """<script>window.__errors=[];window.addEventListener('error',e=>window.__errors.push(String(e.message||e.type)),true);
const _ce=console.error;console.error=(...a)=>{window.__errors.push(a.join(' '));_ce(...a)};
window.addEventListener('load',()=>{const imgs=[...document.images];const pre=document.createElement('pre');pre.id='probe';
pre.textContent=JSON.stringify({images:imgs.length,broken:imgs.filter(i=>!(i.complete&&i.naturalWidth>0)).map(i=>i.alt),
rows:document.querySelectorAll('table.summary tbody tr').length,errors:window.__errors,
width:window.innerWidth,scroll:document.documentElement.scrollWidth,
hidden:[...document.querySelectorAll('.row figure')].filter(f=>f.getBoundingClientRect().right>window.innerWidth+1).length,
figures:document.querySelectorAll('.row figure').length,shown:(document.body.textContent.match(/Showing [^.]*/)||[''])[0],plots:[...document.querySelectorAll('.plots svg')].map(svg=>{
const label=id=>{const g=svg.querySelector('g[id="matplotlib.axis_'+id+'"]');return g?[...g.children].filter(c=>c.id.startsWith('text_')).map(c=>c.textContent.trim()).join(' '):''};
const box=svg.getBoundingClientRect();const ticks=[...svg.querySelectorAll('g[id^="xtick_"] text, g[id^="ytick_"] text')].map(t=>t.getBoundingClientRect());
const texts=[...svg.querySelectorAll('text')].map(t=>t.getBoundingClientRect());
const overlap=ticks.some((a,i)=>ticks.some((b,j)=>j>i&&a.left<b.right-1&&b.left<a.right-1&&a.top<b.bottom-1&&b.top<a.bottom-1));
const outside=texts.filter(r=>r.left<box.left-1||r.right>box.right+1||r.top<box.top-1||r.bottom>box.bottom+1).length;
const legend=svg.querySelector('g[id^="legend_"]');const patch=svg.querySelector('g[id^="axes_"] > g[id^="patch_"]');
const lb=legend&&legend.getBoundingClientRect(),pb=patch&&patch.getBoundingClientRect();
const covers=!!(lb&&pb&&lb.left<pb.right-1&&pb.left<lb.right-1&&lb.top<pb.bottom-1&&pb.top<lb.bottom-1);
return {x:label(1),y:label(2),covers,title:(svg.querySelector('g[id^="axes_"] > g[id^="text_"]')||{textContent:''}).textContent.trim(),overlap,outside,width:box.width}})});
document.body.appendChild(pre);});</script>"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    for mask in ("10pct", "30pct"):
        assert main(["run", "--mask", mask, "--slices", "2", "--methods", "zero-filled,cs-l1,gan-drn",
                     "--out", str(folder / mask)]) == 0
    return folder


def test_run_writes_a_self_contained_report(runs):
    text = (runs / "10pct" / "report.html").read_text()
    for section in ("Summary", "Trust check", "Per-slice distributions", "Images", "Mask: 10pct cartesian", "Provenance"):
        assert f">{section}" in text
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)  # nothing to fetch
    assert text.count("<tbody><tr>") >= 1 and text.count("★") >= 4
    assert "simulated" in text and "icbm152" in text and "data-consistency residual" in text
    assert "Quality against sampling ratio" not in text  # one ratio only


def test_report_command_combines_runs(runs, capsys):
    out = runs / "combined.html"
    assert main(["report", str(runs / "10pct"), str(runs / "30pct"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Quality against sampling ratio" in text and "30pct cartesian" in text
    assert main(["report", str(runs / "10pct"), str(runs / "30pct")]) == 2  # several runs need --out
    assert "--out FILE" in capsys.readouterr().err
    parent = runs / "all.html"  # a folder holding run folders stands for all of them
    assert main(["report", str(runs), "--out", str(parent)]) == 0 and "30pct cartesian" in parent.read_text()
    empty = runs / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2  # neither a run nor a batch folder
    assert "not a recon run or batch folder" in capsys.readouterr().err


def test_report_in_headless_chromium(runs, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium'); the report was not opened in a browser")
    page = tmp_path / "probe.html"
    page.write_text((runs / "10pct" / "report.html").read_text().replace("<head>", "<head>" + PROBE, 1))
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([*common, "--window-size=1400,2000", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    probe = json.loads(re.search(r'<pre id="probe">([^<]*)</pre>', dom.stdout).group(1))
    assert probe["errors"] == [] and not re.search(r"CONSOLE\(\d+\)", dom.stderr)
    assert probe["images"] > 10 and probe["broken"] == []
    assert probe["rows"] == 3  # one row per method
    # at 1400 px every method's column is on the page: no horizontal scroll, no figure past the edge
    assert probe["width"] == 1400 and probe["scroll"] <= 1400 and probe["figures"] >= 4 and probe["hidden"] == 0, probe
    assert "Showing all 2 slices" in probe["shown"]
    assert len(probe["plots"]) >= 3  # PSNR and SSIM per slice, estimated against true PSNR
    for plot in probe["plots"]:  # every plot has labelled axes, no overlapping tick labels, no text outside it
        assert plot["x"] and plot["y"], plot
        assert not plot["overlap"] and plot["outside"] == 0 and not plot["covers"], plot  # no legend on the data
        assert 0 < plot["width"] < 1400
    shot = tmp_path / "report.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1400,2000", (runs / "10pct" / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_report_shows_the_estimate_the_guard_and_a_readable_provenance(runs):
    text = (runs / "10pct" / "report.html").read_text()
    assert "estimated PSNR (dB), no reference" in text and "rank by estimate" in text
    assert "Estimated against true PSNR" in text and "guard: estimably worse than" in text
    assert '<table class="provenance">' in text and "<pre>" not in text  # a table, not a JSON dump
    assert "sampled k-space point" in text and "not sampled" in text  # the mask's key
    assert text.count('class="row"') == 2  # one row of methods per slice
    assert "settings left at their defaults</summary>" in text  # defaults folded away
    assert "|recon - reference|" in text and "added in unmeasured k-space vs best CS" in text  # two labelled scales
    assert "estimated (no reference):" in text
    assert "guard wrote " in text and "the guard asks" in text  # per slice: which output, and why


def test_one_colour_per_method_and_runs_of_other_coils_never_joined(runs):
    from pipelines.reports import plots
    from pipelines.reports import run_report as report

    colours = [plots.method_colour(name) for name in ("zero-filled", "cs-l1", "cs-tv", "gan-drn", "csr-gan", "bart-tv")]
    assert len(set(colours)) == len(colours) and plots.method_colour("cs-tv") == colours[2]
    loaded = [report._load(runs / "10pct"), report._load(runs / "30pct")]
    assert "cs-l1 (" not in report._ratio_plot(loaded, "psnr", "PSNR (dB)")  # same acquisition: one line a method
    other = dict(loaded[1], config={**loaded[1]["config"], "config": {**loaded[1]["config"]["config"], "coils": 8}})
    mixed = report._ratio_plot([loaded[0], other], "psnr", "PSNR (dB)")
    assert mixed == ""  # one point per (method, coils): nothing to join across 1 and 8 coils
    svg = plots.strip_plot([("cs-tv", [1.0, 2.0]), ("gan-drn", [3.0])], "PSNR", "t", groups=[["a", "b"], ["a"]])
    assert plots.method_colour("cs-tv") in svg and plots.method_colour("gan-drn") in svg and ">file<" in svg


def test_an_estimate_is_shown_with_its_interval_and_with_the_folds_spread_only_without_one():
    """On 1-D masks the folds' spread is 0 by construction (each distance bin holds one
    fold's lines), so a report shows the calibrated interval, not "± 0.00"."""
    from pipelines.reports.page import estimate_text

    with_interval = {"estimated_psnr": 29.66, "estimated_psnr_spread": 0.0, "estimated_psnr_low": 25.31,
                     "estimated_psnr_high": 33.42}
    assert estimate_text(with_interval) == "29.66 [25.3, 33.4]"
    assert estimate_text({**with_interval, "estimated_psnr_low": None}) == "29.66 ± 0.00"
    assert estimate_text({**with_interval, "estimated_psnr_low": float("nan"), "estimated_psnr_spread": 0.4}) == "29.66 ± 0.40"
