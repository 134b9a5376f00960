/**
 * The admin endpoint (`http:` in purger.yaml), started by `purger run`:
 *   GET  /v1/status       cluster status (runs, bin depth, processes) as JSON
 *   POST /v1/bin/<kind>   put an item in the bin (body: the JSON payload) → 201 { id }
 *   GET  /metrics         Prometheus text: bin depth/failed/oldest per kind, runs per entry and status
 * Every request needs `Authorization: Bearer <token>`, compared in constant
 * time; it binds to 127.0.0.1 unless told otherwise.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type pg from "pg";
import { binKinds, clusterStatus, enqueue, isPurgerError, PurgerError, type Logger, type PurgerConfig } from "@purger/core";

const MAX_BODY_BYTES = 70_000;

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

export async function startAdminServer(options: { config: PurgerConfig; pool: pg.Pool; log: Logger }): Promise<AdminServer> {
  const { config, pool, log } = options;
  const http = config.http!;
  if (!http.token) {
    throw new PurgerError("CONFIG", "http.token is required when http: is set (every request must carry it)", {
      hint: "token: ${PURGER_ADMIN_TOKEN} — keep the secret in the environment",
    });
  }
  const expected = digest(http.token);
  const kinds = binKinds(config.entries);
  const { host, port } = parseListen(http.listen);

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.error({ error: (error as Error).message, url: req.url }, "admin endpoint error");
      if (!res.headersSent) send(res, 500, { error: "internal error" });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = req.headers.authorization ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!timingSafeEqual(digest(token), expected)) {
      send(res, 401, { error: "missing or wrong bearer token" }, { "www-authenticate": 'Bearer realm="purger"' });
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
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
      const kind = decodeURIComponent(bin[1]!);
      const body = await readBody(req);
      if (body === null) {
        send(res, 413, { error: `the body is larger than ${MAX_BODY_BYTES} bytes` });
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
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(tooLarge ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
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
