"""UI fixes: NAME@N and messages in the entries table, no dead "vs prev" links, one panel (y scale) per number."""

from __future__ import annotations

import re

import pytest

from tests.helpers import _clean, _get, _plot_size, _shot

pytest.importorskip("flask", reason="the ui extra (flask) is not installed: pip install -e '.[ui]'")


def _prev_links(html: str) -> dict[str, bool]:
    rows = re.findall(r'<tr data-id="([0-9a-f]{40})">(.*?)</tr>', html, re.S)
    return {eid: 'class="prev"' in body for eid, body in rows}


def test_entries_table_names_versions_and_messages(reg, client):
    html = _get(client, "/")
    assert ">mnist@1<" in html and ">mnist@2<" in html and ">mnist@3<" in html
    assert "<th>message</th>" in html and ">baseline<" in html and ">gelu<" in html


def test_no_vs_prev_link_without_a_previous_entry(reg, client):
    ids = reg["ids"]
    links = _prev_links(_get(client, "/"))
    assert links[ids["v2"]] and links[ids["v3"]]
    assert not links[ids["v1"]] and not links[ids["anon"]] and not links[ids["evil"]]  # first of their name
    for eid, has in links.items():  # every link shown works
        if has:
            _get(client, f"/compare?a={eid}")


def test_browser_plots_one_panel_per_number(reg, server, page):
    """result, acc and loss each get a panel with its own y range: none hides another."""
    page.goto(server + "/model/mnist")
    _plot_size(page)
    panels = page.locator("#plot .panel")
    assert panels.count() == 3
    assert [panels.nth(i).get_attribute("data-series") for i in range(3)] == ["result", "acc", "loss"]
    ranges = page.evaluate("window.__tvaultPlots.map((p) => [p.scales.y.min, p.scales.y.max])")
    _, (amin, amax), (lmin, lmax) = ranges
    assert lmax > 0.85 and lmin < 0.55  # loss spans its own values ...
    assert amax < 0.9 and amin > 0.6  # ... and acc is not flattened against loss's scale
    boxes = [panels.nth(i).bounding_box() for i in range(3)]
    assert all(b["width"] > 300 and b["height"] > 150 for b in boxes)
    _shot(page, "history-multiples")
    page.goto(server + "/?name=mnist")
    for cb in page.locator("input[name=ids]").all():
        cb.check()
    page.click("#compare-btn")
    page.wait_for_selector("#metrics-table")
    _plot_size(page)
    assert page.locator("#plot .panel").count() == 3
    _shot(page, "compare-many-multiples")
    # the entries page in the browser: no "vs prev" on first versions, and every link opens a comparison
    page.goto(server + "/")
    assert page.locator(f"tr[data-id='{reg['ids']['v1']}'] a.prev").count() == 0
    page.click(f"tr[data-id='{reg['ids']['v3']}'] a.prev")
    page.wait_for_selector("#sec-metadata")
    _clean(page)
