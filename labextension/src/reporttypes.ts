// The evaluation report of a finished training run (`GET jobs/{id}/report`: the run's
// report.json, "report_format": 1; the pydantic models are mlaas_jupyter/specs/report.py).
// A section that does not apply to the run's task is null or absent.

/** The KS overtraining check of one class: its score on the training and test events. */
export interface IReportKs {
  train?: number[];
  test?: number[];
  ks_statistic: number | null;
  ks_pvalue: number | null;
  flagged: boolean;
}

/** One input variable (a jagged collection's branch as one block) or one column. */
export interface IRankedVariable {
  name: string;
  kind?: string;
  variable?: string;
  importance: number | null;
  std?: number | null;
}

export interface IReport {
  report_format: number;
  task: 'binary' | 'multiclass' | 'regression' | string;
  classes?: string[] | null;
  signal?: string | null;
  split?: string | null;
  events?: Record<string, number> | null;
  overtraining?: {
    threshold: number;
    edges?: number[];
    /** What is histogrammed, e.g. P(signal). */
    score?: string;
    classes: Record<string, IReportKs>;
    flagged: string[];
  } | null;
  ranking?: {
    metric: string;
    baseline: number | null;
    /** Test events the permutations were made on, and permutations per variable. */
    events?: number;
    repeats?: number;
    variables: IRankedVariable[];
    columns?: IRankedVariable[] | null;
    native?: Array<{ name: string; importance: number | null }> | null;
  } | null;
  correlations?: {
    variables: string[];
    /** Columns left out: constant ones, jagged masks. */
    constant?: string[];
    masks?: string[];
    classes: Record<string, Array<Array<number | null>>>;
  } | null;
  efficiencies?: {
    signal_at_background: Record<string, number | null>;
    roc_integral: number | null;
    separation: number | null;
  } | null;
  confusion?: {
    classes: string[];
    matrix: number[][];
    normalised: Array<Array<number | null>>;
  } | null;
  one_vs_rest?: Record<string, { fpr?: number[]; tpr?: number[]; auc: number | null }> | null;
  regression?: {
    residuals?: { edges: number[]; counts: number[] };
    mean: number | null;
    std: number | null;
    binned?: Array<{ low: number; high: number; events: number; bias: number | null; resolution: number | null }>;
    r2: number | null;
    mae: number | null;
    bias_definition?: string;
    resolution_definition?: string;
  } | null;
  folds?: Array<{ fold: number; metrics: Record<string, unknown> }> | null;
  /** Plot files, relative to the run folder (served as the job's artefacts). */
  plots?: Record<string, string> | null;
  /** What the report's author wants the reader to know (events capped, sections left out). */
  notes?: string[];
}
