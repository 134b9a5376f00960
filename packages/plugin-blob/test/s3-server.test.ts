/**
 * The bundled S3 test server itself: a key must never reach outside its
 * bucket's directory, whatever dots or encodings it holds. Raw HTTP requests
 * (node:http keeps the path as written; fetch and the SDK would normalise it).
 */
import { request } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeleteObjectsCommand } from "@aws-sdk/client-s3";
import { listKeys, putObjects, startTestS3, type TestS3 } from "./fixtures.js";

let s3: TestS3;

beforeAll(async () => {
  s3 = await startTestS3(["inside", "other-bucket"]);
});

afterAll(async () => {
  await s3?.stop();
});

function raw(method: string, path: string, body = ""): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${s3.endpoint}${path}`, { method, path, headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("s3 test server: keys stay inside their bucket", () => {
  it("answers 400 to PUT, GET and DELETE of ../other-bucket/x (plain and %2e%2e%2f-encoded) and leaves the other bucket's object as it was", async () => {
    await putObjects(s3.client, "other-bucket", ["x"]);
    const objectFile = join(s3.dir, "other-bucket", "x._S3rver_object");
    for (const path of ["/inside/../other-bucket/x", "/inside/%2e%2e%2fother-bucket%2fx", "/inside/a/%2E%2E/%2E%2E/other-bucket/x"]) {
      const put = await raw("PUT", path, "overwritten");
      expect(put.status, `PUT ${path}`).toBe(400);
      expect(put.body).toContain("<Code>InvalidArgument</Code>");
      expect((await raw("GET", path)).status, `GET ${path}`).toBe(400);
      expect((await raw("DELETE", path)).status, `DELETE ${path}`).toBe(400);
    }
    await s3.client
      .send(new DeleteObjectsCommand({ Bucket: "inside", Delete: { Objects: [{ Key: "../other-bucket/x" }] } }))
      .catch(() => undefined);
    expect(await listKeys(s3.client, "other-bucket")).toEqual(["x"]);
    expect(await readFile(objectFile, "utf8")).toBe("x");
  });

  it("still stores, lists and deletes ordinary keys, dots inside a name included", async () => {
    await putObjects(s3.client, "inside", ["a/b..c/d.txt", "a/.hidden", "...x"]);
    expect(await listKeys(s3.client, "inside")).toEqual(["...x", "a/.hidden", "a/b..c/d.txt"]);
    expect((await raw("DELETE", "/inside/a/b..c/d.txt")).status).toBe(204);
    expect(await listKeys(s3.client, "inside")).toEqual(["...x", "a/.hidden"]);
  });
});
