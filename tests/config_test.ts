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
    // The bootstrap admin follows signup's rules, or it could never log in.
    [{ ADMIN_EMAIL: "not an email", ADMIN_PASSWORD: "long-enough-pw" }, /^ADMIN_EMAIL /],
    [{ ADMIN_EMAIL: "a@b.co", ADMIN_PASSWORD: "x" }, /^ADMIN_PASSWORD must be at least 10/],
    [{ ADMIN_EMAIL: "a@b.co", ADMIN_PASSWORD: "x".repeat(1025) }, /^ADMIN_PASSWORD .*1024/],
    [{ WORKER: "maybe" }, /^WORKER must be on or off/],
    [{ CORS_ORIGINS: "javascript:x" }, /^CORS_ORIGINS /],
    [{ CORS_ORIGINS: "https://a.example.com/path" }, /^CORS_ORIGINS /],
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

Deno.test("loadConfig() reports every bad variable at once, on one line", () => {
  assert.throws(
    () => loadConfig({ PORT: "abc", LOG_LEVEL: "loud", TRUST_PROXY: "-1" }),
    (err: unknown) =>
      err instanceof ConfigError && /^PORT .*; LOG_LEVEL .*; TRUST_PROXY /.test(err.message) &&
      !err.message.includes("\n"),
  );
});

Deno.test("loadConfig(): WORKER takes on/off and their usual spellings", () => {
  for (const off of ["off", "false", "0", "no", "OFF"]) {
    assert.equal(loadConfig({ WORKER: off }).workerEnabled, false, off);
  }
  for (const on of ["on", "true", "1", "yes", ""]) {
    assert.equal(loadConfig({ WORKER: on }).workerEnabled, true, on);
  }
  assert.deepEqual(
    loadConfig({ CORS_ORIGINS: "https://a.example.com, http://localhost:3000,*" }).corsOrigins,
    ["https://a.example.com", "http://localhost:3000", "*"],
  );
});
