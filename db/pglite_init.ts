/**
 * A brand-new PGlite data directory is created (initdb) in a Worker that then ends: initdb
 * leaves ~350 MB behind in the process that ran it (its files and buffers, garbage only once
 * V8 collects, and WebAssembly memory that never shrinks), and the server would carry that
 * for its whole life. Measured on `deno task start` with a new data dir: RSS 573–586 →
 * 243–251 MB, for 0.7–1.6 s more start-up on that first start only.
 */

/** PGlite's options, the same in the worker and the server. */
export const PGLITE_OPTIONS = {
  // PGlite's PostgreSQL defaults to 128 MB of shared buffers, allocated inside the process:
  // 16 MB holds this app's working set and keeps the embedded server about 100 MB smaller.
  postgresqlconf: ["shared_buffers = 16MB"],
};

/** What the worker answers: `error` null when the directory is ready, else why it is not. */
export type InitAnswer = { error: string | null };

/** True when `dataDir` holds a PGlite database already (initdb has run there). */
export async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await Deno.stat(`${dataDir}/PG_VERSION`);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Runs initdb for `dataDir` in a Worker and waits for it to end. */
export async function initialiseInWorker(dataDir: string): Promise<void> {
  const worker = new Worker(new URL("./pglite_init_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const answer = await new Promise<InitAnswer>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<InitAnswer>) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`creating the embedded database in ${dataDir} failed: ${e.message}`));
      };
      worker.postMessage(dataDir);
    });
    if (answer.error) {
      throw new Error(`creating the embedded database in ${dataDir} failed: ${answer.error}`);
    }
  } finally {
    worker.terminate();
  }
}
