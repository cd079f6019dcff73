// tinyagent notebook view, part 2 of 3: the chat panel's composer and controls.
//
// Keys: Enter sends, Shift+Enter is a new line, Escape stops a run (or cancels an edit), Up in an
// empty composer recalls the last message. One button is Send, Stop while a run is going, and
// Queue when text is typed during a run (it steers the run). Images pasted or dropped into the
// panel and variables picked from the Attach menu ride along as attachments; the kernel checks
// them again and says in the panel why one was refused.

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const MAX_IMAGE_BYTES = 8 * 1024 * 1024; // as _attachments.py: refused here before uploading
const COMPOSER_MAX_PX = 240; // the composer grows with its text up to this height

function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function button(cls, label, title) {
  const b = node("button", cls, label);
  b.type = "button";
  if (title) b.title = title;
  return b;
}

class Composer {
  constructor(view) {
    this.view = view;
    this.model = view.model;
    this.attachments = []; // {type: "image", mime, data, name, url} | {type: "variable", name}
    this.history = []; // messages sent from this view, for Up
    this.editing = false;
    // a view opened later must not take up text the kernel gave an earlier view's composer
    this.editSeq = ((this.model.get("state") || {}).edit || {}).seq || 0;
    this.build();
  }

  build() {
    const bar = this.view.bar;
    this.statusLine = node("div", "ta-status-line");
    this.status = node("span", "ta-live-status");
    this.elapsed = node("span", "ta-elapsed");
    this.statusLine.append(this.status, this.elapsed);
    this.queued = node("div", "ta-queued");
    this.notice = node("div", "ta-notice");
    this.notice.setAttribute("role", "alert");
    this.editHint = node("div", "ta-editing", "Editing your last message · Esc to cancel");
    this.chips = node("div", "ta-attachments");
    this.chips.hidden = true;

    const input = node("textarea", "ta-input");
    input.rows = 1;
    input.placeholder = "Message the agent (Enter to send, Shift+Enter for a new line)";
    input.setAttribute("aria-label", "Message");
    // Jupyter's keyboard shortcuts (Shift+Enter runs the cell, Escape leaves edit mode, A/B/D
    // insert and delete cells...) skip keys typed under this attribute: they are the panel's
    input.setAttribute("data-lm-suppress-shortcuts", "true");
    input.addEventListener("keydown", (e) => this.onKey(e));
    input.addEventListener("input", () => this.changed());
    input.addEventListener("paste", (e) => this.onPaste(e));
    this.input = input;
    this.send = button("ta-send", "Send");
    this.send.addEventListener("click", () => this.onSendButton());
    const composer = node("div", "ta-composer");
    composer.append(input, this.send);

    this.attach = button("ta-attach", "Attach", "Attach a variable or figure from the kernel");
    this.attach.addEventListener("click", () => this.toggleMenu());
    this.menu = node("div", "ta-attach-menu");
    this.menu.hidden = true;
    this.retry = button("ta-retry", "Retry", "Answer the last message again");
    this.retry.addEventListener("click", () => this.model.send({ event: "retry" }));
    this.edit = button("ta-edit", "Edit last", "Edit your last message and send it again");
    this.edit.addEventListener("click", () => this.model.send({ event: "edit" }));
    this.clear = button("ta-clear", "Clear", "Stop, and forget the conversation");
    this.clear.addEventListener("click", () => this.model.send({ event: "clear" }));
    this.select = node("select", "ta-model");
    this.select.setAttribute("aria-label", "Model");
    this.select.addEventListener("change", () =>
      this.model.send({ event: "model", value: this.select.value }),
    );
    this.usage = node("span", "ta-usage");
    const row = node("div", "ta-row");
    const attachBox = node("span", "ta-attach-box");
    attachBox.append(this.attach, this.menu);
    row.append(attachBox, this.retry, this.edit, this.clear, this.select, this.usage);

    bar.append(this.statusLine, this.queued, this.notice, this.editHint, this.chips, composer, row);
    // a drop anywhere on the panel attaches the dropped images
    const root = this.view.root;
    root.addEventListener("dragover", (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) e.preventDefault();
    });
    root.addEventListener("drop", (e) => this.onDrop(e));
  }

  // -- state from the kernel -------------------------------------------------------------------

  controls(state) {
    const running = !!state.running;
    this.running = running;
    this.status.textContent = state.status || "";
    this.statusLine.hidden = !running;
    const models = state.models || [];
    this.select.replaceChildren(
      ...models.map((m) => {
        const option = node("option", "", m);
        option.value = m;
        option.selected = m === state.model;
        return option;
      }),
    );
    this.select.hidden = !models.length;
    this.usage.textContent = state.usage || "";
    this.retry.disabled = running || !state.can_retry;
    this.edit.disabled = running || !state.can_retry;
    this.showNotice(state.notice || "");
    const queued = state.queued || [];
    this.queued.replaceChildren(
      ...queued.map((text, index) => {
        const item = node("div", "ta-queued-item");
        item.append(node("span", "ta-queued-text", text));
        const again = button("ta-resend", "Send again");
        again.addEventListener("click", () => this.model.send({ event: "resend", index }));
        item.append(again);
        return item;
      }),
    );
    // text the kernel puts into the composer: Edit last, or a refused message given back
    const edit = state.edit || {};
    if (edit.seq && edit.seq !== this.editSeq) {
      this.editSeq = edit.seq;
      this.input.value = edit.text || "";
      this.editing = !!edit.editing;
      this.input.focus();
    }
    this.editHint.hidden = !this.editing;
    this.renderMenu(state.attachables || []);
    this.changed();
  }

  showNotice(text) {
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }

  // the one button's state, the composer's height
  changed() {
    const typed = !!this.input.value.trim() || this.attachments.length > 0;
    const state = this.running ? (typed ? "queue" : "stop") : "send";
    this.send.dataset.state = state;
    this.send.textContent = { send: "Send", stop: "Stop", queue: "Queue" }[state];
    this.send.title = {
      send: "Send (Enter)",
      stop: "Stop the run (Esc)",
      queue: "Queue: the running agent reads it at its next step (Enter)",
    }[state];
    this.send.disabled = state === "send" && !typed;
    this.input.style.height = "auto";
    this.input.style.height = Math.min(this.input.scrollHeight + 2, COMPOSER_MAX_PX) + "px";
  }

  // -- actions ---------------------------------------------------------------------------------

  onKey(e) {
    if (e.isComposing) return;
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      e.stopPropagation();
      this.submit();
    } else if (e.key === "Escape") {
      // keep Jupyter from leaving edit mode for the cell: Escape belongs to the panel here
      e.preventDefault();
      e.stopPropagation();
      if (this.running) this.model.send({ event: "stop" });
      else if (this.editing) this.cancelEdit();
    } else if (e.key === "ArrowUp" && !this.input.value && this.history.length) {
      e.preventDefault();
      this.input.value = this.history[this.history.length - 1];
      this.changed();
    } else {
      e.stopPropagation(); // typing in the panel must not trigger notebook shortcuts
    }
  }

  onSendButton() {
    if (this.send.dataset.state === "stop") this.model.send({ event: "stop" });
    else this.submit();
  }

  submit() {
    const text = this.input.value;
    if (!text.trim() && !this.attachments.length) return;
    const attachments = this.attachments.map(({ type, mime, data, name }) =>
      type === "image" ? { type, mime, data, name } : { type, name },
    );
    this.model.send({ event: "send", text, attachments, replace_last: this.editing && !this.running });
    if (text.trim()) this.history.push(text);
    this.input.value = "";
    this.attachments = [];
    this.editing = false;
    this.editHint.hidden = true;
    this.renderChips();
    this.changed();
  }

  cancelEdit() {
    this.editing = false;
    this.input.value = "";
    this.editHint.hidden = true;
    this.changed();
  }

  // -- attachments -----------------------------------------------------------------------------

  onPaste(e) {
    const files = [...((e.clipboardData && e.clipboardData.files) || [])];
    if (!files.length) return;
    e.preventDefault();
    files.forEach((file) => this.addFile(file));
  }

  onDrop(e) {
    const files = [...((e.dataTransfer && e.dataTransfer.files) || [])];
    if (!files.length) return;
    e.preventDefault();
    files.forEach((file) => this.addFile(file));
  }

  addFile(file) {
    const name = file.name || "pasted image";
    if (!IMAGE_TYPES.includes(file.type)) {
      this.showNotice(`${name}: only PNG, JPEG, GIF and WebP images can be attached.`);
      return;
    }
    if (file.size > MAX_IMAGE_BYTES) {
      const mb = (file.size / 1e6).toFixed(1);
      this.showNotice(`${name}: ${mb} MB is more than the 8 MB an attached image may have.`);
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result || "");
      const data = url.slice(url.indexOf(",") + 1);
      this.attachments.push({ type: "image", mime: file.type, data, name, url });
      this.showNotice("");
      this.renderChips();
      this.changed();
    };
    reader.onerror = () => this.showNotice(`${name}: the file could not be read; attach it again.`);
    reader.readAsDataURL(file);
  }

  renderChips() {
    this.chips.replaceChildren(
      ...this.attachments.map((item, index) => {
        const chip = node("span", "ta-chip");
        if (item.type === "image") {
          const img = node("img");
          img.src = item.url;
          img.alt = item.name;
          chip.append(img);
        } else {
          chip.append(node("span", "ta-chip-label", `@${item.name}`));
        }
        const remove = button("ta-chip-remove", "×", "Remove this attachment");
        remove.setAttribute("aria-label", `Remove ${item.name}`);
        remove.addEventListener("click", () => {
          this.attachments.splice(index, 1);
          this.renderChips();
          this.changed();
        });
        chip.append(remove);
        return chip;
      }),
    );
    this.chips.hidden = !this.attachments.length;
  }

  toggleMenu() {
    this.menu.hidden = !this.menu.hidden;
    if (!this.menu.hidden) this.model.send({ event: "attachables" });
  }

  renderMenu(listed) {
    if (!listed.length) {
      this.menu.replaceChildren(node("div", "ta-attach-empty", "No variables in the kernel yet"));
      return;
    }
    this.menu.replaceChildren(
      ...listed.map((item) => {
        const choice = button("ta-attach-item", "");
        choice.append(
          node("span", "ta-attach-name", item.name),
          node("span", "ta-attach-type", item.kind === "figure" ? "figure" : item.type),
        );
        choice.addEventListener("click", () => {
          this.menu.hidden = true;
          if (!this.attachments.some((a) => a.type === "variable" && a.name === item.name)) {
            this.attachments.push({ type: "variable", name: item.name });
          }
          this.renderChips();
          this.changed();
          this.input.focus();
        });
        return choice;
      }),
    );
  }
}
