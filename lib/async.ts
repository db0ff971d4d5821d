/** Promise helpers. */

/** Resolves like `p`, or rejects with `message` after `ms` milliseconds. */
export async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Thrown by a bounded pool whose queue is full. */
export class PoolFull extends Error {
  constructor() {
    super("the pool's queue is full");
    this.name = "PoolFull";
  }
}

/** Runs functions `concurrency` at a time; up to `queueLimit` more wait, the rest PoolFull. */
export interface BoundedPool {
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Running and waiting now. */
  load(): { running: number; waiting: number };
}

export function createBoundedPool(concurrency: number, queueLimit: number): BoundedPool {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return {
    async run(fn) {
      if (running >= concurrency) {
        if (waiting.length >= queueLimit) throw new PoolFull();
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        running++;
      }
      try {
        return await fn();
      } finally {
        release();
      }
    },
    load: () => ({ running, waiting: waiting.length }),
  };
}
