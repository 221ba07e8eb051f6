import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { JobsPanel } from './jobs';
import { RootViewerFactory, TRAIN_COMMAND } from './rootviewer';

const PLUGIN_ID = 'mlaas-jupyter:plugin';
const FACTORY = 'ROOT file viewer';
const COMMANDS = {
  openJobs: 'mlaas:open-jobs',
  refreshJobs: 'mlaas:refresh-jobs',
  train: TRAIN_COMMAND
};

const mlaasIcon = new LabIcon({
  name: 'mlaas-jupyter:jobs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<rect x="3" y="13" width="4" height="8"/><rect x="10" y="8" width="4" height="13"/>' +
    '<rect x="17" y="3" width="4" height="18"/></g></svg>'
});

/** A notebook next to the ROOT file, with the TrainingStudio widget for it. */
function studioNotebook(path: string): Record<string, unknown> {
  const source = `from mlaas_jupyter.widgets import TrainingStudio\n\nTrainingStudio(${JSON.stringify(path)})`;
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: [{ cell_type: 'code', id: 'mlaas-studio', metadata: {}, source, outputs: [], execution_count: null }]
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'MLaaS jobs panel and ROOT file viewer',
  autoStart: true,
  requires: [ISettingRegistry],
  optional: [ICommandPalette, ILayoutRestorer, ILabShell],
  activate: async (
    app: JupyterFrontEnd,
    settings: ISettingRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    let pollSeconds = 5;
    const panel = new JobsPanel({
      pollSeconds,
      events: app.serviceManager.events ?? null,
      openWidget: (widget: MainAreaWidget) => app.shell.add(widget, 'main')
    });
    panel.title.icon = mlaasIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id);

    try {
      const loaded = await settings.load(PLUGIN_ID);
      const apply = (): void => {
        pollSeconds = (loaded.get('pollingInterval').composite as number) || 5;
        panel.pollSeconds = pollSeconds;
      };
      apply();
      loaded.changed.connect(apply);
    } catch (error) {
      console.warn('mlaas-jupyter: settings not loaded, using defaults', error);
    }

    app.docRegistry.addFileType({
      name: 'root',
      displayName: 'ROOT file',
      extensions: ['.root'],
      mimeTypes: ['application/x-root'],
      contentType: 'file',
      fileFormat: 'base64',
      icon: mlaasIcon
    });
    app.docRegistry.addWidgetFactory(
      new RootViewerFactory(
        {
          name: FACTORY,
          fileTypes: ['root'],
          defaultFor: ['root'],
          modelName: 'base64',
          readOnly: true
        },
        app.commands
      )
    );

    app.commands.addCommand(COMMANDS.openJobs, {
      label: 'MLaaS: Show Jobs',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(COMMANDS.refreshJobs, {
      label: 'MLaaS: Refresh Jobs',
      execute: () => panel.refresh()
    });
    app.commands.addCommand(COMMANDS.train, {
      label: 'MLaaS: Train a Model on This File',
      execute: async args => {
        const path = (args.path as string) || app.shell.currentWidget?.title.caption || '';
        if (!path.endsWith('.root')) {
          throw new Error('open a .root file first');
        }
        const folder = PathExt.dirname(path);
        const contents = app.serviceManager.contents;
        const created = await contents.newUntitled({ path: folder, type: 'notebook' });
        const target = PathExt.join(folder, `train-${PathExt.basename(path, '.root')}.ipynb`);
        const notebookPath = await contents
          .rename(created.path, target)
          .then(model => model.path)
          .catch(() => created.path);
        await contents.save(notebookPath, {
          type: 'notebook',
          format: 'json',
          content: studioNotebook(PathExt.basename(path))
        });
        return app.commands.execute('docmanager:open', { path: notebookPath });
      }
    });
    for (const command of Object.values(COMMANDS)) {
      palette?.addItem({ command, category: 'MLaaS' });
    }
  }
};

export default plugin;
