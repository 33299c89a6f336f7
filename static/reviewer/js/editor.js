// Loupe's review editor: an SVG layer over the image, driven keyboard first.
//
// The page embeds the image payload (boxes, proposals, version), the labels with their model
// thresholds and a little config. Submit/skip answer with the next image's payload, which is swapped
// in place (its file was prefetched), so the reviewer never waits for a page load.
//
// Item states: undecided (a proposal nobody judged yet), accepted, adjusted (moved, resized or
// relabeled proposal), added (drawn by the reviewer), rejected. The confidence sliders hide
// proposals below them; hidden is not rejected, but Enter accepts only visible undecided boxes, so a
// hidden undecided proposal is saved as rejected (marked "hidden" in the audit) unless accepted.

const SVG_NS = "http://www.w3.org/2000/svg";
const ZOOM_KEY = "loupe.review.zoom";
const ZOOM_MIN = 0.25;
const ZOOM_MAX = 8;
const HANDLE_PX = 9;
const MIN_DRAW_PX = 4;
const DECIDED = new Set(["accepted", "adjusted", "added"]);
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("review-config").textContent);
const labels = JSON.parse($("review-labels").textContent);
const labelById = new Map(labels.map((l) => [l.id, l]));
// Slider positions survive image changes in this tab: a reviewer sets them once per session.
const minConfidence = new Map(labels.map((l) => [l.id, l.threshold]));

const ui = {
  app: $("review-app"), stage: $("stage"), canvas: $("canvas"), progress: $("progress"),
  timer: $("timer"), name: $("image-name"), message: $("message"), labels: $("label-list"),
  boxes: $("box-list"), summary: $("box-summary"), help: $("help"),
};

const state = {
  image: null, items: [], selected: null, hideAll: false, drawArmed: false,
  drawLabel: labels.length ? labels[0].id : null, zoom: clampZoom(Number(localStorage.getItem(ZOOM_KEY)) || 1),
  undo: [], redo: [], lastNudge: 0, drag: null, busy: false, startedAt: null, t0: 0, nextKey: 1,
  prefetched: null, leaseLost: false,
};
let svg = null;

function clampZoom(z) { return Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, z)); }
function roundRect([l, t, w, h]) {
  const left = Math.round(l), top = Math.round(t);
  return [left, top, Math.round(l + w) - left, Math.round(t + h) - top];
}
function sameRect(a, b) { return a.length === b.length && a.every((v, i) => v === b[i]); }
function editable() { return state.image && state.image.editable; }
function find(key) { return state.items.find((it) => it.key === key) || null; }

// ---- model ---------------------------------------------------------------------------------

function load(payload) {
  state.image = payload;
  state.items = payload.items.map((it) => ({ ...it, rect: roundRect(it.rect), key: state.nextKey++ }));
  state.selected = null; state.undo = []; state.redo = []; state.drag = null;
  state.drawArmed = false; state.leaseLost = false; state.busy = false;
  // A nudge on the previous image must not fold this image's first nudge into its undo step.
  state.lastNudge = 0;
  state.baseline = itemsSnapshot();
  state.startedAt = new Date().toISOString(); state.t0 = performance.now();
  tick(); // the previous image's time must not linger until the next second
  ui.progress.textContent = `${payload.progress.left} of ${payload.progress.total} left in ${payload.progress.iteration}`;
  ui.name.replaceChildren(document.createTextNode(`${payload.name} `), span("dim", `${payload.width}×${payload.height}`));
  document.title = `${payload.name} · Review ${payload.progress.iteration} · Loupe`;
  hideMessage();
  buildStage();
  focusStage();
  ui.stage.scrollTo(0, 0);
  render();
  prefetch(payload.prefetch_url);
  announce(true);
}

// Only undecided proposals hide: a box the reviewer decided on (or looked at, by selecting it from
// the list) is always drawn and reachable with Tab, or they would draw a duplicate of it.
function hiddenBySlider(it) {
  return it.state === "undecided" && !it.revealed && it.confidence !== null &&
    it.confidence < (minConfidence.get(it.label) ?? 0);
}
function shown(it) { return !state.hideAll && (!hiddenBySlider(it) || it.key === state.selected); }
function cycleable(it) { return !hiddenBySlider(it); }

function itemsSnapshot() {
  return JSON.stringify(state.items.map(({ label, rect, state: s, revealed }) => [label, rect, s, !!revealed]));
}
function dirty() { return state.image && state.image.editable && itemsSnapshot() !== state.baseline; }

function snapshot() {
  return JSON.stringify({ items: state.items, selected: state.selected });
}
function remember() {
  state.undo.push(snapshot());
  if (state.undo.length > 200) state.undo.shift();
  state.redo = [];
}
function restore(from, to) {
  if (!from.length) return;
  to.push(snapshot());
  const saved = JSON.parse(from.pop());
  state.items = saved.items; state.selected = saved.selected;
  render();
}

// A proposal touched by the reviewer is accepted when it still matches the model, else adjusted.
function settle(it) {
  if (it.original) {
    it.state = it.label === it.original.label && sameRect(it.rect, it.original.rect) ? "accepted" : "adjusted";
  }
}

function accept(it) {
  if (it.state === "added") return;
  remember(); settle(it); selectNextUndecided(it);
}

function reject(it) {
  remember();
  if (it.proposal === null) state.items = state.items.filter((x) => x.key !== it.key);
  else it.state = "rejected";
  selectNextUndecided(it);
}

function relabel(it, labelId) {
  if (it.label === labelId) return;
  remember(); it.label = labelId;
  if (it.state !== "added") settle(it);
  render();
}

function setRect(it, rect) {
  it.rect = clampRect(roundRect(rect));
  if (it.state !== "added") settle(it);
}

function clampRect([l, t, w, h]) {
  const W = state.image.width, H = state.image.height;
  w = Math.min(Math.max(w, 2), W); h = Math.min(Math.max(h, 2), H);
  l = Math.min(Math.max(l, 0), W - w); t = Math.min(Math.max(t, 0), H - h);
  return [l, t, w, h];
}

function selectNextUndecided(from) {
  const order = state.items.filter((x) => cycleable(x) && x.state === "undecided");
  const index = state.items.indexOf(from);
  const after = order.find((x) => state.items.indexOf(x) > index) || order[0];
  state.selected = after ? after.key : (find(from.key) ? from.key : null);
  render();
  if (after) panIntoView(after);
}

// Tab walks the boxes, then leaves them: past the last box (or before the first) it deselects and
// answers false, so the browser moves the focus on to Save and the other controls as usual.
function cycle(step) {
  const order = state.items.filter(cycleable);
  const index = order.findIndex((x) => x.key === state.selected);
  const next = index === -1 ? (step > 0 ? 0 : order.length - 1) : index + step;
  if (next < 0 || next >= order.length) {
    if (state.selected !== null) { state.selected = null; render(); }
    return false;
  }
  state.selected = order[next].key;
  render();
  panIntoView(order[next]);
  return true;
}

function focusStage() { ui.stage.focus({ preventScroll: true }); }

// ---- rendering -----------------------------------------------------------------------------

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}
function span(cls, text) { const s = document.createElement("span"); s.className = cls; s.textContent = text; return s; }

function fitScale() {
  const W = state.image.width, H = state.image.height;
  const availW = Math.max(ui.stage.clientWidth - 24, 50), availH = Math.max(ui.stage.clientHeight - 24, 50);
  return Math.min(availW / W, availH / H);
}
function scale() { return fitScale() * state.zoom; }

function buildStage() {
  const { width: W, height: H, file_url: url } = state.image;
  svg = el("svg", { viewBox: `0 0 ${W} ${H}`, id: "editor-svg", "data-testid": "editor" });
  el("image", { href: url, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none" }, svg);
  el("g", { class: "boxes" }, svg);
  ui.canvas.replaceChildren(svg);
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", () => { state.drag = null; render(); });
  sizeStage();
}

function sizeStage() {
  const s = scale();
  svg.setAttribute("width", Math.round(state.image.width * s));
  svg.setAttribute("height", Math.round(state.image.height * s));
  ui.app.style.setProperty("--zoom", state.zoom);
}

function render() {
  if (!svg) return;
  const group = svg.querySelector("g.boxes");
  group.replaceChildren();
  const s = scale();
  for (const it of state.items) if (shown(it)) drawItem(group, it, s);
  if (state.drag && state.drag.kind === "draw" && state.drag.rect) {
    const [l, t, w, h] = state.drag.rect;
    el("rect", { x: l, y: t, width: w, height: h, class: "draft", "vector-effect": "non-scaling-stroke" }, group);
  }
  svg.classList.toggle("drawing", state.drawArmed);
  ui.app.classList.toggle("boxes-hidden", state.hideAll);
  renderLabels();
  renderList();
}

function drawItem(group, it, s) {
  const label = labelById.get(it.label);
  const color = label ? label.color : "#888";
  const [l, t, w, h] = it.rect;
  const selected = it.key === state.selected;
  const g = el("g", { class: `box state-${it.state}${selected ? " selected" : ""}`, "data-key": it.key }, group);
  el("rect", { x: l, y: t, width: w, height: h, stroke: color, fill: color, class: "outline",
    "vector-effect": "non-scaling-stroke" }, g);
  const caption = `${label ? label.name : "?"}${it.confidence !== null ? ` ${Math.round(it.confidence)}%` : ""}`;
  const tagH = 16 / s;
  const tagY = t - tagH >= 0 ? t - tagH : t;
  const tag = el("rect", { x: l, y: tagY, width: 0, height: tagH, fill: color, class: "tag" }, g);
  const text = el("text", { x: l + 5 / s, y: tagY + 12 / s, "font-size": 12 / s, class: "tag-text" }, g);
  text.textContent = caption;
  // Measured, not estimated, so the caption never spills out of its tag at any zoom.
  tag.setAttribute("width", text.getComputedTextLength() + 10 / s);
  if (selected && editable() && it.state !== "rejected") {
    const size = HANDLE_PX / s;
    for (const dir of HANDLES) {
      const [hx, hy] = handlePoint(it.rect, dir);
      el("rect", { x: hx - size / 2, y: hy - size / 2, width: size, height: size, class: `handle h-${dir}`,
        "data-handle": dir, "vector-effect": "non-scaling-stroke" }, g);
    }
  }
}

function handlePoint([l, t, w, h], dir) {
  const x = dir.includes("w") ? l : dir.includes("e") ? l + w : l + w / 2;
  const y = dir.includes("n") ? t : dir.includes("s") ? t + h : t + h / 2;
  return [x, y];
}

// Built once: rebuilding a slider while it is dragged or focused ends the drag and drops the focus.
function buildLabels() {
  ui.labels.replaceChildren(...labels.map((label) => {
    const li = document.createElement("li");
    li.className = label.id === state.drawLabel ? "current" : "";
    li.dataset.label = label.id;
    const name = document.createElement("button");
    name.type = "button"; name.className = "label-name"; name.title = "Label for new boxes";
    const swatch = span("swatch", ""); swatch.style.background = label.color;
    name.append(swatch, label.hotkey ? kbd(label.hotkey) : "", ` ${label.name}`);
    name.addEventListener("click", () => { state.drawLabel = label.id; render(); });
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: 0, max: 100, step: 1, value: minConfidence.get(label.id) });
    slider.setAttribute("aria-label", `Minimum confidence for ${label.name}`);
    slider.dataset.testid = `slider-${label.name}`;
    const value = span("slider-value", `${Math.round(minConfidence.get(label.id))}`);
    slider.addEventListener("input", () => {
      minConfidence.set(label.id, Number(slider.value));
      value.textContent = slider.value;
      render();
    });
    li.append(name, slider, value);
    return li;
  }));
}

function renderLabels() {
  for (const li of ui.labels.children) {
    li.className = Number(li.dataset.label) === state.drawLabel ? "current" : "";
  }
}

function kbd(text) { const k = document.createElement("kbd"); k.textContent = text; return k; }

function renderList() {
  const counts = { undecided: 0, accepted: 0, adjusted: 0, added: 0, rejected: 0 };
  ui.boxes.replaceChildren(...state.items.map((it) => {
    counts[it.state] += 1;
    const label = labelById.get(it.label);
    const li = document.createElement("li");
    li.className = `state-${it.state}${it.key === state.selected ? " selected" : ""}${hiddenBySlider(it) ? " hidden-box" : ""}`;
    li.dataset.key = it.key;
    li.dataset.state = it.state;
    li.dataset.hidden = hiddenBySlider(it) ? "true" : "false";
    li.dataset.proposal = it.proposal ?? "";
    const swatch = span("swatch", ""); swatch.style.background = label ? label.color : "#888";
    const [l, t, w, h] = it.rect;
    li.append(swatch, span("box-label", label ? label.name : "?"),
      span("box-conf", it.confidence !== null ? `${Math.round(it.confidence)}%` : "—"),
      span("box-geom", `${w}×${h} at ${l},${t}`),
      span(`badge ${it.state}`, hiddenBySlider(it) ? `${it.state} · hidden` : it.state));
    li.tabIndex = 0;
    li.addEventListener("click", () => selectFromList(it));
    li.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault(); event.stopPropagation();
      selectFromList(it);
    });
    return li;
  }));
  ui.summary.textContent = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(" · ");
}

// Picking a hidden proposal from the list reveals it: it is drawn, Tab reaches it and Enter accepts
// it like any visible box. Focus goes to the stage so the arrows move the box at once.
function selectFromList(it) {
  const item = find(it.key);
  if (!item) return;
  if (hiddenBySlider(item)) { remember(); item.revealed = true; }
  state.selected = item.key;
  ui.stage.focus({ preventScroll: true });
  render(); panIntoView(item);
}

function panIntoView(it) {
  if (!it || !svg) return;
  const s = scale();
  const [l, t, w, h] = it.rect;
  const image = svg.getBoundingClientRect(), view = ui.stage.getBoundingClientRect();
  const x0 = image.left + l * s, y0 = image.top + t * s, x1 = x0 + w * s, y1 = y0 + h * s;
  const right = view.left + ui.stage.clientWidth, bottom = view.top + ui.stage.clientHeight;
  if (x0 >= view.left && x1 <= right && y0 >= view.top && y1 <= bottom) return;
  // Centre the box in the visible part of the stage.
  ui.stage.scrollLeft += (x0 + x1) / 2 - (view.left + ui.stage.clientWidth / 2);
  ui.stage.scrollTop += (y0 + y1) / 2 - (view.top + ui.stage.clientHeight / 2);
}

function setZoom(zoom, anchor = null) {
  const before = scale();
  const point = anchor || { clientX: ui.stage.getBoundingClientRect().left + ui.stage.clientWidth / 2,
    clientY: ui.stage.getBoundingClientRect().top + ui.stage.clientHeight / 2 };
  const image = toImage(point);
  state.zoom = clampZoom(zoom);
  localStorage.setItem(ZOOM_KEY, String(state.zoom));
  sizeStage(); render();
  const after = scale();
  if (after === before) return;
  // Keep the image point under the cursor (or the view's centre) where it was.
  const rect = svg.getBoundingClientRect();
  ui.stage.scrollLeft += rect.left + image.x * after - point.clientX;
  ui.stage.scrollTop += rect.top + image.y * after - point.clientY;
}

// ---- pointer -------------------------------------------------------------------------------

function toImage(event) {
  const rect = svg.getBoundingClientRect();
  const s = rect.width / state.image.width;
  return { x: (event.clientX - rect.left) / s, y: (event.clientY - rect.top) / s };
}

function onPointerDown(event) {
  if (event.button !== 0) return;
  focusStage();
  const p = toImage(event);
  const handle = event.target.dataset && event.target.dataset.handle;
  const boxNode = event.target.closest("g.box");
  const it = boxNode ? find(Number(boxNode.dataset.key)) : null;
  if (editable() && handle && it) {
    startDrag(event, { kind: "resize", handle, key: it.key, origin: p, start: [...it.rect] });
  } else if (it && !state.drawArmed) {
    state.selected = it.key;
    if (editable() && it.state !== "rejected") {
      startDrag(event, { kind: "move", key: it.key, origin: p, start: [...it.rect] });
    }
    render();
  } else if (editable() && state.drawLabel !== null) {
    startDrag(event, { kind: "draw", origin: p, rect: null });
  } else {
    state.selected = null; render();
  }
}

function startDrag(event, drag) {
  state.drag = { ...drag, moved: false, remembered: false };
  svg.setPointerCapture(event.pointerId);
  event.preventDefault();
}

function onPointerMove(event) {
  const drag = state.drag;
  if (!drag) return;
  const p = toImage(event);
  const dx = p.x - drag.origin.x, dy = p.y - drag.origin.y;
  if (!drag.moved && Math.hypot(dx, dy) * scale() < MIN_DRAW_PX) return;
  drag.moved = true;
  if (drag.kind === "draw") {
    drag.rect = drawnRect(drag.origin, p);
  } else {
    const it = find(drag.key);
    if (!it) return;
    if (!drag.remembered) { remember(); drag.remembered = true; }
    setRect(it, drag.kind === "move" ? moved(drag.start, dx, dy) : resized(drag.start, drag.handle, dx, dy));
  }
  render();
}

function onPointerUp() {
  const drag = state.drag;
  state.drag = null;
  if (!drag) return;
  if (drag.kind === "draw") {
    if (drag.moved && drag.rect && drag.rect[2] >= 2 && drag.rect[3] >= 2) {
      remember();
      const item = { key: state.nextKey++, proposal: null, label: state.drawLabel, rect: drag.rect,
        state: "added", confidence: null, original: null };
      state.items.push(item);
      state.selected = item.key;
    } else {
      state.selected = null;
    }
    state.drawArmed = false;
  }
  render();
}

function drawnRect(a, b) {
  const W = state.image.width, H = state.image.height;
  const x0 = Math.min(Math.max(Math.min(a.x, b.x), 0), W), x1 = Math.min(Math.max(Math.max(a.x, b.x), 0), W);
  const y0 = Math.min(Math.max(Math.min(a.y, b.y), 0), H), y1 = Math.min(Math.max(Math.max(a.y, b.y), 0), H);
  return roundRect([x0, y0, x1 - x0, y1 - y0]);
}

function moved([l, t, w, h], dx, dy) { return [l + dx, t + dy, w, h]; }

function resized([l, t, w, h], dir, dx, dy) {
  let left = l, top = t, right = l + w, bottom = t + h;
  if (dir.includes("w")) left = Math.min(l + dx, right - 2);
  if (dir.includes("e")) right = Math.max(right + dx, left + 2);
  if (dir.includes("n")) top = Math.min(t + dy, bottom - 2);
  if (dir.includes("s")) bottom = Math.max(bottom + dy, top + 2);
  left = Math.max(left, 0); top = Math.max(top, 0);
  right = Math.min(right, state.image.width); bottom = Math.min(bottom, state.image.height);
  return [left, top, right - left, bottom - top];
}

// ---- keyboard ------------------------------------------------------------------------------

const CONTROLS = "button, a[href], input, select, textarea, summary, [tabindex]";
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

function onKey(event) {
  if (ui.help.open) {
    if (event.key === "?" || event.key === "Escape") { event.preventDefault(); ui.help.close(); }
    return;
  }
  const target = event.target;
  if (target && target.type === "range" && (event.key in ARROWS || ["Home", "End", "PageUp", "PageDown"].includes(event.key))) return;
  if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) && target.type !== "range") return;
  // On a focused control (Save, a link, a list row) Tab, Enter and Space keep their usual meaning,
  // so every control is reachable and Enter on Skip skips; letters stay the editor's everywhere.
  if (target !== ui.stage && target.closest && target.closest(CONTROLS) &&
      ["Tab", "Enter", " "].includes(event.key)) return;
  const handled = (event.ctrlKey || event.metaKey) ? onCommandKey(event) : onPlainKey(event);
  if (handled) { event.preventDefault(); event.stopPropagation(); }
}

function onCommandKey(event) {
  const key = event.key.toLowerCase();
  if (!editable()) return false;
  if (key === "z" && event.shiftKey) { restore(state.redo, state.undo); return true; }
  if (key === "z") { restore(state.undo, state.redo); return true; }
  if (key === "y") { restore(state.redo, state.undo); return true; }
  return false;
}

function onPlainKey(event) {
  const key = event.key;
  const it = find(state.selected);
  if (key === "Tab") return cycle(event.shiftKey ? -1 : 1);
  if (key === "?") { ui.help.showModal(); return true; }
  if (key === "h" || key === "H") { state.hideAll = !state.hideAll; render(); return true; }
  if (key === "+" || key === "=") { setZoom(state.zoom * 1.25); return true; }
  if (key === "-" || key === "_") { setZoom(state.zoom / 1.25); return true; }
  if (key === "0") { setZoom(1); return true; }
  if (key === "Escape") { state.selected = null; state.drawArmed = false; state.drag = null; render(); return true; }
  if (!editable()) return false;
  const lower = key.length === 1 ? key.toLowerCase() : key;
  if (lower === "a") { if (it) accept(it); return true; }
  if (lower === "x" || key === "Delete" || key === "Backspace") { if (it) reject(it); return true; }
  if (lower === "b") { state.drawArmed = !state.drawArmed; render(); return true; }
  if (/^[1-9]$/.test(key)) { hotkeyLabel(Number(key), it); return true; }
  if (key in ARROWS) { if (it) nudge(it, ARROWS[key], event); return true; }
  if (key === "Enter") { submit(false); return true; }
  if (lower === "n") { submit(true); return true; }
  if (lower === "s") { skip(); return true; }
  return false;
}

function hotkeyLabel(hotkey, it) {
  const label = labels.find((l) => l.hotkey === hotkey);
  if (!label) { showMessage(`No label has the hotkey ${hotkey}.`, "warning"); return; }
  if (it && it.state !== "rejected") relabel(it, label.id);
  else { state.drawLabel = label.id; render(); }
}

function nudge(it, [dx, dy], event) {
  if (it.state === "rejected") return;
  const step = event.altKey ? 10 : 1;
  // Holding an arrow key is one change for undo, not one per repeat.
  const now = performance.now();
  if (now - state.lastNudge > 800) remember();
  state.lastNudge = now;
  const [l, t, w, h] = it.rect;
  setRect(it, event.shiftKey ? [l, t, w + dx * step, h + dy * step] : [l + dx * step, t + dy * step, w, h]);
  render();
  panIntoView(it);
}

// ---- server --------------------------------------------------------------------------------

function boxesToSave() {
  const saved = state.items.filter((it) => DECIDED.has(it.state) || (it.state === "undecided" && !hiddenBySlider(it)));
  return saved;
}

async function submit(noObjects) {
  if (state.busy || !editable()) return;
  const saved = noObjects ? [] : boxesToSave();
  const body = {
    version: state.image.version,
    // The model whose proposals this page shows: the save is judged against them even if a proposal
    // run has switched the iteration to another model since the page opened.
    model_version: state.image.model_version,
    no_objects: noObjects,
    elapsed_ms: Math.round(performance.now() - state.t0),
    started_at: state.startedAt,
    boxes: saved.map((it) => ({ label: it.label, left: it.rect[0], top: it.rect[1], width: it.rect[2],
      height: it.rect[3], proposal: it.proposal })),
    hidden: noObjects ? [] : state.items.filter((it) => it.state === "undecided" && hiddenBySlider(it) && it.proposal !== null)
      .map((it) => it.proposal),
    open_elsewhere: openElsewhere(),
  };
  const answer = await post(state.image.submit_url, body, noObjects ? "Saving as empty…" : "Saving…");
  if (!answer) return;
  if (answer.ok) { advance(answer.data); return; }
  const data = answer.data;
  if (answer.status === 400) {
    const match = /^boxes\[(\d+)\]/.exec(data.field || "");
    if (match && saved[Number(match[1])]) { state.selected = saved[Number(match[1])].key; render(); }
    showMessage(`Not saved: ${data.error}`, "error");
  } else if (answer.status === 409 && data.code === "stale") {
    showMessage(data.error, "error", { label: "Reload", run: () => location.reload() });
  } else if (answer.status === 409) {
    state.leaseLost = true;
    showMessage(data.error, "error", { label: "Try again", run: () => submit(noObjects) });
  } else {
    showMessage(`Not saved: the server answered ${answer.status}. Your work is still here; press Enter to retry.`, "error");
  }
}

async function skip(notice = null) {
  if (state.busy || !editable()) return;
  const answer = await post(state.image.skip_url, { open_elsewhere: openElsewhere() }, notice ? "Moving on…" : "Skipping…");
  if (answer && answer.ok) {
    advance(answer.data);
    if (notice && answer.data.next) showMessage(notice, "warning");
  } else if (answer) showMessage(`Could not skip (the server answered ${answer.status}).`, "error");
}

// ---- other tabs ----------------------------------------------------------------------------
// The server gives a reviewer back the image they hold, so a second tab would open the first tab's
// image and one of the two saves would be refused. The editor's tabs in this browser tell each other
// which image they show: saves and skips name those images so the server hands out others, and a
// tab that has just opened an image another tab shows moves on to another one.

const TAB = Math.random().toString(36).slice(2);
const otherTabs = new Map(); // tab id -> image id it shows
const channel = "BroadcastChannel" in window ? new BroadcastChannel("loupe.review") : null;

// This tab's own image is among them when another tab shows it too: a skip then keeps its lease.
function openElsewhere() {
  return [...new Set(otherTabs.values())].filter((id) => id !== null);
}

function announce(fresh) {
  if (channel) channel.postMessage({ tab: TAB, image: state.image && editable() ? state.image.id : null, fresh });
}

function onTabMessage({ data }) {
  if (!data || data.tab === TAB) return;
  if (data.gone) { otherTabs.delete(data.tab); return; }
  otherTabs.set(data.tab, data.image);
  if (data.fresh) { announce(false); return; }
  // Another tab already shows the image this tab has just opened: this tab goes on to another.
  if (state.image && editable() && data.image === state.image.id && !dirty()) {
    skip(`${state.image.name} is open in another tab of yours, so this tab went on to another image.`);
  }
}

async function post(url, body, pending) {
  state.busy = true;
  showMessage(pending, "info");
  try {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrfToken },
    });
    let data = {};
    try { data = await response.json(); } catch { data = { error: `HTTP ${response.status}` }; }
    return { ok: response.ok, status: response.status, data };
  } catch {
    showMessage("Could not reach Loupe. Your work is still here; check the connection and press Enter to retry.", "error");
    return null;
  } finally {
    state.busy = false;
  }
}

function advance(data) {
  if (!data.next) {
    state.baseline = itemsSnapshot(); // saved: leaving asks nothing
    location.assign(data.next_url);
    return;
  }
  history.pushState({ image: data.next.id }, "", data.next.page_url);
  load(data.next);
}

async function renewLease() {
  if (!editable() || document.hidden) return;
  try {
    const response = await fetch(state.image.lease_url, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": config.csrfToken, Accept: "application/json" },
    });
    if (response.status === 409) {
      const data = await response.json();
      state.leaseLost = true;
      showMessage(data.error, "error");
    } else if (response.ok && state.leaseLost) {
      state.leaseLost = false; hideMessage();
    }
  } catch { /* offline for a moment: the next heartbeat tries again */ }
}

function prefetch(url) {
  if (!url) return;
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  state.prefetched = img;
}

// ---- messages and timer --------------------------------------------------------------------

function showMessage(text, kind, action = null) {
  ui.message.hidden = false;
  ui.message.className = `message ${kind}`;
  ui.message.replaceChildren(document.createTextNode(text));
  if (action) {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = action.label;
    button.addEventListener("click", () => { button.blur(); action.run(); });
    ui.message.append(" ", button);
  }
}
function hideMessage() { ui.message.hidden = true; ui.message.replaceChildren(); }

function tick() {
  if (!state.image) return;
  const seconds = Math.floor((performance.now() - state.t0) / 1000);
  ui.timer.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

// ---- wiring --------------------------------------------------------------------------------

function wire() {
  document.addEventListener("keydown", onKey, true);
  ui.stage.addEventListener("wheel", (event) => {
    if (event.shiftKey) return; // Shift+wheel keeps scrolling sideways through a zoomed image
    event.preventDefault();
    setZoom(state.zoom * (event.deltaY < 0 ? 1.15 : 1 / 1.15), event);
  }, { passive: false });
  window.addEventListener("resize", () => { sizeStage(); render(); });
  window.addEventListener("popstate", () => location.reload());
  for (const button of ui.app.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      focusStage();
      ({ submit: () => submit(false), "no-objects": () => submit(true), skip })[button.dataset.action]();
    });
  }
  setInterval(tick, 1000);
  setInterval(renewLease, Math.max(5, config.leaseSeconds / 3) * 1000);
  document.addEventListener("visibilitychange", renewLease);
  if (channel) channel.addEventListener("message", onTabMessage);
  window.addEventListener("pagehide", () => { if (channel) channel.postMessage({ tab: TAB, gone: true }); });
  window.addEventListener("beforeunload", (event) => {
    if (!dirty()) return;
    event.preventDefault();
    event.returnValue = ""; // older Chromium shows the "leave site?" prompt only with this set
  });
}

wire();
buildLabels();
load(JSON.parse($("review-image").textContent));
window.loupeEditor = { state, labels };
