// mlaas-jupyter's JupyterLab extension: a jobs panel in the left sidebar, a viewer of
// .root files (the default one for them), and a command that opens a notebook with the
// TrainingStudio widget for a ROOT file.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { DocumentWidget, TextModelFactory } from '@jupyterlab/docregistry';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { Contents } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { MlaasApi } from './api';
import { JobsPanel } from './jobspanel';
import { FACTORY, RootView, RootViewerFactory, TRAIN_COMMAND } from './rootviewer';

const PLUGIN_ID = 'mlaas-jupyter:plugin';
const FILE_TYPE = 'root';
/** Model of the ROOT viewer: the file's metadata only (no bytes are downloaded). */
const MODEL = 'mlaas-root-metadata';
const COMMANDS = {
  openJobs: 'mlaas:open-jobs',
  refreshJobs: 'mlaas:refresh-jobs',
  compareJobs: 'mlaas:compare-jobs',
  jobReport: 'mlaas:job-report',
  train: TRAIN_COMMAND
};

const mlaasIcon = new LabIcon({
  name: 'mlaas-jupyter:jobs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="13" width="4" height="8"/><rect x="10" y="8" width="4" height="13"/>' +
    '<rect x="17" y="3" width="4" height="18"/></g></svg>'
});

const rootFileIcon = new LabIcon({
  name: 'mlaas-jupyter:root-file',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon-brand0" fill="#1976d2">' +
    '<path d="M4 20h16v-1.5H4z"/><rect x="5" y="11" width="3" height="7"/><rect x="9.5" y="6" width="3" height="12"/>' +
    '<rect x="14" y="9" width="3" height="9"/><rect x="18.5" y="14" width="1.5" height="4"/></g></svg>'
});

/** A text model factory that asks the contents API for no content at all. */
class MetadataModelFactory extends TextModelFactory {
  get name(): string {
    return MODEL;
  }
  get contentType(): Contents.ContentType {
    return 'file';
  }
  get fileFormat(): Contents.FileFormat {
    return null;
  }
}

/** The source of the TrainingStudio cell. `path` is relative to the server's root, which
 * is where the notebook is created, so the kernel (started in the notebook's folder)
 * and the server (taking relative paths from its root) both find the file. */
export function studioSource(path: string, executor: string): string {
  const call = `TrainingStudio(${JSON.stringify(path)})`;
  if (!executor || executor === 'default') {
    return `from mlaas_jupyter.notebook import TrainingStudio\n${call}`;
  }
  return (
    'from mlaas_jupyter.notebook import TrainingStudio\n' +
    `studio = ${call}\n` +
    `studio.model.executor.value = ${JSON.stringify(executor)}  # the lab's MLaaS setting\n` +
    'studio'
  );
}

function studioNotebook(source: string): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: [{ cell_type: 'code', id: 'mlaas-studio', metadata: {}, source, outputs: [], execution_count: null }]
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'MLaaS jobs panel, ROOT file viewer and the train-on-file command',
  autoStart: true,
  requires: [ISettingRegistry],
  optional: [ICommandPalette, ILayoutRestorer, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    browsers: IFileBrowserFactory | null
  ) => {
    const api = new MlaasApi(app.serviceManager.serverSettings);
    const config = { pollingInterval: 5, defaultExecutor: 'default' };

    const panel = new JobsPanel({
      api,
      pollSeconds: config.pollingInterval,
      events: app.serviceManager.events ?? null,
      openWidget: (widget: MainAreaWidget) => {
        const open = Array.from(app.shell.widgets('main')).find(w => w.id && w.id === widget.id);
        if (open) {
          widget.dispose();
          app.shell.activateById(open.id);
        } else {
          app.shell.add(widget, 'main');
        }
      }
    });
    panel.title.icon = mlaasIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id);

    settingRegistry
      .load(PLUGIN_ID)
      .then(loaded => {
        const apply = (): void => {
          config.pollingInterval = Number(loaded.get('pollingInterval').composite) || 5;
          config.defaultExecutor = String(loaded.get('defaultExecutor').composite || 'default');
          panel.pollSeconds = config.pollingInterval;
        };
        apply();
        loaded.changed.connect(apply);
      })
      .catch(error => console.warn('mlaas-jupyter: settings not loaded, using the defaults', error));

    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: 'ROOT file',
      extensions: ['.root'],
      mimeTypes: ['application/x-root'],
      contentType: 'file',
      fileFormat: 'base64',
      icon: rootFileIcon
    });
    app.docRegistry.addModelFactory(new MetadataModelFactory());
    app.docRegistry.addWidgetFactory(
      new RootViewerFactory(
        {
          name: FACTORY,
          label: 'ROOT Viewer',
          fileTypes: [FILE_TYPE],
          defaultFor: [FILE_TYPE],
          defaultRendered: [FILE_TYPE],
          modelName: MODEL,
          readOnly: true
        },
        api,
        app.commands
      )
    );

    /** The ROOT file the train command is about: its argument, the ROOT viewer in
     * focus, or the ROOT file selected in the file browser. */
    const rootPath = (args: Record<string, unknown>): string | null => {
      if (typeof args.path === 'string' && args.path) {
        return args.path;
      }
      const current = app.shell.currentWidget;
      if (current instanceof DocumentWidget && current.content instanceof RootView) {
        return current.content.path;
      }
      const selected = browsers?.tracker.currentWidget?.selectedItems().next();
      const item = selected && !selected.done ? selected.value : null;
      return item && item.path.endsWith('.root') ? item.path : null;
    };

    app.commands.addCommand(COMMANDS.openJobs, {
      label: 'MLaaS: Show Jobs',
      caption: 'Open the MLaaS jobs panel',
      icon: mlaasIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(COMMANDS.refreshJobs, {
      label: 'MLaaS: Refresh Jobs',
      caption: 'Reload the MLaaS jobs from the server',
      execute: () => panel.refresh()
    });
    app.commands.addCommand(COMMANDS.compareJobs, {
      label: 'MLaaS: Compare Jobs',
      caption: 'Compare finished training jobs (args.jobs: their ids; else the ones ticked in the jobs panel)',
      execute: args => panel.compare(Array.isArray(args.jobs) ? args.jobs.map(String) : undefined)
    });
    app.commands.addCommand(COMMANDS.jobReport, {
      label: 'MLaaS: Job Report',
      caption: 'Open the evaluation report of a finished training job (args.job: its id)',
      isVisible: () => false,
      execute: args => {
        if (typeof args.job !== 'string' || !args.job) {
          throw new Error('mlaas:job-report needs args.job, the id of a finished training job.');
        }
        panel.report(args.job);
      }
    });
    app.commands.addCommand(COMMANDS.train, {
      label: 'MLaaS: Train a Model on This File',
      caption: 'Open a notebook with the TrainingStudio widget for a ROOT file',
      isEnabled: () => rootPath({}) !== null,
      execute: async args => {
        const path = rootPath(args);
        if (!path) {
          throw new Error('Open or select a .root file first.');
        }
        const contents = app.serviceManager.contents;
        // in the server's root: the kernel then starts there, where `path` is right
        const created = await contents.newUntitled({ path: '', type: 'notebook' });
        const target = `train-${PathExt.basename(path, '.root')}.ipynb`;
        const notebookPath = await contents
          .rename(created.path, target)
          .then(model => model.path)
          .catch(() => created.path); // the name is taken: keep Untitled*.ipynb
        await contents.save(notebookPath, {
          type: 'notebook',
          format: 'json',
          content: studioNotebook(studioSource(path, config.defaultExecutor))
        });
        return app.commands.execute('docmanager:open', { path: notebookPath, factory: 'Notebook' });
      }
    });
    app.contextMenu.addItem({
      command: COMMANDS.train,
      selector: '.jp-DirListing-item[data-file-type="root"]',
      rank: 20
    });
    for (const command of Object.values(COMMANDS)) {
      palette?.addItem({ command, category: 'MLaaS' });
    }
  }
};

export default plugin;
