/**
 * What the request gate found for each credential, kept under the credentials' epoch
 * (migration 0014) it was read in (pure, clock passed in).
 *
 * Why it is as fresh as a lookup: every change to what the lookup reads moves the epoch in
 * the same transaction. So a statement that still reads the epoch a credential was found
 * under would find the same row; the gate then sends that credential only to be looked up if
 * the epoch moved (db/gate.ts), and answers it from here otherwise. The clock alone ends a
 * credential too (an expiry): a remembered one is used only before its `liveUntilMs`.
 */

/** A remembered credential with the instant it stops being live by the clock (null: never). */
interface Remembered<T> {
  found: T;
  liveUntilMs: number | null;
}

/** The memo of one gate. */
export interface CredentialMemo<T> {
  /** The epoch the remembered credentials were found under; null before the first. */
  readonly epoch: string | null;
  /** The credential of `kind` with `id`, if remembered and still live by the clock at `nowMs`. */
  recall(kind: string, id: string, nowMs: number): T | undefined;
  /**
   * After a statement that read `epoch`: forgets everything if the epoch moved, then
   * remembers `found` (live credentials that statement found) under it.
   */
  learn(epoch: string, found: Iterable<Learned<T>>): void;
}

/** A credential a statement found: its kind, its id within the kind, itself, its expiry. */
export type Learned<T> = [kind: string, id: string, found: T, liveUntilMs: number | null];

/** An empty memo holding at most `max` credentials (cleared whole when full). */
export function createCredentialMemo<T>(max = 100_000): CredentialMemo<T> {
  let epoch: string | null = null;
  // One map per kind, keyed by the id as the request carries it: no key is built per look-up.
  let books = new Map<string, Map<string, Remembered<T>>>();
  let size = 0;
  const forget = () => {
    books = new Map();
    size = 0;
  };
  return {
    get epoch() {
      return epoch;
    },
    recall(kind, id, nowMs) {
      const r = books.get(kind)?.get(id);
      if (!r) return undefined;
      return r.liveUntilMs === null || nowMs < r.liveUntilMs ? r.found : undefined;
    },
    learn(seen, found) {
      if (seen !== epoch) {
        epoch = seen;
        forget();
      }
      for (const [kind, id, f, liveUntilMs] of found) {
        const isNew = !books.get(kind)?.has(id);
        if (isNew && size >= max) forget();
        let book = books.get(kind);
        if (!book) books.set(kind, book = new Map());
        book.set(id, { found: f, liveUntilMs });
        if (isNew) size++;
      }
    },
  };
}
