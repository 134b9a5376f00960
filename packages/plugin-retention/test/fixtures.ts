/**
 * Shared pieces of the retention tests: a fixed clock, one database per test
 * file, and helpers that read back which rows remain.
 */
import { afterAll, beforeAll } from "vitest";
import type pg from "pg";
import { createTestDatabase, runPlugin, type TestEntryOptions } from "@purger/core/testing";
import retention from "../src/index.js";

export const NOW = new Date("2026-03-01T12:00:00.000Z");
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** `NOW − ms` as an ISO string. */
export function ago(ms: number): string {
  return new Date(NOW.getTime() - ms).toISOString();
}

/** One database for the test file, dropped at its end. */
export function useDatabase(name: string): { pool: () => pg.Pool } {
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  beforeAll(async () => {
    db = await createTestDatabase(name);
  });
  afterAll(async () => {
    await db?.drop();
  });
  return {
    pool: () => {
      if (!db) throw new Error("database not created yet");
      return db.pool;
    },
  };
}

/** Run the retention plugin through the real engine, at NOW unless told otherwise. */
export function run(pool: pg.Pool, options: Record<string, unknown>, more: Partial<TestEntryOptions> = {}) {
  return runPlugin(retention, { pool, options, now: NOW, retention: "1d", ...more });
}

/** The values of the first column of a query, in order. */
export async function column<T = unknown>(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<T[]> {
  const result = await pool.query({ text: sql, values, rowMode: "array" });
  return result.rows.map((r: unknown[]) => r[0] as T);
}

/** Ids of a table, ascending, as numbers. */
export async function ids(pool: pg.Pool, table: string): Promise<number[]> {
  return (await column<string | number>(pool, `SELECT id FROM ${table} ORDER BY id`)).map(Number);
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
