/** Queries of the JWT signing keys. */
import type { Db, Queryable } from "./client.ts";
import type { KeyMaterial } from "../lib/jwt.ts";

/** The channel a key rotation is announced on, so every instance reloads its keyring. */
export const SIGNING_KEYS_CHANNEL = "proplab_signing_keys";

const toB64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const fromB64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Every stored key, current and retired. */
export async function findSigningKeys(q: Queryable): Promise<KeyMaterial[]> {
  const rows = await q.query<
    { kid: string; secret: string; created_at: Date; retired_at: Date | null }
  >(
    "select kid, secret, created_at, retired_at from signing_keys",
  );
  return rows.map((r) => ({
    kid: r.kid,
    secret: fromB64(r.secret),
    createdAt: r.created_at.getTime(),
    retiredAt: r.retired_at?.getTime() ?? null,
  }));
}

function freshKey(): { kid: string; secret: string } {
  return { kid: crypto.randomUUID(), secret: toB64(crypto.getRandomValues(new Uint8Array(32))) };
}

/** Creates the first key unless a current one exists (instances starting together agree). */
export async function insertFirstSigningKey(q: Queryable): Promise<void> {
  const k = freshKey();
  await q.query(
    "insert into signing_keys (kid, secret) values ($1, $2) on conflict do nothing",
    [k.kid, k.secret],
  );
}

/** Retires the current key and makes a new one current, then tells every instance. */
export async function rotateSigningKey(db: Db): Promise<string> {
  const k = freshKey();
  await db.transaction(async (tx) => {
    await tx.query("update signing_keys set retired_at = now() where retired_at is null");
    await tx.query("insert into signing_keys (kid, secret) values ($1, $2)", [k.kid, k.secret]);
    await tx.query("select pg_notify($1, $2)", [SIGNING_KEYS_CHANNEL, k.kid]);
  });
  return k.kid;
}
