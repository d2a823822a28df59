"""``maestro serve`` publishes the lake's HTML on 127.0.0.1 and the UI's links resolve on it."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from assets.partitions import research_key
from maestro_pipeline.cli import main
from maestro_pipeline.cli.serve import make_server
from maestro_pipeline.errors import MaestroError
from tests.support.graph import INST, Graph


def test_the_tearsheet_and_data_docs_links_open_on_maestro_serve(tmp_path, instance):
    g = Graph(tmp_path, instance, files_url="http://127.0.0.1:8765")
    g.bars(["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"])
    g.run(["walk_forward_splits"], INST)
    g.run(["split_optimal_params", "oos_reports"], research_key(INST, "ema_cross"))
    rep = instance.get_latest_materialization_event(dg.AssetKey("oos_reports")).asset_materialization.metadata
    bars = instance.get_latest_materialization_event(dg.AssetKey("validated_bars")).asset_materialization.metadata
    server = make_server(str(g.lake.root), 0)                 # any free port; the links are relative to the root
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for url, marker in ((rep["tearsheet_url"].value, "Strategy (OOS)"),
                            (bars["data_docs_url"].value, "Great Expectations")):
            assert url.startswith("http://127.0.0.1:8765/")
            with urllib.request.urlopen(url.replace(":8765", f":{port}"), timeout=10) as r:
                assert r.status == 200 and marker in r.read().decode()
        # drawn on the first request from oos_equity, served as it is on the next, drawn anew once a research
        # run has replaced the equity (the run discards the old page)
        page = Path(rep["path"].value).parent / "tearsheet.html"
        first = page.stat().st_mtime_ns
        with urllib.request.urlopen(rep["tearsheet_url"].value.replace(":8765", f":{port}"), timeout=10) as r:
            assert r.status == 200
        assert page.stat().st_mtime_ns == first
        g.run(["split_optimal_params", "oos_reports"], research_key(INST, "ema_cross"))
        assert not page.exists()
        with urllib.request.urlopen(rep["tearsheet_url"].value.replace(":8765", f":{port}"), timeout=10) as r:
            assert r.status == 200 and "Strategy (OOS)" in r.read().decode()
        assert page.exists()
        missing = (rep["tearsheet_url"].value.replace(":8765", f":{port}")
                   .replace("ema_cross/tearsheet", "rsi/tearsheet"))
        with pytest.raises(urllib.error.HTTPError) as e:                  # a partition never researched
            urllib.request.urlopen(missing, timeout=10)
        assert e.value.code == 404 and "materialize oos_reports" in e.value.read().decode()
        with pytest.raises(urllib.error.HTTPError) as e:                  # nothing outside the lake is served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/../maestro.yaml", timeout=10)
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_serve_refuses_a_busy_port_and_a_missing_lake(tmp_path, capsys):
    lake = tmp_path / "lake"
    lake.mkdir()
    busy = make_server(str(lake), 0)
    try:
        with pytest.raises(MaestroError, match="change files_url in maestro.yaml"):
            make_server(str(lake), busy.server_address[1])
    finally:
        busy.server_close()
    cfg = tmp_path / "maestro.yaml"
    cfg.write_text("lake_root: nowhere\ninstruments: [{exchange: synthetic, symbol: BTC/USDT, timeframe: 1h, "
                   "start: '2026-01-01'}]\nstrategies: [ema_cross]\n")
    assert main(["--config", str(cfg), "serve"]) == 2
    assert "does not exist yet: run `make demo`" in capsys.readouterr().err
