"""The Dagster UI in a real browser: the ``oos_reports`` partition page shows the verdict and the equity chart.

The graph is materialized by the CLI's ``run_graph`` into a temp lake and a temp ``DAGSTER_HOME``; then the real
``dagster dev`` serves it and chromium (Playwright) opens
``/assets/oos_reports?view=partitions&partition=<instrument>|<strategy>``, where the latest materialization's
metadata is a table: the ``verdict`` row holds text, the ``equity_chart`` row a ``[Show Markdown]`` link whose
dialog renders the inlined PNG. The verdict is checked against the report row in the lake, not the UI's own data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

import polars as pl
import pytest
import yaml

from tests.support import ROOT
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.dagster_dev import dagster_dev, tail

BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(300)]

INSTRUMENT = {"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "4h"}
STRATEGY = "ema_cross"
#: Block the instrument's first month afterwards: a duplicated bar arrives in its raw file and the month is
#: re-validated (that run must fail), as a source glitch would.
BLOCK_MONTH = (
    "import sys, polars as pl, dagster as dg; from pathlib import Path; from assets import build_definitions; "
    "from assets.partitions import bars_key; from maestro_pipeline.config import load_config; "
    "from maestro_pipeline.lake import Lake; "
    "cfg = load_config(Path(sys.argv[1])); inst = cfg.instrument_objs[0]; lk = Lake(cfg.lake_path()); "
    "month = sys.argv[2]; part = Lake.month_partition(inst, month); raw = lk.read_file('raw_candles', part); "
    "lk.write_table(pl.concat([raw, raw.slice(3, 1)]).sort('timestamp'), 'raw_candles', part); "
    "defs = build_definitions(cfg); assets = list(defs.get_repository_def().assets_defs_by_key.values()); "
    "r = dg.materialize(assets, selection=['validated_bars'], partition_key=bars_key(month, inst.key), "
    "instance=dg.DagsterInstance.get(), raise_on_error=False); sys.exit(3 if r.success else 0)")

RUN_GRAPH = ("import sys; from pathlib import Path; from maestro_pipeline.cli import ensure_dagster_home, run_graph; "
             "ensure_dagster_home(); r = run_graph(Path(sys.argv[1])); "
             "sys.exit(0 if r.ok else '\\n'.join(r.failures))")


class Served(NamedTuple):
    base: str          # the UI's URL
    key: str           # the research partition (instrument|strategy)
    lake: Path
    log: Path          # dagster dev's log
    blocked: str       # the bar partition (instrument|month) whose blocking check failed
    files_port: int    # where `maestro serve` publishes the lake's HTML


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, files_port: int) -> Path:
    """One 4h instrument whose data ends now (dagster dev uses the wall clock): 2 splits of 30d train + 15d test."""
    start = (datetime.now(UTC) - timedelta(days=70)).date()
    cfg = {
        "lake_root": str(tmp / "lake"),
        "files_url": f"http://127.0.0.1:{files_port}",
        "instruments": [{**INSTRUMENT, "start": start.isoformat()}],
        "strategies": [STRATEGY],
        "walk_forward": {"scheme": "rolling", "train": "30d", "test": "15d", "n_splits": 2},
        "search": {"n_trials": 10, "seed": 1, "objective": "sharpe"},
        "costs": {"default": {"fee": 0.001, "slippage": 0.0005}},
        "synthetic": {"seed": 7},
    }
    p = tmp / "maestro.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Materialize the graph, start ``dagster dev`` on a free port; yield (base URL, partition key, lake root,
    dev log)."""
    assert CHROMIUM.is_file(), (f"chromium not found at {CHROMIUM}: install it with "
                                "`apt-get install -y chromium` (or set MAESTRO_CHROMIUM)")
    from assets.partitions import bars_key, research_key
    from maestro_pipeline.config import load_config
    from maestro_pipeline.durations import month_of

    tmp = tmp_path_factory.mktemp("browser")
    files_port = _free_port()
    config = _config(tmp, files_port)
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "MAESTRO_CONFIG": str(config), "DAGSTER_HOME": str(home), "PYTHONWARNINGS": "ignore",
           "MPLBACKEND": "Agg", "DAGSTER_DISABLE_TELEMETRY": "1"}

    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUN_GRAPH, str(config)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=200)
    assert out.returncode == 0, f"run_graph failed:\n{out.stdout[-1500:]}\n{out.stderr[-3000:]}"
    print(f"\ngraph materialized in {time.perf_counter() - t0:.1f} s")

    inst = load_config(config).instrument_objs[0]
    blocked = str(bars_key(month_of(inst.start_ms), inst.key))
    out = subprocess.run([sys.executable, "-c", BLOCK_MONTH, str(config), month_of(inst.start_ms)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=200)
    assert out.returncode == 0, f"blocking {blocked} did not fail its run:\n{out.stderr[-3000:]}"

    key = str(research_key(inst.key, STRATEGY))
    log_path = tmp / "dagster_dev.log"
    # `maestro serve` as `make ui` starts it: the tearsheet and Data Docs links in the UI point at it
    serve_log = open(tmp / "maestro_serve.log", "w")  # noqa: SIM115  (closed below, after the process)
    serve = subprocess.Popen([str(BIN / "maestro"), "--config", str(config), "serve"], cwd=ROOT, env=env,
                             stdout=serve_log, stderr=subprocess.STDOUT)
    try:
        with dagster_dev(env, log_path, start_timeout=120) as base:
            yield Served(base, key, tmp / "lake", log_path, blocked, files_port)
            t0 = time.perf_counter()
    finally:
        serve.terminate()
        serve.wait(10)
        serve_log.close()
    print(f"\ndagster dev stopped in {time.perf_counter() - t0:.1f} s")


@pytest.fixture(scope="module")
def page(served, screenshot_dir):
    """The ``oos_reports`` partition page, loaded (metadata table visible), with a full-page screenshot saved."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    base, key, log_path = served.base, served.key, served.log
    url = f"{base}/assets/oos_reports?view=partitions&partition={quote(key)}"
    shot = screenshot_dir / "oos_reports.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
            # Dismiss the "Join the Dagster community" modal up front (the UI remembers it in localStorage).
            ctx.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
            pg = ctx.new_page()
            pg.goto(url)
            try:  # the code location may still be loading when the page first renders
                pg.get_by_text("verdict", exact=True).first.wait_for(timeout=90_000)
            except PlaywrightError as e:
                pg.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"{url} shows no 'verdict' metadata after 90 s ({e.message.splitlines()[0]}); "
                                     f"screenshot {shot}\n{tail(log_path, 1500)}") from None
            pg.wait_for_load_state("networkidle")
            # The metadata scrolls inside a panel, not the page: grow the viewport so the screenshot holds all of it.
            tallest = pg.evaluate("Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))")
            pg.set_viewport_size({"width": 1400, "height": max(1800, min(int(tallest) + 100, 8000))})
            pg.screenshot(path=str(shot), full_page=True)
            print(f"\n{url}\nscreenshot: {shot}")
            yield pg
        finally:
            browser.close()


def _metadata_row(pg, label: str):
    return pg.locator("tr").filter(has=pg.get_by_text(label, exact=True)).first


def test_oos_reports_page_shows_the_lakes_verdict(page, served):
    from maestro_pipeline.evaluation import VERDICT_RANK

    lake = served.lake
    cells = _metadata_row(page, "verdict").locator("td").all_inner_texts()
    assert len(cells) >= 2, f"verdict row has no value cell: {cells}"
    shown = cells[1].strip()
    files = sorted(lake.glob("oos_reports/**/data.parquet"))
    assert len(files) == 1, files
    report = pl.read_parquet(files[0])
    word, reason = report["verdict"][0], report["verdict_reason"][0]
    assert shown == f"{word}: {reason}", f"UI verdict {shown!r} != lake report {word!r}: {reason!r}"
    assert shown.split(":")[0] in VERDICT_RANK, f"{shown!r} does not start with a verdict word {sorted(VERDICT_RANK)}"


def test_oos_reports_equity_chart_renders_as_png(page, screenshot_dir):
    _metadata_row(page, "equity_chart").get_by_text("[Show Markdown]").click()
    img = page.locator('img[src^="data:image/png;base64,"]').first
    img.wait_for(state="visible", timeout=30_000)
    info = img.evaluate("""async e => {
        try { await e.decode(); } catch (err) { return {w: 0, h: 0, alt: e.alt, error: String(err)}; }
        return {w: e.naturalWidth, h: e.naturalHeight, alt: e.alt};
    }""")
    page.wait_for_timeout(800)  # let the dialog's fade-in finish before the screenshot
    box = img.bounding_box()
    shot = screenshot_dir / "oos_reports_equity_chart.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nequity chart screenshot: {shot}  image {info}")
    assert info["w"] > 100 and info["h"] > 50, f"the equity chart PNG did not decode: {info}"
    assert "equity" in info["alt"].lower(), info
    assert box is not None and box["width"] > 100, f"the equity chart is not laid out on the page: {box}"


def test_oos_reports_report_page_shows_verdict_and_every_chart(page, screenshot_dir):
    page.keyboard.press("Escape")  # close the previous test's dialog, if open
    page.wait_for_timeout(500)
    _metadata_row(page, "report").get_by_text("[Show Markdown]").click()
    heading = page.get_by_text("Verdict:", exact=False).first
    heading.wait_for(state="visible", timeout=30_000)
    imgs = page.locator('img[src^="data:image/png;base64,"]')
    imgs.first.wait_for(state="visible", timeout=30_000)
    decoded = imgs.evaluate_all("""async es => Promise.all(es.map(async e => {
        try { await e.decode(); } catch (err) { return {w: 0, alt: e.alt}; }
        return {w: e.naturalWidth, alt: e.alt};
    }))""")
    page.wait_for_timeout(800)
    shot = screenshot_dir / "oos_reports_report.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nreport screenshot: {shot}  images {decoded}")
    alts = " | ".join(d["alt"].lower() for d in decoded)
    assert all(d["w"] > 100 for d in decoded), decoded
    for chart in ("equity", "candles", "parameters per split"):
        assert chart in alts, f"no {chart!r} chart among {alts!r}"


def _visit(page, served, path: str, shot: Path, wait_text: str, timeout_ms: int = 90_000):
    """Open ``path`` in the module's chromium page, wait for ``wait_text``, save a full-page screenshot."""
    from playwright.sync_api import Error as PlaywrightError

    page.keyboard.press("Escape")  # close a dialog a previous test left open
    page.set_viewport_size({"width": 1600, "height": 1400})
    page.goto(f"{served.base}{path}")
    try:
        page.get_by_text(wait_text, exact=False).first.wait_for(timeout=timeout_ms)
    except PlaywrightError as e:
        page.screenshot(path=str(shot), full_page=True)
        raise AssertionError(f"{path} shows no {wait_text!r} ({e.message.splitlines()[0]}); screenshot {shot}\n"
                             f"{tail(served.log, 1500)}") from None
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shot), full_page=True)
    print(f"\n{served.base}{path}\nscreenshot: {shot}")
    return page.inner_text("body")


def test_a_blocked_month_is_a_failed_partition_in_the_ui(page, served, screenshot_dir):
    shot = screenshot_dir / "validated_bars_blocked_month.png"
    # the partition page says the run failed and did not materialize it; the partitions list counts it as failed
    text = _visit(page, served, f"/assets/validated_bars?view=partitions&partition={quote(served.blocked)}", shot,
                  "did not materialize this asset")
    assert served.blocked in text, f"the page is not about {served.blocked}; screenshot {shot}"
    assert "Failed (1)" in text, f"the partitions view counts no failed partition; screenshot {shot}"


def test_the_leaderboard_is_a_table_readable_without_a_click(page, served, screenshot_dir):
    shot = screenshot_dir / "strategy_leaderboard.png"
    text = _visit(page, served, "/assets/strategy_leaderboard", shot, "verdict_reason")
    board = pl.read_parquet(sorted(served.lake.glob("strategy_leaderboard/**/data.parquet"))[0])
    assert board["instrument"][0] in text and board["verdict_reason"][0][:40] in text, \
        f"the leaderboard row is not on the page; screenshot {shot}"


def test_the_tearsheet_opens_from_the_ui_in_one_click(page, served, screenshot_dir):
    shot = screenshot_dir / "tearsheet.png"
    _visit(page, served, f"/assets/oos_reports?view=partitions&partition={quote(served.key)}",
           screenshot_dir / "oos_reports_links.png", "tearsheet_url")
    link = page.locator(f'a[href^="http://127.0.0.1:{served.files_port}/oos_reports/"]').first
    link.wait_for(state="visible", timeout=30_000)
    if link.get_attribute("target") == "_blank":                # the UI opens metadata URLs in a new tab
        with page.context.expect_page(timeout=60_000) as opened:
            link.click()
        tab = opened.value
    else:
        link.click()
        tab = page
    tab.wait_for_load_state("load", timeout=120_000)   # drawn on this first request from oos_equity
    instrument, strategy = served.key.split("|")
    tab.get_by_text(f"{instrument} · {strategy} · walk-forward OOS", exact=False).first.wait_for(timeout=60_000)
    tab.screenshot(path=str(shot), full_page=False)
    print(f"\ntearsheet {tab.url}\nscreenshot: {shot}")
    page_file = served.lake / unquote(tab.url.split(f"127.0.0.1:{served.files_port}/", 1)[1])
    assert page_file.is_file()
    body = tab.inner_text("body")
    # what the page must say follows from the partition's OOS equity in the lake
    partition_dir = page_file.parent.relative_to(served.lake / "oos_reports")
    equity = pl.read_parquet(served.lake / "oos_equity" / partition_dir / "data.parquet")
    if (equity["return"] != 0).any():
        assert "Cumulative Return" in body and "Sharpe" in body, f"not a quantstats tearsheet; screenshot {shot}"
    else:
        assert "the out-of-sample equity never moved" in body, f"flat OOS page expected; screenshot {shot}"
    if tab is not page:
        tab.close()
