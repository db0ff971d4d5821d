/**
 * Coalescing of concurrent lookups into one call per tick (no I/O here; `run` does it).
 *
 * Freshness: a request never joins a call already on its way. It waits for the next call,
 * which starts after the request arrived, so it sees every write committed before it arrived
 * (a revoked key is refused at once, exactly as with one query per request).
 */

/** Runs items one batch at a time: `run(items)` answers one result per item, in order. */
export type BatchRun<I, O> = (items: I[]) => Promise<O[]>;

/**
 * Returns a function that queues `item` and resolves with its result. Items queued while
 * `maxInFlight` batches are running go together in the next one.
 */
export function createBatcher<I, O>(
  run: BatchRun<I, O>,
  maxInFlight = 1,
  wait: "microtask" | "macrotask" = "microtask",
): (item: I) => Promise<O> {
  type Waiter = { item: I; resolve: (o: O) => void; reject: (e: unknown) => void };
  let queue: Waiter[] = [];
  let inFlight = 0;
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (inFlight >= maxInFlight || queue.length === 0) return;
    const batch = queue;
    queue = [];
    inFlight++;
    // The next call goes out before this one's callers resume: their work (building the
    // answers) then overlaps the next round trip instead of delaying it.
    const settle = (each: (w: Waiter, i: number) => void) => {
      inFlight--;
      schedule();
      batch.forEach(each);
    };
    run(batch.map((w) => w.item)).then(
      (out) => settle((w, i) => w.resolve(out[i])),
      (err) => settle((w) => w.reject(err)),
    );
  };
  // One microtask later, so everything queued in the same tick goes in one batch (and ahead
  // of the callers resumed with it). A `run` that finishes without yielding to the event loop
  // (in-process PGlite) would then take one request per batch: "macrotask" waits until the
  // requests already received are in.
  const schedule = () => {
    if (scheduled || queue.length === 0) return;
    scheduled = true;
    if (wait === "microtask") queueMicrotask(flush);
    else setImmediate(flush);
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
}
