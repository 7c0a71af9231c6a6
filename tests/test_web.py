"""git tvault ui: pages, filters, pagination, escaping, compare, history, export; then a real headless chromium.

One registry is built per module (logging is the slow part): three versions of
"mnist" with changed code and an alias, an unnamed entry, and one entry
crafted the way an untrusted remote could write it (script in tags, message,
name and tag keys). The browser tests drive Debian's chromium through
Playwright (no browser download); they skip, saying why, when either is absent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pygit2
import pytest

from tests.helpers import (
    GIT_ENV,
    PAYLOAD_KEY,
    PAYLOAD_NAME,
    PAYLOAD_TAG,
    _clean,
    _get,
    _plot_size,
    _shot,
    git,
    import_fresh,
    tvault,
)

flask = pytest.importorskip("flask", reason="the ui extra (flask) is not installed: pip install -e '.[ui]'")

from tvault_git import web  # noqa: E402


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f]{40})"', html)


def _assert_no_payload(html: str) -> None:
    for raw in (PAYLOAD_TAG, PAYLOAD_NAME, PAYLOAD_KEY, "<script>window.__pwned", "<b>evil</b>", "<i>mallory</i>"):
        assert raw not in html


# -- app level -----------------------------------------------------------------


def test_entries_table_lists_sorts_filters(reg, client):
    ids = reg["ids"]
    html = _get(client, "/")
    assert set(_row_ids(html)) == set(ids.values())
    assert "5 matches" in html
    asc = _row_ids(_get(client, "/?sort=acc&asc=1"))
    assert asc[:3] == [ids["v1"], ids["v3"], ids["v2"]]  # entries without acc sort last
    desc = _row_ids(_get(client, "/?sort=result"))
    assert desc[0] == ids["v2"]
    assert set(_row_ids(_get(client, "/?name=mnist"))) == {ids["v1"], ids["v2"], ids["v3"]}
    assert _row_ids(_get(client, "/?min=0.8")) == [ids["v2"]]
    assert _row_ids(_get(client, "/?min=0.7&max=0.8&name=mnist&sort=result")) == [ids["v3"], ids["v1"]]
    assert _row_ids(_get(client, "/?tag=aug%3Dflip")) == [ids["v2"]]
    assert set(_row_ids(_get(client, "/?tag=lr%3D0.05%3B+aug%3Dcrop"))) == {ids["v3"]}
    assert _row_ids(_get(client, "/?where=loss%3C0.55")) == [ids["v2"]]
    assert set(_row_ids(_get(client, "/?where=acc%3E%3D0.75&where=loss%3E0.55"))) == {ids["v3"]}
    assert set(_row_ids(_get(client, "/?author=mallory"))) == {ids["evil"]}
    assert len(_row_ids(_get(client, "/?branch=main"))) == 4
    head = pygit2.Repository(str(reg["path"])).head.target
    assert set(_row_ids(_get(client, f"/?commit={str(head)[:8]}"))) == {ids["v2"], ids["v3"], ids["anon"], ids["evil"]}


def test_entries_pagination(reg, client):
    seen: list[str] = []
    html = _get(client, "/?per=2&sort=date&asc=1")
    assert "page 1 of 3" in html and 'id="next-page"' in html
    seen += _row_ids(html)
    seen += _row_ids(_get(client, "/?per=2&sort=date&asc=1&page=2"))
    last = _get(client, "/?per=2&sort=date&asc=1&page=3")
    seen += _row_ids(last)
    assert 'id="next-page"' not in last
    assert len(seen) == 5 and set(seen) == set(reg["ids"].values())
    assert seen[0] == reg["ids"]["v1"] and seen[-1] == reg["ids"]["evil"]
    # sorted by a metric, pages run on past the entries that have it (then newest first)
    by_acc = [_row_ids(_get(client, f"/?sort=acc&asc=1&per=2&page={p}")) for p in (1, 2, 3)]
    ids = reg["ids"]
    assert by_acc == [[ids["v1"], ids["v3"]], [ids["v2"], ids["evil"]], [ids["anon"]]]
    # the next link keeps filters and sort
    assert re.search(r'id="next-page" href="/\?[^"]*sort=date[^"]*asc=1[^"]*page=2', html)


def test_bad_filter_is_one_line_error(client):
    html = _get(client, "/?where=acc%3E%3Dabc", status=400)
    assert re.search(r'<p class="error" id="error">[^<\n]*must be a number', html)
    html = _get(client, "/?tag=nokey", status=400)
    assert "KEY=VALUE" in html
    _get(client, "/entry/ffffffffffff", status=404)


def test_every_registry_value_is_escaped(reg, client):
    ids = reg["ids"]
    pages = [
        "/",
        "/?sort=result&asc=1",
        f"/entry/{ids['evil']}",
        f"/compare?a={ids['anon']}&b={ids['evil']}",
        f"/compare?ids={ids['evil']}&ids={ids['v1']}&ids={ids['v2']}",
        "/models",
    ]
    for url in pages:
        html = _get(client, url)
        _assert_no_payload(html)
    entry = _get(client, f"/entry/{ids['evil']}")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in entry
    assert "&lt;/pre&gt;&lt;script&gt;window.__pwned=4" in entry
    # the hostile name has its own history page; its URL is percent-encoded, its text escaped
    html = _get(client, "/models")
    href = re.search(r'href="(/model/evil)"', html).group(1)
    _assert_no_payload(_get(client, href))
    # plot data is JSON inside a script block: '<' is written as \u003c, so it cannot close the block
    many = _get(client, f"/compare?ids={ids['evil']}&ids={ids['v1']}&ids={ids['v2']}")
    block = re.search(r'<script type="application/json" id="plot-data">(.*?)</script>', many, re.S).group(1)
    assert "<" not in block and "\\u003cimg" in block


def test_entry_page(reg, client):
    ids = reg["ids"]
    html = _get(client, f"/entry/{ids['v2']}")
    assert ids["v2"] in html and "gelu" in html
    assert "switch to gelu" in html and "Test Author" in html  # training commit message and author
    assert "Linear(in_features=4, out_features=16" in html  # architecture
    assert 'class="hl"' in html and '<span class="k">class</span>' in html  # highlighted source
    assert re.search(r"<td class=\"mono\">fc1.weight</td><td class=\"mono\">\(16, 4\)</td><td>float32</td>", html)
    assert "torch.optim.sgd.SGD" in html and "momentum" in html
    assert f'href="/download/{ids["v2"]}.safetensors"' in html
    assert f'href="/compare?a={ids["v1"]}&amp;b={ids["v2"]}"' in html  # previous version
    # any ref works: commit:index and short ids
    assert ids["v2"] in _get(client, f"/entry/{ids['v2'][:8]}")


def test_download_safetensors(reg, client):
    import torch
    from safetensors.torch import load as st_load

    import tvault_git

    ids = reg["ids"]
    r = client.get(f"/download/{ids['v3']}.safetensors")
    assert r.status_code == 200
    assert "attachment" in r.headers["Content-Disposition"] and "mnist-" in r.headers["Content-Disposition"]
    got = st_load(r.get_data())
    want = tvault_git.load(ids["v3"], repo=str(reg["path"]))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_compare_two_side_by_side(reg, client):
    ids = reg["ids"]
    html = _get(client, f"/compare?a={ids['v1']}&b={ids['v2']}")
    for s in ("architecture", "classes", "functions", "weights", "optimizer", "metadata", "context"):
        assert f'id="sec-{s}"' in html
    assert '<table class="sbs">' in html
    assert re.search(r'class="del"><pre>.*F\.relu\(x\)', html) and re.search(r'class="add"><pre>.*F\.gelu\(x\)', html)
    assert "switch to gelu" in html  # commits between
    optim = html[html.index('id="sec-optimizer"') : html.index('id="sec-metadata"')]
    assert "torch.optim.sgd.SGD" in optim and "param group 0" in optim  # lr 0.1 -> 0.05, momentum equal
    assert re.search(r"<td>lr</td><td[^>]*>0\.1</td><td[^>]*>0\.05</td>", optim), optim
    assert "momentum" not in optim  # unchanged settings are not listed as changes
    assert 'id="weights-diff"' in html
    # numbers for the changed tensors
    html3 = _get(client, f"/compare?a={ids['v2']}&b={ids['v3']}")
    row = re.search(r"<td class=\"mono\">fc1.weight</td>.*?</tr>", html3, re.S).group(0)
    assert "values" in row and re.search(r'<td class="num">0\.0\d+</td>', row)
    # "compare with previous": a single entry is compared with its predecessor of the same name
    prev = _get(client, f"/compare?a={ids['v3']}")
    assert prev.index(ids["v2"][:10]) < prev.index(ids["v3"][:10])
    _get(client, f"/compare?a={ids['v1']}", status=404)  # the first version has no predecessor
    # checkboxes send ids=...: two of them give the diff too
    assert 'id="sec-weights"' in _get(client, f"/compare?ids={ids['v1']}&ids={ids['v3']}")


def test_compare_many_metrics_table_and_plot(reg, client):
    ids = reg["ids"]
    html = _get(client, f"/compare?ids={ids['v1']}&ids={ids['v2']}&ids={ids['v3']}")
    assert 'id="metrics-table"' in html and 'id="plot"' in html
    data = json.loads(re.search(r'id="plot-data">(.*?)</script>', html, re.S).group(1))
    assert data["x"] == [1, 2, 3]
    by = {s["label"]: s["values"] for s in data["series"]}
    assert by["acc"] == [0.71, 0.83, 0.79] and by["result"] == [0.71, 0.83, 0.79]
    _get(client, f"/compare?ids={ids['v1']}", status=400)


def test_models_and_history(reg, client):
    ids = reg["ids"]
    html = _get(client, "/models")
    assert 'href="/model/mnist"' in html and "production" in html
    hist = _get(client, "/model/mnist")
    assert [int(v) for v in re.findall(r'data-version="(\d+)"', hist)] == [3, 2, 1]
    row2 = re.search(r'<tr data-version="2">.*?</tr>', hist, re.S).group(0)
    assert '<span class="badge alias">production</span>' in row2 and ids["v2"][:10] in row2
    data = json.loads(re.search(r'id="plot-data">(.*?)</script>', hist, re.S).group(1))
    assert data["x"] == [1, 2, 3] and data["marks"] == [
        {"x": 2, "text": "production, best"},
        {"x": 3, "text": "latest"},
    ]
    assert '<span class="badge computed" title="mnist@best">@best</span>' in row2
    assert {s["label"] for s in data["series"]} == {"result", "acc", "loss"}
    assert f"/compare?a={ids['v2']}&amp;b={ids['v3']}" in hist
    _get(client, "/model/nope", status=404)


def test_read_only_and_headers(reg, client):
    for url in ("/", f"/entry/{reg['ids']['v1']}", "/models"):
        assert client.post(url).status_code == 405
        assert client.delete(url).status_code == 405
    r = client.get("/")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert {m for rule in web.create_app(str(reg["path"])).url_map.iter_rules() for m in rule.methods} <= {
        "GET",
        "HEAD",
        "OPTIONS",
    }


def test_new_entries_show_up_without_restart(repo):
    import tvault_git

    app = web.create_app(str(repo)).test_client()
    assert _row_ids(_get(app, "/")) == []
    e = tvault_git.log_all(import_fresh("model").Net(), repo=str(repo), result=0.5, name="fresh")
    assert _row_ids(_get(app, "/")) == [e.id]
    assert "fresh" in _get(app, "/models")


def test_models_page_best_is_the_stored_best_alias(repo):
    """The models page's best column follows NAME@best: a stored best alias (e.g. set by a callback
    ranking by validation loss) wins over the highest result, as in ``git tvault models``."""
    import tvault_git

    app = web.create_app(str(repo)).test_client()
    net = import_fresh("model").Net()
    tvault_git.log_all(net, repo=str(repo), result=0.25, name="m")
    tvault_git.log_all(net, repo=str(repo), result=0.75, name="m")
    row = re.search(r"<tr><td><a [^>]*>m</a>.*?</tr>", _get(app, "/models"), re.S).group(0)
    assert "0.75" in row and "@best" not in row
    tvault_git.set_alias("m", "m@1", "best", repo=str(repo))
    row = re.search(r"<tr><td><a [^>]*>m</a>.*?</tr>", _get(app, "/models"), re.S).group(0)
    assert "0.25" in row and "0.75" not in row and "@best" in row


def test_pulled_registry_shows_authors_and_missing_commit(reg, tmp_path):
    """A clone that fetched only the registry refs: entries and authors show, the training commit is 'not in this clone'."""
    dst = tmp_path / "clone"
    git(tmp_path, "init", "-q", str(dst))
    git(dst, "fetch", "-q", str(reg["path"]), "refs/tvault/*:refs/tvault/*", "refs/notes/tvault:refs/notes/tvault")
    c = web.create_app(str(dst)).test_client()
    html = _get(c, "/")
    assert len(_row_ids(html)) == 5 and "Test Author" in html and "&lt;i&gt;mallory&lt;/i&gt;" in html
    entry = _get(c, f"/entry/{reg['ids']['v1']}")
    assert "not in this clone" in entry


def test_history_marks_moves_and_unfetched_versions(reg, client, tmp_path):
    hist = _get(client, "/model/mnist")
    row3 = re.search(r'<tr data-version="3">.*?</tr>', hist, re.S).group(0)
    assert '<span class="move worse">-0.04</span>' in row3  # acc 0.83 -> 0.79
    assert '<span class="move worse">+0.1</span>' in row3  # loss 0.5 -> 0.6: up is worse
    # a clone with the index but not every entry's objects: the version is listed, marked, not linked
    ids = reg["ids"]
    dst = tmp_path / "partial"
    git(tmp_path, "init", "-q", str(dst))
    git(
        dst,
        "fetch",
        "-q",
        str(reg["path"]),
        "refs/notes/tvault:refs/notes/tvault",
        f"refs/tvault/entries/{ids['v1']}:refs/tvault/entries/{ids['v1']}",
        f"refs/tvault/entries/{ids['v2']}:refs/tvault/entries/{ids['v2']}",
    )
    c = web.create_app(str(dst)).test_client()
    part = _get(c, "/model/mnist")
    row3 = re.search(r'<tr data-version="3">.*?</tr>', part, re.S).group(0)
    assert "not fetched" in row3 and "/entry/" not in row3
    assert len(_row_ids(_get(c, "/?name=mnist"))) == 2


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for k, v in attrs:
            if k in ("href", "src") and v:
                self.urls.append(v)


def test_static_export(reg, tmp_path):
    out = tmp_path / "site"
    p = tvault(reg["path"], "ui", "--export", str(out))
    assert "wrote" in p.stdout
    files = {f.name for f in out.iterdir()}
    ids = reg["ids"]
    assert "index.html" in files and "models.html" in files and "model-mnist.html" in files
    assert all(f"entry-{i}.html" in files for i in ids.values())
    assert f"compare-{ids['v1']}-{ids['v2']}.html" in files
    assert (out / "static" / "vendor" / "uplot" / "uPlot.iife.min.js").is_file()
    for f in out.glob("*.html"):
        html = f.read_text()
        _assert_no_payload(html)
        parser = _Links()
        parser.feed(html)
        for u in parser.urls:
            if u.startswith("data:"):
                continue  # inline (the empty favicon)
            assert not u.startswith(("/", "http:", "https:", "//")), (f.name, u)  # self-contained, relative
            target = u.split("#")[0]
            if target:
                assert (out / target).exists(), (f.name, u)
    hist = (out / "model-mnist.html").read_text()
    assert 'id="plot-data"' in hist and "production" in hist


def test_cli_serves_and_warns(reg):
    env = dict(os.environ, **GIT_ENV, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    p = subprocess.Popen(
        ["git", "tvault", "ui", "--port", "0", "--host", "0.0.0.0"],
        cwd=reg["path"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        url = re.search(r"(http://\S+)", line).group(1).replace("0.0.0.0", "127.0.0.1")  # with its ?token=
        import urllib.request

        body = urllib.request.urlopen(url, timeout=30).read().decode()
        assert reg["ids"]["v1"] in body
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
    assert "warning: binding 0.0.0.0" in err


def test_cli_ui_outside_repo_is_one_line(tmp_path):
    p = tvault(tmp_path, "ui", "--export", str(tmp_path / "x"), check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("tvault: error:")


def test_side_by_side_rows():
    lines = ["--- a/x", "+++ b/x", "@@ -1,3 +1,3 @@", " a", "-b", "+B", "+C", " d"]
    rows = web.side_by_side(lines)
    assert rows[0]["kind"] == "hunk"
    assert rows[1] == {"kind": "same", "na": 1, "a": "a", "nb": 1, "b": "a"}
    assert rows[2] == {"kind": "change", "na": 2, "a": "b", "nb": 2, "b": "B"}
    assert rows[3] == {"kind": "change", "na": None, "a": None, "nb": 3, "b": "C"}
    assert rows[4] == {"kind": "same", "na": 3, "a": "d", "nb": 4, "b": "d"}


def test_entries_pages_do_not_import_torch(reg):
    code = (
        "import sys; from tvault_git import web, cli; c = web.create_app(sys.argv[1]).test_client();"
        "assert c.get('/').status_code == 200; assert c.get('/models').status_code == 200;"
        "assert c.get('/model/mnist').status_code == 200; assert c.get('/entry/' + sys.argv[2]).status_code == 200;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code, str(reg["path"]), reg["ids"]["v1"]], check=True)


# -- a real browser ----------------------------------------------------------------


def test_browser_entries_sort_filter_compare(reg, server, page):
    ids = reg["ids"]
    page.goto(server + "/")
    assert page.locator("#entries tbody tr").count() == 5
    _shot(page, "entries")
    page.click("a.sort[data-sort=result]")
    page.wait_for_url(re.compile(r"sort=result"))
    assert page.locator("#entries tbody tr").first.get_attribute("data-id") == ids["v2"]
    page.click("a.sort[data-sort=result]")  # again: ascending
    page.wait_for_url(re.compile(r"asc=1"))
    assert page.locator("#entries tbody tr").first.get_attribute("data-id") in (ids["anon"], ids["evil"])
    page.fill("input[name=name]", "mnist")
    page.fill("input[name=where]", "acc>=0.75")
    page.click("#apply")
    page.wait_for_url(re.compile(r"name=mnist"))
    got = [
        page.locator("#entries tbody tr").nth(i).get_attribute("data-id")
        for i in range(page.locator("#entries tbody tr").count())
    ]
    assert got == [ids["v3"], ids["v2"]]  # still sorted by result, ascending
    _shot(page, "entries-filtered")
    assert page.is_disabled("#compare-btn")
    page.check(f"input[value='{ids['v2']}']")
    page.check(f"input[value='{ids['v3']}']")
    assert page.is_enabled("#compare-btn")
    page.click("#compare-btn")
    page.wait_for_selector("#sec-weights")
    assert page.locator("table.sbs").count() == 0  # v2 and v3 share their code: no code table
    assert "fc1.weight" in page.inner_text("#sec-weights")
    _shot(page, "compare-two")
    page.goto(server + f"/compare?a={ids['v1']}&b={ids['v2']}")  # relu -> gelu: code side by side
    sbs = page.locator("#sec-functions table.sbs")
    assert sbs.count() >= 1 and sbs.first.is_visible() and "F.gelu" in sbs.first.inner_text()
    _clean(page)


def test_browser_compare_many_plot(reg, server, page):
    page.goto(server + "/?name=mnist")
    for cb in page.locator("input[name=ids]").all():
        cb.check()
    page.click("#compare-btn")
    page.wait_for_selector("#metrics-table")
    w, h = _plot_size(page)
    assert w > 100 and h > 100
    assert page.locator("#metrics-table tbody tr").count() == 3
    _shot(page, "compare-many")
    _clean(page)


def test_browser_history_plot_and_alias(reg, server, page):
    page.goto(server + "/models")
    page.click("a[href='/model/mnist']")
    w, h = _plot_size(page)
    assert w > 100 and h > 100
    assert "production" in page.inner_text("#versions")
    assert page.evaluate("window.__tvaultPlots.map((p) => p.series.length)") == [
        2,
        2,
        2,
    ]  # result, acc, loss: a panel each
    _shot(page, "history")
    page.click("a.vs >> nth=0")
    page.wait_for_selector("#sec-metadata")
    _clean(page)


def test_browser_entry_page_and_download(reg, server, page):
    page.goto(server + f"/entry/{reg['ids']['v2']}")
    assert page.locator("#source, .hl").count() >= 1 and page.locator("#weights tbody tr").count() == 4
    _shot(page, "entry")
    with page.expect_download() as dl:
        page.click("#download")
    assert dl.value.suggested_filename.endswith(".safetensors")
    page.click("#compare-prev")
    page.wait_for_selector("#sec-functions table.sbs")
    _shot(page, "compare-prev")
    _clean(page)


def test_learning_curves_on_entry_and_compare_pages(reg, client):
    ids = reg["ids"]
    html = _get(client, f"/entry/{ids['v2']}")
    assert (
        'id="curves"' in html and "<figcaption>loss</figcaption>" in html and "<figcaption>val_acc</figcaption>" in html
    )
    assert PAYLOAD_KEY not in html and "&lt;img src=x onerror" in html  # the hostile metric name, escaped
    data = [
        json.loads(b) for b in re.findall(r'<script type="application/json" id="curve-data-\d+">(.*?)</script>', html)
    ]
    loss = next(d for d in data if d["metric"] == "loss")
    assert loss["x"] == list(range(0, 40, 2)) and loss["series"][0]["label"] == "loss"
    val = next(d for d in data if d["metric"] == "val_acc")
    assert (
        val["x"] == list(range(0, 40, 2))
        and val["series"][0]["values"][5] == 0.25
        and val["series"][0]["values"][0] is None
    )
    assert 'id="curves"' not in _get(client, f"/entry/{ids['v1']}")  # no step metrics: no section
    html = _get(client, f"/compare?a={ids['v2']}&b={ids['v3']}")
    data = [
        json.loads(b) for b in re.findall(r'<script type="application/json" id="curve-data-\d+">(.*?)</script>', html)
    ]
    loss = next(d for d in data if d["metric"] == "loss")
    assert len(loss["series"]) == 2 and loss["x"] == sorted(set(range(0, 40, 2)) | set(range(0, 60, 3)))
    assert loss["series"][0]["values"][loss["x"].index(3)] is None  # v2 has no step 3: a gap, not a zero


def test_browser_learning_curves(reg, server, page):
    ids = reg["ids"]
    page.goto(server + f"/entry/{ids['v2']}")
    page.wait_for_selector("#curves canvas")
    assert page.locator("#curves .curve").count() == 3  # loss, val_acc, the hostile name
    assert page.evaluate("window.__tvaultCurves.length") == 3
    assert page.evaluate("window.__tvaultCurves.map(p => p.series.length)") == [2, 2, 2]
    box = page.locator("#curves canvas").first.bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    _shot(page, "entry-curves")
    _clean(page)
    page.goto(server + f"/compare?a={ids['v2']}&b={ids['v3']}")
    page.wait_for_selector("#curves canvas")
    # plots by metric name (the hostile one, loss, val_acc): only loss is in both entries, overlaid
    assert page.evaluate("window.__tvaultCurves.map(p => p.series.length)") == [2, 3, 2]
    labels = page.evaluate("window.__tvaultCurves[1].series.slice(1).map(s => s.label)")
    assert labels[0].startswith("#1 ") and labels[1].startswith("#2 ") and "mnist" in labels[0]
    _shot(page, "compare-curves")
    _clean(page)


def test_browser_hostile_registry_runs_no_script(reg, server, page):
    evil = reg["ids"]["evil"]
    for url in ("/", f"/entry/{evil}", f"/compare?a={reg['ids']['anon']}&b={evil}", "/models"):
        page.goto(server + url)
        assert page.locator("img").count() == 0
        _clean(page)
    page.goto(server + f"/entry/{evil}")
    assert PAYLOAD_TAG in page.inner_text("#tags")  # shown as text
    assert "evil" in page.inner_text("h1")
    _shot(page, "hostile-entry")
    page.goto(server + "/models")
    page.locator("#models a").filter(has_text="evil").click()
    _plot_size(page)
    _clean(page)


def test_browser_static_export(reg, page, tmp_path):
    out = tmp_path / "site"
    web.export_site(str(reg["path"]), str(out))
    page.goto((out / "index.html").as_uri())
    assert page.locator("#entries tbody tr").count() == 5
    ids = reg["ids"]
    first = lambda: page.locator("#entries tbody tr").first.get_attribute("data-id")  # noqa: E731
    page.click("span.sort[data-sort=result]")  # no server: the page sorts itself
    assert first() == ids["v2"]
    page.click("span.sort[data-sort=result]")
    assert first() in (ids["anon"], ids["evil"])
    page.fill("#quick-filter", "crop")
    assert (
        page.locator("#entries tbody tr:visible").count() == 1
        and page.locator("#entries tbody tr:visible").get_attribute("data-id") == ids["v3"]
    )
    _shot(page, "export-entries")
    page.fill("#quick-filter", "")
    page.click("a[href='models.html']")
    page.click("a[href='model-mnist.html']")
    w, h = _plot_size(page)
    assert w > 100 and h > 100
    _shot(page, "export-history")
    page.click("a.vs >> nth=0")
    page.wait_for_selector("#sec-weights")
    _clean(page)
