/**
 * The small pure parts: which S3 errors are retried, the backoff, messages,
 * payload rules, key order and table names. No server needed.
 */
import { describe, expect, it } from "vitest";
import { parseQualifiedName as parseTableName } from "@purger/core";
import { compareKeys } from "../src/delete.js";
import { prefixProblem } from "../src/options.js";
import { backoffMs, describeError, isRetryable, withRetry } from "../src/s3.js";

const s3Error = (status: number | undefined, fields: Record<string, unknown> = {}) =>
  Object.assign(new Error(String(fields["message"] ?? "UnknownError")), { $metadata: { httpStatusCode: status }, ...fields });

describe("isRetryable", () => {
  it("retries 5xx, 429, 408, SlowDown and dropped connections; not 4xx, 501 or an abort", () => {
    expect(isRetryable(s3Error(500, { name: "InternalError", Code: "InternalError" }))).toBe(true);
    expect(isRetryable(s3Error(503, { name: "SlowDown", Code: "SlowDown" }))).toBe(true);
    expect(isRetryable(s3Error(429))).toBe(true);
    expect(isRetryable(s3Error(408))).toBe(true);
    expect(isRetryable(s3Error(200, { Code: "SlowDown" }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(s3Error(403, { name: "AccessDenied", Code: "AccessDenied" }))).toBe(false);
    expect(isRetryable(s3Error(404, { name: "NoSuchBucket" }))).toBe(false);
    expect(isRetryable(s3Error(501, { name: "NotImplemented", Code: "NotImplemented" }))).toBe(false);
    expect(isRetryable(Object.assign(new Error("aborted"), { name: "AbortError" }))).toBe(false);
    expect(isRetryable("nope")).toBe(false);
  });
});

describe("backoffMs", () => {
  it("is full jitter under min(cap, base·2^(attempt−1))", () => {
    const policy = { attempts: 8, baseMs: 100, capMs: 5_000 };
    expect([1, 2, 3, 7, 8].map((a) => backoffMs(policy, a, () => 0.999_999))).toEqual([100, 200, 400, 5_000, 5_000]);
    expect(backoffMs(policy, 4, () => 0)).toBe(0);
  });
});

describe("withRetry", () => {
  const policy = { attempts: 3, baseMs: 1, capMs: 2 };
  it("retries transient failures, then gives up with the last error", async () => {
    let calls = 0;
    await expect(
      withRetry({ what: "test", policy }, async () => {
        calls += 1;
        throw s3Error(503, { name: "SlowDown", Code: "SlowDown", message: `busy ${calls}` });
      }),
    ).rejects.toThrow("busy 3");
    expect(calls).toBe(3);
  });
  it("does not retry a permanent error, and stops when the signal aborts", async () => {
    let calls = 0;
    await expect(
      withRetry({ what: "test", policy }, async () => {
        calls += 1;
        throw s3Error(403, { name: "AccessDenied" });
      }),
    ).rejects.toMatchObject({ name: "AccessDenied" });
    expect(calls).toBe(1);
    const controller = new AbortController();
    controller.abort(new Error("slice over"));
    await expect(withRetry({ what: "test", policy, signal: controller.signal }, async () => 1)).rejects.toThrow("slice over");
  });
});

describe("describeError", () => {
  it("names the S3 code and status, or the HTTP status of a body-less answer (HEAD)", () => {
    expect(describeError(s3Error(503, { name: "SlowDown", Code: "SlowDown", message: "Please reduce your request rate." }))).toBe(
      "SlowDown (503): Please reduce your request rate.",
    );
    expect(describeError(s3Error(403, { name: "Unknown" }))).toBe("Forbidden (403)");
    expect(describeError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }))).toBe(
      "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9",
    );
  });
});

describe("prefixProblem", () => {
  it("refuses an empty prefix and one without a trailing slash, unless exact", () => {
    expect(prefixProblem({ prefix: "" })).toBe("prefix must not be empty (an empty prefix is the whole bucket)");
    expect(prefixProblem({ prefix: "teams/42" })).toContain('it would also delete siblings such as "teams/420/…"');
    expect(prefixProblem({ prefix: "teams/42", exact: true })).toBeNull();
    expect(prefixProblem({ prefix: "teams/42/" })).toBeNull();
  });
});

describe("compareKeys", () => {
  it("orders keys by their UTF-8 bytes, as S3 lists them", () => {
    const keys = ["b", "a/", "\u{1F680}", "\uFF21", "a", "A"];
    expect([...keys].sort(compareKeys)).toEqual(["A", "a", "a/", "b", "\uFF21", "\u{1F680}"]);
    // JavaScript's own order puts the astral character (a surrogate pair) first.
    expect([...keys].sort()).toEqual(["A", "a", "a/", "b", "\u{1F680}", "\uFF21"]);
  });
});

describe("parseTableName", () => {
  it("splits schema.name, with double quotes for names holding dots or quotes", () => {
    expect(parseTableName("uploads")).toEqual({ schema: null, name: "uploads" });
    expect(parseTableName("app.uploads")).toEqual({ schema: "app", name: "uploads" });
    expect(parseTableName('"my.schema"."Up""loads"')).toEqual({ schema: "my.schema", name: 'Up"loads' });
    expect(parseTableName("a.b.c")).toBeNull();
    expect(parseTableName('"open')).toBeNull();
    expect(parseTableName("")).toBeNull();
  });
});

describe("entry points", () => {
  it("the plugin's entry exports the plugin and its options schema, not the S3 test server (that is @purger/plugin-blob/testing)", async () => {
    const main = await import("../src/index.js");
    expect(Object.keys(main).sort()).toEqual(["default", "optionsSchema"]);
    const testing = await import("@purger/plugin-blob/testing");
    expect(Object.keys(testing)).toEqual(["startS3Server"]);
  });
});
