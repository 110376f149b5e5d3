// The page of report.html (see report.h): static HTML, CSS and a script that builds the view from
// the data the report writer puts at @@DATA@@. No external resource of any kind: everything the
// page shows is in it (or, for large runs, beside it by relative path). Strings from the manifest
// reach the page only through textContent and attributes, never as markup.
namespace netlens {

extern const char* const kReportPage;
const char* const kReportPage = R"NETLENS_PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netlens report</title>
<style>
:root { --ink:#222; --faint:#666; --line:#ddd; --accent:#1f6fb4; --bad:#c0392b; --bg:#fafafa; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color:var(--ink); background:var(--bg); }
header { padding:10px 18px; background:#fff; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; }
#summary { color:var(--faint); font-size:13px; }
#layout { display:flex; min-height:calc(100vh - 60px); }
nav { width:250px; flex:none; border-right:1px solid var(--line); background:#fff; padding:8px; overflow:auto; max-height:calc(100vh - 60px); position:sticky; top:0; }
nav input[type=search] { width:100%; padding:4px 6px; margin-bottom:4px; }
nav ul { list-style:none; margin:6px 0; padding:0; }
nav li { padding:4px 6px; border-radius:4px; cursor:pointer; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
nav li:hover { background:#eef3f8; }
nav li.current { background:#dde8f3; font-weight:600; }
nav li .count { color:var(--faint); font-size:12px; margin-left:4px; }
nav li.has-failed .count { color:var(--bad); }
nav .pager { display:flex; gap:4px; align-items:center; font-size:12px; color:var(--faint); }
main { flex:1; padding:14px 18px; min-width:0; }
.section-head { display:flex; gap:18px; align-items:flex-start; margin-bottom:10px; }
.section-head img { max-width:200px; max-height:200px; border:1px solid var(--line); background:#fff; }
.section-head h2 { margin:0 0 4px; font-size:17px; }
.path { color:var(--faint); font-size:12px; word-break:break-all; }
.preds { margin-top:6px; }
.pred { display:flex; align-items:center; gap:6px; font-size:13px; }
.pred .bar { height:10px; background:var(--accent); border-radius:2px; }
.pred .label { width:180px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.tabs { display:flex; flex-wrap:wrap; gap:4px; border-bottom:1px solid var(--line); margin:8px 0 10px; }
.tab { border:1px solid var(--line); border-bottom:none; background:#f0f0f0; padding:5px 10px; border-radius:5px 5px 0 0; cursor:pointer; font:inherit; }
.tab.active { background:#fff; font-weight:600; position:relative; top:1px; }
.tab.failed { color:var(--bad); }
.error { border:1px solid var(--bad); background:#fdeceb; color:#7a1d14; padding:8px 10px; border-radius:4px; white-space:pre-wrap; }
.warning { border:1px solid #e0b000; background:#fff8dc; padding:6px 10px; border-radius:4px; margin:4px 0; }
.viewer { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px; margin:0 0 12px; }
.viewer-head { display:flex; align-items:center; gap:8px; margin-bottom:6px; flex-wrap:wrap; }
.viewer-head b { font-size:15px; }
.views button, .layer-nav button { font:inherit; font-size:12px; padding:2px 8px; border:1px solid var(--line); background:#f6f6f6; border-radius:4px; cursor:pointer; }
.views button.active { background:var(--accent); color:#fff; border-color:var(--accent); }
.viewer-img { display:block; max-width:100%; image-rendering:auto; border:1px solid var(--line); background:#fff; }
.viewer.figure .viewer-img { max-width:100%; }
.layer-nav { display:flex; align-items:center; gap:8px; margin-top:6px; flex-wrap:wrap; }
.layer-nav input[type=range] { width:260px; }
.layer-name { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-weight:600; }
.layer-pos { color:var(--faint); }
.gallery { display:flex; flex-wrap:wrap; gap:10px; }
.gallery figure { margin:0; text-align:center; font-size:12px; color:var(--faint); }
.gallery img { display:block; max-width:260px; max-height:260px; border:1px solid var(--line); background:#fff; }
.raw { font-size:12px; color:var(--faint); margin-top:6px; }
.raw a { margin-right:10px; }
details { margin:8px 0; }
details pre { background:#fff; border:1px solid var(--line); padding:8px; overflow:auto; max-height:420px; font-size:12px; }
#log-box { margin:10px 18px 30px; }
.empty { color:var(--faint); font-style:italic; }
table.scores { border-collapse:collapse; font-size:13px; margin:4px 0; }
table.scores td, table.scores th { border:1px solid var(--line); padding:2px 8px; text-align:left; }
table.scores th { background:#f3f3f3; }
kbd { border:1px solid var(--line); border-radius:3px; padding:0 4px; font-size:12px; background:#fff; }
</style>
</head>
<body>
<header><h1 id="title">netlens report</h1><div id="summary"></div><div id="scores"></div></header>
<div id="layout">
  <nav aria-label="inputs">
    <input type="search" id="filter" placeholder="filter inputs">
    <label><input type="checkbox" id="failed-only"> failed only</label>
    <ul id="sections"></ul>
    <div class="pager" id="pager"></div>
  </nav>
  <main id="main"></main>
</div>
<details id="log-box"><summary>step log</summary><pre id="log"></pre></details>
<script type="application/json" id="data">@@DATA@@</script>
<script>
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('data').textContent);
  var PAGE = 200;            // index entries per page (a 1,000-job batch opens fast)
  var page = 0;
  var current = -1;
  var activeViewer = null;   // the viewer the arrow keys drive

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'cls') node.className = attrs[k];
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return node;
  }
  function pct(p) { return (100 * p).toFixed(1) + '%'; }

  document.getElementById('title').textContent = data.title;
  document.title = data.title;
  var s = data.summary || {};
  var jobs = 0, failed = 0;
  data.sections.forEach(function (sec) { jobs += sec.jobs.length; failed += sec.failed; });
  document.getElementById('summary').textContent =
      jobs + ' job(s), ' + failed + ' failed, ' + data.sections.length + ' input(s)' +
      (s.seconds !== undefined ? ', ' + Number(s.seconds).toFixed(1) + ' s' : '') +
      ' \u2014 netlens ' + data.version + ' \u2014 ' + data.folder +
      (data.embedded ? '' : ' (pictures linked beside this file)');
  document.getElementById('log').textContent = data.log || '(no log)';

  // Scores of evaluate jobs: per metric, techniques ranked by their mean over the inputs.
  (function () {
    var sums = {};
    data.sections.forEach(function (sec) {
      sec.jobs.forEach(function (job) {
        ((job.metrics || {}).scores || []).forEach(function (s) {
          var m = sums[s.metric] = sums[s.metric] || {higher: s.higher_is_better, by: {}};
          var t = m.by[s.technique] = m.by[s.technique] || {total: 0, n: 0};
          t.total += s.value;
          t.n += 1;
        });
      });
    });
    var metrics = Object.keys(sums);
    if (!metrics.length) return;
    var box = el('details', {open: 'open'}, el('summary', {text: 'faithfulness scores (mean over inputs, best first)'}));
    var table = el('table', {cls: 'scores'});
    var head = el('tr', null, el('th', {text: 'metric'}));
    var width = 0;
    metrics.forEach(function (metric) {
      var m = sums[metric];
      var ranked = Object.keys(m.by).map(function (t) { return [t, m.by[t].total / m.by[t].n]; });
      ranked.sort(function (a, b) { return m.higher ? b[1] - a[1] : a[1] - b[1]; });
      width = Math.max(width, ranked.length);
      var row = el('tr', null, el('td', {text: metric + (m.higher ? ' ↑' : ' ↓')}));
      ranked.forEach(function (r) { row.appendChild(el('td', {text: r[0] + ' ' + Number(r[1]).toPrecision(4)})); });
      table.appendChild(row);
    });
    for (var i = 1; i <= width; i++) head.appendChild(el('th', {text: '#' + i}));
    table.insertBefore(head, table.firstChild);
    box.appendChild(table);
    document.getElementById('scores').appendChild(box);
  })();

  // A viewer for one artifact: its views as buttons; with several layers a slider, prev/next
  // buttons and the arrow keys flip through them (in the order the run wrote them: forward order).
  function viewer(group) {
    var layers = group.layers;
    var views = [];
    layers.forEach(function (l) { l.views.forEach(function (v) { if (views.indexOf(v[0]) < 0) views.push(v[0]); }); });
    var view = ['figure', 'heatmap', 'animation', 'grid', 'color'].filter(function (v) { return views.indexOf(v) >= 0; })[0] || views[0];
    var index = 0;
    var box = el('div', {cls: 'viewer' + (view === 'figure' ? ' figure' : ''), 'data-artifact': group.artifact});
    var img = el('img', {cls: 'viewer-img', alt: group.artifact});
    var caption = el('div', {cls: 'path'});
    var name = el('span', {cls: 'layer-name'});
    var pos = el('span', {cls: 'layer-pos'});
    var slider = el('input', {type: 'range', min: 0, max: Math.max(0, layers.length - 1), value: 0, cls: 'layer-slider', 'aria-label': 'layer'});
    var buttons = {};
    var many = el('div', {cls: 'gallery'});  // a view with several pictures (a batch's samples)
    function entries() {
      var l = layers[index];
      var list = l.views.filter(function (x) { return x[0] === view; });
      return list.length ? list : [l.views[0]];
    }
    function show() {
      var list = entries();
      var v = list[0];
      many.textContent = '';
      if (list.length > 1) {
        list.forEach(function (e) {
          many.appendChild(el('figure', null, el('img', {src: e[1], alt: e[2] || e[0], loading: 'lazy'}), el('figcaption', {text: e[2] || ''})));
        });
      } else {
        img.src = v[1];
      }
      img.style.display = list.length > 1 ? 'none' : '';
      caption.textContent = list.length > 1 ? '' : (v[2] || '');
      name.textContent = layers[index].layer || '';
      pos.textContent = layers.length > 1 ? (index + 1) + ' / ' + layers.length : '';
      slider.value = index;
      Object.keys(buttons).forEach(function (k) { buttons[k].classList.toggle('active', k === view); });
    }
    // Viewers of one job flip together: the others show the same layer when they have it.
    function sync() {
      var panel = box.closest('.job');
      if (!panel) return;
      var name = layers[index].layer;
      panel.querySelectorAll('.viewer').forEach(function (v) { if (v !== box && v.selectLayer) v.selectLayer(name); });
    }
    box.selectLayer = function (name) {
      for (var i = 0; i < layers.length; i++) if (layers[i].layer === name) { index = i; show(); return; }
    };
    box.step = function (d) { index = Math.min(layers.length - 1, Math.max(0, index + d)); activeViewer = box; show(); sync(); };
    var head = el('div', {cls: 'viewer-head'}, el('b', {text: group.artifact}));
    if (views.length > 1) {
      var vs = el('span', {cls: 'views'});
      views.forEach(function (v) {
        buttons[v] = el('button', {text: v, type: 'button', onclick: function () { view = v; activeViewer = box; show(); }});
        vs.appendChild(buttons[v]);
      });
      head.appendChild(vs);
    }
    box.appendChild(head);
    box.appendChild(img);
    box.appendChild(many);
    if (layers.length > 1) {
      slider.addEventListener('input', function () { index = Number(slider.value); activeViewer = box; show(); sync(); });
      box.appendChild(el('div', {cls: 'layer-nav'},
          el('button', {cls: 'prev', type: 'button', text: '\u25c0 previous layer', onclick: function () { box.step(-1); }}),
          slider,
          el('button', {cls: 'next', type: 'button', text: 'next layer \u25b6', onclick: function () { box.step(1); }}),
          name, pos, el('span', {cls: 'path', text: 'or \u2190 / \u2192'})));
      if (!activeViewer) activeViewer = box;
    } else if (layers[0].layer) {
      box.appendChild(el('div', {cls: 'layer-nav'}, name));
    }
    box.appendChild(caption);
    show();
    return box;
  }

  // Several pictures without layers (samples of a batch, or views side by side).
  function gallery(group) {
    var g = el('div', {cls: 'gallery'});
    group.layers[0].views.forEach(function (v) {
      g.appendChild(el('figure', null, el('img', {src: v[1], alt: v[2] || v[0], loading: 'lazy'}), el('figcaption', {text: v[2] || v[0]})));
    });
    return el('div', {cls: 'viewer', 'data-artifact': group.artifact}, el('div', {cls: 'viewer-head'}, el('b', {text: group.artifact})), g);
  }

  function rawLinks(groups) {
    var links = [];
    groups.forEach(function (g) { g.raw.forEach(function (r) { links.push(el('a', {href: r[1], text: r[0]})); }); });
    if (!links.length) return null;
    var d = el('div', {cls: 'raw'}, 'raw arrays (.npy): ');
    links.forEach(function (a) { d.appendChild(a); });
    return d;
  }

  function jobPanel(job) {
    var panel = el('div', {cls: 'job'});
    if (job.status === 'failed') panel.appendChild(el('div', {cls: 'error', text: 'failed: ' + job.error}));
    (job.warnings || []).forEach(function (w) { panel.appendChild(el('div', {cls: 'warning', text: w})); });
    if (job.skipped) panel.appendChild(el('div', {cls: 'path', text: 'outputs from an earlier run (--skip-existing)'}));
    var shown = job.groups.filter(function (g) { return g.layers.length > 0; });
    // Figures first (gist, factorize), then animations, then the rest in the technique's order.
    function rank(g) {
      var v = g.layers[0].views.map(function (x) { return x[0]; });
      return v.indexOf('figure') >= 0 ? 0 : v.indexOf('animation') >= 0 ? 1 : 2;
    }
    shown.sort(function (a, b) { return rank(a) - rank(b); });
    shown.forEach(function (g) {
      var single = g.layers.length === 1 && !g.layers[0].layer;
      var sameView = single && g.layers[0].views.every(function (v) { return v[0] === g.layers[0].views[0][0]; });
      panel.appendChild(single && sameView && g.layers[0].views.length > 1 ? gallery(g) : viewer(g));
    });
    if (!shown.length && job.status !== 'failed') panel.appendChild(el('div', {cls: 'empty', text: 'no pictures'}));
    var raw = rawLinks(job.groups);
    if (raw) panel.appendChild(raw);
    if (job.metrics) panel.appendChild(el('details', null, el('summary', {text: 'metrics'}), el('pre', {text: JSON.stringify(job.metrics, null, 2)})));
    if (job.options) panel.appendChild(el('details', null, el('summary', {text: 'options'}), el('pre', {text: JSON.stringify(job.options, null, 2)})));
    if (job.timings_ms) panel.appendChild(el('details', null, el('summary', {text: 'timings (ms)'}), el('pre', {text: JSON.stringify(job.timings_ms, null, 2)})));
    return panel;
  }

  function showSection(i) {
    if (i < 0 || i >= data.sections.length) return;
    current = i;
    activeViewer = null;
    var sec = data.sections[i];
    var main = document.getElementById('main');
    main.textContent = '';
    var head = el('div', {cls: 'section-head'});
    if (sec.image) {
      var input = el('img', {src: sec.image, alt: sec.title});
      input.addEventListener('load', function () {  // a 28 x 28 input: shown enlarged, pixels sharp
        if (input.naturalWidth < 120) { input.style.width = '160px'; input.style.imageRendering = 'pixelated'; }
      });
      head.appendChild(input);
    }
    var info = el('div', null, el('h2', {text: sec.title}), el('div', {cls: 'path', text: sec.path}));
    if (sec.predictions.length) {
      var preds = el('div', {cls: 'preds'});
      sec.predictions.forEach(function (p) {
        preds.appendChild(el('div', {cls: 'pred'}, el('span', {cls: 'label', text: p.label + ' (' + p.index + ')'}),
            el('span', {cls: 'bar', style: 'width:' + Math.max(1, Math.round(160 * p.probability)) + 'px'}),
            el('span', {text: pct(p.probability)})));
      });
      info.appendChild(preds);
    }
    head.appendChild(info);
    main.appendChild(head);
    var tabs = el('div', {cls: 'tabs', role: 'tablist'});
    var body = el('div');
    var tabButtons = [];
    sec.jobs.forEach(function (job, k) {
      var label = job.technique + (job.target ? ' \u2192 ' + job.target : '') + (job.status === 'failed' ? ' (failed)' : '');
      var b = el('button', {cls: 'tab' + (job.status === 'failed' ? ' failed' : ''), type: 'button', role: 'tab', text: label,
        onclick: function () {
          tabButtons.forEach(function (t) { t.classList.remove('active'); });
          b.classList.add('active');
          activeViewer = null;
          body.textContent = '';
          body.appendChild(jobPanel(job));
        }});
      tabButtons.push(b);
      tabs.appendChild(b);
    });
    main.appendChild(tabs);
    main.appendChild(body);
    if (tabButtons.length) tabButtons[0].click();
    renderIndex();
    if (location.hash !== '#s' + i) history.replaceState(null, '', '#s' + i);
  }

  function renderIndex() {
    var q = document.getElementById('filter').value.toLowerCase();
    var failedOnly = document.getElementById('failed-only').checked;
    var list = document.getElementById('sections');
    list.textContent = '';
    var matches = [];
    data.sections.forEach(function (sec, i) {
      if (failedOnly && !sec.failed) return;
      if (q && (sec.title + ' ' + sec.path).toLowerCase().indexOf(q) < 0) return;
      matches.push(i);
    });
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    page = Math.min(page, pages - 1);
    matches.slice(page * PAGE, (page + 1) * PAGE).forEach(function (i) {
      var sec = data.sections[i];
      list.appendChild(el('li', {cls: (i === current ? 'current ' : '') + (sec.failed ? 'has-failed' : ''), title: sec.path || sec.title,
        onclick: function () { showSection(i); }}, sec.title,
        el('span', {cls: 'count', text: sec.jobs.length + (sec.failed ? ', ' + sec.failed + ' failed' : '')})));
    });
    var pager = document.getElementById('pager');
    pager.textContent = '';
    if (pages > 1) {
      pager.appendChild(el('button', {type: 'button', text: '\u25c0', onclick: function () { page = Math.max(0, page - 1); renderIndex(); }}));
      pager.appendChild(el('span', {text: 'page ' + (page + 1) + ' / ' + pages + ' (' + matches.length + ')'}));
      pager.appendChild(el('button', {type: 'button', text: '\u25b6', onclick: function () { page = Math.min(pages - 1, page + 1); renderIndex(); }}));
    }
  }

  document.getElementById('filter').addEventListener('input', function () { page = 0; renderIndex(); });
  document.getElementById('failed-only').addEventListener('change', function () { page = 0; renderIndex(); });
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (t && (t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && t.type !== 'range'))) return;
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      if (!activeViewer) return;
      e.preventDefault();
      activeViewer.step(e.key === 'ArrowRight' ? 1 : -1);
    }
  });
  var start = /^#s(\d+)$/.exec(location.hash);
  if (data.sections.length) showSection(start ? Math.min(Number(start[1]), data.sections.length - 1) : 0);
  else document.getElementById('main').appendChild(el('div', {cls: 'empty', text: 'The manifest lists no jobs.'}));
})();
</script>
</body>
</html>
)NETLENS_PAGE";

}  // namespace netlens
