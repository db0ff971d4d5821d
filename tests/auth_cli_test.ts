import assert from "node:assert/strict";
import { createScratchDatabase, ON_POSTGRES } from "./support/db.ts";

/** A database for the CLI: a scratch PostgreSQL database, or a PGlite data dir. */
async function cliEnv(): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  if (ON_POSTGRES) {
    return { env: { DATABASE_URL: await createScratchDatabase() }, cleanup: async () => {} };
  }
  const dir = await Deno.makeTempDir({ prefix: "proplab-cli-" });
  return {
    env: { DATABASE_URL: "", DATA_DIR: dir },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

async function cli(args: string[], env: Record<string, string>, stdin = "") {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    env: { PORT: "", LOG_LEVEL: "warn", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("admin CLI commands: bad flags print usage and exit 2", async () => {
  for (
    const args of [
      ["create-admin", "--email", "a@example.com", "--password", "x"],
      ["create-ops-token", "--name", "n", "--scopes", "ops:root"],
      ["rotate-signing-key", "--now"],
    ]
  ) {
    const r = await cli(args, { DATABASE_URL: "" });
    assert.equal(r.code, 2, args.join(" ") + r.stderr);
    assert.match(r.stderr, /Usage: proplab/);
  }
});

Deno.test("create-ops-token takes what the API takes, and each command has --help", async () => {
  const token = (...extra: string[]) =>
    cli(["create-ops-token", "--name", "n", "--scopes", "ops:read", ...extra], {
      DATABASE_URL: "",
    });
  for (const expiry of ["2030", "Jan 1 2030", "2030-01-01T00:00:00", "2020-01-01T00:00:00Z"]) {
    const r = await token("--expires-at", expiry);
    assert.equal(r.code, 2, expiry);
    assert.match(r.stderr, /--expires-at must be a future RFC 3339 date-time with a zone/);
  }
  const long = await cli(["create-ops-token", "--name", "x".repeat(101), "--scopes", "ops:read"], {
    DATABASE_URL: "",
  });
  assert.match(long.stderr, /--name must be at most 100 characters/);
  const unknown = await cli(["create-ops-token", "--name", "n", "--scopes", "ops:admin"], {
    DATABASE_URL: "",
  });
  assert.match(unknown.stderr, /unknown scope ops:admin \(known: ops:read, ops:commands/);
  for (const command of ["serve", "migrate", "create-admin", "create-ops-token"]) {
    const r = await cli([command, "--help"], { DATABASE_URL: "" });
    assert.equal(r.code, 0, command);
    assert.match(r.stdout, /Usage: proplab/);
  }
});

Deno.test("`proplab create-admin`, `create-ops-token` and `rotate-signing-key` work on a fresh install", async () => {
  const { env, cleanup } = await cliEnv();
  try {
    const admin = await cli(
      ["create-admin", "--email", "ops@example.com"],
      env,
      "admin-password-1\n",
    );
    assert.equal(admin.code, 0, admin.stderr);
    assert.match(admin.stdout.trim(), /^[0-9a-f-]{36}$/);
    assert.match(admin.stderr, /created admin ops@example\.com/);
    assert.ok(
      !admin.stdout.includes("admin-password-1") && !admin.stderr.includes("admin-password-1"),
    );
    const again = await cli(
      ["create-admin", "--email", "OPS@example.com"],
      env,
      "admin-password-1\n",
    );
    assert.equal(again.code, 1);
    const short = await cli(["create-admin", "--email", "b@example.com"], env, "short\n");
    assert.equal(short.code, 1);
    const token = await cli([
      "create-ops-token",
      "--name",
      "ci",
      "--scopes",
      "ops:read,ops:commands",
    ], env);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /^nplops_[0-9A-Za-z]{38}\n$/);
    assert.match(token.stderr, /with ops:read,ops:commands, that never expires/);
    const rotated = await cli(["rotate-signing-key"], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout.trim(), /^[0-9a-f-]{36}$/);
    assert.match(rotated.stderr, /a new signing key is current/);
  } finally {
    await cleanup();
  }
});
