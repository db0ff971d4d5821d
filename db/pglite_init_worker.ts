/// <reference lib="deno.worker" />
/** The worker of db/pglite_init.ts: creates the database in the directory it is sent, closes it. */
import { PGlite } from "@electric-sql/pglite";
import { type InitAnswer, PGLITE_OPTIONS } from "./pglite_init.ts";

self.onmessage = async (e: MessageEvent<string>) => {
  let answer: InitAnswer = { error: null };
  try {
    const pg = await PGlite.create(e.data, PGLITE_OPTIONS);
    await pg.close();
  } catch (err) {
    // PGlite can reject with a plain object (Emscripten's ExitStatus) rather than an Error.
    const message = (err as { message?: unknown } | null)?.message;
    answer = { error: typeof message === "string" ? message : JSON.stringify(err) };
  }
  self.postMessage(answer);
};
