#!/usr/bin/env python3
"""Benchmark ``git tvault ui``: time to the first page of the entries table on a big registry.

The registry is written with bench_find's ``git fast-import`` builder (10,000
entries by default). For each page the benchmark reports the server's
response time (median of several requests over HTTP to the real server,
cache already built) and, when chromium and Playwright are present, the
browser's time from navigation start to the ``load`` event (median), which
includes the response, parsing, styles, scripts and the plot.

    .venv/bin/python bench/bench_web.py [--entries 10000] [--commits 200] [--dir bench/out/web]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.bench_find import build, run


def http_ms(url: str, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with urllib.request.urlopen(url) as r:
            r.read()
            assert r.status == 200, url
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def browser_ms(urls: list[str], n: int) -> dict[str, float] | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if exe is None:
        return None
    out: dict[str, float] = {}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1280, "height": 900})
        for url in urls:
            page.goto(url)  # warm: fonts, static files in the browser cache, the way a user clicks around
            times = []
            for _ in range(n):
                page.goto(url, wait_until="load")
                times.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
            out[url] = statistics.median(times)
        b.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(__file__), "out", "web"))
    a = ap.parse_args()
    a.dir = os.path.abspath(a.dir)  # bench_find's builder runs git inside the repo
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)
    run(a.dir, "git", "init", "-q", "-b", "main")
    t = time.perf_counter()
    build(a.dir, a.entries, a.commits)
    print(f"(built {a.entries:,} entries in {time.perf_counter() - t:.1f} s)", file=sys.stderr)

    import logging

    from werkzeug.serving import make_server

    from tvault_git import web as web

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines

    srv = make_server("127.0.0.1", 0, web.create_app(a.dir), threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    t = time.perf_counter()
    http_ms(base + "/", 1)
    print(
        f"| {a.entries:,} entries: very first request (builds the SQLite cache) | {(time.perf_counter() - t) * 1000:.0f} ms | |"
    )
    pages = [
        ("entries, first page (newest first, 50 rows)", "/"),
        ("entries, page 100", "/?page=100"),
        ("entries sorted by a metric (`acc`, ascending)", "/?sort=acc&asc=1"),
        ("entries filtered: `tag lr=0.01; size=2x`, `acc>=0.5`", "/?tag=lr%3D0.01%3B+size%3D2x&where=acc%3E%3D0.5"),
        ("entries filtered by name and result range", "/?name=model7&min=0.2&max=0.8"),
        ("models (50 names)", "/models"),
        (f"model history (one name, {a.entries // 50:,} versions, with plot)", "/model/model7"),
    ]
    server = {p: http_ms(base + p, a.runs) for _, p in pages}
    brow = browser_ms([base + p for _, p in pages], a.runs)
    print("\n| page | server response (median) | browser: navigation to load event (median) |")
    print("|---|---|---|")
    for label, p in pages:
        b = f"{brow[base + p]:.0f} ms" if brow else "n/a (no chromium/playwright)"
        print(f"| {label} | {server[p]:.0f} ms | {b} |", flush=True)
    srv.shutdown()


if __name__ == "__main__":
    main()
