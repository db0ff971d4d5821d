/** proplab: the CLI of the one binary (`deno compile` entry). `deno serve` uses serve.ts. */
import { ConfigError, loadConfig } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { VERSION } from "./lib/version.ts";
import { migrateDatabase, openDatabase, serve } from "./server.ts";
import { isUnavailable } from "./db/client.ts";
import { DataDirInUse } from "./db/data_dir.ts";
import {
  type AdminCommand,
  createAdminCommand,
  createOpsTokenCommand,
  Interrupted,
  rotateSigningKeyCommand,
  UsageError,
} from "./cli_admin.ts";

const USAGE = `proplab ${VERSION} — the NBA Prop Lab API server

Usage: proplab [command]

Commands:
  serve       run the HTTP server (default)
  migrate     apply pending database migrations and exit
  create-admin --email E
              create an admin user; the password is read from stdin (or prompted)
  create-ops-token --name N --scopes ops:read,... [--expires-at 2027-01-01T00:00:00Z]
              create an ops token and print it once on stdout
  rotate-signing-key
              make a new JWT signing key current (old tokens stay valid until they expire)

Options:
  -h, --help     show this help
  -V, --version  print the version

Environment: PORT, HOST, DATABASE_URL, DATA_DIR, JWT_SECRET, ERRORS_BASE, ADMIN_EMAIL,
ADMIN_PASSWORD, LOG_LEVEL, TRUST_PROXY, CORS_ORIGINS, INGEST_DIR, WORKER (on|off),
SHUTDOWN_GRACE_MS, BODY_TIMEOUT_MS (see README.md).`;

/** Runs one CLI invocation and returns its exit code. */
export async function runCli(args: string[]): Promise<number> {
  const [command = "serve", ...rest] = args;
  const help = ["-h", "--help"];
  if (help.includes(command) || command === "help" || rest.some((a) => help.includes(a))) {
    console.log(USAGE);
    return 0;
  }
  if (command === "-V" || command === "--version") {
    console.log(VERSION);
    return 0;
  }
  const commands: Record<string, (rest: string[]) => Promise<number>> = {
    serve: runServe,
    migrate: runMigrate,
    "create-admin": (rest) => runAdminCommand(rest, createAdminCommand),
    "create-ops-token": (rest) => runAdminCommand(rest, createOpsTokenCommand),
    "rotate-signing-key": (rest) => runAdminCommand(rest, rotateSigningKeyCommand),
  };
  const run = commands[command];
  if (!run) return usageError(`unknown command "${command}"`);
  return await run(rest);
}

function usageError(message: string): number {
  console.error(`proplab: ${message}\n\n${USAGE}`);
  return 2;
}

function configOrExit() {
  try {
    return loadConfig(Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`proplab: configuration error: ${err.message}`);
      return null;
    }
    throw err;
  }
}

async function runServe(rest: string[]): Promise<number> {
  if (rest.length) return usageError(`serve takes no arguments, got "${rest.join(" ")}"`);
  const config = configOrExit();
  if (!config) return 1;
  await serve(config, createLogger(config.logLevel));
  return 0;
}

async function runMigrate(rest: string[]): Promise<number> {
  if (rest.length) return usageError(`migrate takes no arguments, got "${rest.join(" ")}"`);
  const config = configOrExit();
  if (!config) return 1;
  // The human line below says what happened; the JSON log only at debug, and on stderr.
  const log = createLogger(config.logLevel === "debug" ? "debug" : "warn", (l) => console.error(l));
  const db = await openDatabase(config, log);
  try {
    const applied = await migrateDatabase(db, log);
    console.error(applied.length ? `applied ${applied.join(", ")}` : "database is up to date");
  } finally {
    await db.close();
  }
  return 0;
}

async function runAdminCommand(rest: string[], command: AdminCommand): Promise<number> {
  const config = configOrExit();
  if (!config) return 1;
  const log = createLogger(config.logLevel === "debug" ? "debug" : "warn", (l) => console.error(l));
  try {
    return await command(rest, config, async () => {
      const db = await openDatabase(config, log);
      await migrateDatabase(db, log);
      return db;
    });
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message);
    if (err instanceof Interrupted) {
      console.error("proplab: interrupted");
      return 130;
    }
    throw err;
  }
}

/**
 * What to tell an operator about a failure that ends the process: one line naming the cause
 * and what to check. (The driver's "unavailable" rejections are absorbed while serving, so
 * an unreachable database at start would otherwise end the process quietly with code 0.)
 */
export function fatalMessage(err: unknown, config: { port: number; hostname: string } | null) {
  if (err instanceof Deno.errors.AddrInUse && config) {
    return `cannot listen on ${config.hostname}:${config.port}: the address is in use (set PORT)`;
  }
  if (isUnavailable(err)) {
    return `cannot reach the database: ${(err as Error).message} ` +
      "(check DATABASE_URL and that PostgreSQL is running)";
  }
  if (err instanceof DataDirInUse) return err.message;
  const e = err as { name?: string; message?: string; code?: string };
  const code = typeof e?.code === "string" ? ` [${e.code}]` : "";
  const name = e?.name && e.name !== "Error" ? e.name : "";
  return `${name}${code}${name || code ? ": " : ""}${e?.message ?? String(err)}`;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await runCli(Deno.args);
  } catch (err) {
    let config = null;
    try {
      config = loadConfig(Deno.env.toObject());
    } catch { /* reported already */ }
    console.error(`proplab: ${fatalMessage(err, config)}`);
    code = 1;
  }
  Deno.exit(code);
}
