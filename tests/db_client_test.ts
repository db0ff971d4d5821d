import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";

const { db } = await openTestDb();

Deno.test(
  { ...DB_TEST, name: "query() takes JSON parameters as JSON text on both drivers" },
  async () => {
    const cases: [unknown, string][] = [
      [{ a: [1, "x"] }, "object"],
      [120, "number"],
      ["s", "string"],
      [true, "boolean"],
      [null, "null"],
    ];
    for (const [value, type] of cases) {
      const rows = await db.query<{ v: unknown; t: string }>(
        "select $1::jsonb as v, jsonb_typeof($1::jsonb) as t",
        [JSON.stringify(value)],
      );
      assert.deepEqual(rows[0].v, value);
      assert.equal(rows[0].t, type);
    }
  },
);

Deno.test({ ...DB_TEST, name: "listen() receives a NOTIFY" }, async () => {
  const got = new Promise<string>((resolve) => {
    void db.listen("t_chan", resolve).then(async () => {
      await db.query("select pg_notify('t_chan', 'hello')");
    });
  });
  assert.equal(await got, "hello");
});
