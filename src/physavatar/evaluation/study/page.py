"""The rating page: HTML, CSS and JavaScript as strings, so a pip install serves it with no build step and no
package-data configuration. The script renders the rubric it fetches from the API; the HTML itself holds only
the rater's token (no method, input or file name is ever sent to a rater).

Keyboard: Tab moves between the five dimensions, the arrow keys change a score by 0.5, digits 1-5 set a whole
score in the focused dimension, Enter saves and goes to the next video, P plays/pauses, [ goes back.
"""

from __future__ import annotations

import html

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{title}</title>
<link rel="stylesheet" href="/static/study.css"></head>"""


def message_page(title: str, message: str) -> bytes:
    return (_HEAD.format(title=html.escape(title)) + f'<body><main class="message"><h1>{html.escape(title)}</h1>'
            f"<p>{html.escape(message)}</p></main></body></html>").encode()


def rating_page(title: str, token: str) -> str:
    """`title` must be HTML-escaped already; `token` must match storage.TOKEN_RE."""
    return _HEAD.format(title=title) + f"""
<body data-token="{token}">
<header class="top">
  <h1>{title}</h1>
  <div class="progress" aria-live="polite"><span id="position">– / –</span>
    <span class="bar"><span id="bar-fill"></span></span><span id="done-count"></span></div>
</header>
<main class="layout">
  <section class="player">
    <video id="player" controls controlslist="nodownload" disablepictureinpicture loop playsinline
      preload="auto"></video>
    <p class="hint">Watch the whole video with sound, then score all five dimensions.
      Scores run from 1 to 5 in steps of 0.5; a half point lies between the two descriptions around it.</p>
    <div class="nav">
      <button type="button" id="prev">← Previous</button>
      <button type="submit" id="save" form="scores" class="primary">Save &amp; next →</button>
    </div>
    <p id="status" role="status" aria-live="polite"></p>
    <p class="keys">Keys: <kbd>Tab</kbd> next dimension · <kbd>←</kbd><kbd>→</kbd> ±0.5 ·
      <kbd>1</kbd>–<kbd>5</kbd> whole score · <kbd>Enter</kbd> save &amp; next · <kbd>P</kbd> play/pause ·
      <kbd>[</kbd> previous</p>
  </section>
  <form id="scores" class="dims" novalidate></form>
</main>
<noscript><p class="message">This page needs JavaScript.</p></noscript>
<script src="/static/study.js"></script>
</body></html>"""


CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
  background: #f4f6f9; }
h1 { font-size: 18px; margin: 0; font-weight: 600; }
.top { display: flex; align-items: center; justify-content: space-between; gap: 16px; padding: 10px 20px;
  background: #fff; border-bottom: 1px solid #dde2ea; position: sticky; top: 0; z-index: 2; }
.progress { display: flex; align-items: center; gap: 10px; font-variant-numeric: tabular-nums; }
#position { font-weight: 600; font-size: 17px; white-space: nowrap; }
.bar { width: 160px; height: 8px; background: #e3e8ef; border-radius: 4px; overflow: hidden; }
#bar-fill { display: block; height: 100%; width: 0; background: #2f6fde; transition: width .2s; }
#done-count { color: #5b6778; font-size: 13px; }
.layout { display: grid; grid-template-columns: minmax(280px, 0.8fr) minmax(520px, 1.6fr); gap: 20px;
  padding: 16px 20px; max-width: 1400px; margin: 0 auto; }
.player { position: sticky; top: 64px; align-self: start; }
video { width: 100%; max-height: 60vh; background: #111; border-radius: 8px; display: block; }
.hint { color: #5b6778; font-size: 13px; margin: 8px 0; }
.nav { display: flex; gap: 10px; justify-content: space-between; }
button { font: inherit; padding: 8px 16px; border-radius: 6px; border: 1px solid #b9c2cf; background: #fff;
  cursor: pointer; }
button.primary { background: #2f6fde; color: #fff; border-color: #2f6fde; font-weight: 600; }
button:disabled { opacity: .5; cursor: default; }
button:focus-visible, .scale input:focus-visible + label { outline: 3px solid #f0b429; outline-offset: 2px; }
#status { min-height: 1.4em; margin: 8px 0; font-weight: 500; }
#status.error { color: #b42318; } #status.ok { color: #1a7f37; }
.keys { color: #5b6778; font-size: 12px; }
kbd { border: 1px solid #c7ced9; border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; font-size: 11px;
  background: #fff; }
.dims { display: flex; flex-direction: column; gap: 8px; }
fieldset.dim { margin: 0; border: 1px solid #dde2ea; border-radius: 8px; background: #fff; padding: 6px 14px 10px; }
fieldset.dim.missing { border-color: #b42318; box-shadow: 0 0 0 1px #b42318; }
fieldset.dim:focus-within { border-color: #2f6fde; }
legend { font-weight: 600; padding: 0 4px; }
legend .value { font-weight: 600; color: #2f6fde; margin-left: 6px; }
.question { margin: 0 0 6px; color: #3b4656; font-size: 13px; font-style: italic; }
.dim-body { display: grid; grid-template-columns: auto 1fr; gap: 12px; align-items: start; }
.scale { display: grid; grid-template-columns: repeat(9, 34px); gap: 3px; }
.scale input { position: absolute; opacity: 0; width: 1px; height: 1px; }
.scale label { display: block; text-align: center; padding: 5px 0; border: 1px solid #b9c2cf; border-radius: 5px;
  cursor: pointer; font-size: 13px; font-variant-numeric: tabular-nums; user-select: none; }
.scale label.half { color: #6b7686; font-size: 12px; }
.scale input:checked + label { background: #2f6fde; border-color: #2f6fde; color: #fff; }
ol.rubric { list-style: none; margin: 0; padding: 0; font-size: 12.5px; line-height: 1.35; color: #5b6778; }
ol.rubric li { padding: 0 6px; border-radius: 4px; }
ol.rubric li b { color: #1d2430; display: inline-block; width: 1.3em; }
ol.rubric li.on { background: #e6efff; color: #1d2430; }
.message { max-width: 640px; margin: 80px auto; background: #fff; padding: 24px 28px; border-radius: 8px;
  border: 1px solid #dde2ea; }
.banner { background: #e8f5ec; border: 1px solid #9fd3ad; padding: 8px 12px; border-radius: 6px; margin: 8px 0; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; padding: 10px; } .player { position: static; }
  .dim-body { grid-template-columns: 1fr; } .bar, .keys { display: none; } h1 { font-size: 16px; } }
"""


JS = r"""
"use strict";
(function () {
  const token = document.body.dataset.token;
  const $ = (id) => document.getElementById(id);
  const form = $("scores"), player = $("player"), status = $("status");
  let rubric = [], scores = [], items = [], index = 0, done = 0, total = 0, saving = false;
  const drafts = {};  // item -> {dim: score}: unsaved choices survive Previous/Next within this visit

  function say(text, kind) { status.textContent = text; status.className = kind || ""; }
  function fmt(s) { return Number.isInteger(s) ? String(s) : s.toFixed(1); }

  function build() {
    for (const d of rubric) {
      const fs = document.createElement("fieldset");
      fs.className = "dim"; fs.id = "dim-" + d.key; fs.dataset.dim = d.key;
      const lg = document.createElement("legend");
      lg.textContent = d.title;
      const val = document.createElement("span"); val.className = "value"; lg.appendChild(val);
      const q = document.createElement("p"); q.className = "question"; q.textContent = d.question;
      const body = document.createElement("div"); body.className = "dim-body";
      const scale = document.createElement("div"); scale.className = "scale";
      scale.setAttribute("role", "radiogroup"); scale.setAttribute("aria-label", d.title);
      for (const s of scores) {
        const id = d.key + "-" + fmt(s).replace(".", "_");
        const input = document.createElement("input");
        input.type = "radio"; input.name = d.key; input.value = String(s); input.id = id;
        const label = document.createElement("label");
        label.htmlFor = id; label.textContent = fmt(s);
        if (!Number.isInteger(s)) label.className = "half";
        label.title = d.title + ": " + fmt(s);
        scale.append(input, label);
      }
      const ol = document.createElement("ol"); ol.className = "rubric";
      for (const lv of d.levels) {
        const li = document.createElement("li"); li.dataset.score = lv.score;
        const b = document.createElement("b"); b.textContent = lv.score;
        li.append(b, document.createTextNode(lv.text)); ol.appendChild(li);
      }
      body.append(scale, ol);
      fs.append(lg, q, body);
      form.appendChild(fs);
    }
  }

  function current() {
    const out = {};
    for (const d of rubric) {
      const c = form.querySelector('input[name="' + d.key + '"]:checked');
      if (c) out[d.key] = Number(c.value);
    }
    return out;
  }

  function paint() {  // value next to each title and the rubric lines around the chosen score
    const cur = current();
    for (const d of rubric) {
      const fs = $("dim-" + d.key), v = cur[d.key];
      fs.querySelector(".value").textContent = v === undefined ? "" : fmt(v);
      if (v !== undefined) fs.classList.remove("missing");
      for (const li of fs.querySelectorAll("li")) {
        const s = Number(li.dataset.score);
        li.classList.toggle("on", v !== undefined && Math.abs(s - v) < 1);
      }
    }
  }

  function complete(it) { return rubric.every((d) => it.scores[d.key] !== undefined); }

  function show(i) {
    if (items.length) drafts[items[index].item] = current();
    index = Math.max(0, Math.min(i, items.length - 1));
    const it = items[index];
    const values = Object.assign({}, it.scores, drafts[it.item] || {});
    for (const input of form.querySelectorAll("input")) {
      input.checked = values[input.name] !== undefined && Number(input.value) === values[input.name];
    }
    for (const fs of form.querySelectorAll("fieldset")) fs.classList.remove("missing");
    if (player.getAttribute("src") !== it.video) { player.setAttribute("src", it.video); player.load(); }
    $("position").textContent = (index + 1) + " / " + items.length;
    $("prev").disabled = index === 0;
    paint(); progress();
    say(complete(it) ? "Already saved; change any score and save again to revise." : "");
  }

  function progress() {
    $("done-count").textContent = done + " of " + total + " rated";
    $("bar-fill").style.width = (total ? 100 * done / total : 0) + "%";
  }

  async function save(ev) {
    if (ev) ev.preventDefault();
    if (saving) return;
    const it = items[index], cur = current();
    const missing = rubric.filter((d) => cur[d.key] === undefined);
    if (missing.length) {
      for (const d of missing) $("dim-" + d.key).classList.add("missing");
      say("Score every dimension first: " + missing.map((d) => d.title).join(", ") + ".", "error");
      $("dim-" + missing[0].key).querySelector("input").focus();
      return;
    }
    saving = true; $("save").disabled = true;
    try {
      const r = await fetch("/api/r/" + token + "/answers", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({item: it.item, scores: cur})});
      const j = await r.json().catch(() => ({error: "the server sent no JSON (HTTP " + r.status + ")"}));
      if (!r.ok) { say("Not saved: " + j.error, "error"); return; }
      it.scores = cur; delete drafts[it.item]; done = j.done; total = j.total;
      const next = items.findIndex((x, k) => k > index && !complete(x));
      const first = items.findIndex((x) => !complete(x));
      if (done === total) {
        show(index);
        say("All " + total + " videos rated. Thank you! You may close this page (or go back to revise).", "ok");
      } else {
        show(next >= 0 ? next : first);
        say("Saved.", "ok");
      }
    } catch (e) {
      say("Not saved (network problem: " + e.message + "); check the connection and press Save again.", "error");
    } finally {
      saving = false; $("save").disabled = false;
    }
  }

  form.addEventListener("submit", save);
  form.addEventListener("change", paint);
  $("prev").addEventListener("click", () => show(index - 1));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target, inForm = t instanceof HTMLInputElement && t.type === "radio";
    if (e.key === "Enter" && (inForm || t === document.body)) { e.preventDefault(); save(); }
    else if ((e.key === "p" || e.key === "P") && t.tagName !== "TEXTAREA") {
      e.preventDefault(); if (player.paused) player.play().catch(() => {}); else player.pause();
    } else if (e.key === "[") { e.preventDefault(); show(index - 1); }
    else if (inForm && /^[1-5]$/.test(e.key)) {
      e.preventDefault();
      const input = form.querySelector('input[name="' + t.name + '"][value="' + e.key + '"]');
      input.checked = true; input.focus(); paint();
    }
  });

  fetch("/api/r/" + token + "/items").then((r) => r.json().then((j) => ({r, j}))).then(({r, j}) => {
    if (!r.ok) { say(j.error, "error"); return; }
    rubric = j.rubric; scores = j.scores; items = j.items; done = j.done; total = j.total;
    build();
    const first = items.findIndex((x) => !complete(x));
    show(first >= 0 ? first : 0);
    if (first < 0) say("All " + total + " videos rated. Thank you! You can still revise any of them.", "ok");
  }).catch((e) => say("Could not load the study: " + e.message, "error"));
})();
"""
