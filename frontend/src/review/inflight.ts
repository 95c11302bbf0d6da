/**
 * The user actions on the open image that are still running (a review, a class change, a
 * deletion and what it records for undo). An undo reads the state they leave behind, so it waits
 * for them: `a` then `z` at once undid nothing, and `Delete` then `z` found nothing to undo.
 */
export class InFlight {
  private running = new Set<Promise<unknown>>();

  /** Follow `p` until it settles; returns it unchanged. */
  track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    const done = () => void this.running.delete(p);
    p.then(done, done);
    return p;
  }

  /** Resolves once nothing tracked is running, including what was started while waiting. */
  async settled(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  get size(): number {
    return this.running.size;
  }
}
