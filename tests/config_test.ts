import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../lib/config.ts";

Deno.test("loadConfig() fills the defaults", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.databaseUrl, null);
  assert.equal(c.dataDir, "./data");
  assert.equal(c.errorsBase, "https://nbaproplab.com/errors");
  assert.equal(c.trustProxy, 0);
});

Deno.test("loadConfig() names the variable that is wrong", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: "eighty" }, /^PORT /],
    [{ PORT: "70000" }, /^PORT /],
    [{ DATABASE_URL: "not a url" }, /^DATABASE_URL /],
    [{ DATABASE_URL: "mysql://x/y" }, /^DATABASE_URL /],
    [{ LOG_LEVEL: "loud" }, /^LOG_LEVEL /],
    [{ JWT_SECRET: "short" }, /^JWT_SECRET /],
    [{ ADMIN_EMAIL: "a@b.c" }, /ADMIN_PASSWORD/],
    [{ ERRORS_BASE: "nope" }, /^ERRORS_BASE /],
  ];
  for (const [env, re] of cases) {
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
    );
  }
});

Deno.test("loadConfig() accepts postgres and postgresql URLs", () => {
  assert.equal(
    loadConfig({ DATABASE_URL: "postgres://u@h:5/d" }).databaseUrl,
    "postgres://u@h:5/d",
  );
  assert.ok(loadConfig({ DATABASE_URL: "postgresql://u@h/d" }).databaseUrl);
});
