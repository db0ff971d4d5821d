/** A new embedded data directory: created in a worker, then opened; failures say where. */
import assert from "node:assert/strict";
import { openPglite } from "../db/client.ts";
import { isInitialised } from "../db/pglite_init.ts";

Deno.test("a new data dir is created in a worker, then opened; the next open reuses it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "proplab-init-" });
  try {
    assert.equal(await isInitialised(dir), false);
    const db = await openPglite(dir);
    assert.equal(await isInitialised(dir), true);
    await db.exec("create table kept (v int); insert into kept values (42)");
    await db.close();
    const again = await openPglite(dir);
    assert.deepEqual(await again.query("select v from kept"), [{ v: 42 }]);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a data dir initdb cannot fill fails with the directory in the message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "proplab-init-" });
  try {
    // initdb needs to create global/ there.
    await Deno.writeTextFile(`${dir}/global`, "not a directory");
    await assert.rejects(
      openPglite(dir),
      (err: Error) => err.message.startsWith(`creating the embedded database in ${dir} failed`),
    );
    assert.equal(await isInitialised(dir), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
