"""The report: figures drawn from the data, escaped self-contained HTML, Markdown, CSV/Parquet
exports, `convbench report` over several directories, and the page in a real browser."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chromium import find_chromium, open_page
from matplotlib.figure import Figure

from convbench.cli import EXIT_OK, EXIT_USAGE, main
from convbench.problems.descriptor import parse
from convbench.report import build_report
from convbench.report.exports import CSV_FILE, PARQUET_FILE, export_frame, read_export
from convbench.report.figures import FIGURES, Style, draw
from convbench.report.figures.algorithm_map import algorithm_map, map_cells
from convbench.report.figures.cases import time_per_case, workspace_per_algorithm
from convbench.report.figures.roofline import accuracy_points, pareto_mask, roofline
from convbench.report.figures.speedup import speedup_grid
from convbench.report.frame import SuiteView, report_frame, suite_views
from convbench.report.load import SUSPECT_MARGIN, suspicion
from convbench.report.summary import metadata_rows
from convbench.run.rundir import COLUMNS, META_FILE, RESULTS_FILE, load_runs, read_results

EVIL = "<script>alert(1)</script>"
EVIL_REASON = "<img src=x onerror=alert(2)>"
PEAKS = {"sgemm_gflops": 150.0, "copy_gbytes_per_s": 20.0}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`convbench run smoke` at a tiny budget: results, meta.json and the report it writes."""
    out = tmp_path_factory.mktemp("run")
    code = main(["run", "smoke", "--out", str(out), "--budget", "0.005", "--no-progress"])
    assert code == EXIT_OK
    return out / "smoke"


def copy_run(source: Path, target: Path, machine: dict[str, float] | None = None) -> Path:
    """A copy of a result directory, with the machine's peaks set (or removed)."""
    target.mkdir(parents=True)
    shutil.copy(source / RESULTS_FILE, target / RESULTS_FILE)
    meta = json.loads((source / META_FILE).read_text())
    meta.pop("machine", None)
    if machine:
        meta["machine"] = machine
    (target / META_FILE).write_text(json.dumps(meta))
    return target


@pytest.fixture(scope="module")
def evil_run(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke results with hostile text: a case named like a script, an HTML reason on a
    failed row, a pipe in a name for Markdown, and one row flagged noisy."""
    directory = copy_run(smoke_run, tmp_path_factory.mktemp("evil") / "smoke", PEAKS)
    frame = read_results(directory)
    frame.loc[frame["case"] == "tiny_3x3", "case"] = EVIL
    frame.loc[frame["case"] == "tiny_1x1", "case"] = "one|pipe"
    failed = frame.index[frame["algo"] == "direct"][0]
    frame.loc[failed, ["status", "reason", "time_median_s"]] = ["error", EVIL_REASON, np.nan]
    frame["noisy"] = frame["noisy"].astype(object)
    frame.loc[frame.index[frame["status"] == "ok"][0], "noisy"] = True
    frame.to_csv(directory / RESULTS_FILE, index=False)
    return directory


@pytest.fixture(scope="module")
def evil_report(evil_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report of the hostile results (index.html; figures and exports beside it)."""
    return build_report([evil_run], tmp_path_factory.mktemp("evil_report"))


def view_of(*directories: Path) -> tuple[SuiteView, Style]:
    runs = load_runs(list(directories))
    frame = report_frame(runs)
    return suite_views(runs, frame)[0], Style.for_frame(frame)


def drawn(kind: str, view: SuiteView, style: Style) -> Figure:
    (figure_kind,) = [k for k in FIGURES if k.name == kind]
    figure = draw(figure_kind, view, style)
    assert figure is not None
    return figure


# --- the run writes its report ---------------------------------------------------------------

def test_run_writes_the_report_beside_its_results(smoke_run: Path) -> None:
    page = (smoke_run / "index.html").read_text()
    pngs = sorted(smoke_run.glob("*.png"))
    names = {p.name for p in pngs}
    for kind in ("time", "speedup", "roofline", "accuracy", "workspace"):
        assert f"smoke-{kind}.png" in names
    assert "smoke-algorithm_map.png" not in names  # the smoke cases are no kernel x input grid
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert base64.b64encode(data).decode() in page  # embedded, not linked
    assert page.count("data:image/png;base64,") == len(pngs)
    assert (smoke_run / CSV_FILE).exists() and (smoke_run / PARQUET_FILE).exists()


# --- figures drawn from the data -------------------------------------------------------------

def test_time_figure_has_one_series_per_algorithm_with_its_times(smoke_run: Path) -> None:
    view, style = view_of(smoke_run)
    ax = time_per_case(view, style).axes[0]
    ok = view.ok
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] \
        == list(dict.fromkeys(ok["series"]))
    for line in ax.get_lines():
        if line.get_label() in set(ok["series"]):
            expected = ok[ok["series"] == line.get_label()]["time_median_s"]
            np.testing.assert_allclose(line.get_xdata(), expected)
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(dict.fromkeys(view.frame["case"]))
    assert ax.get_legend() is not None and ax.get_title() and ax.get_xlabel()


def test_speedup_heatmap_is_the_speedups_centred_on_one(smoke_run: Path) -> None:
    view, style = view_of(smoke_run)
    ax = drawn("speedup", view, style).axes[0]
    image = ax.get_images()[0]
    speedups, _ = speedup_grid(view)
    assert "torch" not in speedups.columns  # the reference against itself says nothing
    np.testing.assert_allclose(np.ma.filled(image.get_array(), np.nan), speedups.to_numpy())
    for (case, algo), value in speedups.stack().dropna().items():
        rows = view.frame[(view.frame["case"] == case) & (view.frame["algo"] == algo)]
        ref = view.frame[(view.frame["case"] == case) & (view.frame["algo"] == "torch")]
        assert value == pytest.approx(ref["time_median_s"].iloc[0]
                                      / rows["time_median_s"].iloc[0])
    assert image.norm.vmin * image.norm.vmax == pytest.approx(1.0)  # 1x is the centre
    assert image.get_cmap().name.startswith("RdBu")
    assert [t.get_text() for t in ax.get_xticklabels()] == list(speedups.columns)


def test_roofline_points_are_intensity_and_gflops_under_the_peaks(
        smoke_run: Path, tmp_path: Path) -> None:
    view, style = view_of(copy_run(smoke_run, tmp_path / "smoke", PEAKS))
    ax = roofline(view, style).axes[0]
    points = {line.get_label(): line for line in ax.get_lines() if line.get_gid() is None}
    for name, rows in view.ok.groupby("series"):
        p = [parse(d) for d in rows["descriptor"]]
        np.testing.assert_allclose(points[name].get_xdata(), [q.intensity for q in p])
        np.testing.assert_allclose(points[name].get_ydata(), rows["gflops"])
    (sgemm,) = [line for line in ax.get_lines() if line.get_gid() == "sgemm"]
    (bandwidth,) = [line for line in ax.get_lines() if line.get_gid() == "bandwidth"]
    assert set(sgemm.get_ydata()) == {150.0}
    np.testing.assert_allclose(bandwidth.get_ydata(), 20.0 * np.asarray(bandwidth.get_xdata()))
    assert max(bandwidth.get_ydata()) == pytest.approx(150.0)  # the two meet at the ridge
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_roofline_without_measured_peaks_says_so(smoke_run: Path, tmp_path: Path) -> None:
    view, style = view_of(copy_run(smoke_run, tmp_path / "smoke", machine=None))
    ax = roofline(view, style).axes[0]
    assert not [line for line in ax.get_lines() if line.get_gid() in ("sgemm", "bandwidth")]
    assert any("not measured" in t.get_text() for t in ax.texts)


LOADED = PEAKS | {"measured_at": "2026-11-30T09:00:00+00:00", "other_load": 0.63,
                  "expires_at": "2026-12-30T09:00:00+00:00", "under_load": True,
                  "forced": True}


def test_a_peak_measured_under_load_says_so_everywhere(smoke_run: Path, tmp_path: Path) -> None:
    run = copy_run(smoke_run, tmp_path / "smoke", LOADED)
    said = "SGEMM 150 GFLOP/s, copy 20 GB/s (measured 2026-11-30 under load 63% (forced))"
    assert dict(metadata_rows(load_runs([run])))["machine peaks"] == [said]
    page = build_report([run], tmp_path / "html").read_text()
    assert f"<li>smoke: {said}</li>" in page
    assert said in build_report([run], tmp_path / "md", "md").read_text()
    view, style = view_of(run)
    (sgemm,) = [line for line in roofline(view, style).axes[0].get_lines()
                if line.get_gid() == "sgemm"]
    assert sgemm.get_label().endswith("[measured 2026-11-30 under load 63% (forced)]")
    assert view.frame["pct_peak"].notna().any()  # not beaten: the share is still shown


def test_a_result_above_the_sgemm_peak_makes_it_suspect(smoke_run: Path, tmp_path: Path) -> None:
    """The reproduced case: a peak measured under load sits below what im2col achieves."""
    ok = read_results(smoke_run).query("status == 'ok' and algo == 'im2col'")
    peak = float(ok["gflops"].max()) / 1.9  # im2col at 190% of it
    run = copy_run(smoke_run, tmp_path / "smoke", {"sgemm_gflops": peak,
                                                   "copy_gbytes_per_s": 20.0})
    view, style = view_of(run)
    (peaks,) = view.peaks.values()
    assert peaks is not None and peaks.suspect and "% of the SGEMM peak" in peaks.suspect
    assert view.frame["pct_peak"].isna().all()  # no "190%"
    (sgemm,) = [line for line in roofline(view, style).axes[0].get_lines()
                if line.get_gid() == "sgemm"]
    assert sgemm.get_label().endswith("[suspect]")
    page = build_report([run], tmp_path / "html").read_text()
    assert "suspect: " in page and "measure the peak again on a quiet machine" in page


def test_only_results_that_do_every_multiply_add_can_make_a_peak_suspect() -> None:
    def rows(*entries: tuple[str, str, str, float]) -> pd.DataFrame:
        return pd.DataFrame([{"status": "ok", "dtype": "float32", "op": "conv2d", "case": "c",
                              "algo": a, "ran_algo": ran, "backend": b, "gflops": g}
                             for a, ran, b, g in entries])

    peak, above = 100.0, 100.0 * (1 + SUSPECT_MARGIN) + 1
    assert suspicion(rows(("winograd_f4x3", "winograd_f4x3", "numpy", 4 * peak),  # fewer products
                          ("auto", "fft", "numpy", 3 * peak),  # auto ran a transform
                          ("im2col", "im2col", "torch-cuda", 50 * peak),  # another device
                          ("plugin_algo", "", "numpy", 9 * peak),  # unknown here
                          ("im2col", "im2col", "numpy", peak * (1 + SUSPECT_MARGIN))), peak) is None
    found = suspicion(rows(("winograd_f4x3", "winograd_f4x3", "numpy", 4 * peak),
                           ("direct", "", "numpy", above)), peak)
    assert found is not None and found.startswith(f"direct reached {above:.4g} GFLOP/s on c, 111%")


def test_pareto_mask() -> None:
    times = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    errors = np.array([0.5, 0.2, 0.1, 0.3, 0.6])
    # 1.0/0.6 is beaten by 1.0/0.5; 2.0/0.3 by 2.0/0.2; the rest trade time for error
    assert pareto_mask(times, errors).tolist() == [True, True, True, False, False]


def test_accuracy_figure_marks_each_cases_pareto_front(smoke_run: Path) -> None:
    view, style = view_of(smoke_run)
    ax = drawn("accuracy", view, style).axes[0]
    points = accuracy_points(view)
    assert len(ax.collections) == points["series"].nunique()
    for collection in ax.collections:
        rows = points[points["series"] == collection.get_label()]
        np.testing.assert_allclose(collection.get_offsets(),
                                   rows[["relative_time", "error_share"]].to_numpy())
        filled = collection.get_facecolors()[:, 3] > 0
        assert filled.tolist() == rows["pareto"].tolist()
    fronts = [line for line in ax.get_lines() if line.get_gid() == "pareto"]
    assert len(fronts) == points["case_label"].nunique()
    assert points.groupby("case_label")["pareto"].any().all()  # the fastest is always on it
    fastest = view.ok.groupby("case_label")["time_median_s"].min()
    np.testing.assert_allclose(points["relative_time"],
                               points["time_median_s"] / points["case_label"].map(fastest))


def test_workspace_figure_shows_measured_and_model(smoke_run: Path) -> None:
    view, style = view_of(smoke_run)
    figure = workspace_per_algorithm(view, style)
    ax = figure.axes[0]
    measured = {line.get_label(): line for line in ax.get_lines() if line.get_gid() == "measured"}
    ok = view.ok.dropna(subset=["peak_mem_bytes"])
    assert set(measured) == set(ok["series"]) and "torch" not in measured
    for name, rows in ok.groupby("series"):
        np.testing.assert_allclose(measured[name].get_xdata(), rows["peak_mem_bytes"])
    models = [line for line in ax.get_lines() if line.get_gid() == "model"]
    assert sum(len(line.get_xdata()) for line in models) == \
        view.ok["workspace_model_bytes"].notna().sum()
    assert "torch" in figure.get_supxlabel()  # left out, and said why


def grid_results(directory: Path) -> tuple[Path, dict[tuple[int, int], str]]:
    """A made-up sweep: kernels 1, 3, 5 x inputs 8, 16; direct wins the large kernels."""
    rows, expected = [], {}
    for r in (1, 3, 5):
        for h in (8, 16):
            times = {"im2col": 1.0, "direct": 2.0 if r < 5 else 0.5, "torch": 1.5}
            expected[(r, h)] = min(times, key=times.__getitem__)
            for algo, t in times.items():
                rows.append({c: None for c in COLUMNS} | {
                    "suite": "grid", "case": f"r{r}_h{h}", "descriptor": f"c4h{h}k4r{r}p{r // 2}",
                    "op": "conv2d", "algo": algo, "backend": "numpy", "dtype": "float32",
                    "status": "ok", "reason": "", "time_median_s": t * 1e-3, "flops": 1000,
                    "gflops": 1e-3 / t, "noisy": False, "exact": False})
    directory.mkdir(parents=True)
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(directory / RESULTS_FILE, index=False)
    return directory, expected


def test_algorithm_map_colours_each_cell_by_its_fastest_algorithm(tmp_path: Path) -> None:
    directory, expected = grid_results(tmp_path / "grid")
    view, style = view_of(directory)
    figure = algorithm_map(view, style)
    ax = figure.axes[0]
    algos = list(dict.fromkeys(view.frame["algo_label"]))
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (2, 3)  # input sizes up, kernel sizes across
    for (r, h), winner in expected.items():
        assert algos[int(grid[(8, 16).index(h), (1, 3, 5).index(r)])] == winner
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1×1", "3×3", "5×5"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["8×8", "16×16"]
    cells = map_cells(view.frame)
    assert cells.loc[cells["case_label"] == "r5_h8", "margin"].item() == pytest.approx(2.0)
    assert {t.get_text() for t in figure.legends[0].get_texts()} == {"im2col", "direct"}


def test_algorithm_map_has_a_panel_per_run(tmp_path: Path) -> None:
    first, _ = grid_results(tmp_path / "a" / "grid")
    second, _ = grid_results(tmp_path / "b" / "grid")
    figure = algorithm_map(*view_of(first, second))
    panels = [ax for ax in figure.axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == ["a/grid", "b/grid"]


def test_algorithm_map_needs_a_grid(smoke_run: Path) -> None:
    view, style = view_of(smoke_run)
    assert algorithm_map(view, style) is None


# --- HTML, Markdown, exports -----------------------------------------------------------------

def test_user_text_is_escaped_in_the_html(evil_report: Path) -> None:
    page = evil_report.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page and "<img src=x" not in page


def test_html_has_metadata_summary_and_full_table(evil_run: Path, evil_report: Path) -> None:
    page = evil_report.read_text()
    meta = json.loads((evil_run / META_FILE).read_text())
    blas = next(lib for lib in meta["blas"] if lib["user_api"] == "blas")
    for text in ("Run metadata", "SGEMM 150 GFLOP/s", "copy 20 GB/s", blas["architecture"],
                 meta["convbench"]["commit"][:12], meta["versions"]["numpy"], "Fastest per case",
                 "Geometric-mean speedup vs torch", "All results", "% SGEMM peak", "~ noisy"):
        assert text in page, text
    frame = read_results(evil_run)
    assert page.count('<span class="status status-') >= len(frame)
    assert "Failures" in page and 'class="failed"' in page
    assert "<style>" in page and "<link" not in page  # inline CSS, nothing fetched


def test_markdown_summary(evil_run: Path, tmp_path: Path) -> None:
    page = build_report([evil_run], tmp_path, "md")
    text = page.read_text()
    assert page.name == "report.md" and not (tmp_path / "index.html").exists()
    assert "## smoke" in text and "| case | fastest |" in text
    assert "`one\\|pipe`" in text  # a pipe would otherwise split the table cell
    assert f"`{EVIL}`" in text  # inside a code span: shown, never run
    assert "\\<img src=x onerror=alert(2)\\>" in text
    for table in re.findall(r"(?:^\|.*\n)+", text, flags=re.MULTILINE):  # rows as wide as header
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(widths) == 1, table


def test_exports_round_trip(evil_run: Path, evil_report: Path) -> None:
    expected = export_frame(report_frame(load_runs([evil_run])))
    for name in (CSV_FILE, PARQUET_FILE):
        pd.testing.assert_frame_equal(read_export(evil_report.parent / name), expected)
    assert {"run", "case_label", "speedup", "intensity", "pct_peak"} <= set(expected.columns)
    assert expected["pct_peak"].notna().any()  # peaks known: GFLOP/s as a share of SGEMM


def test_direction_column_goes_into_the_labels(smoke_run: Path, tmp_path: Path) -> None:
    directory = copy_run(smoke_run, tmp_path / "smoke")
    frame = read_results(directory)
    both = pd.concat([frame.assign(direction="fwd"), frame.assign(direction="bwd_data")])
    both.to_csv(directory / RESULTS_FILE, index=False)
    view, style = view_of(directory)
    assert "tiny_3x3 [bwd_data]" in set(view.frame["case_label"])
    assert view.frame["speedup"].notna().sum() == 2 * frame["status"].eq("ok").sum()
    ax = time_per_case(view, style).axes[0]
    assert len(ax.get_yticklabels()) == 2 * frame["case"].nunique()


# --- convbench report ------------------------------------------------------------------------

def test_report_command_puts_two_runs_side_by_side(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = copy_run(smoke_run, tmp_path / "machine_a" / "smoke", PEAKS)
    second = copy_run(smoke_run, tmp_path / "machine_b" / "smoke", machine=None)
    out = tmp_path / "both"
    assert main(["report", str(first), str(second), "--out", str(out)]) == EXIT_OK
    assert str(out / "index.html") in capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert "machine_a/smoke" in page and "machine_b/smoke" in page
    assert "SGEMM 150 GFLOP/s" in page and "not measured" in page
    view, style = view_of(first, second)
    assert "im2col · machine_a/smoke" in set(view.frame["series"])
    ax = time_per_case(view, style).axes[0]
    assert len([line for line in ax.get_lines() if not line.get_label().startswith("_")]) == \
        2 * view.ok[view.ok["run"] == "machine_a/smoke"]["algo"].nunique()
    exported = read_export(out / CSV_FILE)
    assert set(exported["run"]) == {"machine_a/smoke", "machine_b/smoke"}


def test_report_command_markdown(smoke_run: Path, tmp_path: Path) -> None:
    assert main(["report", str(smoke_run.parent), "--out", str(tmp_path), "--format", "md"]) \
        == EXIT_OK
    assert "| `tiny_3x3` |" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage"])
def test_report_command_refuses_unreadable_directories(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "results"
    if kind != "missing":
        directory.mkdir()
    if kind == "garbage":
        (directory / RESULTS_FILE).write_bytes(b"\xff\xfe not a csv \x00\x01")
    assert main(["report", str(directory), "--out", str(tmp_path / "out")]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert str(directory) in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


# --- in a real browser -----------------------------------------------------------------------

def test_report_renders_in_headless_chromium(evil_report: Path, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (chromium, chromium-browser, google-chrome) on PATH; "
                    ".ci/run installs Debian's chromium package")
    seen = open_page(binary, evil_report, tmp_path / "profile")
    assert seen.url == evil_report.resolve().as_uri() and seen.title.startswith("convbench report")
    assert seen.errors == []
    assert seen.scripts == 0
    assert EVIL in seen.text and EVIL_REASON in seen.text  # shown as text, never run
    assert seen.headings[:2] == ["Run metadata", "smoke"] and seen.height > 2000
    pngs = list(evil_report.parent.glob("*.png"))
    assert len(seen.images) == len(pngs) >= 5
    assert all(image["complete"] and image["width"] > 0 for image in seen.images), seen.images


def test_browser_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The control: a missing image and a script error are reported, so a pass means something."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (chromium, chromium-browser, google-chrome) on PATH")
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><title>t</title><img src="missing.png">'
                    "<script>null.x</script>")
    seen = open_page(binary, page, tmp_path / "profile")
    assert seen.images[0]["width"] == 0
    assert any("missing.png" in e for e in seen.errors)
    assert any("TypeError" in e for e in seen.errors)
