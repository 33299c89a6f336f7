// The review editor's pure state (static/reviewer/js/editor/state.js), without a browser.
import assert from "node:assert/strict";
import { test } from "node:test";

import * as S from "../../../static/reviewer/js/editor/state.js";

const LABELS = [
  { id: 1, name: "aws-logo", color: "#e6194b", hotkey: 1, threshold: 50 },
  { id: 2, name: "smile-logo", color: "#3cb44b", hotkey: 2, threshold: 59.11 },
];

function proposal(id, label, rect, confidence, state = "undecided") {
  return { proposal: id, label, rect, confidence, state, original: { label, rect } };
}

function editor(items, { sliders = {}, editable = true } = {}) {
  const state = S.createState(LABELS, sliders);
  S.load(state, { id: 7, name: "a.jpg", width: 320, height: 240, editable, items });
  return state;
}

const rows = (state) => state.items.map((it) => [it.proposal, it.state, it.rect]);

test("geometry rounds, clamps into the image and resizes from any edge", () => {
  assert.deepEqual(S.roundRect([150.4, 100.2, 60, 40]), [150, 100, 60, 40]);
  assert.deepEqual(S.roundRect([10.5, 20.5, 10, 10]), [11, 21, 10, 10]);
  assert.deepEqual(S.clampRect([310, -5, 20, 1], 320, 240), [300, 0, 20, 2]);
  assert.deepEqual(S.resized([10, 20, 100, 50], "w", -4, 0, 320, 240), [6, 20, 104, 50]);
  assert.deepEqual(S.resized([10, 20, 100, 50], "n", 0, 60, 320, 240), [10, 68, 100, 2]);
  assert.deepEqual(S.resized([10, 20, 100, 50], "se", 500, 500, 320, 240), [10, 20, 310, 220]);
  assert.deepEqual(S.drawnRect({ x: 140.6, y: 90 }, { x: 40.2, y: -10 }, 320, 240), [40, 0, 101, 90]);
});

test("a proposal exactly at its label's threshold is shown, one below is hidden", () => {
  const state = editor([proposal(1, 2, [10, 20, 100, 50], 59.11), proposal(2, 2, [150, 100, 60, 40], 59.109)]);
  assert.deepEqual(state.items.map((it) => S.hiddenBySlider(state, it)), [false, true]);
  S.setThreshold(state, 2, 59);
  assert.deepEqual(state.items.map((it) => S.hiddenBySlider(state, it)), [false, false]);
});

test("saved slider positions replace the model's thresholds, unknown labels are ignored", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 30)], { sliders: { 1: 20, 9: 5, 2: "x" } });
  assert.deepEqual([...state.minConfidence], [[1, 20], [2, 59.11]]);
  assert.equal(S.hiddenBySlider(state, state.items[0]), false);
});

test("a decided box below the slider is never hidden and Tab reaches it", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 90), proposal(2, 1, [150, 100, 60, 40], 30)]);
  const [high, low] = state.items;
  assert.deepEqual(state.items.map((it) => S.cycleable(state, it)), [true, false]);
  S.pick(state, low.key);
  S.accept(state, low);
  assert.equal(low.state, "accepted");
  state.selected = null;
  assert.equal(S.cycle(state, 1), true);
  assert.equal(state.selected, high.key);
  assert.equal(S.cycle(state, 1), true);
  assert.equal(state.selected, low.key);
  // Past the last box Tab leaves the boxes (for Save and the other controls).
  assert.equal(S.cycle(state, 1), false);
  assert.equal(state.selected, null);
  assert.equal(S.cycle(state, -1), true);
  assert.equal(state.selected, low.key);
});

test("Enter saves visible undecided boxes as accepted and hidden ones as hidden", () => {
  const state = editor([proposal(11, 1, [10, 20, 100, 50], 90), proposal(12, 1, [150, 100, 60, 40], 30),
    proposal(13, 2, [20, 150, 50, 50], 10)]);
  assert.deepEqual(S.submission(state, false), {
    saved: [state.items[0]],
    boxes: [{ label: 1, left: 10, top: 20, width: 100, height: 50, proposal: 11 }],
    hidden: [12, 13],
  });
  // Picking a hidden proposal from the list reveals it: Enter accepts it like a visible one.
  S.pick(state, state.items[1].key);
  const { boxes, hidden } = S.submission(state, false);
  assert.deepEqual(boxes.map((b) => b.proposal), [11, 12]);
  assert.deepEqual(hidden, [13]);
  assert.deepEqual(S.submission(state, true), { saved: [], boxes: [], hidden: [] });
  assert.equal(S.summary(state), "2 undecided · 1 hidden");
});

test("accept, reject and relabel settle proposals and move to the next undecided box", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 95), proposal(2, 1, [150, 100, 60, 40], 90),
    proposal(3, 2, [20, 150, 50, 50], 85)]);
  const [first, second, third] = state.items;
  assert.equal(S.reject(state, first), second);
  assert.equal(S.relabel(state, second, 2), true);
  assert.equal(S.relabel(state, second, 2), false);
  assert.equal(S.accept(state, third), third); // nothing undecided is left: it stays selected
  assert.deepEqual(state.items.map((it) => it.state), ["rejected", "adjusted", "accepted"]);
  S.relabel(state, second, 1);
  assert.equal(second.state, "accepted");
  assert.equal(S.summary(state), "2 accepted · 1 rejected");
});

test("a drawn box is added, selected, and removed again by reject", () => {
  const state = editor([]);
  state.drawLabel = 2;
  assert.equal(S.addDrawn(state, [40, 30, 1, 50]), null);
  const drawn = S.addDrawn(state, [40, 30, 100, 50]);
  assert.deepEqual([drawn.label, drawn.state, drawn.rect, state.selected], [2, "added", [40, 30, 100, 50], drawn.key]);
  S.reject(state, drawn);
  assert.deepEqual(state.items, []);
});

test("arrows move, resize the right/bottom edge or the left/top edge, clamped to the image", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 95)]);
  const [box] = state.items;
  S.nudge(state, box, [1, 0], { now: 0 });
  S.nudge(state, box, [0, 1], { mode: "end", now: 10000 });
  S.nudge(state, box, [-1, 0], { mode: "start", now: 20000 });
  S.nudge(state, box, [0, -1], { mode: "start", step: 10, now: 30000 });
  assert.deepEqual([box.rect, box.state], [[10, 10, 101, 61], "adjusted"]);
  S.nudge(state, box, [-1, 0], { step: 10, now: 40000 });
  S.nudge(state, box, [-1, 0], { step: 10, now: 50000 });
  assert.deepEqual(box.rect, [0, 10, 101, 61]);
});

test("held arrows are one undo step, and a new image starts a new one", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 95)]);
  S.nudge(state, state.items[0], [1, 0], { now: 1000 });
  S.nudge(state, state.items[0], [1, 0], { now: 1500 });
  S.nudge(state, state.items[0], [1, 0], { now: 2000 });
  assert.deepEqual(state.items[0].rect, [13, 20, 100, 50]);
  assert.equal(S.undo(state), true);
  assert.deepEqual(rows(state), [[1, "undecided", [10, 20, 100, 50]]]);
  assert.equal(S.undo(state), false);
  assert.equal(S.redo(state), true);
  assert.deepEqual(state.items[0].rect, [13, 20, 100, 50]);

  // The next image's first nudge, 300 ms after the last one here, is its own undo step.
  S.load(state, { id: 8, name: "b.jpg", width: 320, height: 240, editable: true,
    items: [proposal(2, 1, [30, 40, 100, 50], 90)] });
  S.nudge(state, state.items[0], [1, 0], { now: 2300 });
  assert.equal(S.undo(state), true);
  assert.deepEqual(rows(state), [[2, "undecided", [30, 40, 100, 50]]]);
});

test("dirty is any change from the image as loaded, and undoing it all is clean again", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 95)]);
  assert.equal(S.dirty(state), false);
  S.reject(state, state.items[0]);
  assert.equal(S.dirty(state), true);
  S.undo(state);
  assert.equal(S.dirty(state), false);
  S.accept(state, state.items[0]);
  S.markSaved(state);
  assert.equal(S.dirty(state), false);
  assert.equal(S.dirty(editor([proposal(1, 1, [1, 2, 3, 4], 90, "rejected")], { editable: false })), false);
});

test("undo keeps at most UNDO_LIMIT steps", () => {
  const state = editor([proposal(1, 1, [10, 20, 100, 50], 95)]);
  for (let i = 0; i < S.UNDO_LIMIT + 5; i += 1) S.nudge(state, state.items[0], [0, 1], { now: i * 1000 });
  assert.equal(state.undo.length, S.UNDO_LIMIT);
});
