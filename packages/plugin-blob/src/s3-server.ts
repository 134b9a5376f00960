/**
 * An in-process S3-compatible server (s3rver) for `purger demo`, tests and
 * benchmarks: data in `dir`, listening on loopback. Clients use path-style
 * addressing and the credentials `S3RVER` / `S3RVER`.
 *
 * s3rver 3.7 encrypts a DES continuation token into every truncated
 * ListObjectsV2 answer — also when the client paginates with StartAfter — and
 * Node ≥ 17 (OpenSSL 3) refuses DES without `--openssl-legacy-provider`, so
 * any listing of more than 1 000 keys fails with InternalError. Its listing
 * code is sound; only the token is not. We answer V2 listings through its V1
 * path (marker = start-after) and use the last key, base64url-encoded, as the
 * continuation token, so StartAfter and continuation tokens both work.
 *
 * After each delete it also removes emptied directories with a readdir-then-
 * rmdir that races when one DeleteObjects empties a directory (two deletes
 * see it empty, the second rmdir fails: the whole request answers 500), and
 * reads the whole directory on every delete (quadratic in its size). We
 * remove directories with a plain rmdir that stops at the first non-empty
 * one, which is what it meant.
 *
 * It also joins keys into file paths as they are, so `../other-bucket/x`
 * (or `%2e%2e%2f…`, decoded by its router) reads, writes and deletes in
 * another bucket or outside its directory. Every object path goes through
 * `getResourcePath`, and every bucket path through `getBucketPath`: both now
 * refuse (400 InvalidArgument) a name whose path would leave its directory,
 * and a key with a `.` or `..` segment, which the filesystem would silently
 * fold into a different key.
 */
import { mkdir, rmdir, unlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve, sep } from "node:path";
import S3rver from "s3rver";

export interface StartS3ServerOptions {
  /** Where the server keeps buckets and objects. */
  dir: string;
  /** @defaultValue 0: a free port */
  port?: number;
  /** Buckets to create at start (existing ones are kept). */
  buckets?: string[];
}

export interface S3Server {
  /** `http://127.0.0.1:<port>`: the `endpoint` option (with `forcePathStyle: true`). */
  endpoint: string;
  port: number;
  /** The access key id and secret the server accepts. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

export async function startS3Server(options: StartS3ServerOptions): Promise<S3Server> {
  patchS3rver();
  await mkdir(options.dir, { recursive: true });
  const server = new S3rver({
    address: "127.0.0.1",
    port: options.port ?? 0,
    silent: process.env.S3RVER_VERBOSE !== "1",
    directory: options.dir,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
  });
  const address = await server.run();
  let stopped: Promise<void> | null = null;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    stop() {
      stopped ??= (async () => {
        const closing = server.close();
        // Keep-alive sockets of SDK clients would hold close() open until they idle out.
        (server as unknown as { httpServer?: { closeAllConnections?(): void } }).httpServer?.closeAllConnections?.();
        await closing;
      })();
      return stopped;
    },
  };
}

type Query = Record<string, string | undefined>;
interface ListContext {
  query: Query;
  body: {
    ListBucketResult?: Record<string, unknown> & {
      Contents?: { Key: string; Owner?: unknown }[];
      CommonPrefixes?: { Prefix: string }[];
      IsTruncated?: boolean;
    };
  };
}

interface FilesystemStore {
  rootDirectory: string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getBucketPath(bucket: string): string;
  deleteObject(bucket: string, key: string): Promise<void>;
}

let patched = false;

/** Fix s3rver's listing and directory clean-up (see the file comment). Idempotent, process-wide, s3rver's modules only. */
function patchS3rver(): void {
  if (patched) return;
  patched = true;
  const require = createRequire(import.meta.url);
  const store = (require(require.resolve("s3rver/lib/stores/filesystem.js")) as { prototype: FilesystemStore }).prototype;
  const S3Error = require(require.resolve("s3rver/lib/models/error.js")) as new (code: string, message: string) => Error;
  const refuse = (what: string) => new S3Error("InvalidArgument", `${what} leaves its bucket: refused by the test server`);
  const bucketPath = store.getBucketPath;
  store.getBucketPath = function getBucketPath(this: FilesystemStore, bucket: string): string {
    const root = resolve(this.rootDirectory);
    const path = bucketPath.call(this, bucket);
    if (bucket === "" || bucket.includes("/") || bucket.includes("\\") || resolve(path) === root || !resolve(path).startsWith(root + sep)) {
      throw refuse(`bucket name ${JSON.stringify(bucket)}`);
    }
    return path;
  };
  const resourcePath = store.getResourcePath;
  store.getResourcePath = function getResourcePath(
    this: FilesystemStore,
    bucket: string,
    key: string | undefined,
    resource: string,
  ): string {
    const dir = resolve(this.getBucketPath(bucket));
    const path = resourcePath.call(this, bucket, key, resource);
    const segments = (key ?? "").split(/[/\\]/);
    if (segments.includes("..") || segments.includes(".") || !resolve(path).startsWith(dir + sep)) {
      throw refuse(`key ${JSON.stringify(key)}`);
    }
    return path;
  };
  store.deleteObject = async function deleteObject(this: FilesystemStore, bucket: string, key: string): Promise<void> {
    await Promise.all(
      ["object", "object.md5", "metadata.json"].map((resource) =>
        unlink(this.getResourcePath(bucket, key, resource)).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT") throw error;
        }),
      ),
    );
    const parts = key.split("/").slice(0, -1);
    while (parts.length > 0) {
      try {
        await rmdir(join(this.getBucketPath(bucket), ...parts));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") return;
        if (code !== "ENOENT") throw error;
      }
      parts.pop();
    }
  };
  // The controllers module s3rver's router calls through (`bucketCtrl.getBucket(ctx)`, looked up at each call).
  const controllers = require(require.resolve("s3rver/lib/controllers/bucket.js")) as { getBucket(ctx: ListContext): Promise<void> };
  const original = controllers.getBucket;
  controllers.getBucket = async function getBucket(ctx: ListContext): Promise<void> {
    const query = { ...ctx.query };
    if (query["list-type"] !== "2") return original(ctx);
    const token = query["continuation-token"];
    const startAfter = token ? Buffer.from(token, "base64url").toString("utf8") : query["start-after"];
    const v1: Query = { ...query };
    for (const name of ["list-type", "continuation-token", "start-after", "fetch-owner"]) delete v1[name];
    if (startAfter) v1["marker"] = startAfter;
    ctx.query = v1;
    try {
      await original(ctx);
    } finally {
      ctx.query = query;
    }
    const result = ctx.body.ListBucketResult;
    if (!result) return;
    const contents = (result.Contents ?? []).map((c) => ({ ...c, Owner: query["fetch-owner"] === "true" ? c.Owner : undefined }));
    // As a client paginating with StartAfter would: after the last key of this page.
    const last = contents.at(-1)?.Key ?? result.CommonPrefixes?.at(-1)?.Prefix;
    ctx.body = {
      ListBucketResult: {
        "@": result["@"],
        Name: result["Name"],
        Prefix: result["Prefix"],
        StartAfter: token ? undefined : query["start-after"],
        ContinuationToken: token,
        NextContinuationToken: result.IsTruncated && last !== undefined ? Buffer.from(last, "utf8").toString("base64url") : undefined,
        KeyCount: contents.length,
        MaxKeys: result["MaxKeys"],
        Delimiter: result["Delimiter"],
        IsTruncated: result.IsTruncated ?? false,
        Contents: contents,
        CommonPrefixes: result.CommonPrefixes,
      },
    };
  };
}
