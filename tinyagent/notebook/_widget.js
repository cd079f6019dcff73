// tinyagent notebook view, part 3 of 3: one anywidget for a run's output and for the chat panel.
// Hand-written ESM (no build step; _widget.py joins _widget_copy.js, _widget_composer.js and this
// file). The kernel renders and sanitizes all model content; this file places HTML parts by id,
// ticks elapsed times, follows the stream and forwards clicks.
//
// Protocol
//   state trait: {kind: "run"|"panel", running, status, since, usage, models, model, queued,
//     notice, can_retry, attachables, edit, doc?, rev?}
//     status: what the run is doing ("thinking…"), since: the run's start (epoch ms; the view
//     ticks the elapsed time from it). Elements with data-since (a streaming thinking summary)
//     tick the same way.
//     `doc` ([[id, parent, html, isTail], ...]) is present only in a full state sync (open,
//     request_state), so re-opened views show everything. `rev` is the document's revision: a
//     full sync older than the ops a store has already applied is ignored (never rebuild backwards).
//   custom message kernel -> view: {ops: [[id, parent, html, isTail], ...], rev}: put each part
//     (new parts are appended to their parent's [data-slot] element, before its tail part; a known
//     part's HTML is replaced only if it changed, and its child parts stay in its slot; a part put
//     with HTML that has no slot, e.g. "" for a removed item, holds none). Puts are idempotent.
//     A part whose parent the view does not know makes it ask for a "sync".
//   custom message view -> kernel: {event: "stop"|"send"|"clear"|"model"|"confirm"|"resend"|
//     "retry"|"edit"|"attachables", ...}; send: {text, attachments, replace_last}
//     confirm: {event: "confirm", id, ok, choice} from a button[data-confirm]; choice is its
//     data-choice ("run", "skip", "always", ...), else "run"/"skip" from data-ok (ok is kept for
//     older kernels).

// anywidget hands initialize() and render() different proxies of one model, so stores are keyed
// by the widget's own key (state.key). A new store asks the kernel for every part once ("sync"):
// ops sent before this module was loaded or before the first view rendered are not lost.
const stores = new Map();

function getStore(model) {
  const key = (model.get("state") || {}).key || "";
  let store = stores.get(key);
  if (store) return store;
  const first = model.get("state") || {};
  store = { order: [], parts: new Map(), views: new Set(), rev: first.rev || 0, asked: 0 };
  for (const op of first.doc || []) remember(store, op);
  model.on("msg:custom", (msg) => {
    if (!msg || !Array.isArray(msg.ops)) return;
    store.rev = Math.max(store.rev, msg.rev || 0);
    for (const op of msg.ops) {
      remember(store, op);
      for (const view of store.views) view.apply(op);
    }
  });
  model.on("change:state", () => {
    const state = model.get("state") || {};
    const doc2 = state.doc;
    if (Array.isArray(doc2) && (state.rev || 0) >= store.rev) {
      store.rev = state.rev || 0;
      store.order = [];
      store.parts = new Map();
      for (const op of doc2) remember(store, op);
      for (const view of store.views) view.rebuild();
    }
    for (const view of store.views) view.controls();
  });
  stores.set(key, store);
  model.send({ event: "sync" });
  return store;
}

function remember(store, op) {
  const [id, parent, html, tail] = op;
  if (!store.parts.has(id)) store.order.push(id);
  store.parts.set(id, { parent, html, tail });
}

// where a part's child parts go: the element marked data-slot inside its HTML
function slotOf(node) {
  return node.querySelector("[data-slot]");
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

const TICK_MS = 500;
const FOLLOW_SLACK_PX = 24; // this close to the bottom counts as "at the bottom"

function elapsedText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

// The <details> of a part's own HTML (not those of the child parts in its slot).
function ownDetails(n) {
  return [...n.querySelectorAll("details")].filter((d) => d.closest(".ta-part") === n);
}

class View {
  constructor(model, root) {
    this.model = model;
    this.root = root;
    this.nodes = new Map(); // part id -> its element
    this.html = new Map(); // part id -> the HTML last put into it
    this.owned = new WeakSet(); // the part elements this view made (not model HTML)
    this.store = getStore(model);
    const state = model.get("state") || {};
    this.kind = state.kind || "run";
    root.classList.add("tinyagent", `tinyagent-${this.kind}`);
    this.body = el("div", "ta-body");
    this.bar = el("div", "ta-bar");
    root.append(this.body, this.bar);
    this.body.addEventListener("click", (e) => this.onBodyClick(e));
    if (this.kind === "panel") this.buildPanel();
    else this.buildRunBar();
    this.rebuild();
    this.controls();
    this.store.views.add(this);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  buildRunBar() {
    this.status = el("span", "ta-live-status");
    this.elapsed = el("span", "ta-elapsed");
    this.stop = el("button", "ta-stop", "Stop");
    this.stop.type = "button";
    this.stop.title = "Stop the run (the answer so far is kept)";
    this.stop.addEventListener("click", () => this.model.send({ event: "stop" }));
    this.bar.append(this.status, this.elapsed, this.stop);
  }

  buildPanel() {
    this.body.classList.add("ta-transcript");
    this.body.setAttribute("role", "log");
    this.follow = true; // the transcript follows the stream while the reader is at the bottom
    this.jump = el("button", "ta-jump", "Jump to latest ↓");
    this.jump.type = "button";
    this.jump.hidden = true;
    this.jump.addEventListener("click", () => {
      this.follow = true;
      this.scrollToEnd();
    });
    this.body.addEventListener("scroll", () => {
      const b = this.body;
      this.follow = b.scrollHeight - b.scrollTop - b.clientHeight <= FOLLOW_SLACK_PX;
      this.jump.hidden = this.follow;
    });
    const wrap = el("div", "ta-transcript-wrap");
    this.root.insertBefore(wrap, this.body);
    wrap.append(this.body, this.jump);
    this.composer = new Composer(this);
    this.elapsed = this.composer.elapsed;
  }

  scrollToEnd() {
    this.body.scrollTop = this.body.scrollHeight;
    this.jump.hidden = true;
  }

  onBodyClick(e) {
    const target = e.target && e.target.closest ? e.target : null;
    if (!target) return;
    const copy = target.closest("button.ta-copy");
    if (copy && copy.closest(".ta-code")) {
      copyCode(copy);
      return;
    }
    const insert = target.closest("button.ta-insert");
    if (insert) {
      insertCode(insert);
      return;
    }
    // a <details> the reader opened or closed keeps that state when its part is re-put (the
    // click comes before the toggle: record the state it toggles to)
    const summary = target.closest("summary");
    if (summary && summary.parentElement && summary.parentElement.tagName === "DETAILS") {
      const details = summary.parentElement;
      details.dataset.taOpen = details.open ? "0" : "1";
      return;
    }
    const choice = target.closest("button[data-confirm]");
    if (!choice) return;
    const ok = choice.dataset.ok === "1";
    const picked = choice.dataset.choice || (ok ? "run" : "skip");
    this.model.send({ event: "confirm", id: choice.dataset.confirm, ok, choice: picked });
  }

  controls() {
    const state = this.model.get("state") || {};
    const running = !!state.running;
    this.running = running;
    this.since = state.since || 0;
    this.root.classList.toggle("ta-running", running);
    if (this.kind === "panel") this.composer.controls(state);
    else {
      this.status.textContent = state.status || "";
      this.stop.disabled = !running;
    }
    this.tick();
  }

  // elapsed times: the run's (status line) and each streaming thinking summary's
  tick() {
    const now = Date.now();
    if (this.elapsed) {
      this.elapsed.textContent = this.running && this.since ? elapsedText(now - this.since) : "";
    }
    for (const span of this.body.querySelectorAll("[data-since]")) {
      span.textContent = elapsedText(now - Number(span.dataset.since));
    }
  }

  rebuild() {
    this.nodes.clear();
    this.html.clear();
    this.body.replaceChildren();
    for (const id of this.store.order) {
      const part = this.store.parts.get(id);
      this.apply([id, part.parent, part.html, part.tail]);
    }
  }

  apply([id, parent, html, tail]) {
    let node = this.nodes.get(id);
    if (node) {
      // Puts are idempotent: the reply to a "sync" re-sends every part, containers included,
      // usually unchanged. Rewriting a container's innerHTML would detach the child parts in its
      // slot (the growing text tail), and every later update of those would land off the page.
      if (this.html.get(id) === html) return;
      this.replace(node, html);
    } else {
      const host = parent ? this.nodes.get(parent) : this.body;
      if (!host) {
        // A part of a parent this view never saw: ask the kernel for every part again (puts are
        // idempotent), at most every half second.
        const now = Date.now();
        if (now - this.store.asked > 500) {
          this.store.asked = now;
          this.model.send({ event: "sync" });
        }
        return;
      }
      const slot = parent ? slotOf(host) : host;
      // a parent without a slot holds no parts (an item removed by putting it empty)
      if (!slot) return;
      node = el("div", tail ? "ta-part ta-tailpart" : "ta-part");
      const tailNode = tail ? null : slot.querySelector(":scope > .ta-tailpart");
      if (tailNode) slot.insertBefore(node, tailNode);
      else slot.appendChild(node);
      this.nodes.set(id, node);
      this.owned.add(node);
      node.innerHTML = html;
    }
    this.html.set(id, html);
    addInsertButtons(node);
    if (node.querySelector("[data-since]")) this.tick();
    if (this.kind === "panel" && this.follow) this.scrollToEnd();
  }

  // A known part changed: its own HTML is replaced and its child parts move, in order, into the
  // new slot; new HTML without a slot (a removed item is put empty) drops them.
  // A Copy button re-made by the new HTML (the open tail is re-rendered as it grows) keeps the
  // "Copied" label and the focus of the button it replaces (same position among the part's own).
  replace(node, html) {
    const old = slotOf(node);
    const kids = old ? [...old.children].filter((child) => this.owned.has(child)) : [];
    const before = ownCopyButtons(node);
    const copied = before.map((b) => b.classList.contains("ta-copied") && b.dataset.copiedUntil);
    const focused = before.indexOf(document.activeElement);
    const opened = ownDetails(node).map((d) => d.dataset.taOpen);
    node.innerHTML = html;
    const slot = slotOf(node);
    if (slot) slot.append(...kids);
    ownDetails(node).forEach((d, i) => {
      if (opened[i] === undefined) return;
      d.open = opened[i] === "1";
      d.dataset.taOpen = opened[i];
    });
    if (!before.length) return;
    const after = ownCopyButtons(node);
    copied.forEach((until, i) => {
      if (until && after[i]) showCopied(after[i], before[i].textContent, Number(until));
    });
    if (focused >= 0 && after[focused]) after[focused].focus({ preventScroll: true });
  }

  dispose() {
    clearInterval(this.timer);
    this.store.views.delete(this);
  }
}

export default {
  initialize({ model }) {
    getStore(model);
  },
  render({ model, el: root }) {
    const view = new View(model, root);
    return () => view.dispose();
  },
};
