import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { openPostgres, socketOption } from "../db/client.ts";

const { db, url: tdbUrl } = await openTestDb();

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

Deno.test({
  ...DB_TEST,
  ignore: !ON_POSTGRES,
  name: "a DATABASE_URL naming a unix socket directory (?host=/dir, as libpq) reaches the server",
}, async () => {
  const [{ dirs }] = await db.query<{ dirs: string }>(
    "select setting as dirs from pg_settings where name = 'unix_socket_directories'",
  );
  const dir = dirs.split(",")[0].trim();
  const url = new URL(tdbUrl!);
  url.hostname = "localhost";
  url.search = `?host=${dir}`;
  const other = openPostgres(url.href, { max: 1 });
  try {
    const [pool] = await other.query<{ addr: string | null }>(
      "select inet_client_addr()::text as addr",
    );
    assert.equal(pool.addr, null, "the pool's connection came over the socket, not TCP");
    const [gate] = await other.gateConnection!.query<{ addr: string | null }>(
      "select inet_client_addr()::text as addr",
    );
    assert.equal(gate.addr, null, "and so did the gate's");
    assert.equal(other.gateConnection!.writesAtOnce, true, "the gate's own client, no fallback");
  } finally {
    await other.close();
  }
});

Deno.test("socketOption() turns ?host=/dir into postgres.js's socket path and leaves TCP alone", () => {
  assert.deepEqual(
    socketOption("postgres://app@localhost:5433/prop?host=/run/pg&sslmode=disable"),
    {
      url: "postgres://app@localhost:5433/prop?sslmode=disable",
      path: "/run/pg/.s.PGSQL.5433",
    },
  );
  assert.deepEqual(socketOption("postgres://app@localhost/prop?host=/run/pg"), {
    url: "postgres://app@localhost/prop",
    path: "/run/pg/.s.PGSQL.5432",
  });
  for (const url of ["postgres://app@db:5432/prop", "postgres://app@db/p?host=db2", "not a url"]) {
    assert.deepEqual(socketOption(url), { url });
  }
});
