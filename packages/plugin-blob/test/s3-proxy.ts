/**
 * An HTTP proxy in front of s3rver for what a real server cannot be made to
 * do on demand. Test names say when they use it.
 *
 * - Versioning (s3rver has none): GetBucketVersioning answers Enabled; PUTs
 *   through the proxy record versions, plain DELETEs record delete markers;
 *   ListObjectVersions is built from those records plus the real listing
 *   (an object without records is one version, id "null"); DeleteObjects and
 *   DeleteObject with a VersionId remove that version. As on S3, a
 *   `version-id-marker` that names no existing version is an error.
 * - Faults (R3): a share of requests is answered 500 / 503 / SlowDown (before
 *   or after reaching s3rver) or has its connection reset; DeleteObjects
 *   answers report per-key errors for a share of keys (or the keys `keyError`
 *   picks), which then really stay; keys `swallow` picks are reported
 *   deleted and stay.
 *
 * Every key the client asked to delete is recorded, to prove nothing outside
 * a prefix was touched.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DeleteObjectCommand, DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { s3Client } from "./fixtures.js";

export interface FaultOptions {
  /** Share of requests answered with an error (0..1). */
  rate: number;
  /** Share of keys of each DeleteObjects reported as failed (and not deleted). */
  keyErrorRate?: number;
  /** Seed of the deterministic random source. */
  seed?: number;
}

export interface S3ProxyOptions {
  upstream: string;
  versioning?: boolean;
  faults?: FaultOptions;
  /** Object requests (HEAD, GET, DELETE) on these keys are refused with 403 AccessDenied, a permanent error. */
  deny?: (key: string) => boolean;
  /** DeleteObjects reports an InternalError for these keys (versions), which then really stay. */
  keyError?: (key: string, versionId: string | undefined) => boolean;
  /** DeleteObjects reports these keys deleted but leaves them in place (a server that lies, or loses the delete). */
  swallow?: (key: string) => boolean;
  /** Answer GetBucketVersioning with this error (a server that does not implement it, or a refusal). */
  versioningError?: { status: number; code: string };
}

export interface VersionRecord {
  versionId: string;
  marker: boolean;
}

export interface S3Proxy {
  endpoint: string;
  /** Versions and delete markers per bucket and key, oldest first (versioning mode). */
  versions: Map<string, Map<string, VersionRecord[]>>;
  stats: { requests: number; faults: number; keyErrors: number; listVersionRequests: string[]; listRequests: URLSearchParams[] };
  /** Every key a client asked to delete, per bucket. */
  deleteRequested: Map<string, Set<string>>;
  /** Change (or end, with undefined) the faults from now on. */
  setFaults(faults: FaultOptions | undefined): void;
  stop(): Promise<void>;
}

export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const upstream = new URL(options.upstream);
  const direct = s3Client(options.upstream);
  const random = seeded(options.faults?.seed ?? 42);
  let currentFaults = options.faults;
  const versions = new Map<string, Map<string, VersionRecord[]>>();
  const deleteRequested = new Map<string, Set<string>>();
  const stats: S3Proxy["stats"] = { requests: 0, faults: 0, keyErrors: 0, listVersionRequests: [], listRequests: [] };
  let nextVersion = 1;
  const syncing = new Map<string, Promise<void>>();
  const upstreamLimit = pLimit(16);

  const recordDelete = (bucket: string, key: string) => {
    let keys = deleteRequested.get(bucket);
    if (!keys) deleteRequested.set(bucket, (keys = new Set()));
    keys.add(key);
  };
  const records = (bucket: string) => {
    let map = versions.get(bucket);
    if (!map) versions.set(bucket, (map = new Map()));
    return map;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    stats.requests += 1;
    const url = new URL(req.url ?? "/", "http://proxy");
    const [, bucket = "", ...rest] = url.pathname.split("/");
    const key = rest.length && rest.join("/") !== "" ? decodeURIComponent(rest.join("/")) : null;
    const query = url.searchParams;
    const body = await readBody(req);

    const faults = currentFaults;
    if (faults && random() < faults.rate) {
      stats.faults += 1;
      const kind = Math.floor(random() * 4);
      if (kind === 3) {
        req.socket.destroy();
        return;
      }
      if (kind === 2) await forward(req, body).catch(() => undefined); // the work happened, the answer is lost
      const [status, code] = kind === 0 ? [500, "InternalError"] : random() < 0.5 ? [503, "SlowDown"] : [503, "ServiceUnavailable"];
      return sendXml(res, status, `<Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`);
    }

    if (key !== null && options.deny?.(key)) {
      stats.faults += 1;
      return sendXml(res, 403, `<Error><Code>AccessDenied</Code><Message>Access Denied (injected by the test proxy)</Message></Error>`);
    }

    if (options.versioningError && req.method === "GET" && key === null && query.has("versioning")) {
      const { status, code } = options.versioningError;
      return sendXml(res, status, `<Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`);
    }

    if (req.method === "POST" && key === null && query.has("delete")) {
      const objects = parseDeleteBody(body);
      for (const o of objects) recordDelete(bucket, o.key);
      const failing = new Set<number>();
      const rate = currentFaults?.keyErrorRate ?? 0;
      objects.forEach((o, i) => {
        if ((rate > 0 && random() < rate) || options.keyError?.(o.key, o.versionId)) failing.add(i);
      });
      stats.keyErrors += failing.size;
      const swallowed = new Set(objects.filter((o, i) => !failing.has(i) && options.swallow?.(o.key)).map((o) => o.key));
      if (!options.versioning && failing.size === 0 && swallowed.size === 0) return pipe(req, body, res);
      const reported = objects.filter((_, i) => !failing.has(i));
      const ok = reported.filter((o) => !swallowed.has(o.key));
      if (options.versioning) await Promise.all(ok.map((o) => deleteVersioned(bucket, o.key, o.versionId).sync));
      else if (ok.length > 0)
        await direct.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: ok.map((o) => ({ Key: o.key })), Quiet: true } }));
      const xml =
        reported
          .map((o) => `<Deleted><Key>${esc(o.key)}</Key>${o.versionId ? `<VersionId>${esc(o.versionId)}</VersionId>` : ""}</Deleted>`)
          .join("") +
        [...failing]
          .map(
            (i) => `<Error><Key>${esc(objects[i]!.key)}</Key><Code>InternalError</Code><Message>injected per-key error</Message></Error>`,
          )
          .join("");
      return sendXml(res, 200, `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xml}</DeleteResult>`);
    }
    if (req.method === "DELETE" && key !== null) recordDelete(bucket, key);
    if (req.method === "GET" && key === null && query.get("list-type") === "2") stats.listRequests.push(query);

    if (!options.versioning) return pipe(req, body, res);

    if (req.method === "GET" && key === null && query.has("versioning")) {
      return sendXml(
        res,
        200,
        `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>`,
      );
    }
    if (req.method === "GET" && key === null && query.has("versions")) {
      stats.listVersionRequests.push(url.search);
      return listVersions(bucket, query, res);
    }
    if (req.method === "PUT" && key !== null && !req.headers["x-amz-copy-source"]) {
      const before = await currentRecords(bucket, key);
      const status = await pipe(req, body, res);
      if (status === 200) records(bucket).set(key, [...before, { versionId: `v${nextVersion++}`, marker: false }]);
      return;
    }
    if (req.method === "DELETE" && key !== null) {
      const result = deleteVersioned(bucket, key, query.get("versionId") ?? undefined);
      await result.sync;
      res.writeHead(204, result.marker ? { "x-amz-delete-marker": "true", "x-amz-version-id": result.versionId ?? "" } : {});
      res.end();
      return;
    }
    return pipe(req, body, res);
  };

  /** Records of a key, adopting a real object without records as version "null". */
  async function currentRecords(bucket: string, key: string): Promise<VersionRecord[]> {
    const known = records(bucket).get(key);
    if (known) return known;
    const real = await upstreamLimit(() => direct.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 })));
    return real.Contents?.[0]?.Key === key ? [{ versionId: "null", marker: false }] : [];
  }

  function deleteVersioned(bucket: string, key: string, versionId: string | undefined) {
    const map = records(bucket);
    const sync = (async () => {
      const list = await currentRecords(bucket, key);
      const shown = (l: VersionRecord[]) => l.length > 0 && !l.at(-1)!.marker;
      const before = shown(list);
      if (versionId === undefined) {
        list.push({ versionId: `m${nextVersion++}`, marker: true });
      } else {
        const index = list.findIndex((r) => r.versionId === versionId);
        if (index !== -1) list.splice(index, 1);
      }
      if (list.length === 0) map.delete(key);
      else map.set(key, list);
      if (shown(list) !== before) await syncObject(bucket, key);
    })();
    return { key, versionId, marker: versionId === undefined, sync };
  }

  /** Make the real object match the records (present when the latest entry is a version), one change per key at a time. */
  function syncObject(bucket: string, key: string): Promise<void> {
    const id = `${bucket}/${key}`;
    const next = (syncing.get(id) ?? Promise.resolve()).then(() =>
      upstreamLimit(async () => {
        const latest = records(bucket).get(key)?.at(-1);
        if (!latest || latest.marker) await direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        else await direct.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "x" }));
      }),
    );
    syncing.set(
      id,
      next.catch(() => undefined),
    );
    return next;
  }

  async function listVersions(bucket: string, query: URLSearchParams, res: ServerResponse) {
    const prefix = query.get("prefix") ?? "";
    const keyMarker = query.get("key-marker");
    const versionIdMarker = query.get("version-id-marker");
    const maxKeys = Math.min(1000, Number(query.get("max-keys") ?? 1000));
    const real = await listAll(direct, bucket, prefix);
    const map = records(bucket);
    const keys = new Set([...real, ...[...map.keys()].filter((k) => k.startsWith(prefix))]);
    const entries: { key: string; record: VersionRecord; latest: boolean }[] = [];
    for (const k of [...keys].sort(compareUtf8)) {
      const list = map.get(k) ?? [{ versionId: "null", marker: false }];
      // Newest first, as S3 lists them.
      list.toReversed().forEach((record, i) => entries.push({ key: k, record, latest: i === 0 }));
    }
    let start = 0;
    if (keyMarker !== null) {
      if (versionIdMarker !== null) {
        const at = entries.findIndex((e) => e.key === keyMarker && e.record.versionId === versionIdMarker);
        if (at === -1) {
          return sendXml(
            res,
            400,
            `<Error><Code>InvalidArgument</Code><Message>Invalid version id specified</Message><ArgumentName>version-id-marker</ArgumentName></Error>`,
          );
        }
        start = at + 1;
      } else {
        start = entries.findIndex((e) => compareUtf8(e.key, keyMarker) > 0);
        if (start === -1) start = entries.length;
      }
    }
    const page = entries.slice(start, start + maxKeys);
    const truncated = start + maxKeys < entries.length;
    const last = page.at(-1);
    const items = page
      .map((e) =>
        e.record.marker
          ? `<DeleteMarker><Key>${esc(e.key)}</Key><VersionId>${e.record.versionId}</VersionId><IsLatest>${e.latest}</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified></DeleteMarker>`
          : `<Version><Key>${esc(e.key)}</Key><VersionId>${e.record.versionId}</VersionId><IsLatest>${e.latest}</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Version>`,
      )
      .join("");
    sendXml(
      res,
      200,
      `<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${esc(bucket)}</Name><Prefix>${esc(prefix)}</Prefix>` +
        `<KeyMarker>${esc(keyMarker ?? "")}</KeyMarker><VersionIdMarker>${esc(versionIdMarker ?? "")}</VersionIdMarker><MaxKeys>${maxKeys}</MaxKeys>` +
        `<IsTruncated>${truncated}</IsTruncated>` +
        (truncated && last
          ? `<NextKeyMarker>${esc(last.key)}</NextKeyMarker><NextVersionIdMarker>${last.record.versionId}</NextVersionIdMarker>`
          : "") +
        `${items}</ListVersionsResult>`,
    );
  }

  function forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          readBody(answer).then((data) => resolve({ status: answer.statusCode ?? 500, headers: answer.headers, body: data }), reject);
        },
      );
      out.on("error", reject);
      out.end(body);
    });
  }

  async function pipe(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<number> {
    const answer = await forward(req, body);
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
    return answer.status;
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendXml(res, 500, `<Error><Code>InternalError</Code><Message>${esc(String(error))}</Message></Error>`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    versions,
    stats,
    deleteRequested,
    setFaults(faults) {
      currentFaults = faults;
    },
    async stop() {
      direct.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function sendXml(res: ServerResponse, status: number, xml: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** The `<Object>`s of a DeleteObjects body. */
export function parseDeleteBody(body: Buffer): { key: string; versionId?: string }[] {
  const text = body.toString("utf8");
  return [...text.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map(([, inner]) => {
    const key = unesc(/<Key>([\s\S]*?)<\/Key>/.exec(inner!)?.[1] ?? "");
    const versionId = /<VersionId>([\s\S]*?)<\/VersionId>/.exec(inner!)?.[1];
    return versionId === undefined ? { key } : { key, versionId: unesc(versionId) };
  });
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

function unesc(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    if (e[0] === "#") return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" } as Record<string, string>)[e.toLowerCase()]!;
  });
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function listAll(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, StartAfter: startAfter }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    if (!page.IsTruncated || !page.Contents?.length) return keys;
    startAfter = page.Contents.at(-1)!.Key;
  }
}

/** mulberry32: a small deterministic random source, so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
