// Keys and pointer to state changes. Keyboard first: every action has a key, and the keys act from
// anywhere on the page except where a control needs them (a focused button's Enter, a slider's
// arrows, Tab between controls).

import * as S from "./state.js";

const MIN_DRAW_PX = 4;
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
const SLIDER_KEYS = new Set(["Home", "End", "PageUp", "PageDown", ...Object.keys(ARROWS)]);
const CONTROLS = "button, a[href], input, select, textarea, summary, [tabindex]";

// actions: {submit(noObjects), skip(), undoNoObjects() -> bool, help: <dialog>, zoom(z, point), now()}
export function createInput(ui, state, view, actions) {
  let drag = null;

  function render() { view.render(); }
  function focusStage() { ui.stage.focus({ preventScroll: true }); }
  function pan(it) { if (it) view.panIntoView(it); }

  // ---- keyboard ----------------------------------------------------------------------------

  function onKey(event) {
    if (actions.help.open) {
      if (event.key === "?" || event.key === "Escape") { event.preventDefault(); actions.help.close(); }
      return;
    }
    const target = event.target;
    if (target && target.type === "range" && SLIDER_KEYS.has(event.key)) return;
    if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) && target.type !== "range") return;
    // On a focused control (Save, a link, a list row) Tab, Enter and Space keep their usual meaning,
    // so every control is reachable and Enter on Skip skips; letters stay the editor's everywhere.
    // A slider has no Enter of its own: there Enter still saves, right after setting the slider.
    const native = event.key === "Tab" || (target.type !== "range" && (event.key === "Enter" || event.key === " "));
    if (native && target !== ui.stage && target.closest && target.closest(CONTROLS)) return;
    const handled = (event.ctrlKey || event.metaKey) ? onCommandKey(event) : onPlainKey(event);
    if (handled) { event.preventDefault(); event.stopPropagation(); }
  }

  function onCommandKey(event) {
    const key = event.key.toLowerCase();
    if (!S.editable(state)) {
      // Just after "no objects" the next image is open: Ctrl+Z takes the save back.
      return key === "z" && !event.shiftKey && actions.undoNoObjects();
    }
    let done = false;
    if (key === "z" && event.shiftKey) done = S.redo(state) || true;
    else if (key === "z") done = S.undo(state) || actions.undoNoObjects() || true;
    else if (key === "y") done = S.redo(state) || true;
    if (done) render();
    return done;
  }

  function onPlainKey(event) {
    const key = event.key;
    const it = S.selectedItem(state);
    if (key === "Tab") {
      const moved = S.cycle(state, event.shiftKey ? -1 : 1);
      render();
      if (moved) pan(S.selectedItem(state));
      return moved;
    }
    if (key === "?") { actions.help.showModal(); return true; }
    if (key === "h" || key === "H") { state.hideAll = !state.hideAll; render(); return true; }
    if (key === "+" || key === "=") { actions.zoom(view.zoom * 1.25); return true; }
    if (key === "-" || key === "_") { actions.zoom(view.zoom / 1.25); return true; }
    if (key === "0") { actions.zoom(1); return true; }
    if (key === "Escape") { state.selected = null; state.drawArmed = false; drag = null; view.draft = null; render(); return true; }
    if (!S.editable(state)) return false;
    const lower = key.length === 1 ? key.toLowerCase() : key;
    if (lower === "a") { if (it) { pan(S.accept(state, it)); render(); } return true; }
    if (lower === "x" || key === "Delete" || key === "Backspace") { if (it) { pan(S.reject(state, it)); render(); } return true; }
    if (lower === "b") { state.drawArmed = !state.drawArmed; render(); return true; }
    if (/^[1-9]$/.test(key)) { hotkeyLabel(Number(key), it); return true; }
    if (key in ARROWS) {
      // Shift: the right/bottom edge; Alt+Shift: the left/top edge; Alt alone: 10 px moves.
      const mode = event.shiftKey ? (event.altKey ? "start" : "end") : "move";
      const step = event.altKey && !event.shiftKey ? 10 : 1;
      if (it && S.nudge(state, it, ARROWS[key], { step, mode, now: actions.now() })) { render(); pan(it); }
      return true;
    }
    if (key === "Enter") { actions.submit(false); return true; }
    if (lower === "n") { actions.submit(true); return true; }
    if (lower === "s") { actions.skip(); return true; }
    return false;
  }

  function hotkeyLabel(hotkey, it) {
    const label = state.labels.find((l) => l.hotkey === hotkey);
    if (!label) { actions.message(`No label has the hotkey ${hotkey}.`, "warning"); return; }
    if (it && it.state !== "rejected") S.relabel(state, it, label.id);
    else state.drawLabel = label.id;
    render();
  }

  // ---- pointer -----------------------------------------------------------------------------

  function onPointerDown(event) {
    if (event.button !== 0 || !view.svg || !view.svg.contains(event.target)) return;
    focusStage();
    const p = view.toImage(event);
    const handle = event.target.dataset && event.target.dataset.handle;
    const boxNode = event.target.closest("g.box");
    const it = boxNode ? S.find(state, Number(boxNode.dataset.key)) : null;
    const editable = S.editable(state);
    if (editable && handle && it) {
      start(event, { kind: "resize", handle, key: it.key, origin: p, start: [...it.rect] });
    } else if (it && !state.drawArmed) {
      state.selected = it.key;
      if (editable && it.state !== "rejected") start(event, { kind: "move", key: it.key, origin: p, start: [...it.rect] });
      render();
    } else if (editable && state.drawLabel !== null) {
      start(event, { kind: "draw", origin: p });
    } else {
      state.selected = null; render();
    }
  }

  function start(event, how) {
    drag = { ...how, moved: false, remembered: false };
    view.svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  }

  function onPointerMove(event) {
    if (!drag) return;
    const p = view.toImage(event);
    const dx = p.x - drag.origin.x, dy = p.y - drag.origin.y;
    if (!drag.moved && Math.hypot(dx, dy) * view.scale() < MIN_DRAW_PX) return;
    drag.moved = true;
    const W = state.image.width, H = state.image.height;
    if (drag.kind === "draw") {
      view.draft = S.drawnRect(drag.origin, p, W, H);
    } else {
      const it = S.find(state, drag.key);
      if (!it) return;
      if (!drag.remembered) { S.remember(state); drag.remembered = true; }
      S.setRect(state, it, drag.kind === "move" ? S.moved(drag.start, dx, dy) : S.resized(drag.start, drag.handle, dx, dy, W, H));
    }
    render();
  }

  function onPointerUp() {
    const done = drag;
    drag = null;
    if (!done) return;
    if (done.kind === "draw") {
      if (!(done.moved && view.draft && S.addDrawn(state, view.draft))) state.selected = null;
      view.draft = null;
      state.drawArmed = false;
    }
    render();
  }

  function pick(key) {
    const it = S.pick(state, key);
    focusStage();
    render(); pan(it);
  }

  function wire() {
    document.addEventListener("keydown", onKey, true);
    ui.canvas.addEventListener("pointerdown", onPointerDown);
    ui.canvas.addEventListener("pointermove", onPointerMove);
    ui.canvas.addEventListener("pointerup", onPointerUp);
    ui.canvas.addEventListener("pointercancel", () => { drag = null; view.draft = null; render(); });
    ui.stage.addEventListener("wheel", (event) => {
      if (event.shiftKey) return; // Shift+wheel keeps scrolling sideways through a zoomed image
      event.preventDefault();
      actions.zoom(view.zoom * (event.deltaY < 0 ? 1.15 : 1 / 1.15), event);
    }, { passive: false });
  }

  return { wire, pick, focusStage, reset() { drag = null; view.draft = null; } };
}
