/**
 * db/wire.ts, the request gate's own PostgreSQL client: its codec (pure), and on a real
 * PostgreSQL server the same rows and errors as postgres.js, the gate's statements with the
 * same outcomes, losing and regaining its connection, and each password method.
 */
import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { createApiKey, createUser } from "./support/fixtures.ts";
import { freePort } from "./support/process.ts";
import { waitUntil } from "./support/wait.ts";
import { isUnavailable, openPostgres, type Queryable } from "../db/client.ts";
import { openWireConnection, type WireTarget, wireTarget } from "../db/wire.ts";
import { bindMessage, Message } from "../db/wire_codec.ts";
import { decoderFor, encodeParam, parseArrayText, utf8 } from "../db/wire_values.ts";
import { type GateItem, runGate } from "../db/gate.ts";
import { hashSecret } from "../lib/secrets.ts";

Deno.test("wireTarget() serves plain TCP and unix sockets, and declines TLS or other options", () => {
  assert.deepEqual(wireTarget("postgres://app:p%40ss@db.example:6543/prop?sslmode=disable"), {
    hostname: "db.example",
    port: 6543,
    socketPath: null,
    user: "app",
    password: "p@ss",
    database: "prop",
  });
  assert.deepEqual(wireTarget("postgresql://app@localhost/prop?host=/run/postgresql"), {
    hostname: "localhost",
    port: 5432,
    socketPath: "/run/postgresql/.s.PGSQL.5432",
    user: "app",
    password: null,
    database: "prop",
  });
  assert.equal(wireTarget("postgres://app@db/x")?.database, "x");
  assert.equal(wireTarget("postgres://app@db")?.database, "app");
  for (
    const url of [
      "postgres://app@db/x?sslmode=require",
      "postgres://app@db/x?sslmode=verify-full",
      "postgres://app@db/x?options=-c%20search_path%3Dy",
      "postgres://db/x", // no user: postgres.js reads it from the environment
      "postgres://app@a,b/x",
      "mysql://app@db/x",
      "not a url",
    ]
  ) {
    assert.equal(wireTarget(url), null, url);
  }
});

Deno.test("encodeParam() writes PostgreSQL's text format, arrays quoted", () => {
  assert.equal(encodeParam(null), null);
  assert.equal(encodeParam(undefined), null);
  assert.equal(encodeParam(12), "12");
  assert.equal(encodeParam(true), "t");
  assert.equal(encodeParam(new Date(Date.UTC(2026, 0, 2))), "2026-01-02T00:00:00.000Z");
  assert.equal(encodeParam(["a", null, 'q"u\\o,te', "NULL"]), '{"a",NULL,"q\\"u\\\\o,te","NULL"}');
  assert.equal(encodeParam([]), "{}");
  assert.equal(encodeParam({ a: 1 }), '{"a":1}');
});

Deno.test("parseArrayText() and decoderFor() read what PostgreSQL writes", () => {
  assert.deepEqual(parseArrayText("{}"), []);
  assert.deepEqual(parseArrayText('{a,"b c",NULL,"NULL","q\\"x\\\\"}'), [
    "a",
    "b c",
    null,
    "NULL",
    'q"x\\',
  ]);
  assert.deepEqual(decoderFor(1007)("{1,-2,NULL}"), [1, -2, null]);
  assert.deepEqual(decoderFor(1007)("{}"), []);
  assert.deepEqual(decoderFor(1007)("{NULL}"), [null]);
  assert.deepEqual(decoderFor(1007)("{2147483647,-2147483648,0}"), [2147483647, -2147483648, 0]);
  assert.deepEqual(decoderFor(1005)("{-32768,7}"), [-32768, 7]);
  assert.deepEqual(decoderFor(1007)("[0:1]={7,-8}"), [7, -8]);
  assert.deepEqual(decoderFor(1000)("{t,f}"), [true, false]);
  assert.equal(decoderFor(16)("t"), true);
  assert.equal(decoderFor(701)("1.5"), 1.5);
  assert.equal(decoderFor(20)("9007199254740993"), "9007199254740993"); // int8 stays text
  assert.deepEqual(decoderFor(3802)('{"a":[1]}'), { a: [1] });
  assert.equal(decoderFor(25)("x"), "x");
});

Deno.test("utf8() reads ASCII in JavaScript and anything else as TextDecoder does", () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  for (
    const text of [
      "",
      "a",
      "npl_x1",
      "é",
      "a✓b",
      "𝄞",
      "a".repeat(12),
      "a".repeat(13),
      `${"a".repeat(11)}é`,
      "é".repeat(6),
      "\u0000\u007f",
    ]
  ) {
    const bytes = enc.encode(`[${text}]`);
    assert.equal(utf8(bytes, 1, bytes.length - 1), dec.decode(bytes.subarray(1, -1)), text);
  }
});

Deno.test("bindMessage() builds the Bind message byte for byte as Message does", () => {
  const params = [null, 7, "a", "é ✓", ["x", null, 'q"'], "b".repeat(33), "ü".repeat(30), ""];
  const expected = new Message().cstr("").cstr("proplab_gate_1").int16(0).int16(params.length);
  for (const p of params) {
    const s = encodeParam(p);
    if (s === null) expected.int32(-1);
    else {
      const b = new TextEncoder().encode(s);
      expected.int32(b.length).raw(b);
    }
  }
  assert.deepEqual(bindMessage("proplab_gate_1", params), expected.int16(0).end(0x42));
  assert.deepEqual(
    bindMessage("s", []),
    new Message().cstr("").cstr("s").int16(0).int16(0).int16(0).end(0x42),
  );
});

const tdb = await openTestDb();
const url = tdb.url;
const PG = { ...DB_TEST, ignore: !ON_POSTGRES };

// Its own connection to this file's database, with a name to find its backend by.
function wireFor(u: string, appName = "proplab-wire-test") {
  return openWireConnection(wireTarget(u)!, {
    connectTimeoutMs: 2000,
    params: { application_name: appName },
  });
}

const TYPES_SQL = `
select $1::int as i, $2::bigint as b, $3::float8 as f, $4::bool as t, $5::text[] as texts,
       $6::uuid[] as ids, $7::int[] as ints, $8::jsonb as j, $9::timestamptz as at,
       $10::text as n, 'x' || $11::text as s, '{}'::text[] as empty, 1.25::numeric as num,
       gen_random_uuid() is not null as u, $12::text as long_ascii, $13::text as long_utf8,
       $14::int[] as edge_ints, $15::smallint[] as smalls, $16::int[] as null_ints`;
const TYPES_PARAMS = [
  -7,
  "9007199254740993",
  2.5,
  false,
  ["plain", "with space", 'quo"te', "back\\slash", null, ""],
  ["7f1d2d3e-9c4b-4a51-8f00-1d2e3f4a5b6c"],
  [1, 2, 3],
  JSON.stringify({ k: ["v", 1] }),
  new Date(Date.UTC(2026, 10, 23, 1, 2, 3)).toISOString(),
  null,
  "é ✓",
  // Past the codec's short-text path both ways: written by TextEncoder, read by TextDecoder.
  "a".repeat(300),
  `${"ü".repeat(200)} 𝄞 ✓ ${"x".repeat(100)}`,
  [2147483647, -2147483648, 0, -1],
  [-32768, 32767],
  [1, null],
];

Deno.test({ ...PG, name: "the wire client answers the same rows as postgres.js" }, async () => {
  const wire = wireFor(url!);
  try {
    const viaWire = await wire.query(TYPES_SQL, TYPES_PARAMS);
    const viaPool = await tdb.db.query(TYPES_SQL, TYPES_PARAMS);
    // postgres.js parses timestamptz into a Date (the gate reads none; the wire keeps the
    // text), and reads a NULL element of a text[] as the string "NULL" and of an int[] as
    // NaN (the gate's arrays hold none; the wire reads null).
    const { at: wireAt, texts: wireTexts, null_ints: wireNulls, ...wireRest } =
      viaWire[0] as Record<string, unknown>;
    const { at: poolAt, texts: _, null_ints: __, ...poolRest } = viaPool[0] as Record<
      string,
      unknown
    >;
    assert.deepEqual(wireRest, poolRest);
    assert.deepEqual(wireTexts, TYPES_PARAMS[4]);
    assert.deepEqual(wireNulls, [1, null]);
    assert.equal(new Date(String(wireAt)).getTime(), (poolAt as Date).getTime());
    // Again: now prepared, without a new description.
    assert.deepEqual((await wire.query(TYPES_SQL, TYPES_PARAMS))[0], viaWire[0]);
    assert.deepEqual(await wire.query("select 1 as one where false"), []);
  } finally {
    await wire.close();
  }
});

Deno.test({ ...PG, name: "the wire client rejects a bad statement and goes on" }, async () => {
  const wire = wireFor(url!);
  try {
    await assert.rejects(wire.query("select nope from nowhere"), (err: Error) => {
      assert.equal((err as unknown as { code: string }).code, "42P01");
      assert.equal(isUnavailable(err), false);
      return true;
    });
    await assert.rejects(wire.query("select $1::int as n", ["x"]), { code: "22P02" });
    // The failed texts were not kept as prepared: fixed, they run.
    assert.deepEqual(await wire.query("select $1::int as n", [4]), [{ n: 4 }]);
    const all = await Promise.all([1, 2, 3].map((n) => wire.query("select $1::int as n", [n])));
    assert.deepEqual(all, [[{ n: 1 }], [{ n: 2 }], [{ n: 3 }]]);
  } finally {
    await wire.close();
  }
});

Deno.test({ ...PG, name: "the wire client reports a lost connection and reconnects" }, async () => {
  const appName = `proplab-wire-lost-${crypto.randomUUID()}`;
  const wire = wireFor(url!, appName);
  try {
    assert.deepEqual(await wire.query("select 1 as n"), [{ n: 1 }]);
    // A statement under way when its backend is terminated fails as "unavailable".
    const sleeping = assert.rejects(wire.query("select pg_sleep(10)"), (err) => isUnavailable(err));
    await waitUntil("the sleeping statement to run", async () =>
      (await tdb.db.query(
        "select 1 from pg_stat_activity where application_name = $1 and state = 'active'",
        [appName],
      )).length === 1);
    await tdb.db.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1",
      [appName],
    );
    await sleeping;
    // The next one connects again.
    assert.deepEqual(await wire.query("select 3 as n"), [{ n: 3 }]);
  } finally {
    await wire.close();
  }
  await assert.rejects(wire.query("select 4 as n"), (err) => isUnavailable(err));
});

Deno.test(
  { ...PG, name: "nothing listens: the wire client's error means unavailable" },
  async () => {
    const target: WireTarget = { ...wireTarget(url!)!, port: freePort() };
    const wire = openWireConnection(target, { connectTimeoutMs: 1000, params: {} });
    await assert.rejects(wire.query("select 1"), (err) => isUnavailable(err));
    await wire.close();
  },
);

Deno.test(
  { ...PG, name: "the gate's statements give the same outcomes on both clients" },
  async () => {
    await tdb.reset();
    const user = await createUser(tdb.db, { tier: "sharp" });
    const hash = hashSecret(await createApiKey(tdb.db, user.id));
    const wire = wireFor(url!);
    const charge = (subject: string) => [{
      key: `t-minute:${subject}`,
      policy: { name: "t-minute", quota: 3, windowSeconds: 60 },
    }];
    const items = (subject: string): GateItem[] => [
      { ref: { kind: "apiKey", hash }, expect: { userId: user.id, tier: "sharp" }, charges: [] },
      { ref: { kind: "apiKey", hash }, expect: { userId: user.id, tier: "free" }, charges: [] },
      { ref: { kind: "apiKey", hash: "0".repeat(64) }, expect: null, charges: [] },
      ...[1, 2, 3, 4].map(() => ({
        ref: { kind: "apiKey" as const, hash },
        expect: { userId: user.id, tier: "sharp" as const },
        charges: charge(subject),
      })),
    ];
    const now = Date.now();
    try {
      const runs = async (q: Queryable, subject: string) => [
        await runGate(q, items(subject).slice(0, 3), now), // the lookup statement
        await runGate(q, items(subject), now), // the charging one
      ];
      const viaWire = await runs(wire, "wire");
      const viaPool = await runs(tdb.db, "pool");
      const strip = (rs: Awaited<ReturnType<typeof runs>>) =>
        JSON.parse(JSON.stringify(rs).replaceAll("t-minute:wire", "t-minute:pool"));
      assert.deepEqual(strip(viaWire), strip(viaPool));
      assert.deepEqual(viaWire[1].map((r) => r.charge?.admitted ?? null), [
        null,
        null,
        null,
        true,
        true,
        true,
        false,
      ]);
    } finally {
      await wire.close();
    }
  },
);

// The throwaway cluster (scripts/pg-throwaway.sh) asks members of these groups for their
// password, each group its own way. Each test makes roles of its own (test files may run at
// once on one server) and drops them; on a server without those rules it checks nothing.
const METHODS = [
  ["proplab_scram_users", "scram-sha-256"],
  ["proplab_md5_users", "md5"],
  ["proplab_password_users", "password"],
] as const;

async function passwordRules(): Promise<Map<string, string>> {
  const rows = await tdb.db.query<{ grp: string; method: string }>(
    `select substr(user_name[1], 2) as grp, auth_method as method from pg_hba_file_rules
      where user_name[1] like '+proplab\\_%'`,
  );
  return new Map(rows.map((r) => [r.grp, r.method]));
}

/** A new login role in `group` with `password`, stored as the method needs it. */
async function roleIn(group: string, method: string, password: string): Promise<string> {
  const role = `proplab_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await tdb.db.exec(
    `set password_encryption = '${method === "md5" ? "md5" : "scram-sha-256"}';
     create role ${role} login password '${password}' in role ${group};
     reset password_encryption;`,
  );
  return role;
}

const urlAs = (role: string, password: string) => {
  const u = new URL(url!);
  u.username = role;
  u.password = password;
  return u.toString();
};

Deno.test(
  { ...PG, name: "the wire client logs in by SCRAM-SHA-256, md5 and password" },
  async () => {
    const rules = await passwordRules();
    if (rules.size === 0) {
      console.log("skipped: this server has no pg_hba rules for the password groups");
      return;
    }
    for (const [group, method] of METHODS) {
      assert.equal(rules.get(group), method, group);
      const password = `pw-${crypto.randomUUID()}`;
      const role = await roleIn(group, method, password);
      try {
        const wire = openWireConnection(wireTarget(urlAs(role, password))!, {
          connectTimeoutMs: 2000,
          params: {},
        });
        try {
          assert.deepEqual(await wire.query("select current_user as who"), [{ who: role }], method);
        } finally {
          await wire.close();
        }
        const refused = openWireConnection(wireTarget(urlAs(role, "wrong-password"))!, {
          connectTimeoutMs: 2000,
          params: {},
        });
        await assert.rejects(refused.query("select 1"), { code: "28P01" }, method);
        await refused.close();
      } finally {
        await tdb.db.exec(`drop role ${role}`);
      }
    }
  },
);

Deno.test(
  { ...PG, name: "a server that asks for a password the URL lacks: the gate uses the pool" },
  async () => {
    if (!(await passwordRules()).has("proplab_scram_users")) {
      console.log("skipped: this server has no pg_hba rule for proplab_scram_users");
      return;
    }
    const password = `pw-${crypto.randomUUID()}`;
    const role = await roleIn("proplab_scram_users", "scram-sha-256", password);
    // postgres.js reads PGPASSWORD when the pool is made; db/wire.ts reads only the URL, is
    // asked for a password it does not have, and hands the gate's statements to the pool.
    Deno.env.set("PGPASSWORD", password);
    const db = openPostgres(urlAs(role, ""), { max: 1 });
    Deno.env.delete("PGPASSWORD");
    try {
      // The pool's rows (postgres.js answers its own Array subclass).
      const rows = await db.gateConnection!.query("select current_user as who");
      assert.deepEqual([...rows], [{ who: role }]);
      assert.notEqual(rows.constructor, Array);
      assert.equal(db.gateConnection!.writesAtOnce, false);
      assert.deepEqual([...await db.gateConnection!.query("select 2 as n")], [{ n: 2 }]);
    } finally {
      await db.close();
      await tdb.db.exec(`drop role ${role}`);
    }
  },
);
