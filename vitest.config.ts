import { configDefaults, defineConfig } from "vitest/config";

/**
 * `pnpm test` runs every test except the slow scenario tests (`*.slow.test.ts`);
 * `pnpm test:slow` sets PURGER_SLOW_TESTS=1 and runs only those.
 */
const slow = process.env.PURGER_SLOW_TESTS === "1";

export default defineConfig({
  test: {
    include: slow
      ? ["packages/*/test/**/*.slow.test.{ts,tsx}", "examples/*/test/**/*.slow.test.ts"]
      : ["packages/*/test/**/*.test.{ts,tsx}", "examples/*/test/**/*.test.ts"],
    exclude: slow ? configDefaults.exclude : [...configDefaults.exclude, "**/*.slow.test.{ts,tsx}"],
    globalSetup: ["./test/global-setup.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
