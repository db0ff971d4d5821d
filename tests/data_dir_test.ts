import assert from "node:assert/strict";
import { DataDirInUse, holdDataDir, LOCK_FILE } from "../db/data_dir.ts";

/** Runs `code` in a child Deno process and returns its exit code and stderr. */
async function child(code: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: new URL("..", import.meta.url).pathname,
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("holdDataDir(): one process at a time; the hold ends with the process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "proplab-dir-" });
  try {
    const release = await holdDataDir(dir);
    const tryHold = `import { holdDataDir } from "./db/data_dir.ts";
      try { await holdDataDir(${
      JSON.stringify(dir)
    }); } catch (e) { console.error(e.message); Deno.exit(3); }`;
    const refused = await child(tryHold);
    assert.equal(refused.code, 3);
    assert.match(
      refused.stderr,
      new RegExp(`in use by another proplab process \\(pid ${Deno.pid}\\)`),
    );
    release();
    assert.equal((await child(tryHold)).code, 0, "free once released");
    // A holder killed without releasing: the OS drops its lock with the process.
    const killed = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { holdDataDir } from "./db/data_dir.ts";
        await holdDataDir(${
          JSON.stringify(dir)
        }); console.log("held"); setInterval(() => {}, 1000);`,
      ],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
    }).spawn();
    const reader = killed.stdout.getReader();
    await reader.read();
    await assert.rejects(holdDataDir(dir), DataDirInUse);
    killed.kill("SIGKILL");
    await killed.status;
    reader.releaseLock();
    await killed.stdout.cancel();
    const again = await holdDataDir(dir);
    again();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  ignore: Deno.build.os === "windows",
  name: "holdDataDir(): the data dir is private to its owner (0700), even one made before",
}, async () => {
  const parent = await Deno.makeTempDir({ prefix: "proplab-dir-" });
  try {
    const fresh = `${parent}/new/data`;
    (await holdDataDir(fresh))();
    assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${fresh}/${LOCK_FILE}`)).mode! & 0o777, 0o600);
    const old = `${parent}/old`;
    await Deno.mkdir(old, { mode: 0o755 });
    await Deno.chmod(old, 0o755);
    (await holdDataDir(old))();
    assert.equal((await Deno.stat(old)).mode! & 0o777, 0o700);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
