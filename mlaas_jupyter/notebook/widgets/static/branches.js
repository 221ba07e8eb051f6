// BranchSelector front-end: a filterable table of branches with checkboxes.
function render({ model, el }) {
  el.classList.add("mlaas-widget", "mlaas-branches");
  const header = document.createElement("div");
  header.className = "mlaas-row";
  const search = document.createElement("input");
  search.type = "search";
  search.placeholder = "filter branches (glob: Jet_*)";
  search.className = "mlaas-input";
  const selectAll = document.createElement("button");
  selectAll.textContent = "select shown";
  selectAll.className = "mlaas-button";
  const clear = document.createElement("button");
  clear.textContent = "clear";
  clear.className = "mlaas-button";
  const summary = document.createElement("span");
  summary.className = "mlaas-summary";
  header.append(search, selectAll, clear, summary);
  const table = document.createElement("table");
  table.className = "mlaas-table";
  const error = document.createElement("div");
  error.className = "mlaas-error";
  el.append(header, table, error);

  const globToRegExp = (text) => {
    const escaped = text.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(text.includes("*") || text.includes("?") ? `^${escaped}$` : escaped, "i");
  };
  const shown = () => {
    const pattern = globToRegExp(search.value.trim());
    return model.get("branches").filter((b) => pattern.test(b.name));
  };
  const setSelected = (names) => {
    model.set("selected", names);
    model.save_changes();
  };

  const draw = () => {
    const selected = new Set(model.get("selected"));
    table.replaceChildren();
    const head = table.insertRow();
    for (const title of ["", "branch", "type", "kind"]) {
      const th = document.createElement("th");
      th.textContent = title;
      head.append(th);
    }
    for (const branch of shown()) {
      const row = table.insertRow();
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = selected.has(branch.name);
      box.disabled = branch.kind === "unsupported";
      box.title = branch.reason || "";
      box.addEventListener("change", () => {
        const now = new Set(model.get("selected"));
        box.checked ? now.add(branch.name) : now.delete(branch.name);
        setSelected(model.get("branches").map((b) => b.name).filter((n) => now.has(n)));
      });
      row.insertCell().append(box);
      row.insertCell().textContent = branch.name;
      row.insertCell().textContent = branch.type;
      const kind = row.insertCell();
      kind.textContent = branch.kind;
      kind.className = `mlaas-kind-${branch.kind}`;
    }
    summary.textContent =
      `${model.get("tree")}: ${model.get("entries").toLocaleString()} entries · ` +
      `${model.get("features")} features selected · input width ${model.get("width")}`;
    error.textContent = model.get("error");
  };

  search.addEventListener("input", draw);
  selectAll.addEventListener("click", () => {
    const now = new Set(model.get("selected"));
    for (const b of shown()) if (b.kind !== "unsupported") now.add(b.name);
    setSelected(model.get("branches").map((b) => b.name).filter((n) => now.has(n)));
  });
  clear.addEventListener("click", () => setSelected([]));
  for (const name of ["selected", "branches", "width", "features", "error"]) {
    model.on(`change:${name}`, draw);
  }
  draw();
}

export default { render };
