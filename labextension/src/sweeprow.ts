// One sweep of the jobs panel: a row with its name, state, progress (done, running,
// pruned, failed of all its trials), best trial and actions, over its trials' job rows
// (shown once expanded). Built whole and compared by its HTML, like the job rows.
import { IJob, ISweep, ITrial } from './api';
import { count } from './jobformat';
import { element } from './jobrow';
import { bestText, bestTrials, sweepFraction, sweepIsLive, sweepProgress } from './sweeps';

/** How many trials "Compare best" compares. */
export const BEST_COMPARED = 5;

/** What the sweep row's buttons do. */
export interface ISweepRowActions {
  /** Show or hide the sweep's trials. */
  toggle(sweep: ISweep): void;
  cancelSweep(sweep: ISweep): void;
  compareBest(sweep: ISweep, count: number): void;
}

function progressBar(sweep: ISweep): HTMLElement {
  const done = Math.round(sweepFraction(sweep) * 100);
  const bar = element('div', 'mlaas-Job-progress', undefined, sweepProgress(sweep));
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-valuenow', String(done));
  const fill = element('div', `mlaas-Job-progress-fill mlaas-fill-${sweep.state}`);
  fill.style.width = `${done}%`;
  bar.append(fill);
  return bar;
}

function facts(sweep: ISweep): HTMLElement {
  const node = element('div', 'mlaas-Job-facts');
  const how = `${sweep.sampler} sampler, ${sweep.parallel} at a time`;
  node.append(element('span', 'mlaas-Sweep-counts', sweepProgress(sweep), how));
  const best = bestText(sweep);
  if (best) {
    node.append(element('span', 'mlaas-Sweep-best', best, sweep.best?.job_id ?? undefined));
  }
  return node;
}

function buttons(sweep: ISweep, expanded: boolean, actions: ISweepRowActions): HTMLElement {
  const node = element('div', 'mlaas-Job-actions');
  const button = (action: string, label: string, run: () => void, enabled: boolean, title: string): void => {
    const b = element('button', 'mlaas-button', label, title) as HTMLButtonElement;
    b.dataset.action = action;
    b.disabled = !enabled;
    b.addEventListener('click', run);
    node.append(b);
  };
  const best = bestTrials(sweep, BEST_COMPARED).length;
  const toggle = expanded ? 'Hide trials' : 'Trials';
  button('toggle-trials', toggle, () => actions.toggle(sweep), true, 'Show or hide the trials');
  const cancelTitle = 'Cancel the sweep and its running trials (asks first)';
  button('cancel-sweep', 'Cancel', () => actions.cancelSweep(sweep), sweepIsLive(sweep), cancelTitle);
  button(
    'compare-best',
    `Compare best ${BEST_COMPARED}`,
    () => actions.compareBest(sweep, BEST_COMPARED),
    best >= 2,
    best >= 2 ? `Compare the ${best} best succeeded trials by ${sweep.metric}` : 'Needs two succeeded trials'
  );
  return node;
}

/** A trial's parameters in a few words: "learning_rate=0.003 sizes=[64]" (the last
 * part of each dotted path; the whole one in the tooltip). */
export function paramsText(params: Record<string, unknown>): { text: string; title: string } {
  const value = (v: unknown): string => (typeof v === 'number' ? count(v) : JSON.stringify(v));
  const entries = Object.entries(params);
  return {
    text: entries.map(([path, v]) => `${path.split('.').pop()}=${value(v)}`).join(' '),
    title: entries.map(([path, v]) => `${path} = ${JSON.stringify(v)}`).join('\n')
  };
}

/** A trial's job row with the trial's parameters (and why it stopped, when pruned). */
function withTrial(row: HTMLElement, trial: ITrial | undefined): HTMLElement {
  const facts = row.querySelector('.mlaas-Job-facts');
  if (trial && facts) {
    const params = paramsText(trial.params);
    const extra = [element('span', 'mlaas-Sweep-params', params.text, params.title)];
    if (trial.state === 'pruned') {
      const at = trial.epoch !== null ? ` at epoch ${trial.epoch}` : '';
      const why = 'stopped early: below the median of the other trials';
      extra.push(element('span', 'mlaas-Sweep-pruned', `pruned${at}`, why));
    }
    facts.prepend(...extra);
  }
  return row;
}

/**
 * The group of one sweep: its row, then (when `expanded`) the rows `trialRow` builds
 * for the jobs of its trials.
 */
export function sweepRow(
  sweep: ISweep,
  jobs: readonly IJob[],
  expanded: boolean,
  actions: ISweepRowActions,
  trialRow: (job: IJob) => HTMLElement
): HTMLElement {
  const group = element('div', 'mlaas-Sweep');
  group.dataset.sweepId = sweep.id;
  group.dataset.state = sweep.state;
  group.dataset.expanded = String(expanded);
  const row = element('div', 'mlaas-Sweep-row');
  const head = element('div', 'mlaas-Job-head');
  const label = `${expanded ? '▾' : '▸'} ${sweep.name || sweep.id}`;
  const name = element('span', 'mlaas-Job-name', label, `sweep ${sweep.id}`);
  name.addEventListener('click', () => actions.toggle(sweep));
  const state = element('span', `mlaas-Job-state mlaas-state-${sweep.state}`, sweep.state);
  head.append(name, element('span', 'mlaas-Sweep-tag', 'sweep'), state);
  row.append(head, progressBar(sweep), facts(sweep), buttons(sweep, expanded, actions));
  if (sweep.error) {
    row.append(element('div', 'mlaas-Job-error', sweep.error));
  }
  group.append(row);
  if (expanded) {
    const trials = element('div', 'mlaas-Sweep-trials');
    const byJob = new Map(sweep.trials.map(t => [t.job_id, t]));
    trials.append(...jobs.map(job => withTrial(trialRow(job), byJob.get(job.id))));
    if (!jobs.length) {
      trials.append(element('div', 'mlaas-JobsPanel-empty', 'no trial jobs (yet)'));
    }
    group.append(trials);
  }
  return group;
}
