// The ROOT file viewer: trees, branches and a histogram preview of a clicked branch.
import { ToolbarButton } from '@jupyterlab/apputils';
import { ABCWidgetFactory, DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { histogram, IBranch, IHistogram, listTrees, treeInfo } from './api';

export const TRAIN_COMMAND = 'mlaas:train-on-file';
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag: string, attributes: Record<string, string | number>): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  return node;
}

/** Bars of the histogram (before cuts) of every class, scaled to the tallest bin. */
export function drawHistogram(result: IHistogram, label: string): SVGElement {
  const width = 460;
  const height = 220;
  const pad = 34;
  const root = svg('svg', { width, height, class: 'mlaas-Histogram' });
  const counts = Object.values(result.classes)[0]?.before ?? [];
  const top = Math.max(1, ...counts);
  const step = (width - 2 * pad) / Math.max(1, counts.length);
  counts.forEach((count, index) => {
    const h = (count / top) * (height - 2 * pad);
    root.append(
      svg('rect', {
        x: pad + index * step,
        y: height - pad - h,
        width: Math.max(1, step - 1),
        height: h,
        class: 'mlaas-Histogram-bar'
      })
    );
  });
  root.append(svg('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: 'mlaas-Histogram-axis' }));
  const edges = result.edges;
  const texts: [number, string][] = [
    [pad, edges[0]?.toPrecision(3) ?? ''],
    [width - pad, edges[edges.length - 1]?.toPrecision(3) ?? ''],
    [width / 2, label]
  ];
  for (const [x, text] of texts) {
    const node = svg('text', { x, y: height - 10, 'text-anchor': 'middle', class: 'mlaas-Histogram-text' });
    node.textContent = text;
    root.append(node);
  }
  return root;
}

export class RootView extends Widget {
  constructor(readonly path: string) {
    super();
    this.addClass('mlaas-RootView');
    this.header = document.createElement('div');
    this.header.className = 'mlaas-RootView-header';
    this.trees = document.createElement('select');
    this.trees.className = 'mlaas-RootView-trees';
    this.trees.addEventListener('change', () => void this.showTree(this.trees.value));
    this.summary = document.createElement('span');
    this.header.append(this.trees, this.summary);
    const body = document.createElement('div');
    body.className = 'mlaas-RootView-body';
    this.table = document.createElement('table');
    this.table.className = 'mlaas-RootView-branches';
    this.preview = document.createElement('div');
    this.preview.className = 'mlaas-RootView-preview';
    body.append(this.table, this.preview);
    this.node.append(this.header, body);
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const reply = await listTrees(this.path);
      for (const tree of reply.trees) {
        this.trees.append(new Option(tree, tree));
      }
      if (reply.trees.length) {
        await this.showTree(reply.trees[0]);
      } else {
        this.summary.textContent = 'this file has no trees';
      }
    } catch (error) {
      this.summary.textContent = (error as Error).message;
      this.summary.classList.add('mlaas-error');
    }
  }

  private async showTree(tree: string): Promise<void> {
    const info = await treeInfo(this.path, tree);
    this.summary.textContent = `${info.entries.toLocaleString()} entries · ${info.branches.length} branches`;
    this.table.replaceChildren();
    const head = this.table.insertRow();
    for (const title of ['branch', 'type', 'kind']) {
      const th = document.createElement('th');
      th.textContent = title;
      head.append(th);
    }
    for (const branch of info.branches) {
      this.table.append(this.branchRow(tree, branch));
    }
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
      row.addEventListener('click', () => void this.showHistogram(tree, branch.name, row));
    }
    return row;
  }

  private async showHistogram(tree: string, name: string, row: HTMLElement): Promise<void> {
    this.table.querySelectorAll('.mlaas-selected').forEach(r => r.classList.remove('mlaas-selected'));
    row.classList.add('mlaas-selected');
    this.preview.textContent = `reading ${name}...`;
    try {
      const result = await histogram(this.path, tree, name);
      this.preview.replaceChildren(drawHistogram(result, name));
    } catch (error) {
      this.preview.textContent = (error as Error).message;
    }
  }

  private header: HTMLElement;
  private trees: HTMLSelectElement;
  private summary: HTMLElement;
  private table: HTMLTableElement;
  private preview: HTMLElement;
}

export class RootViewerFactory extends ABCWidgetFactory<DocumentWidget<RootView>> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<DocumentWidget<RootView>>,
    private commands: CommandRegistry
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.Context): DocumentWidget<RootView> {
    const content = new RootView(context.path);
    const widget = new DocumentWidget({ content, context });
    widget.title.label = context.path.split('/').pop() || context.path;
    const train = new ToolbarButton({
      label: 'Train a model on this file',
      tooltip: 'Open a notebook with the TrainingStudio widget for this file',
      onClick: () => void this.commands.execute(TRAIN_COMMAND, { path: context.path })
    });
    widget.toolbar.addItem('mlaas-train', train);
    return widget;
  }
}
