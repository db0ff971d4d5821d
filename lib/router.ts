/** Routes as data: one ordered table matched with URLPattern; 404, and 405 with Allow. */

export const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type Method = typeof METHODS[number];

/** The part of a route the router needs; the rest travels with it untouched. */
export interface RouteShape {
  method: Method;
  /** A URLPattern pathname, e.g. `/api/v1/me/api-keys/:id`. */
  path: string;
}

/** The result of matching one request. */
export type Match<R> =
  | { kind: "found"; route: R; params: Record<string, string> }
  | { kind: "not-found" }
  | { kind: "method-not-allowed"; allow: string[] };

/** A compiled route table. */
export interface Router<R> {
  match(method: string, pathname: string): Match<R>;
  routes: readonly R[];
}

interface Compiled<R> {
  route: R;
  pattern: URLPattern | null;
}

/**
 * Compiles a route table once at startup. Static paths are looked up in a map;
 * only paths with parameters go through URLPattern. HEAD is served by GET routes.
 */
export function createRouter<R extends RouteShape>(routes: readonly R[]): Router<R> {
  const byPath = new Map<string, Map<string, R>>();
  const dynamic: Compiled<R>[] = [];
  for (const route of routes) {
    if (route.path.includes(":") || route.path.includes("*")) {
      dynamic.push({ route, pattern: new URLPattern({ pathname: route.path }) });
      continue;
    }
    const methods = byPath.get(route.path) ?? new Map<string, R>();
    if (methods.has(route.method)) throw new Error(`duplicate route ${route.method} ${route.path}`);
    methods.set(route.method, route);
    byPath.set(route.path, methods);
  }

  function match(method: string, pathname: string): Match<R> {
    const wanted = method === "HEAD" ? "GET" : method;
    const staticHit = byPath.get(pathname);
    if (staticHit) {
      const route = staticHit.get(wanted);
      if (route) return { kind: "found", route, params: {} };
      return { kind: "method-not-allowed", allow: allowHeader([...staticHit.keys()]) };
    }
    const allowed: string[] = [];
    for (const c of dynamic) {
      const m = c.pattern!.exec({ pathname });
      if (!m) continue;
      if (c.route.method === wanted) {
        return { kind: "found", route: c.route, params: cleanParams(m.pathname.groups) };
      }
      allowed.push(c.route.method);
    }
    if (allowed.length > 0) return { kind: "method-not-allowed", allow: allowHeader(allowed) };
    return { kind: "not-found" };
  }

  return { match, routes };
}

function allowHeader(methods: string[]): string[] {
  const set = new Set(methods);
  if (set.has("GET")) set.add("HEAD");
  return [...set].sort();
}

function cleanParams(groups: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(groups)) if (v !== undefined) out[k] = v;
  return out;
}
