import { absorbBackgroundDisconnects } from "../../db/client.ts";
/** A TCP proxy to the test PostgreSQL that can be cut and restored, to simulate an outage. */

/** A proxy listening on `port`; `down()` drops every connection and refuses new ones. */
export interface CutProxy {
  port: number;
  down(): void;
  up(): void;
  close(): void;
}

/**
 * Starts a proxy on 127.0.0.1 forwarding to `target`. While it exists, the driver's
 * background reconnect failures are absorbed exactly as `proplab serve` absorbs them.
 */
export function startCutProxy(target: { hostname: string; port: number }): CutProxy {
  const unabsorb = absorbBackgroundDisconnects(() => {});
  const conns = new Set<Deno.Conn>();
  let listener: Deno.Listener | null = null;
  let port = 0;

  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable);
    } catch { /* either side closed */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* already closed */ }
      conns.delete(c);
    }
  };

  const accept = async (l: Deno.Listener) => {
    for await (const client of l) {
      try {
        const upstream = await Deno.connect(target);
        conns.add(client).add(upstream);
        void pipe(client, upstream);
        void pipe(upstream, client);
      } catch {
        client.close();
      }
    }
  };

  const up = () => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    void accept(listener).catch(() => {});
  };
  const down = () => {
    listener?.close();
    listener = null;
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    conns.clear();
  };
  up();
  return {
    port,
    up,
    down,
    close() {
      down();
      // Late reconnect attempts of pools that were cut may still fail after the test.
      setTimeout(unabsorb, 10_000);
    },
  };
}
