/** The admin commands of the CLI: create-admin, create-ops-token, rotate-signing-key. */
import type { Config } from "./lib/config.ts";
import { createPasswordHasher, newPasswordProblem } from "./lib/password.ts";
import { isEmail, isRfc3339 } from "./lib/fields.ts";
import { createHiddenLine } from "./lib/hidden_line.ts";
import { type Scope, SCOPES } from "./lib/policy.ts";
import type { Db } from "./db/client.ts";
import { insertUser } from "./db/users.ts";
import { rotateSigningKey } from "./db/signing_keys.ts";
import { createOpsToken } from "./routes/ops_tokens.ts";

/** Bad flags: main prints the usage and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** One admin command: parses its flags, opens the database only once they are valid. */
export type AdminCommand = (
  args: string[],
  config: Config,
  openDb: () => Promise<Db>,
) => Promise<number>;

/** Parses `--name value` / `--name=value` flags, allowing only `allowed`. */
export function parseFlags(args: string[], allowed: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(args[i]);
    if (!m || !allowed.includes(m[1])) throw new UsageError(`unknown argument "${args[i]}"`);
    const value = m[2] ?? args[++i];
    if (value === undefined || value === "") throw new UsageError(`--${m[1]} needs a value`);
    if (out.has(m[1])) throw new UsageError(`--${m[1]} given twice`);
    out.set(m[1], value);
  }
  return out;
}

/** Ctrl-C at a prompt: main prints one line and exits 130. */
export class Interrupted extends Error {
  override name = "Interrupted";
}

/** One line typed at `prompt` without echo (lib/hidden_line.ts edits it). */
async function promptHidden(prompt: string): Promise<string> {
  await Deno.stderr.write(new TextEncoder().encode(prompt));
  Deno.stdin.setRaw(true);
  const feed = createHiddenLine();
  const buf = new Uint8Array(256);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      const typed = n === null ? { kind: "interrupted" as const } : feed(buf.subarray(0, n));
      if (typed.kind === "line") return typed.text;
      if (typed.kind === "interrupted") throw new Interrupted("interrupted");
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
}

/**
 * The new password: typed twice at a terminal (nothing shows; null when the two differ),
 * else all of stdin.
 */
async function readPassword(): Promise<string | null> {
  if (Deno.stdin.isTerminal()) {
    const first = await promptHidden("Password: ");
    return first === await promptHidden("Repeat it: ") ? first : null;
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

async function withDb(openDb: () => Promise<Db>, fn: (db: Db) => Promise<number>) {
  const db = await openDb();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** `create-admin --email E`: the password comes from stdin or a prompt, never a flag. */
export const createAdminCommand: AdminCommand = async (args, _config, openDb) => {
  const flags = parseFlags(args, ["email"]);
  const email = flags.get("email");
  if (!email) throw new UsageError("create-admin needs --email");
  if (!isEmail(email)) throw new UsageError(`"${email}" is not an email address`);
  const password = await readPassword();
  if (password === null) {
    console.error("proplab: the two passwords differ; nothing was created");
    return 1;
  }
  const problem = newPasswordProblem(password);
  if (problem) {
    console.error(`proplab: the password ${problem}`);
    return 1;
  }
  const passwordHash = await createPasswordHasher().hash(password);
  return await withDb(openDb, async (db) => {
    const user = await insertUser(db, {
      id: crypto.randomUUID(),
      email,
      passwordHash,
      tier: "admin",
      at: new Date(),
    });
    if (!user) {
      console.error(`proplab: a user with email ${email} already exists`);
      return 1;
    }
    console.error(`created admin ${email}`);
    console.log(user.id);
    return 0;
  });
};

/** `create-ops-token --name N --scopes a,b [--expires-at T]`: prints the token once. */
export const createOpsTokenCommand: AdminCommand = async (args, _config, openDb) => {
  const flags = parseFlags(args, ["name", "scopes", "expires-at"]);
  const name = flags.get("name")?.trim();
  const scopes = (flags.get("scopes") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (!name || !scopes.length) throw new UsageError("create-ops-token needs --name and --scopes");
  // The API's rules (routes/ops_tokens.ts), so a token made here could have been made there.
  if (name.length > 100) throw new UsageError("--name must be at most 100 characters");
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length) {
    throw new UsageError(`unknown scope ${unknown.join(", ")} (known: ${SCOPES.join(", ")})`);
  }
  const rawExpiry = flags.get("expires-at");
  const expiresAt = rawExpiry === undefined ? null : new Date(Date.parse(rawExpiry));
  if (rawExpiry !== undefined && (!isRfc3339(rawExpiry) || expiresAt!.getTime() <= Date.now())) {
    throw new UsageError(
      "--expires-at must be a future RFC 3339 date-time with a zone, such as 2027-01-01T00:00:00Z",
    );
  }
  return await withDb(openDb, async (db) => {
    const created = await createOpsToken(db, {
      name,
      scopes: [...new Set(scopes)] as Scope[],
      expiresAt,
      createdBy: "cli",
      at: new Date(),
    });
    const until = expiresAt ? `until ${expiresAt.toISOString()}` : "that never expires";
    console.error(
      `created ops token ${created.id} (${created.prefix}…) with ${scopes.join(",")}, ${until}`,
    );
    console.log(created.token);
    return 0;
  });
};

/** `rotate-signing-key`: a new current key; every instance reloads on the NOTIFY. */
export const rotateSigningKeyCommand: AdminCommand = async (args, config, openDb) => {
  parseFlags(args, []);
  if (config.jwtSecret) {
    console.error("proplab: JWT_SECRET is set, so keys are not in the database; change the secret");
    return 1;
  }
  return await withDb(openDb, async (db) => {
    const kid = await rotateSigningKey(db);
    console.error(
      "a new signing key is current; tokens signed before stay valid until they expire",
    );
    console.log(kid);
    return 0;
  });
};
