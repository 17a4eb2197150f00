// The ragfleet web page: ask a question, read the cited answer, open a cited passage,
// compare the hits' scores, and see each stage's latency against the budget.
// Data is only ever inserted with textContent (never innerHTML).
"use strict";

const $ = (id) => document.getElementById(id);
const STAGES = ["embed", "search", "rerank", "generate"];
let lastHits = [];

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers() {
  const key = $("key").value.trim();
  sessionStorage.setItem("ragfleet-key", key);
  return { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
}

// The collections this key may read (GET /v1/collections needs the key: nothing about the
// server is shown to a page without one).
async function loadCollections() {
  if (!$("key").value.trim()) return;
  const res = await fetch("/v1/collections", { headers: headers() });
  const body = await res.json();
  if (!res.ok) {
    setStatus(`${res.status} ${body.error.code}: ${body.error.message}`, true);
    return;
  }
  setStatus("", false);
  const select = $("collection");
  select.replaceChildren(...body.collections.map((name) => el("option", "", name)));
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function ask(event) {
  event.preventDefault();
  const name = encodeURIComponent($("collection").value);
  const body = { question: $("question").value, budget_ms: Number($("budget").value) };
  setStatus("asking…", false);
  const res = await fetch(`/v1/collections/${name}/ask`, {
    method: "POST", headers: headers(), body: JSON.stringify(body),
  });
  const out = await res.json();
  if (!res.ok) {
    setStatus(`${res.status} ${out.error.code}: ${out.error.message}`, true);
    return;
  }
  setStatus("", false);
  lastHits = out.hits;
  renderAnswer(out);
  renderHits(out.hits);
  renderWaterfall(out.timings_ms, out.budget_ms);
}

function renderAnswer(out) {
  const answer = $("answer");
  answer.replaceChildren();
  const text = out.answer ?? "(no answer: generation was skipped)";
  const byN = new Map(out.citations.map((c) => [c.n, c]));
  for (const part of text.split(/(\[\d+\])/)) {
    const m = part.match(/^\[(\d+)\]$/);
    if (m && byN.has(Number(m[1]))) {
      const btn = el("button", "cite", part);
      btn.type = "button";
      btn.dataset.n = m[1];
      btn.addEventListener("click", () => openPassage(byN.get(Number(m[1]))));
      answer.append(btn);
    } else {
      answer.append(document.createTextNode(part));
    }
  }
  const notes = Object.entries(out.degraded).map(([s, why]) => `${s}: ${why}`);
  $("degraded").textContent = notes.join(" · ");
  $("answer-panel").hidden = false;
  $("passage-panel").hidden = true;
}

function openPassage(citation) {
  const hit = lastHits.find((h) => h.chunk_id === citation.chunk_id);
  if (!hit) return;
  $("passage-n").textContent = `[${citation.n}]`;
  $("passage-title").textContent = hit.title || hit.doc_id;
  $("passage-id").textContent = hit.chunk_id;
  const quote = $("passage");
  quote.replaceChildren();
  const [a, b] = citation.span || [0, 0];
  if (b > a) {
    quote.append(hit.text.slice(0, a), el("mark", "", hit.text.slice(a, b)), hit.text.slice(b));
  } else {
    quote.textContent = hit.text;
  }
  $("passage-panel").hidden = false;
  $("passage-panel").scrollIntoView({ block: "nearest" });
}

function fmt(x) {
  return typeof x === "number" ? x.toFixed(4) : "–";
}

function renderHits(hits) {
  const list = $("hits");
  list.replaceChildren();
  for (const h of hits) {
    const item = el("li", "hit");
    item.append(el("strong", "", h.title || h.doc_id), el("span", "meta", `  ${h.chunk_id}`));
    const scores = el("div", "scores");
    for (const s of ["dense", "sparse", "fused", "rerank"]) {
      scores.append(el("span", `score-${s}`, `${s} ${fmt(h.scores[s])}`));
    }
    item.append(scores, el("p", "snippet", h.text.slice(0, 300)));
    list.append(item);
  }
  $("hits-panel").hidden = false;
}

function renderWaterfall(timings, budget) {
  const box = $("waterfall");
  box.replaceChildren();
  const scale = Math.max(budget, timings.total || 0);
  let start = 0;
  for (const stage of STAGES) {
    const ms = timings[stage] || 0;
    const row = el("div", "row");
    row.dataset.stage = stage;
    const track = el("div", "track");
    const bar = el("div", "bar");
    bar.style.left = `${(100 * start) / scale}%`;
    bar.style.width = `${Math.max((100 * ms) / scale, 0.3)}%`;
    const line = el("div", "budget-line");
    line.style.left = `${(100 * budget) / scale}%`;
    track.append(bar, line);
    if (start + ms > budget) row.classList.add("over");
    row.append(el("span", "", stage), track, el("span", "meta", `${ms.toFixed(1)} ms`));
    box.append(row);
    start += ms;
  }
  $("total").textContent = `total ${timings.total.toFixed(1)} ms of ${budget} ms budget`;
  $("waterfall-panel").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = sessionStorage.getItem("ragfleet-key") || "";
  $("ask-form").addEventListener("submit", (e) => ask(e).catch((err) => setStatus(String(err), true)));
  $("passage-close").addEventListener("click", () => { $("passage-panel").hidden = true; });
  const load = () => loadCollections().catch((err) => setStatus(String(err), true));
  $("key").addEventListener("change", load);
  load();
});
