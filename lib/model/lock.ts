/**
 * lock.ts — a FIFO async mutex: one native job in flight per model, callers queue in order.
 */
export class AsyncLock {
  private tail: Promise<void> = Promise.resolve();

  /** Runs fn when every earlier holder has finished; returns what fn returns. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Resolves when everything queued so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }
}
