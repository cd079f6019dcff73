// tinyagent notebook view: one anywidget for a run's output and for the chat panel.
// Hand-written ESM (no build step). The kernel renders and sanitizes all model content; this
// file only places HTML parts by id and forwards button clicks.
//
// Protocol
//   state trait: {kind: "run"|"panel", running, status, usage, models, model, queued, doc?, rev?}
//     `doc` ([[id, parent, html, isTail], ...]) is present only in a full state sync (open,
//     request_state), so re-opened views show everything. `rev` is the document's revision: a
//     full sync older than the ops a store has already applied is ignored (never rebuild backwards).
//   custom message kernel -> view: {ops: [[id, parent, html, isTail], ...], rev}: put each part
//     (new parts are appended to their parent's [data-slot] element, before its tail part; a known
//     part's HTML is replaced only if it changed, and its child parts stay in its slot; a part put
//     with HTML that has no slot, e.g. "" for a removed item, holds none). Puts are idempotent.
//     A part whose parent the view does not know makes it ask for a "sync".
//   custom message view -> kernel: {event: "stop"|"send"|"clear"|"model"|"confirm"|"resend", ...}
//     confirm: {event: "confirm", id, ok, choice} from a button[data-confirm]; choice is its
//     data-choice ("run", "skip", "always", ...), else "run"/"skip" from data-ok (ok is kept for
//     older kernels).
//   Copy buttons (div.ta-code > button.ta-copy + pre, in model text and tool cards) are handled
//   here, without the kernel: the click copies the box's code to the clipboard.

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

// -- Copy buttons ------------------------------------------------------------------------------

const COPIED_MS = 1500;

// The element that holds a part's own HTML: a piece's wrapper div, else the part itself.
function partContent(part) {
  const first = part.firstElementChild;
  return first && first.classList.contains("ta-piece") && !first.nextElementSibling ? first : part;
}

// The code box next to `box` in the neighbouring part (dir -1: before, +1: after), when `box`
// is the first (last) element of its part and that part's last (first) element is a code box.
function adjacentBox(box, dir) {
  const part = box.closest(".ta-part");
  if (!part) return null;
  const own = partContent(part);
  if (box.parentElement !== own) return null;
  if ((dir < 0 ? own.firstElementChild : own.lastElementChild) !== box) return null;
  const other = dir < 0 ? part.previousElementSibling : part.nextElementSibling;
  if (!other || !other.classList.contains("ta-part")) return null;
  const theirs = partContent(other);
  const next = dir < 0 ? theirs.lastElementChild : theirs.firstElementChild;
  return next && next.classList.contains("ta-code") ? next : null;
}

function isContinued(box) {
  return !!box.querySelector(":scope > pre[data-ta-continued]");
}

// The code of a box: its <pre>'s innerText. A long block streamed in pieces is several boxes,
// the later ones marked data-ta-continued; their chunks are copied as one block.
function codeOf(box) {
  const boxes = [box];
  for (let b = box; isContinued(b); ) {
    b = adjacentBox(b, -1);
    if (!b) break;
    boxes.unshift(b);
  }
  for (let b = box; ; ) {
    b = adjacentBox(b, 1);
    if (!b || !isContinued(b)) break;
    boxes.push(b);
  }
  return boxes
    .map((b) => {
      const pre = b.querySelector(":scope > pre");
      const text = pre ? pre.innerText : "";
      return text.endsWith("\n") || b === boxes[boxes.length - 1] ? text : text + "\n";
    })
    .join("");
}

// Without the Clipboard API (a non-secure context, e.g. a notebook served over plain http from
// another host): select the text in a hidden textarea and let the browser copy it.
function copyWithTextarea(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.cssText = "position:fixed;top:0;left:0;width:1px;height:1px;opacity:0";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_err) {
    ok = false;
  }
  area.remove();
  return ok;
}

async function writeClipboard(text) {
  if (navigator.clipboard && navigator.clipboard.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_err) {
      // denied or not focused: try the old way
    }
  }
  return copyWithTextarea(text);
}

// "Copied" on the button until `until` (a Date.now() time), then "Copy" again.
function showCopied(button, label, until) {
  button.textContent = label;
  button.classList.add("ta-copied");
  button.dataset.copiedUntil = String(until);
  setTimeout(() => {
    if (Number(button.dataset.copiedUntil) > Date.now()) return; // clicked again since
    button.textContent = "Copy";
    button.classList.remove("ta-copied");
    delete button.dataset.copiedUntil;
  }, Math.max(0, until - Date.now()));
}

async function copyCode(button) {
  const box = button.closest(".ta-code");
  if (!box) return;
  const ok = await writeClipboard(codeOf(box));
  if (document.activeElement !== button && button.isConnected) button.focus({ preventScroll: true });
  showCopied(button, ok ? "Copied" : "Copy failed", Date.now() + COPIED_MS);
}

// The Copy buttons in a part's own HTML (not in the child parts of its slot).
function ownCopyButtons(node) {
  return [...node.querySelectorAll("button.ta-copy")].filter((b) => b.closest(".ta-part") === node);
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
  }

  buildRunBar() {
    this.status = el("span", "ta-live-status");
    this.stop = el("button", "ta-stop", "Stop");
    this.stop.addEventListener("click", () => this.model.send({ event: "stop" }));
    this.bar.append(this.status, this.stop);
  }

  buildPanel() {
    this.body.classList.add("ta-transcript");
    this.queued = el("div", "ta-queued");
    const input = el("textarea", "ta-input");
    input.rows = 3;
    input.placeholder = "Message the agent (Enter to send, Shift+Enter for a new line)";
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        e.stopPropagation();
        this.submit();
      }
    });
    this.input = input;
    this.send = el("button", "ta-send", "Send");
    this.send.addEventListener("click", () => this.submit());
    this.stop = el("button", "ta-stop", "Stop");
    this.stop.addEventListener("click", () => this.model.send({ event: "stop" }));
    this.clear = el("button", "ta-clear", "Clear");
    this.clear.addEventListener("click", () => this.model.send({ event: "clear" }));
    this.select = el("select", "ta-model");
    this.select.addEventListener("change", () =>
      this.model.send({ event: "model", value: this.select.value }),
    );
    this.usage = el("span", "ta-usage");
    const row = el("div", "ta-row");
    row.append(this.send, this.stop, this.clear, this.select, this.usage);
    this.bar.append(this.queued, input, row);
  }

  submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.input.value = "";
    this.model.send({ event: "send", text });
  }

  onBodyClick(e) {
    const target = e.target && e.target.closest ? e.target : null;
    if (!target) return;
    const copy = target.closest("button.ta-copy");
    if (copy && copy.closest(".ta-code")) {
      copyCode(copy);
      return;
    }
    const button = target.closest("button[data-confirm]");
    if (!button) return;
    const ok = button.dataset.ok === "1";
    const choice = button.dataset.choice || (ok ? "run" : "skip");
    this.model.send({ event: "confirm", id: button.dataset.confirm, ok, choice });
  }

  controls() {
    const state = this.model.get("state") || {};
    const running = !!state.running;
    this.root.classList.toggle("ta-running", running);
    if (this.status) this.status.textContent = state.status || "";
    if (this.stop) this.stop.disabled = !running;
    if (this.kind !== "panel") return;
    this.send.textContent = running ? "Queue" : "Send";
    this.usage.textContent = state.usage || "";
    const models = state.models || [];
    this.select.replaceChildren(
      ...models.map((m) => {
        const option = el("option", "", m);
        option.value = m;
        option.selected = m === state.model;
        return option;
      }),
    );
    this.select.style.display = models.length ? "" : "none";
    const queued = state.queued || [];
    this.queued.replaceChildren(
      ...queued.map((text, index) => {
        const row = el("div", "ta-queued-item");
        row.append(el("span", "ta-queued-text", text));
        const again = el("button", "ta-resend", "Send again");
        again.addEventListener("click", () => this.model.send({ event: "resend", index }));
        row.append(again);
        return row;
      }),
    );
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
    if (this.kind === "panel") this.body.scrollTop = this.body.scrollHeight;
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
    node.innerHTML = html;
    const slot = slotOf(node);
    if (slot) slot.append(...kids);
    if (!before.length) return;
    const after = ownCopyButtons(node);
    copied.forEach((until, i) => {
      if (until && after[i]) showCopied(after[i], before[i].textContent, Number(until));
    });
    if (focused >= 0 && after[focused]) after[focused].focus({ preventScroll: true });
  }

  dispose() {
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
