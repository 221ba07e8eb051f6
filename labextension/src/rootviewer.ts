// The ROOT file viewer: the trees (TTrees, RNTuples) of a .root file, their branches (type, kind) and a
// histogram preview of a clicked branch (drawn here as SVG bars).
import { ToolbarButton } from '@jupyterlab/apputils';
import { ABCWidgetFactory, DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { runIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { IBranch, IHistogram, ITreeInfo, MlaasApi } from './api';

/** The reply of `trees`: readable trees, their formats, and why others cannot be read. */
interface ITreeListing {
  path: string;
  trees: string[];
  formats?: Record<string, string>;
  unreadable?: string[];
}

export const TRAIN_COMMAND = 'mlaas:train-on-file';
export const FACTORY = 'MLaaS ROOT Viewer';
const SVG = 'http://www.w3.org/2000/svg';
const BINS = 40;

function svg(tag: string, attributes: Record<string, string | number>): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  return node;
}

function short(value: number): string {
  if (value === 0) {
    return '0';
  }
  const magnitude = Math.abs(value);
  return magnitude >= 1e5 || magnitude < 1e-3 ? value.toExponential(1) : String(Number(value.toPrecision(3)));
}

/** Bars of the histogram (before cuts) of the first class, scaled to the tallest bin,
 * with the x range, the largest count and one tooltip per bin. */
export function drawHistogram(result: IHistogram, label: string): SVGElement {
  const width = 480;
  const height = 240;
  const left = 48;
  const right = 16;
  const top = 12;
  const bottom = 40;
  const root = svg('svg', {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    class: 'mlaas-Histogram',
    role: 'img',
    'aria-label': `histogram of ${label}`
  });
  const counts = Object.values(result.classes)[0]?.before ?? [];
  const edges = result.edges;
  const tallest = Math.max(1, ...counts);
  const plotH = height - top - bottom;
  const step = (width - left - right) / Math.max(1, counts.length);
  counts.forEach((count, index) => {
    const h = (count / tallest) * plotH;
    const bar = svg('rect', {
      x: left + index * step,
      y: top + plotH - h,
      width: Math.max(1, step - 1),
      height: h,
      class: 'mlaas-Histogram-bar'
    });
    const tip = svg('title', {});
    tip.textContent = `[${short(edges[index])}, ${short(edges[index + 1])}): ${count}`;
    bar.append(tip);
    root.append(bar);
  });
  const axis = (x1: number, y1: number, x2: number, y2: number): void => {
    root.append(svg('line', { x1, y1, x2, y2, class: 'mlaas-Histogram-axis' }));
  };
  axis(left, top + plotH, width - right, top + plotH);
  axis(left, top, left, top + plotH);
  const text = (x: number, y: number, content: string, anchor: string): void => {
    const node = svg('text', { x, y, 'text-anchor': anchor, class: 'mlaas-Histogram-text' });
    node.textContent = content;
    root.append(node);
  };
  if (edges.length) {
    text(left, top + plotH + 14, short(edges[0]), 'start');
    text(width - right, top + plotH + 14, short(edges[edges.length - 1]), 'end');
  }
  text((left + width - right) / 2, height - 6, label, 'middle');
  text(left - 4, top + 10, short(tallest), 'end');
  text(left - 4, top + plotH, '0', 'end');
  return root;
}

/** The content of the viewer of one .root file. */
export class RootView extends Widget {
  constructor(
    private api: MlaasApi,
    readonly path: string
  ) {
    super();
    this.addClass('mlaas-RootView');
    const header = document.createElement('div');
    header.className = 'mlaas-RootView-header';
    this.trees = document.createElement('select');
    this.trees.className = 'mlaas-RootView-trees';
    this.trees.title = 'Tree';
    this.trees.addEventListener('change', () => void this.showTree(this.trees.value));
    this.search = document.createElement('input');
    this.search.type = 'search';
    this.search.placeholder = 'filter branches';
    this.search.className = 'mlaas-RootView-search';
    this.search.addEventListener('input', () => this.filterRows());
    this.summary = document.createElement('span');
    this.summary.className = 'mlaas-RootView-summary';
    header.append(this.trees, this.search, this.summary);
    const body = document.createElement('div');
    body.className = 'mlaas-RootView-body';
    const tableBox = document.createElement('div');
    tableBox.className = 'mlaas-RootView-tableBox';
    this.table = document.createElement('table');
    this.table.className = 'mlaas-RootView-branches';
    tableBox.append(this.table);
    this.preview = document.createElement('div');
    this.preview.className = 'mlaas-RootView-preview';
    this.preview.textContent = 'Click a branch for a histogram of its values.';
    body.append(tableBox, this.preview);
    this.node.append(header, body);
    void this.load();
  }

  private async load(): Promise<void> {
    this.summary.textContent = 'reading the file...';
    try {
      // formats (TTree, RNTuple...) and unreadable trees come from newer servers
      const reply: ITreeListing = await this.api.listTrees(this.path);
      for (const tree of reply.trees) {
        const format = reply.formats?.[tree];
        this.trees.append(new Option(format ? `${tree} (${format})` : tree, tree));
      }
      this.trees.hidden = reply.trees.length < 2;
      this.unreadable = reply.unreadable ?? [];
      if (reply.trees.length) {
        await this.showTree(reply.trees[0]);
      } else {
        this.summary.textContent = 'this file has no TTree or RNTuple';
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    this.summary.textContent = (error as Error).message;
    this.summary.classList.add('mlaas-error');
  }

  private async showTree(tree: string): Promise<void> {
    let info;
    try {
      info = await this.api.treeInfo(this.path, tree);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.summary.classList.remove('mlaas-error');
    const format = (info as ITreeInfo & { format?: string }).format ?? 'tree';
    this.summary.textContent =
      `${format} ${info.name} · ${info.entries.toLocaleString('en-US')} entries · ` +
      `${info.branches.length} branches` +
      this.unreadable.map(line => ` · cannot read: ${line}`).join('');
    this.table.replaceChildren();
    const head = this.table.createTHead().insertRow();
    for (const title of ['branch', 'type', 'kind']) {
      const th = document.createElement('th');
      th.textContent = title;
      head.append(th);
    }
    const rows = this.table.createTBody();
    for (const branch of info.branches) {
      rows.append(this.branchRow(tree, branch));
    }
    this.filterRows();
  }

  private filterRows(): void {
    const wanted = this.search.value.trim().toLowerCase();
    this.table.querySelectorAll<HTMLElement>('.mlaas-Branch').forEach(row => {
      row.hidden = !!wanted && !(row.dataset.branch || '').toLowerCase().includes(wanted);
    });
  }

  private branchRow(tree: string, branch: IBranch): HTMLTableRowElement {
    const row = document.createElement('tr');
    row.className = `mlaas-Branch mlaas-kind-${branch.kind}`;
    row.dataset.branch = branch.name;
    for (const text of [branch.name, branch.type, branch.kind]) {
      row.insertCell().textContent = text;
    }
    if (branch.kind === 'unsupported') {
      row.title = branch.reason || 'not usable for training';
    } else {
      row.tabIndex = 0;
      row.title = `histogram of ${branch.name}`;
      const show = (): void => void this.showHistogram(tree, branch.name, row);
      row.addEventListener('click', show);
      row.addEventListener('keydown', event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          show();
        }
      });
    }
    return row;
  }

  private async showHistogram(tree: string, name: string, row: HTMLElement): Promise<void> {
    this.table.querySelectorAll('.mlaas-selected').forEach(r => r.classList.remove('mlaas-selected'));
    row.classList.add('mlaas-selected');
    const ticket = ++this.ticket;
    this.preview.textContent = `reading ${name}...`;
    try {
      const result = await this.api.histogram(this.path, tree, name, BINS);
      if (ticket !== this.ticket) {
        return; // another branch was clicked meanwhile
      }
      const info = Object.values(result.classes)[0];
      const note = document.createElement('div');
      note.className = 'mlaas-RootView-note';
      const parts = [`${info?.events_read?.toLocaleString('en-US') ?? 0} events read`];
      if (result.truncated) {
        parts.push(`first ${result.max_events?.toLocaleString('en-US')} only`);
      }
      if (info?.nonfinite) {
        parts.push(`${info.nonfinite} missing or non-finite values left out`);
      }
      note.textContent = parts.join(' · ');
      this.preview.replaceChildren(drawHistogram(result, name), note);
    } catch (error) {
      if (ticket === this.ticket) {
        this.preview.textContent = (error as Error).message;
      }
    }
  }

  private trees: HTMLSelectElement;
  private unreadable: string[] = [];
  private search: HTMLInputElement;
  private summary: HTMLElement;
  private table: HTMLTableElement;
  private preview: HTMLElement;
  private ticket = 0;
}

/** Opens .root files (the default viewer of the `root` file type). The file's bytes
 * are never loaded in the browser: the view asks the server for what it shows. */
export class RootViewerFactory extends ABCWidgetFactory<DocumentWidget<RootView>> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<DocumentWidget<RootView>>,
    private api: MlaasApi,
    private commands: CommandRegistry
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.Context): DocumentWidget<RootView> {
    const content = new RootView(this.api, context.path);
    const widget = new DocumentWidget({ content, context });
    widget.addClass('mlaas-RootViewer');
    widget.title.caption = context.path;
    const train = new ToolbarButton({
      icon: runIcon,
      label: 'Train a model on this file',
      tooltip: 'Open a notebook with the TrainingStudio widget for this file',
      onClick: () => void this.commands.execute(TRAIN_COMMAND, { path: context.path })
    });
    widget.toolbar.addItem('mlaas-train', train);
    return widget;
  }
}
