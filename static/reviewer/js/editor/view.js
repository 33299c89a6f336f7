// The review page as the state says it is: the SVG boxes over the image, the label list with its
// sliders, the box list. Elements are updated in place, keyed by item, never rebuilt on a change:
// a rebuilt slider ends its drag and a rebuilt row loses its focus.

import { counts, editable, hiddenBySlider, shown, summary } from "./state.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const HANDLE_PX = 9;
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
export const ZOOM_MIN = 0.25;
export const ZOOM_MAX = 8;

export function clampZoom(z) { return Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, z)); }

function svgEl(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  setAttrs(node, attrs);
  if (parent) parent.appendChild(node);
  return node;
}
function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    const text = String(v);
    if (node.getAttribute(k) !== text) node.setAttribute(k, text);
  }
}
function span(cls, text = "") { const s = document.createElement("span"); s.className = cls; s.textContent = text; return s; }
function kbd(text) { const k = document.createElement("kbd"); k.textContent = text; return k; }
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function handlePoint([l, t, w, h], dir) {
  const x = dir.includes("w") ? l : dir.includes("e") ? l + w : l + w / 2;
  const y = dir.includes("n") ? t : dir.includes("s") ? t + h : t + h / 2;
  return [x, y];
}

// ui: the page's elements by role; on: {pick(key), threshold(labelId, value), drawLabel(labelId)}.
export function createView(ui, state, on) {
  const labelById = new Map(state.labels.map((l) => [l.id, l]));
  const boxNodes = new Map(); // item key -> {g, outline, tag, text, handles}
  const rowNodes = new Map(); // item key -> {li, swatch, label, conf, geom, badge}
  const view = { svg: null, zoom: 1, draft: null, hiddenOpen: false };

  // ---- the stage ---------------------------------------------------------------------------

  view.fitScale = () => {
    const W = state.image.width, H = state.image.height;
    const availW = Math.max(ui.stage.clientWidth - 24, 50), availH = Math.max(ui.stage.clientHeight - 24, 50);
    return Math.min(availW / W, availH / H);
  };
  view.scale = () => view.fitScale() * view.zoom;

  // A new image: a new SVG (its image element and size change), empty of boxes.
  view.build = () => {
    const { width: W, height: H, file_url: url } = state.image;
    view.svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, id: "editor-svg", "data-testid": "editor" });
    svgEl("image", { href: url, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none" }, view.svg);
    view.group = svgEl("g", { class: "boxes" }, view.svg);
    boxNodes.clear();
    ui.canvas.replaceChildren(view.svg);
    view.sizeStage();
  };

  view.sizeStage = () => {
    if (!view.svg) return;
    const s = view.scale();
    setAttrs(view.svg, { width: Math.round(state.image.width * s), height: Math.round(state.image.height * s) });
    ui.app.style.setProperty("--zoom", view.zoom);
  };

  view.toImage = (event) => {
    const rect = view.svg.getBoundingClientRect();
    const s = rect.width / state.image.width;
    return { x: (event.clientX - rect.left) / s, y: (event.clientY - rect.top) / s };
  };

  view.panIntoView = (it) => {
    if (!it || !view.svg) return;
    const s = view.scale();
    const [l, t, w, h] = it.rect;
    const image = view.svg.getBoundingClientRect(), port = ui.stage.getBoundingClientRect();
    const x0 = image.left + l * s, y0 = image.top + t * s, x1 = x0 + w * s, y1 = y0 + h * s;
    const right = port.left + ui.stage.clientWidth, bottom = port.top + ui.stage.clientHeight;
    if (x0 >= port.left && x1 <= right && y0 >= port.top && y1 <= bottom) return;
    // Centre the box in the visible part of the stage.
    ui.stage.scrollLeft += (x0 + x1) / 2 - (port.left + ui.stage.clientWidth / 2);
    ui.stage.scrollTop += (y0 + y1) / 2 - (port.top + ui.stage.clientHeight / 2);
  };

  // Keep the image point under `point` (the cursor, or the view's centre) where it was.
  view.setZoom = (zoom, point = null) => {
    const before = view.scale();
    const box = ui.stage.getBoundingClientRect();
    point = point || { clientX: box.left + ui.stage.clientWidth / 2, clientY: box.top + ui.stage.clientHeight / 2 };
    const anchor = view.toImage(point);
    view.zoom = clampZoom(zoom);
    view.sizeStage(); view.render();
    const after = view.scale();
    if (after === before) return;
    const rect = view.svg.getBoundingClientRect();
    ui.stage.scrollLeft += rect.left + anchor.x * after - point.clientX;
    ui.stage.scrollTop += rect.top + anchor.y * after - point.clientY;
  };

  function boxNode(it) {
    let node = boxNodes.get(it.key);
    if (node) return node;
    const g = svgEl("g", { "data-key": it.key });
    const outline = svgEl("rect", { class: "outline", "vector-effect": "non-scaling-stroke" }, g);
    const tag = svgEl("rect", { class: "tag" }, g);
    const text = svgEl("text", { class: "tag-text" }, g);
    node = { g, outline, tag, text, handles: null, caption: null, tagScale: null };
    boxNodes.set(it.key, node);
    return node;
  }

  function drawBox(it, s, selected) {
    const node = boxNode(it);
    const label = labelById.get(it.label);
    const color = label ? label.color : "#888";
    const [l, t, w, h] = it.rect;
    setAttrs(node.g, { class: `box state-${it.state}${selected ? " selected" : ""}` });
    setAttrs(node.outline, { x: l, y: t, width: w, height: h, stroke: color, fill: color });
    const tagH = 16 / s;
    const tagY = t - tagH >= 0 ? t - tagH : t;
    setAttrs(node.tag, { x: l, y: tagY, height: tagH, fill: color });
    setAttrs(node.text, { x: l + 5 / s, y: tagY + 12 / s, "font-size": 12 / s });
    const caption = `${label ? label.name : "?"}${it.confidence !== null ? ` ${Math.round(it.confidence)}%` : ""}`;
    setText(node.text, caption);
    const wantHandles = selected && editable(state) && it.state !== "rejected";
    if (wantHandles && !node.handles) {
      node.handles = HANDLES.map((dir) => svgEl("rect", { class: `handle h-${dir}`, "data-handle": dir,
        "vector-effect": "non-scaling-stroke" }, node.g));
    } else if (!wantHandles && node.handles) {
      for (const handle of node.handles) handle.remove();
      node.handles = null;
    }
    if (node.handles) {
      const size = HANDLE_PX / s;
      node.handles.forEach((handle, i) => {
        const [hx, hy] = handlePoint(it.rect, HANDLES[i]);
        setAttrs(handle, { x: hx - size / 2, y: hy - size / 2, width: size, height: size });
      });
    }
    return node;
  }

  function renderBoxes() {
    const s = view.scale();
    const keep = new Set();
    let previous = null;
    for (const it of state.items) {
      if (!shown(state, it)) continue;
      const node = drawBox(it, s, it.key === state.selected);
      keep.add(it.key);
      // In item order; the selected box last would hide others' handles, so order is the list's.
      const wanted = previous ? previous.nextSibling : view.group.firstChild;
      if (wanted !== node.g) view.group.insertBefore(node.g, wanted);
      previous = node.g;
    }
    for (const [key, node] of boxNodes) {
      if (!keep.has(key)) { node.g.remove(); boxNodes.delete(key); }
    }
    // Measured after the text is in the document, so a caption never spills out of its tag.
    for (const key of keep) {
      const node = boxNodes.get(key);
      const width = node.text.getComputedTextLength() + 10 / s;
      setAttrs(node.tag, { width });
    }
    const drag = view.draft;
    if (drag) {
      if (!view.draftNode) view.draftNode = svgEl("rect", { class: "draft", "vector-effect": "non-scaling-stroke" });
      const [l, t, w, h] = drag;
      setAttrs(view.draftNode, { x: l, y: t, width: w, height: h });
      view.group.appendChild(view.draftNode);
    } else if (view.draftNode) {
      view.draftNode.remove();
    }
  }

  // ---- the panel ---------------------------------------------------------------------------

  // Built once per page: the sliders keep their drag and focus while the boxes change.
  view.buildLabels = () => {
    ui.labels.replaceChildren(...state.labels.map((label) => {
      const li = document.createElement("li");
      li.dataset.label = label.id;
      const name = document.createElement("button");
      name.type = "button"; name.className = "label-name"; name.title = "Label for new boxes";
      const swatch = span("swatch"); swatch.style.background = label.color;
      name.append(swatch, label.hotkey ? kbd(label.hotkey) : "", ` ${label.name}`);
      // A click (detail > 0) hands the keys back to the image; Enter or Space on the button keeps its focus.
      name.addEventListener("click", (event) => on.drawLabel(label.id, event.detail > 0));
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: 0, max: 100, step: 1, value: state.minConfidence.get(label.id) });
      slider.setAttribute("aria-label", `Minimum confidence for ${label.name}`);
      slider.dataset.testid = `slider-${label.name}`;
      const value = span("slider-value", `${Math.round(state.minConfidence.get(label.id))}`);
      slider.addEventListener("input", () => {
        value.textContent = slider.value;
        on.threshold(label.id, Number(slider.value));
      });
      li.append(name, slider, value);
      return li;
    }));
  };

  function renderLabels() {
    for (const li of ui.labels.children) {
      li.classList.toggle("current", Number(li.dataset.label) === state.drawLabel);
    }
    if (ui.drawState) {
      const label = labelById.get(state.drawLabel);
      ui.drawState.hidden = !state.drawArmed;
      setText(ui.drawState, state.drawArmed ? `Drawing: ${label ? label.name : "?"} (drag on the image, Esc cancels)` : "");
    }
  }

  function row(it) {
    let node = rowNodes.get(it.key);
    if (node) return node;
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.dataset.key = it.key;
    node = { li, swatch: span("swatch"), label: span("box-label"), conf: span("box-conf"), geom: span("box-geom"),
      badge: span("badge") };
    li.append(node.swatch, node.label, node.conf, node.geom, node.badge);
    li.addEventListener("click", () => on.pick(it.key));
    li.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault(); event.stopPropagation();
      on.pick(it.key);
    });
    rowNodes.set(it.key, node);
    return node;
  }

  function fillRow(it) {
    const node = row(it);
    const label = labelById.get(it.label);
    const hidden = hiddenBySlider(state, it);
    node.li.className = `state-${it.state}${it.key === state.selected ? " selected" : ""}${hidden ? " hidden-box" : ""}`;
    node.li.dataset.state = it.state;
    node.li.dataset.hidden = hidden ? "true" : "false";
    node.li.dataset.proposal = it.proposal ?? "";
    node.swatch.style.background = label ? label.color : "#888";
    setText(node.label, label ? label.name : "?");
    setText(node.conf, it.confidence !== null ? `${Math.round(it.confidence)}%` : "—");
    const [l, t, w, h] = it.rect;
    setText(node.geom, `${w}×${h} at ${l},${t}`);
    node.badge.className = `badge ${it.state}`;
    setText(node.badge, hidden ? `${it.state} · hidden` : it.state);
    return node.li;
  }

  // Rows in item order; proposals below their slider go to one collapsed group after the others,
  // so a long tail of low-confidence proposals stays out of the way but one click away.
  function renderList() {
    const keep = new Set(state.items.map((it) => it.key));
    for (const [key, node] of rowNodes) if (!keep.has(key)) { node.li.remove(); rowNodes.delete(key); }
    const visible = [], hidden = [];
    for (const it of state.items) (hiddenBySlider(state, it) ? hidden : visible).push(fillRow(it));
    place(ui.boxes, visible);
    if (ui.hiddenGroup) {
      ui.hiddenGroup.hidden = hidden.length === 0;
      setText(ui.hiddenToggle, `${hidden.length} hidden below threshold`);
      ui.hiddenToggle.setAttribute("aria-expanded", String(view.hiddenOpen));
      ui.hiddenBoxes.hidden = !view.hiddenOpen;
      place(ui.hiddenBoxes, hidden);
    } else {
      place(ui.boxes, visible.concat(hidden));
    }
    setText(ui.summary, summary(state));
  }

  // Moves only the rows that are out of place: moving a focused row would drop its focus.
  function place(list, rows) {
    rows.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null); });
    while (list.children.length > rows.length) list.lastElementChild.remove();
  }

  view.render = () => {
    if (!view.svg || !state.image) return;
    renderBoxes();
    view.svg.classList.toggle("drawing", state.drawArmed);
    ui.app.classList.toggle("boxes-hidden", state.hideAll);
    renderLabels();
    renderList();
  };

  view.counts = () => counts(state);
  return view;
}
