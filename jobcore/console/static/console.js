// The console's behaviour: live updates by server-sent events (closed while the tab is hidden),
// charts, keyboard shortcuts, and the CSRF header on htmx requests. No inline script anywhere.
(function () {
  "use strict";
  var body = document.body;
  var source = null;

  function liveOn() {
    if (!body.dataset.live || source || document.hidden || !window.EventSource) return;
    source = new EventSource("/events");
    source.addEventListener("open", function () { dot(true); });
    source.addEventListener("change", function () { htmx.trigger(body, "live"); });
    source.addEventListener("error", function () { dot(false); });
  }
  function liveOff() {
    if (source) { source.close(); source = null; }
    dot(false);
  }
  function dot(on) {
    var el = document.getElementById("live-dot");
    if (el) el.classList.toggle("on", on);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { liveOff(); } else { liveOn(); if (body.dataset.live) htmx.trigger(body, "live"); }
  });

  // htmx: send the session's CSRF token; keep open <details> open across a live swap
  document.addEventListener("htmx:configRequest", function (e) {
    if (body.dataset.csrf) e.detail.headers["X-CSRF-Token"] = body.dataset.csrf;
  });
  var opened = [];
  document.addEventListener("htmx:beforeSwap", function () {
    opened = Array.prototype.map.call(document.querySelectorAll("details[open][id]"), function (d) { return d.id; });
  });
  document.addEventListener("htmx:afterSettle", function () {
    opened.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
    charts();
  });

  // charts (uPlot), from the JSON the page embeds
  var plots = [];
  function charts() {
    var data = document.getElementById("series-data");
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    if (!data || !window.uPlot) return;
    var s = JSON.parse(data.dataset.series);
    var css = getComputedStyle(document.documentElement);
    var ok = css.getPropertyValue("--ok").trim(), bad = css.getPropertyValue("--bad").trim();
    var accent = css.getPropertyValue("--accent").trim(), warn = css.getPropertyValue("--warn").trim();
    var axis = { stroke: css.getPropertyValue("--muted").trim(), grid: { stroke: css.getPropertyValue("--line").trim() } };
    var specs = {
      done: [[s.t, s.done], [{ label: "finished", stroke: ok, fill: ok + "33" }]],
      failed: [[s.t, s.failed], [{ label: "failed", stroke: bad, fill: bad + "33" }]],
      latency: [[s.t, s.wait_p95, s.run_p95], [{ label: "wait p95", stroke: warn }, { label: "run p95", stroke: accent }]]
    };
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var spec = specs[el.dataset.chart];
      if (!spec) return;
      var opts = { width: Math.max(280, el.clientWidth), height: 180, series: [{}].concat(spec[1]),
                   axes: [axis, axis], legend: { show: true }, cursor: { drag: { x: false, y: false } } };
      plots.push(new uPlot(opts, spec[0], el));
    });
  }

  // keyboard: / search, g+letter navigation, j/k rows, Enter opens, n next page, ? help
  var pending = null;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-href]")).filter(function (r) { return r.dataset.href; }); }
  function select(delta) {
    var all = rows(); if (!all.length) return;
    var at = all.findIndex(function (r) { return r.classList.contains("selected"); });
    if (at >= 0) all[at].classList.remove("selected");
    var next = Math.min(all.length - 1, Math.max(0, at + delta));
    all[next].classList.add("selected");
    all[next].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      if (e.key === "Escape") t.blur();
      return;
    }
    if (pending) {
      var link = document.querySelector('[data-key="g ' + e.key + '"]');
      pending = null;
      if (link) { e.preventDefault(); link.click(); }
      return;
    }
    if (e.key === "g") { pending = true; setTimeout(function () { pending = null; }, 1200); return; }
    if (e.key === "/") { var s = document.getElementById("search"); if (s) { e.preventDefault(); s.focus(); } return; }
    if (e.key === "j") { select(1); return; }
    if (e.key === "k") { select(-1); return; }
    if (e.key === "Enter") { var sel = document.querySelector("tr.selected[data-href]"); if (sel) window.location = sel.dataset.href; return; }
    if (e.key === "n") { var n = document.querySelector('[data-key="n"]'); if (n) n.click(); return; }
    if (e.key === "?") { var d = document.getElementById("keys"); if (d && d.showModal) d.showModal(); }
  });
  document.addEventListener("click", function (e) {
    var row = e.target.closest && e.target.closest("tr[data-href]");
    if (row && row.dataset.href && !e.target.closest("a, button, input, summary, details, form")) window.location = row.dataset.href;
  });

  document.addEventListener("DOMContentLoaded", function () { charts(); liveOn(); });
  window.addEventListener("resize", function () { charts(); });
})();
