// tvault ui: draw the metrics plot (uPlot) from the page's JSON block; enable "Compare selected".
// No registry value is ever inserted as HTML here: uPlot draws text on a canvas or sets textContent.
"use strict";
(function () {
  const COLORS = ["#2f5fd0", "#d0452f", "#2a9d5b", "#9b51e0", "#e09b1b", "#17a2b8", "#6b7280", "#c2185b"];

  function drawPlot() {
    const holder = document.getElementById("plot");
    const block = document.getElementById("plot-data");
    if (!holder || !block || typeof uPlot === "undefined") return;
    const data = JSON.parse(block.textContent);
    if (!data.series || data.series.length === 0 || data.x.length === 0) {
      holder.textContent = "no numbers to plot";
      holder.style.minHeight = "0";
      return;
    }
    // Small multiples: one panel per number (result, each metric), each with its own y scale, so
    // acc 0.5 is not flattened beside loss 2 and a result equal to acc is not hidden behind it.
    const labels = new Map(data.x.map((x, i) => [x, data.labels[i]]));
    const ticks = new Map(data.x.map((x, i) => [x, (data.ticks || data.labels)[i]]));
    const marks = data.marks || [];
    holder.classList.add("multiples");
    const plots = [];
    function panelWidth() {
      const full = Math.max(320, holder.clientWidth || 800);
      return data.series.length > 1 ? Math.max(320, Math.floor(full / 2) - 12) : full;
    }
    function markAliases(u) {
      // aliases (production, best, ...) as dashed vertical markers with their names
      const ctx = u.ctx;
      ctx.save();
      ctx.font = (12 * devicePixelRatio) + "px system-ui, sans-serif";
      ctx.fillStyle = "#2f5fd0"; ctx.strokeStyle = "#2f5fd0"; ctx.setLineDash([4, 4]);
      for (const m of marks) {
        const x = Math.round(u.valToPos(m.x, "x", true));
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        const w = ctx.measureText(m.text).width;
        const right = x + 4 + w > u.bbox.left + u.bbox.width;  // keep the label inside the plot
        ctx.fillText(m.text, right ? x - 4 - w : x + 4, u.bbox.top + 14 * devicePixelRatio);
      }
      ctx.restore();
    }
    data.series.forEach((s, i) => {
      const panel = document.createElement("div");
      panel.className = "panel";
      panel.dataset.series = s.label;  // dataset/textContent only: registry text never becomes HTML
      holder.appendChild(panel);
      const opts = {
        title: s.label,
        width: panelWidth(),
        height: 220,
        scales: { x: { time: false } },
        padding: [8, 28, 0, 12],  // room for the first and last x labels
        axes: [
          { label: data.xlabel, values: (u, vals) => vals.map((t) => (ticks.has(t) ? ticks.get(t) : "")), incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]},
          { label: s.label },
        ],
        series: [
          { label: data.xlabel, value: (u, v) => (v == null ? "-" : (labels.get(v) || String(v))) },
          { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: true, size: 6 } },
        ],
        hooks: { draw: [markAliases] },
      };
      plots.push(new uPlot(opts, [data.x, s.values], panel));
    });
    window.__tvaultPlots = plots;
    window.__tvaultPlot = plots[0];
    window.addEventListener("resize", () => plots.forEach((p) => p.setSize({ width: panelWidth(), height: 220 })));
  }

  // Learning curves: one small plot per metric, x = step, one line per entry (nulls: not logged there).
  function drawCurves() {
    if (typeof uPlot === "undefined") return;
    window.__tvaultCurves = [];
    for (const holder of document.querySelectorAll("[data-plot-src]")) {
      const block = document.getElementById(holder.dataset.plotSrc);
      if (!block) continue;
      const data = JSON.parse(block.textContent);
      const width = () => Math.max(280, holder.clientWidth || 420);
      const opts = {
        width: width(),
        height: 220,
        scales: { x: { time: false } },
        padding: [8, 16, 0, 8],
        axes: [{ label: data.xlabel }, {}],
        series: [{ label: data.xlabel }].concat(
          data.series.map((s, i) => ({ label: s.label, stroke: COLORS[(s.n ?? i) % COLORS.length], width: 2, spanGaps: true,
                                       points: { show: data.x.length <= 60, size: 5 } }))
        ),
      };
      const plot = new uPlot(opts, [data.x].concat(data.series.map((s) => s.values)), holder);
      window.__tvaultCurves.push(plot);
      window.addEventListener("resize", () => plot.setSize({ width: width(), height: 220 }));
    }
  }

  function compareButton() {
    const form = document.getElementById("compare-form");
    const btn = document.getElementById("compare-btn");
    if (!form || !btn) return;
    const update = () => {
      const n = form.querySelectorAll("input[name=ids]:checked").length;
      btn.disabled = n < 2;
      btn.textContent = n >= 2 ? "Compare " + n + " selected" : "Compare selected";
    };
    form.addEventListener("change", update);
    update();
  }

  // Static export (no server): sort and filter the rows of the current page in the browser.
  function staticTable() {
    const table = document.getElementById("entries");
    if (!table || document.body.dataset.static !== "1") return;
    const body = table.tBodies[0];
    const heads = Array.from(table.tHead.rows[0].cells);
    const num = (s) => (s === "-" || s === "" ? null : (isFinite(Number(s)) ? Number(s) : null));
    let state = { col: -1, asc: false };
    heads.forEach((th, col) => {
      const handle = th.querySelector(".sort");
      if (!handle) return;
      handle.addEventListener("click", () => {
        state = { col: col, asc: state.col === col ? !state.asc : false };
        heads.forEach((h) => h.classList.remove("active"));
        th.classList.add("active");
        const rows = Array.from(body.rows);
        const key = (r) => r.cells[col].textContent.trim();
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          const nx = num(x), ny = num(y);
          const ex = x === "-", ey = y === "-";
          if (ex !== ey) return ex ? 1 : -1;  // missing values last, like the live table
          const c = nx !== null && ny !== null ? nx - ny : x.localeCompare(y);
          return state.asc ? c : -c;
        });
        rows.forEach((r) => body.appendChild(r));
      });
    });
    const box = document.getElementById("quick-filter");
    if (box) box.addEventListener("input", () => {
      const q = box.value.trim().toLowerCase();
      for (const r of body.rows) r.hidden = q !== "" && !r.textContent.toLowerCase().includes(q);
    });
  }

  document.addEventListener("DOMContentLoaded", () => { drawPlot(); drawCurves(); compareButton(); staticTable(); });
})();
