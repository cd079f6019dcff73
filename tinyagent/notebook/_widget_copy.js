// tinyagent notebook view, part 1 of 3: the Copy (and Insert) buttons of code boxes
// (div.ta-code > button.ta-copy + pre, in model text and tool cards). The click is handled here,
// without the kernel: the box's code goes to the clipboard, or into a new cell below. _widget.py joins the three parts
// (_widget_copy.js, _widget_composer.js, _widget.js) into the widget's one ES module.

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
function showCopied(button, label, until, rest = "Copy") {
  button.textContent = label;
  button.classList.add("ta-copied");
  button.dataset.copiedUntil = String(until);
  setTimeout(() => {
    if (Number(button.dataset.copiedUntil) > Date.now()) return; // clicked again since
    button.textContent = rest;
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

// Insert as a cell: only where the page gives us the Jupyter application (JupyterLab and
// Notebook 7 started with expose_app_in_browser); elsewhere there is no button.
function notebookApp() {
  const app = window.jupyterapp;
  return app && app.commands && app.commands.hasCommand("notebook:insert-cell-below") ? app : null;
}

function addInsertButtons(part) {
  if (!notebookApp()) return;
  for (const copy of ownCopyButtons(part)) {
    // before the Copy button, so a box stays `button.ta-copy + pre` (the grid places both)
    const previous = copy.previousElementSibling;
    if (previous && previous.classList.contains("ta-insert")) continue;
    const insert = document.createElement("button");
    insert.type = "button";
    insert.className = "ta-insert";
    insert.textContent = "Insert";
    insert.title = "Insert this code as a new cell below";
    copy.before(insert);
  }
}

// The output's own cell becomes the active one, a code cell goes below it with the code.
async function insertCode(button) {
  const app = notebookApp();
  const box = button.closest(".ta-code");
  if (!app || !box) return;
  const code = codeOf(box).replace(/\n$/, "");
  const panel = app.shell.currentWidget;
  const notebook = panel && panel.content;
  const cellNode = button.closest(".jp-Cell");
  if (notebook && cellNode && notebook.widgets) {
    const index = notebook.widgets.findIndex((cell) => cell.node === cellNode);
    if (index >= 0) notebook.activeCellIndex = index;
  }
  await app.commands.execute("notebook:insert-cell-below");
  const cell = notebook && notebook.activeCell;
  if (cell) cell.model.sharedModel.setSource(code);
  showCopied(button, "Inserted", Date.now() + COPIED_MS, "Insert");
}
