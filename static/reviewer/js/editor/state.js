// The review editor's state: boxes, selection, decisions, undo, geometry and which proposals the
// confidence sliders hide. Pure: no DOM and no clock (callers pass the time), so `node --test`
// checks every rule here without a browser (tests/reviewer/js/).
//
// Item states: undecided (a proposal nobody judged yet), accepted, adjusted (moved, resized or
// relabeled proposal), added (drawn by the reviewer), rejected. A slider hides undecided proposals
// below it; hidden is not rejected, but Enter accepts only visible undecided boxes, so a hidden
// proposal is saved as rejected (marked "hidden" in the audit) unless the reviewer picks it.

export const DECIDED = new Set(["accepted", "adjusted", "added"]);
export const STATES = ["undecided", "accepted", "adjusted", "added", "rejected"];
export const UNDO_LIMIT = 200;
// Arrow presses closer together than this are one step for undo: holding a key is one change.
export const NUDGE_GAP_MS = 800;
export const MIN_SIDE = 2; // pixels: the server refuses a box of 1 px or less after rounding

// ---- geometry (rects are [left, top, width, height] in image pixels) -----------------------

export function roundRect([l, t, w, h]) {
  const left = Math.round(l), top = Math.round(t);
  return [left, top, Math.round(l + w) - left, Math.round(t + h) - top];
}

export function sameRect(a, b) { return a.length === b.length && a.every((v, i) => v === b[i]); }

export function clampRect([l, t, w, h], W, H) {
  w = Math.min(Math.max(w, MIN_SIDE), W); h = Math.min(Math.max(h, MIN_SIDE), H);
  l = Math.min(Math.max(l, 0), W - w); t = Math.min(Math.max(t, 0), H - h);
  return [l, t, w, h];
}

export function moved([l, t, w, h], dx, dy) { return [l + dx, t + dy, w, h]; }

// dir names the edges that follow the pointer: any of n, e, s, w (a handle such as "nw").
export function resized([l, t, w, h], dir, dx, dy, W, H) {
  let left = l, top = t, right = l + w, bottom = t + h;
  if (dir.includes("w")) left = Math.min(l + dx, right - MIN_SIDE);
  if (dir.includes("e")) right = Math.max(right + dx, left + MIN_SIDE);
  if (dir.includes("n")) top = Math.min(t + dy, bottom - MIN_SIDE);
  if (dir.includes("s")) bottom = Math.max(bottom + dy, top + MIN_SIDE);
  left = Math.max(left, 0); top = Math.max(top, 0);
  right = Math.min(right, W); bottom = Math.min(bottom, H);
  return [left, top, right - left, bottom - top];
}

export function drawnRect(a, b, W, H) {
  const x0 = Math.min(Math.max(Math.min(a.x, b.x), 0), W), x1 = Math.min(Math.max(Math.max(a.x, b.x), 0), W);
  const y0 = Math.min(Math.max(Math.min(a.y, b.y), 0), H), y1 = Math.min(Math.max(Math.max(a.y, b.y), 0), H);
  return roundRect([x0, y0, x1 - x0, y1 - y0]);
}

// ---- the editor's state --------------------------------------------------------------------

// labels: [{id, name, color, hotkey, threshold}]; sliders: saved slider positions {labelId: value}.
export function createState(labels, sliders = {}) {
  const minConfidence = new Map(labels.map((l) => [l.id, l.threshold]));
  for (const [id, value] of Object.entries(sliders || {})) {
    if (minConfidence.has(Number(id)) && Number.isFinite(value)) minConfidence.set(Number(id), value);
  }
  return {
    labels, minConfidence, image: null, items: [], selected: null, hideAll: false, drawArmed: false,
    drawLabel: labels.length ? labels[0].id : null, undo: [], redo: [], lastNudge: -Infinity, nextKey: 1,
    baseline: "",
  };
}

export function load(state, payload) {
  state.image = payload;
  state.items = payload.items.map((it) => ({ ...it, rect: roundRect(it.rect), key: state.nextKey++, revealed: false }));
  state.selected = null; state.undo = []; state.redo = []; state.drawArmed = false;
  // A nudge on the previous image must not fold this image's first nudge into its undo step.
  state.lastNudge = -Infinity;
  state.baseline = itemsSnapshot(state);
}

export function editable(state) { return Boolean(state.image && state.image.editable); }
export function find(state, key) { return state.items.find((it) => it.key === key) || null; }
export function selectedItem(state) { return find(state, state.selected); }

// Only undecided proposals hide: a box the reviewer decided on, or picked from the list, is always
// drawn and reachable with Tab, or they would draw a duplicate of it. Compared at full precision,
// like Rekognition's own threshold: a proposal exactly at the slider is shown.
export function hiddenBySlider(state, it) {
  return it.state === "undecided" && !it.revealed && it.confidence !== null &&
    it.confidence < (state.minConfidence.get(it.label) ?? 0);
}
export function shown(state, it) { return !state.hideAll && (!hiddenBySlider(state, it) || it.key === state.selected); }
export function cycleable(state, it) { return !hiddenBySlider(state, it); }

export function setThreshold(state, labelId, value) { state.minConfidence.set(labelId, value); }

// ---- undo ----------------------------------------------------------------------------------

function snapshot(state) { return JSON.stringify({ items: state.items, selected: state.selected }); }

export function remember(state) {
  state.undo.push(snapshot(state));
  if (state.undo.length > UNDO_LIMIT) state.undo.shift();
  state.redo = [];
}

function restore(state, from, to) {
  if (!from.length) return false;
  to.push(snapshot(state));
  const saved = JSON.parse(from.pop());
  state.items = saved.items; state.selected = saved.selected;
  return true;
}
export function undo(state) { return restore(state, state.undo, state.redo); }
export function redo(state) { return restore(state, state.redo, state.undo); }

// What a save would write, as a string: unchanged from the image as loaded means nothing to lose.
function itemsSnapshot(state) {
  return JSON.stringify(state.items.map((it) => [it.label, it.rect, it.state, it.revealed]));
}
export function dirty(state) { return editable(state) && itemsSnapshot(state) !== state.baseline; }
export function markSaved(state) { state.baseline = itemsSnapshot(state); }

// ---- decisions -----------------------------------------------------------------------------

// A proposal touched by the reviewer is accepted when it still matches the model, else adjusted.
function settle(it) {
  if (it.original) {
    it.state = it.label === it.original.label && sameRect(it.rect, it.original.rect) ? "accepted" : "adjusted";
  }
}

// Each returns the item that is selected afterwards (to scroll it into view), or null.
export function accept(state, it) {
  if (it.state === "added") return it;
  remember(state); settle(it);
  return selectNextUndecided(state, it);
}

export function reject(state, it) {
  remember(state);
  if (it.proposal === null) state.items = state.items.filter((x) => x.key !== it.key);
  else it.state = "rejected";
  return selectNextUndecided(state, it);
}

export function relabel(state, it, labelId) {
  if (it.label === labelId) return false;
  remember(state); it.label = labelId;
  if (it.state !== "added") settle(it);
  return true;
}

export function setRect(state, it, rect) {
  it.rect = clampRect(roundRect(rect), state.image.width, state.image.height);
  if (it.state !== "added") settle(it);
}

// Arrow keys: move by step, or resize the right/bottom edge ("end") or the left/top edge ("start").
export function nudge(state, it, [dx, dy], { step = 1, mode = "move", now = 0 } = {}) {
  if (it.state === "rejected") return false;
  if (now - state.lastNudge > NUDGE_GAP_MS) remember(state);
  state.lastNudge = now;
  const W = state.image.width, H = state.image.height;
  const [mx, my] = [dx * step, dy * step];
  if (mode === "move") setRect(state, it, moved(it.rect, mx, my));
  else {
    const dir = mode === "start" ? (dx ? "w" : "n") : (dx ? "e" : "s");
    setRect(state, it, resized(it.rect, dir, mx, my, W, H));
  }
  return true;
}

export function addDrawn(state, rect) {
  if (rect[2] < MIN_SIDE || rect[3] < MIN_SIDE || state.drawLabel === null) return null;
  remember(state);
  const item = { key: state.nextKey++, proposal: null, label: state.drawLabel, rect, state: "added",
    confidence: null, original: null, revealed: false };
  state.items.push(item);
  state.selected = item.key;
  state.drawArmed = false;
  return item;
}

// ---- selection -----------------------------------------------------------------------------

export function selectNextUndecided(state, from) {
  const order = state.items.filter((x) => cycleable(state, x) && x.state === "undecided");
  const index = state.items.indexOf(from);
  const after = order.find((x) => state.items.indexOf(x) > index) || order[0];
  state.selected = after ? after.key : (find(state, from.key) ? from.key : null);
  return after || find(state, state.selected);
}

// Tab walks the boxes, then leaves them: past the last box (or before the first) it deselects and
// answers false, so the browser moves the focus on to Save and the other controls as usual.
export function cycle(state, step) {
  const order = state.items.filter((x) => cycleable(state, x));
  const index = order.findIndex((x) => x.key === state.selected);
  const next = index === -1 ? (step > 0 ? 0 : order.length - 1) : index + step;
  if (next < 0 || next >= order.length) { state.selected = null; return false; }
  state.selected = order[next].key;
  return true;
}

// Picking a box from the list: a hidden proposal is revealed (drawn, reachable with Tab, accepted
// by Enter like any visible box); revealing is a change the reviewer can undo.
export function pick(state, key) {
  const it = find(state, key);
  if (!it) return null;
  if (hiddenBySlider(state, it)) { remember(state); it.revealed = true; }
  state.selected = key;
  return it;
}

// ---- what the panel counts and what a save sends --------------------------------------------

export function counts(state) {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const it of state.items) counts[it.state] += 1;
  return counts;
}

// Hidden proposals are counted apart: "3 undecided" would promise that Enter accepts all three.
export function summary(state) {
  const all = counts(state);
  const hidden = state.items.filter((it) => hiddenBySlider(state, it)).length;
  all.undecided -= hidden;
  return Object.entries({ ...all, hidden }).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(" · ");
}

// The boxes Enter saves (decided ones and visible undecided ones, accepted as they are) and the
// hidden proposals, which the server records as rejected-while-hidden. "No objects" sends neither.
export function submission(state, noObjects) {
  if (noObjects) return { saved: [], boxes: [], hidden: [] };
  const saved = state.items.filter((it) => DECIDED.has(it.state) || (it.state === "undecided" && !hiddenBySlider(state, it)));
  return {
    saved,
    boxes: saved.map((it) => ({ label: it.label, left: it.rect[0], top: it.rect[1], width: it.rect[2],
      height: it.rect[3], proposal: it.proposal })),
    hidden: state.items.filter((it) => hiddenBySlider(state, it) && it.proposal !== null).map((it) => it.proposal),
  };
}
