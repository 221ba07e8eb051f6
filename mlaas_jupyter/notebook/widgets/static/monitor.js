// TrainingMonitor front-end: state, progress and pace, per-epoch curves (SVG: losses
// and metrics on separate charts, as the model's `series` splits them), results.
const COLOURS = [
  "var(--jp-brand-color1)",
  "var(--jp-warn-color1)",
  "var(--jp-success-color1)",
  "var(--jp-info-color1, var(--jp-ui-font-color2))",
  "var(--jp-error-color1)",
];
const SVG = "http://www.w3.org/2000/svg";
// shown in the physics line (the model's `physics`), not again among the metrics
const PHYSICS = new Set(["auc_weighted", "rejection_at_50", "rejection_at_90", "luminosity"]);

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function chart(history, keys, title) {
  const width = 340, height = 180, pad = 40;
  const root = svg("svg", { width, height, class: "mlaas-chart" });
  const present = keys.map((key, index) => [key, COLOURS[index % COLOURS.length]]);
  if (!history.length || !present.length) return root;
  const values = present.flatMap(([key]) => history.map((h) => h[key]).filter((v) => typeof v === "number"));
  const low = Math.min(...values), high = Math.max(...values, low + 1e-6);
  const epochs = history.map((h) => h.epoch);
  const first = Math.min(...epochs), last = Math.max(...epochs, first + 1);
  const x = (e) => pad + ((e - first) / (last - first)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - low) / (high - low)) * (height - 2 * pad);
  root.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "mlaas-plot-axis" }));
  root.append(svg("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, class: "mlaas-plot-axis" }));
  const texts = [
    [width / 2, height - 8, "epoch", "middle"],
    [pad - 4, y(high) + 4, high.toPrecision(2), "end"],
    [pad - 4, y(low) + 4, low.toPrecision(2), "end"],
    [x(first), height - pad + 12, String(first), "middle"],
    [x(last), height - pad + 12, String(last), "middle"],
  ];
  const name = svg("text", {
    x: 12, y: height / 2, class: "mlaas-plot-text", "text-anchor": "middle",
    transform: `rotate(-90 12 ${height / 2})`,
  });
  name.textContent = title;
  root.append(name);
  for (const [tx, ty, text, anchor] of texts) {
    const label = svg("text", { x: tx, y: ty, class: "mlaas-plot-text", "text-anchor": anchor });
    label.textContent = text;
    root.append(label);
  }
  present.forEach(([key, colour], index) => {
    const points = history.filter((h) => typeof h[key] === "number").map((h) => `${x(h.epoch)},${y(h[key])}`);
    root.append(svg("polyline", { points: points.join(" "), class: "mlaas-plot", style: `stroke: ${colour}` }));
    for (const point of points) {
      const [cx, cy] = point.split(",");
      root.append(svg("circle", { cx, cy, r: 2.5, style: `fill: ${colour}` }));
    }
    const legend = svg("text", { x: pad + 6 + index * 80, y: pad - 10, class: "mlaas-plot-text", style: `fill: ${colour}` });
    legend.textContent = key;
    root.append(legend);
  });
  return root;
}

function render({ model, el }) {
  el.classList.add("mlaas-widget", "mlaas-monitor");
  const head = document.createElement("div");
  head.className = "mlaas-row";
  const title = document.createElement("span");
  const state = document.createElement("span");
  const cancel = document.createElement("button");
  cancel.className = "mlaas-button";
  cancel.textContent = "Cancel";
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    model.send({ action: "cancel" });
  });
  head.append(title, state, cancel);
  const progressRow = document.createElement("div");
  progressRow.className = "mlaas-row";
  const bar = document.createElement("div");
  bar.className = "mlaas-progress";
  const fill = document.createElement("div");
  bar.append(fill);
  const rate = document.createElement("span");
  rate.className = "mlaas-summary";
  progressRow.append(bar, rate);
  const curves = document.createElement("div");
  curves.className = "mlaas-row";
  const results = document.createElement("div");
  const physics = document.createElement("div");
  physics.className = "mlaas-physics";
  const images = document.createElement("div");
  images.className = "mlaas-images";
  const report = document.createElement("details");
  report.className = "mlaas-report-box";
  const error = document.createElement("div");
  error.className = "mlaas-error";
  el.append(head, progressRow, curves, results, physics, images, report, error);

  const draw = () => {
    const s = model.get("state");
    title.textContent = `${model.get("name") || "job"} · ${model.get("job_id")} · ${model.get("executor")}`;
    state.textContent = s;
    state.className = `mlaas-state mlaas-state-${s}`;
    cancel.disabled = !["queued", "running"].includes(s);
    const p = model.get("progress");
    const epochs = p.epochs || 0;
    let done = 0;
    if (s === "succeeded") done = 1;
    else if (epochs && p.batches) done = ((p.epoch || 1) - 1 + (p.batch || 0) / p.batches) / epochs;
    else if (epochs && p.epoch) done = p.epoch / epochs;
    fill.style.width = `${Math.round(Math.min(1, Math.max(0, done)) * 100)}%`;
    rate.textContent = model.get("pace");
    const history = model.get("history");
    const series = model.get("series");
    const charts = [chart(history, series.loss || [], "loss")];
    if ((series.metrics || []).length) charts.push(chart(history, series.metrics, "metric"));
    curves.replaceChildren(...charts);
    const metrics = Object.entries(model.get("metrics")).filter(
      ([k, v]) => typeof v === "number" && !PHYSICS.has(k),
    );
    const show = (v) => (Number.isInteger(v) ? v.toLocaleString() : v.toFixed(4));
    results.textContent = metrics.map(([k, v]) => `${k} ${show(v)}`).join("  ");
    if (model.get("bundle")) results.textContent += `   bundle: ${model.get("bundle")}`;
    physics.textContent = model.get("physics");
    images.replaceChildren(
      ...Object.entries(model.get("images")).map(([name, data]) => {
        const img = document.createElement("img");
        img.alt = name;
        img.src = `data:image/png;base64,${data}`;
        return img;
      }),
    );
    const page = model.get("report"); // every string in it escaped by report_html
    report.hidden = !page;
    if (page && report.dataset.shown !== String(page.length)) {
      const summary = document.createElement("summary");
      summary.textContent = "Training report";
      const body = document.createElement("div");
      body.innerHTML = page;
      report.replaceChildren(summary, body);
      report.dataset.shown = String(page.length);
    }
    error.textContent = model.get("error");
  };
  model.on("change:updates", draw);
  model.on("change:error", draw);
  draw();
}

export default { render };
