// tinyagent batch progress view: a bar, the counts, the rate and ETA, and a Stop button.
// Hand-written ESM (no build step). Everything it shows comes from the one `state` trait (see
// _batch_progress.py, NotebookProgress.snapshot); it only sets text, never HTML.
//
//   state: {total, done, cached, failed, running, not_run, tokens, cost, rate, eta, elapsed,
//           line, finished, stopped, reason, stopping}
//   view -> kernel: {event: "stop"} when Stop is clicked

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function percent(part, whole) {
  return whole > 0 ? `${Math.min(100, (100 * part) / whole)}%` : "0%";
}

class ProgressView {
  constructor(model, root) {
    this.model = model;
    root.classList.add("tinyagent", "ta-batch");
    this.root = root;
    this.bar = el("div", "ta-batch-bar");
    this.bar.setAttribute("role", "progressbar");
    this.segments = {};
    for (const name of ["done", "cached", "failed", "running", "not-run"]) {
      this.segments[name] = el("span", `ta-batch-seg ta-batch-${name}`);
      this.bar.append(this.segments[name]);
    }
    this.stats = el("div", "ta-batch-stats");
    this.chips = {};
    const chips = ["rows", "done", "failed", "running", "cached", "not-run", "tokens", "cost",
      "rate", "eta"];
    for (const name of chips) {
      this.chips[name] = el("span", `ta-batch-chip ta-batch-chip-${name}`);
      this.stats.append(this.chips[name]);
    }
    this.stop = el("button", "ta-batch-stop", "Stop");
    this.stop.type = "button";
    this.stop.title = "Stop the batch: running rows are cancelled, the rest are not run";
    this.stop.addEventListener("click", () => {
      this.stop.disabled = true;
      this.stop.textContent = "Stopping…";
      this.model.send({ event: "stop" });
    });
    this.stats.append(this.stop);
    this.final = el("div", "ta-batch-final");
    root.append(this.bar, this.stats, this.final);
    this.onChange = () => this.show();
    model.on("change:state", this.onChange);
    this.show();
  }

  show() {
    const s = this.model.get("state") || {};
    const total = typeof s.total === "number" ? s.total : null;
    const done = s.done || 0;
    const cached = s.cached || 0;
    const failed = s.failed || 0;
    const running = s.running || 0;
    const notRun = s.not_run || 0;
    const root = this.root;
    root.classList.toggle("ta-batch-finished", !!s.finished);
    root.classList.toggle("ta-batch-unknown", total === null && !s.finished);
    root.classList.toggle("ta-batch-was-stopped", !!s.stopped);
    // the bar: cached rows are part of `done`, drawn as their own lighter segment
    const whole = total === null ? done + failed + running + notRun : total;
    this.segments.done.style.width = percent(done - cached, whole);
    this.segments.cached.style.width = percent(cached, whole);
    this.segments.failed.style.width = percent(failed, whole);
    this.segments.running.style.width = percent(running, whole);
    this.segments["not-run"].style.width = percent(notRun, whole);
    this.bar.setAttribute("aria-valuemin", "0");
    this.bar.setAttribute("aria-valuenow", String(done + failed));
    if (total !== null) this.bar.setAttribute("aria-valuemax", String(total));
    const c = this.chips;
    c.rows.textContent = `${done + failed}/${total === null ? "?" : total} rows`;
    c.done.textContent = `${done} done`;
    c.failed.textContent = `${failed} failed`;
    c.running.textContent = `${running} running`;
    c.cached.textContent = `${cached} cached`;
    c["not-run"].textContent = `${notRun} not run`;
    c.tokens.textContent = `${s.tokens || 0} tokens`;
    c.cost.textContent = s.cost || "";
    c.rate.textContent = s.rate || "";
    c.eta.textContent = s.eta || "";
    c.failed.classList.toggle("ta-batch-zero", failed === 0);
    c.cached.classList.toggle("ta-batch-zero", cached === 0);
    c["not-run"].classList.toggle("ta-batch-zero", notRun === 0);
    c.cost.hidden = !s.cost;
    c.eta.hidden = !s.eta;
    if (s.finished) {
      this.stop.remove();
      this.final.textContent = s.line || "";
      this.final.title = s.reason || "";
    } else {
      this.final.textContent = "";
      if (s.stopping) {
        this.stop.disabled = true;
        this.stop.textContent = "Stopping…";
      }
    }
  }

  dispose() {
    this.model.off("change:state", this.onChange);
  }
}

export default {
  render({ model, el: root }) {
    const view = new ProgressView(model, root);
    return () => view.dispose();
  },
};
