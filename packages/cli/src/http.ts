/**
 * The admin endpoint (`http:` in purger.yaml), started by `purger run`:
 *   GET  /v1/status       cluster status (runs, bin depth, processes) as JSON
 *   POST /v1/bin/<kind>   put an item in the bin (body: the JSON payload) → 201 { id }
 *   GET  /metrics         Prometheus text: bin depth/failed/oldest per kind, runs per entry and status
 *   GET  /healthz         the process is alive: 200 { ok: true }
 *   GET  /readyz          the database answers and purger's migrations are current: 200, else 503 with the reason
 * Every request needs `Authorization: Bearer <token>`, compared in constant
 * time — the probes too, unless `http.probesWithoutToken` (load balancers and
 * kubelets send no token); it binds to 127.0.0.1 unless told otherwise. It can trigger
 * deletions, so it gives a hostile client nothing to hold on to: bounded
 * header and request times, a connection cap, a body cap counted as bytes
 * arrive (announced or chunked), and malformed input (bad percent-encoding,
 * payloads PostgreSQL cannot store, nesting too deep) answered 400 with the
 * reason. See test/http.test.ts.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type pg from "pg";
import {
  binKinds,
  clusterStatus,
  displayName,
  enqueue,
  formatProblem,
  isPurgerError,
  PurgerError,
  schemaVersion,
  type Logger,
  type PurgerConfig,
  type SchemaVersion,
} from "@purger/core/host";

/** How much a client may ask of the endpoint; `http.maxConnections` comes from purger.yaml, the rest are fixed. */
export interface AdminLimits {
  /** Largest request body, announced (Content-Length) or counted as it arrives (chunked). */
  maxBodyBytes: number;
  /** Time a client has to send its request headers (then 408). */
  headersTimeoutMs: number;
  /** Time a client has to send its whole request, body included (then 408). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; further ones are closed on arrival. */
  maxConnections: number;
  /** `/readyz` answers 503 when the database has not answered within this. */
  readyTimeoutMs: number;
}

const ADMIN_LIMITS: Omit<AdminLimits, "maxConnections"> = {
  maxBodyBytes: 70_000,
  // Below the 1 s a Kubernetes probe waits by default, so the probe gets our reason rather than its own timeout.
  readyTimeoutMs: 800,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/**
 * After a response that ends the connection, the socket is destroyed this long after our FIN at the
 * latest: destroying at once, with the client still sending, answers its bytes with a TCP reset,
 * which may discard our response before the client reads it.
 */
const CLOSE_LINGER_MS = 500;

export interface AdminServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65_535) {
    throw new PurgerError("CONFIG", `http.listen: expected host:port (e.g. 127.0.0.1:9464), found "${listen}"`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

export interface AdminServerOptions {
  config: PurgerConfig;
  pool: pg.Pool;
  log: Logger;
  /** Overrides of the limits (tests shorten the timeouts). */
  limits?: Partial<AdminLimits>;
  /** Directory the config file is named relative to in errors (the process's working directory). */
  cwd?: string;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { config, pool, log } = options;
  const http = config.http!;
  // The resolver refuses a file without a token; a config built by hand could still have an empty one.
  if (http.token === "") {
    throw new PurgerError("CONFIG", "http.token is required when http: is set (every request must carry it)", {
      hint: "token: ${PURGER_ADMIN_TOKEN} — keep the secret in the environment",
    });
  }
  const expected = digest(http.token);
  const kinds = binKinds(config.entries);
  const { host, port } = parseListen(http.listen);
  const limits: AdminLimits = { ...ADMIN_LIMITS, maxConnections: http.maxConnections, ...options.limits };

  const server: Server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node looks for expired headers/requests on this period (30s by default), which would stretch short timeouts.
      connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        log.error({ error: (error as Error).message, url: req.url }, "admin endpoint error");
        if (!res.headersSent) send(res, 500, { error: "internal error" });
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  let lastDropLog = 0;
  server.on("drop", () => {
    // A flood of refused connections must not flood the log as well.
    if (Date.now() - lastDropLog < 60_000) return;
    lastDropLog = Date.now();
    log.warn(
      { event: "http:drop", maxConnections: limits.maxConnections },
      "admin endpoint refused a connection: http.maxConnections reached",
    );
  });

  const readiness = readinessCheck(pool, limits.readyTimeoutMs);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = parseTarget(req.url ?? "/");
    // Exactly these two requests may go without a token; a path merely starting like them may not.
    const probe = (req.method === "GET" || req.method === "HEAD") && url !== null ? PROBES.get(url.pathname) : undefined;
    if (!(probe !== undefined && http.probesWithoutToken)) {
      const auth = req.headers.authorization ?? "";
      const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      if (!timingSafeEqual(digest(token), expected)) {
        sendAndClose(req, res, 401, { error: "missing or wrong bearer token" }, { "www-authenticate": 'Bearer realm="purger"' });
        return;
      }
    } else if (hasBody(req)) {
      // An unauthenticated client gets nothing read for it: no body is ever drained on its behalf.
      sendAndClose(req, res, 400, { error: "a probe takes no body" });
      return;
    }
    const announced = Number(req.headers["content-length"] ?? 0);
    if (announced > limits.maxBodyBytes) {
      sendAndClose(req, res, 413, { error: `the body is larger than ${limits.maxBodyBytes} bytes (Content-Length: ${announced})` });
      return;
    }
    if (url === null) {
      sendAndClose(req, res, 400, { error: `the request target is not a valid URL: ${JSON.stringify(req.url)}` });
      return;
    }
    if (probe === "healthz") {
      send(res, 200, { ok: true });
      return;
    }
    if (probe === "readyz") {
      const ready = await readiness();
      send(res, ready.ok ? 200 : 503, ready);
      return;
    }
    if (req.method === "GET" && url.pathname === "/v1/status") {
      send(
        res,
        200,
        await clusterStatus(
          pool,
          config.entries.map((e) => e.id),
        ),
      );
      return;
    }
    if (req.method === "GET" && url.pathname === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(await metrics(pool, config));
      return;
    }
    const bin = /^\/v1\/bin\/([^/]+)$/.exec(url.pathname);
    if (bin) {
      if (req.method !== "POST") {
        send(res, 405, { error: "use POST" }, { allow: "POST" });
        return;
      }
      const kind = decodePathSegment(bin[1]!);
      if (kind === null) {
        sendAndClose(req, res, 400, { error: `the path is not valid percent-encoding: ${JSON.stringify(url.pathname)}` });
        return;
      }
      if (hasControlCharacter(kind)) {
        sendAndClose(req, res, 400, { error: `the bin kind in the path holds a control character: ${JSON.stringify(kind)}` });
        return;
      }
      const body = await readBody(req, limits.maxBodyBytes);
      if (body === "too large") {
        sendAndClose(req, res, 413, { error: `the body is larger than ${limits.maxBodyBytes} bytes` });
        return;
      }
      if (body === "not utf-8") {
        send(res, 400, { error: "the body is not valid UTF-8" });
        return;
      }
      let payload: unknown;
      try {
        payload = JSON.parse(body);
      } catch (error) {
        send(res, 400, { error: `the body is not valid JSON: ${(error as Error).message}` });
        return;
      }
      try {
        const id = await enqueue(pool, kind, payload, kinds);
        send(res, 201, { id, kind });
      } catch (error) {
        if (isPurgerError(error, "PAYLOAD")) send(res, 400, { error: error.message, ...(error.hint ? { hint: error.hint } : {}) });
        else throw error;
      }
      return;
    }
    send(res, 404, {
      error: "not found",
      routes: ["GET /v1/status", "POST /v1/bin/<kind>", "GET /metrics", "GET /healthz", "GET /readyz"],
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(listenError(error, config, options.cwd ?? process.cwd())));
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? { host: address.address, port: address.port } : { host, port };
  log.info({ event: "http:listen", ...bound }, "admin endpoint listening");
  return {
    address: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // An idle keep-alive connection (a probe's) would otherwise hold the drain for its keep-alive timeout.
        server.closeIdleConnections();
      }),
  };
}

const PROBES = new Map<string, "healthz" | "readyz">([
  ["/healthz", "healthz"],
  ["/readyz", "readyz"],
]);

type Readiness =
  { ok: true; schema: Omit<SchemaVersion, "upToDate"> } | { ok: false; reason: string; schema?: Omit<SchemaVersion, "upToDate"> };

/**
 * `/readyz`: the database answers within `timeoutMs` and its purger schema is the one this code
 * expects. Probes that arrive while a check is still waiting share it, so a database that hangs
 * holds one pool connection, not one per probe.
 */
function readinessCheck(pool: pg.Pool, timeoutMs: number): () => Promise<Readiness> {
  let inFlight: Promise<SchemaVersion> | null = null;
  return async () => {
    if (inFlight === null) {
      const check = schemaVersion(pool);
      inFlight = check;
      const clear = () => {
        if (inFlight === check) inFlight = null;
      };
      check.then(clear, clear);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      const result = await Promise.race([inFlight, timeout]);
      if (result === "timeout") return { ok: false, reason: `the database did not answer within ${timeoutMs} ms` };
      const schema = { version: result.version, latest: result.latest };
      if (result.upToDate) return { ok: true, schema };
      const reason =
        result.version < result.latest
          ? `purger's schema in the database is at version ${result.version}, this purger expects ${result.latest}: its migrations are not applied (purger applies them when it starts)`
          : `purger's schema in the database is at version ${result.version}, newer than this purger knows (${result.latest}): a newer release of purger upgraded it`;
      return { ok: false, reason, schema };
    } catch (error) {
      // The driver's message may name hosts and users; a probe answered without a token gets the error code only.
      const code = (error as { code?: unknown }).code;
      return { ok: false, reason: `the database is unreachable${typeof code === "string" ? ` (${code})` : ""}` };
    } finally {
      clearTimeout(timer);
    }
  };
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
}

const LISTEN_ERRORS: Record<string, { what: string; hint: string }> = {
  EADDRINUSE: {
    what: "is in use",
    hint: "another process listens there (another purger on this host?): give each its own address, e.g. listen: ${PURGER_HTTP_LISTEN:-127.0.0.1:9464} and PURGER_HTTP_LISTEN=127.0.0.1:9465 for the second",
  },
  EADDRNOTAVAIL: {
    what: "is not an address of this host",
    hint: "listen on one of this host's addresses, 127.0.0.1 or 0.0.0.0 (all of them)",
  },
  EACCES: { what: "may not be bound by this user", hint: "ports below 1024 need privileges: use a higher port such as 9464" },
  ENOTFOUND: { what: "names a host that does not resolve", hint: "use an IP address (127.0.0.1, 0.0.0.0) or a resolvable host name" },
};

/** A listen failure is the configuration's: named where http.listen is written, like the resolver's errors. */
function listenError(error: Error & { code?: string }, config: PurgerConfig, cwd: string): Error {
  const known = error.code === undefined ? undefined : LISTEN_ERRORS[error.code];
  if (known === undefined) return error;
  const http = config.http!;
  const message = formatProblem(displayName(config.file, cwd), {
    line: http.listenAt?.line ?? null,
    column: http.listenAt?.column ?? null,
    path: "http.listen",
    message: `${http.listen} ${known.what} (${error.code})`,
  });
  return new PurgerError("CONFIG", message, { hint: known.hint, cause: error });
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * Answer, then end the connection: the rest of a refused body, or a request pipelined behind it, is
 * not read. Our FIN goes out with the response; the socket is destroyed once the client has closed
 * its side, or after a short linger (see CLOSE_LINGER_MS).
 */
function sendAndClose(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const socket = req.socket;
  res.on("finish", () => {
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  });
  send(res, status, body, { connection: "close", ...headers });
}

/** The body as text; counted as it arrives, so a chunked body without Content-Length is capped as well. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<string | "too large" | "not utf-8"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      // Answer now: an endless body must not keep the request open.
      req.off("data", onData);
      resolve("too large");
    };
    req.on("data", onData);
    req.on("end", () => {
      try {
        resolve(utf8.decode(Buffer.concat(chunks)));
      } catch {
        resolve("not utf-8");
      }
    });
    req.on("error", reject);
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** The request target (a path, or the absolute form `http://host/path`), or null when it is no URL. */
function parseTarget(target: string): URL | null {
  try {
    return new URL(target, "http://localhost");
  } catch {
    return null;
  }
}

function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

async function metrics(pool: pg.Pool, config: PurgerConfig): Promise<string> {
  const status = await clusterStatus(
    pool,
    config.entries.map((e) => e.id),
  );
  const { rows } = await pool.query<{ entry: string; status: string; n: number; processed: number }>(
    "SELECT entry, status, count(*)::int AS n, coalesce(sum(processed), 0)::float8 AS processed FROM purger.runs WHERE NOT dry_run GROUP BY entry, status",
  );
  const label = (v: string) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
  const lines = [
    "# HELP purger_bin_pending Bin items waiting to be handled.",
    "# TYPE purger_bin_pending gauge",
    ...status.bin.map((b) => `purger_bin_pending{kind="${label(b.kind)}"} ${b.pending}`),
    "# HELP purger_bin_failed Bin items that failed their last attempt.",
    "# TYPE purger_bin_failed gauge",
    ...status.bin.map((b) => `purger_bin_failed{kind="${label(b.kind)}"} ${b.failed}`),
    "# HELP purger_bin_oldest_seconds Age of the oldest pending bin item.",
    "# TYPE purger_bin_oldest_seconds gauge",
    ...status.bin.map((b) => `purger_bin_oldest_seconds{kind="${label(b.kind)}"} ${b.oldestMs === null ? 0 : b.oldestMs / 1000}`),
    "# HELP purger_runs Runs recorded (kept for runs.keep), by entry and status.",
    "# TYPE purger_runs gauge",
    ...rows.map((r) => `purger_runs{entry="${label(r.entry)}",status="${label(r.status)}"} ${r.n}`),
    "# HELP purger_processed Items processed by recorded runs, by entry.",
    "# TYPE purger_processed gauge",
    ...aggregate(rows).map(([entry, n]) => `purger_processed{entry="${label(entry)}"} ${n}`),
    "# HELP purger_processes Live purger processes of the cluster.",
    "# TYPE purger_processes gauge",
    `purger_processes ${status.processes.length}`,
  ];
  return `${lines.join("\n")}\n`;
}

function aggregate(rows: { entry: string; processed: number }[]): [string, number][] {
  const totals = new Map<string, number>();
  for (const r of rows) totals.set(r.entry, (totals.get(r.entry) ?? 0) + Number(r.processed));
  return [...totals];
}
