// BranchSelector front-end: the branches grouped by collection, a filter box, checkboxes.
// Sized for NanoAOD (~1,500 branches): only the rows of open groups exist in the DOM
// (at most ROWS_PER_PAGE per group until "show more"), the filter waits for a pause in
// typing, and a change of selection updates the drawn checkboxes in place.
const DEBOUNCE_MS = 150;
const ROWS_PER_PAGE = 200;
const OTHER = "(other)";
const KINDS = ["flat", "jagged", "fixed", "unsupported"];

// The filter of _branches.matches_filter: comma-separated terms, any may match,
// case-insensitive; a term with * ? [ is a glob of the whole name, else a substring.
function globToRegExp(term) {
  let out = "";
  for (let i = 0; i < term.length; i++) {
    const c = term[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[" && term.indexOf("]", i + 2) > 0) {
      const end = term.indexOf("]", i + 2);
      let inside = term.slice(i + 1, end).replace(/\\/g, "\\\\");
      if (inside.startsWith("!")) inside = "^" + inside.slice(1);
      out += `[${inside}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`, "i");
}

function makeFilter(query) {
  const terms = query.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (!terms.length) return () => true;
  const tests = terms.map((term) => {
    if (!/[*?[]/.test(term)) return (name) => name.toLowerCase().includes(term);
    const glob = globToRegExp(term);
    return (name) => glob.test(name);
  });
  return (name) => tests.some((test) => test(name));
}

function countKinds(branches) {
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0]));
  for (const b of branches) counts[b.kind] = (counts[b.kind] || 0) + 1;
  return counts;
}

const kindsText = (counts) =>
  KINDS.filter((k) => counts[k] || k === "flat" || k === "jagged")
    .map((k) => `${counts[k].toLocaleString()} ${k}`)
    .join(" · ");

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el }) {
  el.classList.add("mlaas-widget", "mlaas-branches");
  const header = element("div", "mlaas-row");
  const search = element("input", "mlaas-input mlaas-branches-filter");
  search.type = "search";
  search.placeholder = "filter: Jet_*, HLT_Iso*, pt";
  search.title = "comma-separated globs (Jet_*) or substrings (pt); case-insensitive";
  search.value = model.get("query");
  const selectShown = element("button", "mlaas-button", "select shown");
  const clear = element("button", "mlaas-button", "clear");
  const openAll = element("button", "mlaas-button", "expand all");
  const closeAll = element("button", "mlaas-button", "collapse all");
  header.append(search, selectShown, clear, openAll, closeAll);
  const counts = element("div", "mlaas-summary mlaas-branches-counts");
  const summary = element("div", "mlaas-summary mlaas-branches-summary");
  const list = element("div", "mlaas-groups");
  const error = element("div", "mlaas-error");
  el.append(header, counts, summary, list, error);

  const open = new Set(); // the expanded collections (kept across filters)
  const limits = new Map(); // collection -> rows drawn ("show more" raises it)
  let groups = new Map(); // collection -> its branches, in the tree's order
  let shownGroups = new Map(); // collection -> its branches passing the filter
  let rowBoxes = new Map(); // branch name -> drawn checkbox
  let heads = new Map(); // collection -> {check, note}

  const index = () => {
    groups = new Map();
    for (const b of model.get("branches")) {
      const group = b.group || OTHER;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(b);
    }
    const names = [...groups.keys()].filter((g) => g !== OTHER);
    // the order of _branches.group_branches: case-insensitive, then by code point
    const order = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    names.sort((a, b) => order(a.toLowerCase(), b.toLowerCase()) || order(a, b));
    if (groups.has(OTHER)) names.push(OTHER);
    groups = new Map(names.map((g) => [g, groups.get(g)]));
  };

  const setSelected = (names) => {
    model.set("selected", names);
    model.save_changes();
  };
  // the selection in the tree's order, with ``add`` added and ``drop`` removed
  const change = (add, drop) => {
    const now = new Set(model.get("selected"));
    for (const n of add) now.add(n);
    for (const n of drop) now.delete(n);
    setSelected(model.get("branches").map((b) => b.name).filter((n) => now.has(n)));
  };
  const usable = (members) => members.filter((b) => b.kind !== "unsupported").map((b) => b.name);

  const drawRows = (group, members, body) => {
    const table = element("table", "mlaas-table");
    const limit = limits.get(group) || ROWS_PER_PAGE;
    for (const branch of members.slice(0, limit)) {
      const row = table.insertRow();
      row.dataset.branch = branch.name;
      const box = element("input");
      box.type = "checkbox";
      box.disabled = branch.kind === "unsupported";
      box.title = branch.reason || "";
      box.addEventListener("change", () =>
        box.checked ? change([branch.name], []) : change([], [branch.name]),
      );
      rowBoxes.set(branch.name, box);
      row.insertCell().append(box);
      row.insertCell().textContent = branch.name;
      row.insertCell().textContent = branch.type;
      const kind = row.insertCell();
      kind.textContent = branch.kind === "fixed" ? `fixed[${branch.width}]` : branch.kind;
      kind.className = `mlaas-kind-${branch.kind}`;
    }
    body.append(table);
    if (members.length > limit) {
      const more = element("button", "mlaas-button", `show ${Math.min(ROWS_PER_PAGE, members.length - limit)} more of ${members.length - limit}`);
      more.addEventListener("click", () => {
        limits.set(group, limit + ROWS_PER_PAGE);
        draw();
      });
      body.append(more);
    }
  };

  const drawGroup = (group, members) => {
    const node = element("div", "mlaas-group");
    node.dataset.group = group;
    const head = element("div", "mlaas-group-head");
    const isOpen = open.has(group);
    const toggle = element("button", "mlaas-group-toggle", isOpen ? "▾" : "▸");
    toggle.title = isOpen ? "collapse" : "expand";
    toggle.setAttribute("aria-expanded", String(isOpen));
    const check = element("input", "mlaas-group-check");
    check.type = "checkbox";
    check.title = `select or clear the ${members.length} shown branches of ${group}`;
    check.disabled = usable(members).length === 0;
    check.addEventListener("change", () =>
      check.checked ? change(usable(members), []) : change([], members.map((b) => b.name)),
    );
    const name = element("span", "mlaas-group-name", group);
    const note = element("span", "mlaas-summary mlaas-group-counts");
    head.append(toggle, check, name, note);
    const flip = () => {
      isOpen ? open.delete(group) : open.add(group);
      draw();
    };
    toggle.addEventListener("click", flip);
    name.addEventListener("click", flip);
    node.append(head);
    heads.set(group, { check, note, members });
    if (isOpen) drawRows(group, members, node);
    return node;
  };

  // state that follows the selection: checkboxes, counts, the width estimate
  const refresh = () => {
    const selected = new Set(model.get("selected"));
    for (const [name, box] of rowBoxes) box.checked = selected.has(name);
    for (const [group, { check, note, members }] of heads) {
      const names = usable(members);
      const ticked = names.filter((n) => selected.has(n)).length;
      check.checked = names.length > 0 && ticked === names.length;
      check.indeterminate = ticked > 0 && ticked < names.length;
      const total = groups.get(group).length;
      const part = members.length === total ? `${total}` : `${members.length} of ${total}`;
      note.textContent = `${part}: ${kindsText(countKinds(members))}` + (ticked ? ` · ${ticked} selected` : "");
    }
    summary.textContent =
      `${model.get("tree")}: ${model.get("entries").toLocaleString()} entries · ` +
      `${model.get("features")} features selected · input width ${model.get("width")}`;
    error.textContent = model.get("error");
  };

  // the structure: which groups pass the filter and which rows are drawn
  const draw = () => {
    const passes = makeFilter(search.value);
    shownGroups = new Map();
    let shown = 0;
    for (const [group, members] of groups) {
      const kept = members.filter((b) => passes(b.name));
      if (kept.length) shownGroups.set(group, kept);
      shown += kept.length;
    }
    rowBoxes = new Map();
    heads = new Map();
    const fragment = document.createDocumentFragment();
    for (const [group, members] of shownGroups) fragment.append(drawGroup(group, members));
    list.replaceChildren(fragment);
    const all = model.get("branches");
    counts.textContent =
      `${all.length.toLocaleString()} branches in ${groups.size} collections: ${kindsText(countKinds(all))}` +
      (shown === all.length ? "" : ` · ${shown.toLocaleString()} shown in ${shownGroups.size}`);
    refresh();
  };

  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      draw();
      model.set("query", search.value);
      model.save_changes();
    }, DEBOUNCE_MS);
  });
  selectShown.addEventListener("click", () => {
    const names = [];
    for (const members of shownGroups.values()) names.push(...usable(members));
    change(names, []);
  });
  clear.addEventListener("click", () => setSelected([]));
  openAll.addEventListener("click", () => {
    for (const group of shownGroups.keys()) open.add(group);
    draw();
  });
  closeAll.addEventListener("click", () => {
    open.clear();
    draw();
  });
  model.on("change:query", () => {
    if (search.value !== model.get("query")) {
      search.value = model.get("query");
      draw();
    }
  });
  model.on("change:branches", () => {
    index();
    draw();
  });
  for (const name of ["selected", "width", "features", "error"]) model.on(`change:${name}`, refresh);
  index();
  draw();
  return () => clearTimeout(timer);
}

export default { render };
