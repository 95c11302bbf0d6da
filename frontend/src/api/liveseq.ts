/**
 * Bookkeeping for the project websocket's numbered events (see README "Live updates"): which
 * seq to resume from, which events are duplicates, and whether some are missing.
 */
export class EventSequence {
  /** Every event up to this seq was handled; null until the first `hello`. */
  last: number | null = null;
  /** Seqs above `last` already handled (they arrived before an earlier one). */
  private ahead = new Set<number>();

  /** The server's greeting. Only the first one sets the start point; after a reconnect the
   * server replays from `last` (or answers `resync`). */
  hello(seq: number): void {
    if (this.last === null) this.last = seq;
  }

  /** After `resync` the page reloads everything, so numbering starts again at the server's seq. */
  reset(seq: number): void {
    this.last = seq;
    this.ahead.clear();
  }

  /** True when the event is new and should be handled; false for a duplicate. */
  accept(seq: number): boolean {
    if (this.last === null) return true; // before any hello: nothing to compare with
    if (seq <= this.last || this.ahead.has(seq)) return false;
    this.ahead.add(seq);
    while (this.ahead.delete(this.last + 1)) this.last++;
    return true;
  }

  /** Some events between `last` and the newest one handled have not arrived. */
  get gap(): boolean {
    return this.ahead.size > 0;
  }

  /** The newest seq handled. */
  get newest(): number | null {
    return this.ahead.size ? Math.max(...this.ahead) : this.last;
  }
}
