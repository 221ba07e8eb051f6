// What the user picked in the jobs panel: the jobs selected to compare and the sweeps
// whose trials are shown. Kept apart from the jobs (which the server owns) so a reload
// of the list keeps it.
import { ISignal, Signal } from '@lumino/signaling';

export class PanelSelection {
  /** The selection or the expanded sweeps changed: render the list. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The jobs selected to compare, in the order they were selected. */
  get jobs(): string[] {
    return [...this.selected];
  }

  isSelected(id: string): boolean {
    return this.selected.has(id);
  }

  select(id: string, selected: boolean): void {
    if (selected !== this.selected.has(id)) {
      if (selected) {
        this.selected.add(id);
      } else {
        this.selected.delete(id);
      }
      this._changed.emit();
    }
  }

  clear(): void {
    if (this.selected.size) {
      this.selected.clear();
      this._changed.emit();
    }
  }

  /** Forget the jobs no longer comparable (deleted, or listed no more); no signal: the
   * caller is rendering. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.selected) {
      if (!ids.has(id)) {
        this.selected.delete(id);
      }
    }
  }

  isExpanded(sweepId: string): boolean {
    return this.expanded.has(sweepId);
  }

  toggle(sweepId: string): void {
    if (!this.expanded.delete(sweepId)) {
      this.expanded.add(sweepId);
    }
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private selected = new Set<string>();
  private expanded = new Set<string>();
}
