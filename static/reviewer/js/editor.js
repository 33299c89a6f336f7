// Loupe's review editor: an SVG layer over the image, driven keyboard first.
//
// The page embeds the image payload (boxes, proposals, version), the labels with their model
// thresholds and a little config. Submit/skip answer with the next image's payload, which is swapped
// in place (its file was prefetched), so the reviewer never waits for a page load.
//
// Modules, loaded by the browser as they are (no bundler): editor/state.js holds the boxes,
// decisions, undo and geometry and touches no DOM; editor/view.js draws them, updating elements in
// place; editor/input.js turns keys and the pointer into state changes. This file talks to the
// server, to the reviewer's other tabs, and keeps the timer and messages.

import * as S from "./editor/state.js";
import { createInput } from "./editor/input.js";
import { clampZoom, createView } from "./editor/view.js";

const ZOOM_KEY = "loupe.review.zoom";
const $ = (id) => document.getElementById(id);
const config = JSON.parse($("review-config").textContent);
const labels = JSON.parse($("review-labels").textContent);
// Slider positions are the reviewer's, per iteration: kept across images and reloads.
const SLIDERS_KEY = `loupe.review.sliders.${config.userId}.${config.iterationId}`;

const ui = {
  app: $("review-app"), stage: $("stage"), canvas: $("canvas"), progress: $("progress"),
  timer: $("timer"), name: $("image-name"), message: $("message"), labels: $("label-list"),
  boxes: $("box-list"), summary: $("box-summary"), help: $("help"), drawState: $("draw-state"),
  hiddenGroup: $("hidden-group"), hiddenToggle: $("hidden-toggle"), hiddenBoxes: $("hidden-box-list"),
  backFrom: $("back-from"), backForm: $("back-form"),
};

const state = S.createState(labels, readJSON(SLIDERS_KEY));
const session = { busy: false, leaseLost: false, t0: 0, startedAt: null, prefetched: null, undoNoObjects: null };
const view = createView(ui, state, {
  pick: (key) => input.pick(key),
  threshold(labelId, value) {
    S.setThreshold(state, labelId, value);
    localStorage.setItem(SLIDERS_KEY, JSON.stringify(Object.fromEntries(state.minConfidence)));
    view.render();
  },
  drawLabel(labelId, byPointer) {
    state.drawLabel = labelId;
    if (byPointer) input.focusStage();
    view.render();
  },
});
view.zoom = clampZoom(Number(localStorage.getItem(ZOOM_KEY)) || 1);
const input = createInput(ui, state, view, {
  submit, skip: () => skip(), help: ui.help, now: () => performance.now(),
  message: (text, kind) => showMessage(text, kind),
  undoNoObjects,
  zoom(zoom, point) { view.setZoom(zoom, point); localStorage.setItem(ZOOM_KEY, String(view.zoom)); },
});

function readJSON(key) {
  try { return JSON.parse(localStorage.getItem(key) || "null"); } catch { return null; }
}

function load(payload) {
  S.load(state, payload);
  input.reset();
  session.leaseLost = false; session.busy = false; session.undoNoObjects = null;
  session.startedAt = new Date().toISOString(); session.t0 = performance.now(); session.loadedAt = Date.now();
  tick(); // the previous image's time must not linger until the next second
  ui.progress.textContent = `${payload.progress.left} of ${payload.progress.total} left in ${payload.progress.iteration}`;
  const size = document.createElement("span");
  size.className = "dim"; size.textContent = `${payload.width}×${payload.height}`;
  ui.name.replaceChildren(document.createTextNode(`${payload.name} `), size);
  document.title = `${payload.name} · Review ${payload.progress.iteration} · Loupe`;
  if (ui.backFrom) ui.backFrom.value = payload.id; // Back walks on from the image shown
  hideMessage();
  view.build();
  input.focusStage();
  ui.stage.scrollTo(0, 0);
  view.render();
  prefetch(payload.prefetch_url);
  announce(true);
}

// ---- server --------------------------------------------------------------------------------

async function submit(noObjects) {
  if (session.busy || !S.editable(state)) return;
  const { saved, boxes, hidden } = S.submission(state, noObjects);
  const name = state.image.name;
  const body = {
    version: state.image.version,
    // The model whose proposals this page shows: the save is judged against them even if a proposal
    // run has switched the iteration to another model since the page opened.
    model_version: state.image.model_version,
    no_objects: noObjects,
    elapsed_ms: Math.round(performance.now() - session.t0),
    started_at: session.startedAt,
    boxes, hidden,
    open_elsewhere: openElsewhere(),
  };
  const answer = await post(state.image.submit_url, body, noObjects ? "Saving as empty…" : "Saving…");
  if (!answer) return;
  if (answer.ok) {
    advance(answer.data);
    // "No objects" is one key from a wrong save: say what happened and offer to take it back.
    if (noObjects && answer.data.next) {
      session.undoNoObjects = name;
      showMessage(`${name} saved as “no objects”. Ctrl+Z or Back reopens it.`, "info",
        { label: "Undo", run: undoNoObjects });
    }
    return;
  }
  const data = answer.data;
  if (answer.status === 400) {
    const match = /^boxes\[(\d+)\]/.exec(data.field || "");
    if (match && saved[Number(match[1])]) { state.selected = saved[Number(match[1])].key; view.render(); }
    showMessage(`Not saved: ${data.error}`, "error");
  } else if (answer.status === 409 && data.code === "stale") {
    showMessage(data.error, "error", { label: "Reload", run: () => { S.markSaved(state); location.reload(); } });
  } else if (answer.status === 409) {
    session.leaseLost = true;
    showMessage(data.error, "error", { label: "Try again", run: () => submit(noObjects) });
  } else {
    showMessage(`Not saved: the server answered ${answer.status}. Your work is still here; press Enter to retry.`, "error");
  }
}

// Right after a "no objects" save, before the reviewer touched the next image: reopen that image.
function undoNoObjects() {
  if (!session.undoNoObjects || S.dirty(state) || !ui.backForm) return false;
  ui.backFrom.value = "";
  ui.backForm.submit();
  return true;
}

async function skip(notice = null) {
  if (session.busy || !S.editable(state)) return;
  const answer = await post(state.image.skip_url, { open_elsewhere: openElsewhere() }, notice ? "Moving on…" : "Skipping…");
  if (answer && answer.ok) {
    advance(answer.data);
    if (notice && answer.data.next) showMessage(notice, "warning");
  } else if (answer) showMessage(`Could not skip (the server answered ${answer.status}).`, "error");
}

async function post(url, body, pending) {
  session.busy = true;
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
    session.busy = false;
  }
}

function advance(data) {
  if (!data.next) {
    S.markSaved(state); // saved: leaving asks nothing
    location.assign(data.next_url);
    return;
  }
  history.pushState({ image: data.next.id }, "", data.next.page_url);
  load(data.next);
}

async function renewLease() {
  if (!S.editable(state) || document.hidden) return;
  try {
    const response = await fetch(state.image.lease_url, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": config.csrfToken, Accept: "application/json" },
    });
    if (response.status === 409) {
      const data = await response.json();
      session.leaseLost = true;
      showMessage(data.error, "error");
    } else if (response.ok && session.leaseLost) {
      session.leaseLost = false; hideMessage();
    }
  } catch { /* offline for a moment: the next heartbeat tries again */ }
}

function prefetch(url) {
  if (!url) return;
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  session.prefetched = img;
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
  if (!channel) return;
  channel.postMessage({ tab: TAB, image: S.editable(state) ? state.image.id : null, fresh, at: session.loadedAt });
}

// Of two tabs showing one image, the one that opened it later moves on (ties: by tab id), so two
// tabs opened at the same moment do not both leave it.
function openedEarlier(data) {
  return data.at < session.loadedAt || (data.at === session.loadedAt && data.tab < TAB);
}

function onTabMessage({ data }) {
  if (!data || data.tab === TAB) return;
  if (data.gone) { otherTabs.delete(data.tab); return; }
  otherTabs.set(data.tab, data.image);
  if (data.fresh) announce(false);
  // Another tab already shows the image this tab has just opened: this tab goes on to another.
  if (S.editable(state) && data.image === state.image.id && !S.dirty(state) && openedEarlier(data)) {
    skip(`${state.image.name} is open in another tab of yours, so this tab went on to another image.`);
  }
}

// ---- messages and timer --------------------------------------------------------------------

function showMessage(text, kind, action = null) {
  ui.message.hidden = false;
  ui.message.className = `message ${kind}`;
  ui.message.replaceChildren(document.createTextNode(text));
  if (action) {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = action.label;
    button.addEventListener("click", () => { input.focusStage(); action.run(); });
    ui.message.append(" ", button);
  }
}
function hideMessage() { ui.message.hidden = true; ui.message.replaceChildren(); }

function tick() {
  if (!state.image) return;
  const seconds = Math.floor((performance.now() - session.t0) / 1000);
  ui.timer.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

// ---- wiring --------------------------------------------------------------------------------

function wire() {
  input.wire();
  window.addEventListener("resize", () => { view.sizeStage(); view.render(); });
  window.addEventListener("popstate", () => location.reload());
  for (const button of ui.app.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      input.focusStage();
      ({ submit: () => submit(false), "no-objects": () => submit(true), skip: () => skip() })[button.dataset.action]();
    });
  }
  if (ui.hiddenToggle) {
    ui.hiddenToggle.addEventListener("click", () => { view.hiddenOpen = !view.hiddenOpen; view.render(); });
  }
  setInterval(tick, 1000);
  setInterval(renewLease, Math.max(5, config.leaseSeconds / 3) * 1000);
  document.addEventListener("visibilitychange", renewLease);
  if (channel) channel.addEventListener("message", onTabMessage);
  window.addEventListener("pagehide", () => { if (channel) channel.postMessage({ tab: TAB, gone: true }); });
  window.addEventListener("beforeunload", (event) => {
    if (!S.dirty(state)) return;
    event.preventDefault();
    event.returnValue = ""; // older Chromium shows the "leave site?" prompt only with this set
  });
}

wire();
view.buildLabels();
load(JSON.parse($("review-image").textContent));
window.loupeEditor = { state, labels };
