/**
 * The admin endpoint (`http:` in purger.yaml), started by `purger run`:
 *   GET  /v1/status       cluster status (runs, bin depth, processes) as JSON
 *   POST /v1/bin/<kind>   put an item in the bin (body: the JSON payload) → 201 { id }
 *   GET  /metrics         Prometheus text: bin depth/failed/oldest per kind, runs per entry and status
 * Every request needs `Authorization: Bearer <token>`, compared in constant
 * time; it binds to 127.0.0.1 unless told otherwise. It can trigger
 * deletions, so it gives a hostile client nothing to hold on to: bounded
 * header and request times, a connection cap, a body cap counted as bytes
 * arrive (announced or chunked), and malformed input (bad percent-encoding,
 * payloads PostgreSQL cannot store, nesting too deep) answered 400 with the
 * reason. See test/http.test.ts.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type pg from "pg";
import { binKinds, clusterStatus, enqueue, isPurgerError, PurgerError, type Logger, type PurgerConfig } from "@purger/core/host";

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
}

const ADMIN_LIMITS: Omit<AdminLimits, "maxConnections"> = {
  maxBodyBytes: 70_000,
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = req.headers.authorization ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!timingSafeEqual(digest(token), expected)) {
      sendAndClose(req, res, 401, { error: "missing or wrong bearer token" }, { "www-authenticate": 'Bearer realm="purger"' });
      return;
    }
    const announced = Number(req.headers["content-length"] ?? 0);
    if (announced > limits.maxBodyBytes) {
      sendAndClose(req, res, 413, { error: `the body is larger than ${limits.maxBodyBytes} bytes (Content-Length: ${announced})` });
      return;
    }
    const url = parseTarget(req.url ?? "/");
    if (url === null) {
      sendAndClose(req, res, 400, { error: `the request target is not a valid URL: ${JSON.stringify(req.url)}` });
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
    send(res, 404, { error: "not found", routes: ["GET /v1/status", "POST /v1/bin/<kind>", "GET /metrics"] });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? { host: address.address, port: address.port } : { host, port };
  log.info({ event: "http:listen", ...bound }, "admin endpoint listening");
  return {
    address: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
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
