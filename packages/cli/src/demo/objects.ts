/**
 * The demo's bucket: every team's objects under `teams/<id>/`, and the
 * objects of presigned uploads under `uploads/`.
 *
 * Thousands of PUTs through the SDK take half a minute on a busy two-core
 * machine, so when the in-process server keeps its objects in the directory
 * we gave it (s3rver's file store: `<dir>/<bucket>/<key>._S3rver_object`; it
 * computes what else it needs on first read), the objects are written there
 * directly; otherwise they are PUT.
 */
import { stat, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DELETED_TEAM, type DemoSizes } from "./schema.js";

export const DEMO_BUCKET = "fleet";

export function demoS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** Keys of one team: robot logs and maps, spread over folders as real prefixes are. */
export function teamKeys(team: number, count: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `teams/${team}/robots/${String(i % 50).padStart(3, "0")}/logs/${String(i).padStart(6, "0")}.json`,
  );
}

/** Keys of the upload rows whose object arrived (stale pending ones included: the sweep deletes row and object). */
export function uploadKeys(sizes: DemoSizes): string[] {
  const keys: string[] = [];
  for (let g = 1; g <= sizes.uploads; g++) {
    // Two in three pending uploads got their object before the client gave up; completed ones all did.
    if (g % 5 === 4 || g % 3 !== 0) keys.push(`uploads/${1 + (g % sizes.teams)}/${g}.tar.gz`);
  }
  return keys;
}

/** Fill the bucket (the server creates it at start; `storeDir` is the directory the server was given). */
export async function seedBucket(
  client: S3Client,
  sizes: DemoSizes,
  storeDir: string,
  onProgress: (done: number, total: number) => void,
): Promise<number> {
  const keys: string[] = [];
  for (let team = 1; team <= sizes.teams; team++)
    keys.push(...teamKeys(team, team === DELETED_TEAM ? sizes.teamObjects : sizes.otherTeamObjects));
  keys.push(...uploadKeys(sizes));
  const bucketDir = join(storeDir, DEMO_BUCKET);
  const direct = await stat(bucketDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (direct) {
    const dirs = new Set(keys.map((key) => dirname(join(bucketDir, key))));
    await Promise.all([...dirs].map((dir) => mkdir(dir, { recursive: true })));
  }
  let done = 0;
  await inParallel(keys, 32, async (Key) => {
    const body = `{"key":${JSON.stringify(Key)}}`;
    if (direct) await writeFile(join(bucketDir, `${Key}._S3rver_object`), body);
    else await client.send(new PutObjectCommand({ Bucket: DEMO_BUCKET, Key, Body: body }));
    done += 1;
    if (done % 250 === 0 || done === keys.length) onProgress(done, keys.length);
  });
  return keys.length;
}

async function inParallel<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
