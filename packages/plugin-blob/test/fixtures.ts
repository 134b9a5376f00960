/**
 * A real S3-compatible server (s3rver) in-process for the blob tests, on a
 * free loopback port and a temporary directory, and small helpers to seed
 * and list it directly (never through the plugin).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { startS3Server, type S3Server } from "../src/testing.js";

// The plugin takes its credentials from the SDK's default chain, as in production.
process.env.AWS_ACCESS_KEY_ID = "S3RVER";
process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
process.env.AWS_REGION = "us-east-1";
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

export interface TestS3 extends S3Server {
  client: S3Client;
  dir: string;
  stop(): Promise<void>;
}

export async function startTestS3(buckets: string[] = []): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), "purger-s3-"));
  const server = await startS3Server({ dir, buckets });
  const client = s3Client(server.endpoint);
  return {
    ...server,
    client,
    dir,
    async stop() {
      client.destroy();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    maxAttempts: 3,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** `count` keys under `prefix`, spread over sub-prefixes (s3rver slows down on one big flat directory). */
export function spreadKeys(prefix: string, count: number, folders = 25): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}d${String(i % folders).padStart(2, "0")}/obj-${String(i).padStart(6, "0")}.bin`);
}

export async function putObjects(client: S3Client, bucket: string, keys: string[], concurrency = 16): Promise<void> {
  const limit = pLimit(concurrency);
  await Promise.all(keys.map((Key) => limit(() => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: "x" })))));
}

/**
 * Seed many objects fast by writing them into s3rver's store on disk (its
 * layout: `<dir>/<bucket>/<key>._S3rver_object` and the body's MD5 beside it)
 * instead of thousands of PUTs; the server then lists, heads and deletes them
 * like any other object. Content "x".
 */
export async function seedObjects(s3: TestS3, bucket: string, keys: string[]): Promise<void> {
  const dirs = new Set(keys.map((key) => dirname(join(s3.dir, bucket, key))));
  await Promise.all([...dirs].map((dir) => mkdir(dir, { recursive: true })));
  const limit = pLimit(64);
  await Promise.all(
    keys.map((key) =>
      limit(async () => {
        const path = join(s3.dir, bucket, `${key}._S3rver_object`);
        await writeFile(path, "x");
        await writeFile(`${path}.md5`, X_MD5);
      }),
    ),
  );
}

const X_MD5 = "9dd4e461268c8034f5c8564e155c67a6";

/** Every key of the bucket (under `prefix`), sorted. */
export async function listKeys(client: S3Client, bucket: string, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, StartAfter: startAfter }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    if (!page.IsTruncated || !page.Contents?.length) break;
    startAfter = page.Contents.at(-1)!.Key;
  }
  return keys.sort();
}

/** Entry options for a bucket of the test server (path style, as every non-AWS server needs). */
export function blobOptions(endpoint: string, bucket: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { bucket, endpoint, forcePathStyle: true, ...extra };
}
