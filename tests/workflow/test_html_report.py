"""`snakemake --report` builds a self-contained HTML report whose pages and figures
render in a real browser (headless Chromium, with every host name unresolvable).

The run behind it is the report config (tests/workflow/tiny.py): the tiny classifier grid
plus FedDifRC on diffusion features of a tiny federated DDPM (FULL and UDEC) and paper
links for the accuracy and the FID table, so every kind of report item is there."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .tiny import check, finished_report_run, snakemake

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("report_driver.js")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    """A Chromium executable; installs Debian's `chromium` with apt-get when none is there."""
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no Chromium on PATH and no root apt-get to install Debian's `chromium`")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        ):
            done = subprocess.run(
                cmd, capture_output=True, text=True, env=apt_env, timeout=600, check=False
            )
            if done.returncode != 0:
                pytest.skip(
                    f"could not install chromium: `{' '.join(cmd)}` failed: {done.stderr[-500:]}"
                )
    except subprocess.TimeoutExpired:
        pytest.skip("could not install chromium: apt-get timed out")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but no `chromium` executable is on PATH")
    return found


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        # nothing may come from the network: the report must be self-contained
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=10000",
        "--window-size=1400,1000",
        *args,
    ]
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)


def _data_uri_bytes(uri: str) -> bytes:
    head, _, payload = uri.partition(",")
    return base64.b64decode(payload) if head.endswith(";base64") else payload.encode()


def _screenshot(browser: str, profile: Path, url: str, png: Path) -> Image.Image:
    out = _chromium(browser, profile, f"--screenshot={png}", url)
    assert png.is_file(), f"no screenshot from chromium:\n{out.stderr[-3000:]}"
    print(f"screenshot: {png}")
    image = Image.open(png)
    image.load()
    return image


def _assert_nontrivial(image: Image.Image) -> None:
    assert image.size == (1400, 1000)
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "screenshot is (nearly) blank"


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_report_run(tmp_path_factory)


@pytest.fixture(scope="module")
def report_html(report_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("html_report")
    report = out_dir / "report.html"
    check(
        snakemake(report_run, f"--configfile={report_run / 'report.yaml'}", "--report", str(report))
    )
    return report


def _one(paths: list[str], pattern: str) -> str:
    hits = [p for p in paths if re.fullmatch(pattern, p)]
    assert len(hits) == 1, (pattern, paths)
    return hits[0]


def test_report_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text(encoding="utf-8")
    assert report_html.stat().st_size > 100_000
    # no script, stylesheet or image is fetched from anywhere
    assert not re.search(r"<script[^>]+\bsrc=", text)
    assert not re.search(r"<link[^>]+\bhref=[\"']https?:", text)
    assert not re.search(r"\bsrc=[\"']https?:", text)


def test_report_pages_and_figures_render_in_chromium(report_html: Path, tmp_path: Path) -> None:
    browser = _browser()
    print(f"report: {report_html}")
    check_page = tmp_path / "report_check.html"
    page = report_html.read_text(encoding="utf-8")
    end = page.rfind("</body>")
    check_page.write_text(
        page[:end] + "<script>\n" + DRIVER.read_text() + "\n</script>\n" + page[end:],
        encoding="utf-8",
    )

    # 1. Click through every category and result; the driver reports what rendered.
    out = _chromium(browser, tmp_path / "profile", "--dump-dom", check_page.as_uri())
    found = re.findall(
        r'<pre id="feddiff-check" style="display: none;">(.*?)</pre>', out.stdout, re.DOTALL
    )
    assert found, f"the report did not render (no driver output):\n{out.stderr[-3000:]}"
    seen: dict[str, Any] = json.loads(html.unescape(found[-1]))
    assert "fatal" not in seen, seen.get("fatal")
    assert seen["errors"] == []
    categories = seen["categories"]
    assert set(categories) == {
        "Accuracy",
        "Partitions",
        "Paper comparison",
        "FedDiffuse",
        "Diffusion features",
    }
    assert {"Workflow", "Statistics", *categories} <= set(seen["menu"])
    assert "reproducible Snakemake DAG" in seen["workflow_description"]
    assert "Experiments in this run: tiny" in seen["workflow_description"]
    assert (
        "Paper comparison: the numbers the papers report beside ours"
        in seen["workflow_description"]
    )
    assert "tiny_acc, tiny_fid" in seen["workflow_description"]
    assert "System Message" not in seen["workflow_description"]  # the RST rendered cleanly

    assert sorted(categories["Accuracy"]["Tables"]["paths"]) == [
        "results/tables/accuracy.csv",
        "results/tables/accuracy.html",
    ]
    assert categories["Accuracy"]["Curves"]["paths"] == [
        "results/figures/accuracy_vs_round_tiny.png"
    ]
    assert categories["Accuracy"]["Curves"]["rows"] == [["tiny"]]
    heatmaps = categories["Partitions"]["digits"]
    assert heatmaps["header"][:2] == ["partition", "seed"]
    assert sorted(heatmaps["rows"]) == [["dir", "0"], ["iid", "0"]]
    paper = categories["Paper comparison"]["Tables"]
    assert sorted(paper["paths"]) == [
        "results/tables/paper_tiny_acc.html",
        "results/tables/paper_tiny_fid.html",
    ]
    assert sorted(paper["rows"]) == [["tiny_acc"], ["tiny_fid"]]
    assert set(categories["FedDiffuse"]) == {"FID and communication", "Samples"}
    assert sorted(categories["FedDiffuse"]["FID and communication"]["paths"]) == [
        "results/figures/diffusion_fid_vs_params.png",
        "results/tables/diffusion_fid.html",
    ]
    samples = categories["FedDiffuse"]["Samples"]
    assert samples["header"][:4] == ["mode", "dataset", "partition", "seed"]
    assert sorted(samples["rows"]) == [
        ["full", "digits", "dir", "0"],
        ["udec", "digits", "dir", "0"],
    ]
    sample_full = _one(
        samples["paths"],
        r"results/figures/diffusion_samples/digits/dirichlet_alpha0\.5_num_clients5/"
        r"full/ddpm-R2-E1-[0-9a-f]{8}/seed0\.png",
    )
    sample_udec = sample_full.replace("/full/", "/udec/")
    assert sorted(samples["paths"]) == sorted([sample_full, sample_udec])
    features = categories["Diffusion features"]["digits"]
    assert features["header"][:3] == ["features", "backbone", "view"]
    assert sorted(features["rows"]) == [
        ["ddpm", "ddpm", "K-means table"],
        ["ddpm", "ddpm", "PCA"],
        ["ddpm", "ddpm", "t-SNE"],
    ]
    ftag = r"results/features/digits/ddpm/ddpm-t100-b0\.1-d8\.4-[0-9a-f]{8}"
    tsne = _one(features["paths"], ftag + r"/tsne\.png")
    pca, kmeans = tsne.replace("tsne.png", "pca.png"), tsne.replace("tsne.png", "kmeans.html")
    assert sorted(features["paths"]) == sorted([tsne, pca, kmeans])

    views = {v["path"]: v for v in seen["views"]}
    assert len(views) == 14
    captions = {
        "results/tables/accuracy.html": "of every method (rows) on every partition (columns)",
        "results/tables/accuracy.csv": "The accuracy table in tidy form",
        "results/figures/accuracy_vs_round_tiny.png": "Test accuracy (%) per federated round",
        "results/partitions/digits/iid_num_clients4/seed0/heatmap.png": (
            "under partition iid of dataset digits, seed 0"
        ),
        "results/partitions/digits/dirichlet_alpha0.5_num_clients5/seed0/heatmap.png": (
            "under partition dir of dataset digits, seed 0"
        ),
        "results/tables/paper_tiny_acc.html": "ours last-2 mean − paper (positive: ours higher)",
        "results/tables/paper_tiny_fid.html": "given only where ours is Inception FID",
        "results/tables/diffusion_fid.html": "FedDiffuse: one row per partition and mode",
        "results/figures/diffusion_fid_vs_params.png": "against the parameters sent",
        sample_full: "mode full, seed 0, after the last round",
        sample_udec: "mode udec, seed 0, after the last round",
        tsne: "t-SNE of the cached diffusion representations",
        pca: "cumulative explained variance of the PCA",
        kmeans: "K-means with K = number of classes",
    }
    for path, phrase in captions.items():
        assert "Description" in views[path]["caption"] and phrase in views[path]["caption"], (
            path,
            views[path],
        )
    assert (
        "linked from tiny in the config" in views["results/tables/paper_tiny_acc.html"]["caption"]
    )
    assert (
        "linked from diffusion in the config"
        in views["results/tables/paper_tiny_fid.html"]["caption"]
    )
    for path, view in views.items():
        if path.endswith(".png"):
            assert (
                view["shown"] == "img"
                and view["natural_width"] > 300
                and view["natural_height"] > 200
            ), view
    table = views["results/tables/accuracy.html"]
    assert table["shown"] == "iframe"
    table_page = _data_uri_bytes(table["src"]).decode()
    assert "<table" in table_page and "fedavg" in table_page and "iid final" in table_page
    csv = views["results/tables/accuracy.csv"]
    assert csv["shown"] == "download" and csv["download_href_prefix"].startswith("data:text/csv")
    # the paper comparison: the paper's number beside ours, the difference, "–" where none
    acc_page = _data_uri_bytes(views["results/tables/paper_tiny_acc.html"]["src"]).decode()
    assert "Paper numbers from: <em>Test paper (2025), arXiv:0000.00000v1, Table 1" in acc_page
    assert re.search(
        r"<td[^>]*>fedavg</td>\s*<td[^>]*>iid</td>\s*(<td[^>]*>[0-9.± ]+</td>\s*){3}"
        r"<td[^>]*>90\.00</td>\s*(<td[^>]*>[+-][0-9]+\.[0-9]{2}</td>\s*){2}",
        acc_page,
    ), acc_page
    assert re.search(
        r"<td[^>]*>feddifrc</td>\s*<td[^>]*>dir</td>\s*(<td[^>]*>[0-9.± ]+</td>\s*){3}"
        r"<td[^>]*>–</td>\s*<td[^>]*>–</td>\s*<td[^>]*>–</td>",
        acc_page,
    ), acc_page
    assert "Δ (ours best round − paper)" in acc_page and "Δ (ours last-2 mean − paper)" in acc_page
    fid_page = _data_uri_bytes(views["results/tables/paper_tiny_fid.html"]["src"]).decode()
    assert (
        "ours FD (classifier features)" in fid_page
        and "12.50" in fid_page
        and "Δ is left out" in fid_page
    )
    for path in ("results/tables/diffusion_fid.html", kmeans):
        assert (
            views[path]["shown"] == "iframe"
            and "<table" in _data_uri_bytes(views[path]["src"]).decode()
        )

    # 2. Screenshots: the landing page, the rendered tables, the curves, a heatmap, samples, t-SNE.
    shots = {
        "landing": report_html.as_uri(),
        "table": check_page.as_uri() + "?show=results/tables/accuracy.html",
        "curves": check_page.as_uri() + "?show=results/figures/accuracy_vs_round_tiny.png",
        "heatmap": check_page.as_uri()
        + "?show=results/partitions/digits/iid_num_clients4/seed0/heatmap.png",
        "paper": check_page.as_uri() + "?show=results/tables/paper_tiny_acc.html",
        "samples": check_page.as_uri() + "?show=" + sample_udec,
        "tsne": check_page.as_uri() + "?show=" + tsne,
    }
    images = {}
    for name, url in shots.items():
        images[name] = _screenshot(
            browser, tmp_path / "profile", url, tmp_path / f"report_{name}.png"
        )
        _assert_nontrivial(images[name])
    # each view shows something else
    pixels = {name: image.convert("RGB").tobytes() for name, image in images.items()}
    assert len(set(pixels.values())) == len(pixels)
