/**
 * Type tests for the public SDK: what a third-party author writes must
 * type-check, and a wrong option type must fail to compile (`pnpm typecheck`
 * checks the `@ts-expect-error` lines; vitest checks the runtime side).
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import { definePlugin, type BatchContext, type BatchResult, type JSONSchemaType, type PluginDefinition } from "../src/host.js";

interface Options {
  table: string;
  limit: number;
}

const schema: JSONSchemaType<Options> = {
  type: "object",
  properties: { table: { type: "string" }, limit: { type: "integer", default: 10 } },
  required: ["table", "limit"],
  additionalProperties: false,
};

describe("definePlugin", () => {
  it("flows the options and state types into every hook", () => {
    const plugin = definePlugin<Options, { quoted: string }>({
      name: "typed",
      version: "1.0.0",
      options: schema,
      usesRetention: (options) => options.limit > 0,
      async prepare(ctx) {
        expectTypeOf(ctx.options).toEqualTypeOf<Options>();
        return { quoted: `"${ctx.options.table}"` };
      },
      async batch(ctx) {
        expectTypeOf(ctx).toMatchTypeOf<BatchContext<Options, { quoted: string }>>();
        expectTypeOf(ctx.state.quoted).toBeString();
        expectTypeOf(ctx.cutoff).toEqualTypeOf<Date>();
        expectTypeOf(ctx.dryRun).toBeBoolean();
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        return { processed: 0, cursor: null };
      },
      describe: (options) => options.table,
    });
    expectTypeOf(plugin).toEqualTypeOf<PluginDefinition<Options, { quoted: string }>>();
    expect(plugin.describe?.({ table: "t", limit: 1 })).toBe("t");
  });

  it("rejects wrong option and result types at compile time", () => {
    const plugin = definePlugin<Options>({
      name: "wrong",
      version: "1.0.0",
      options: schema,
      usesRetention: false,
      async batch(ctx): Promise<BatchResult> {
        // @ts-expect-error `table` is a string, not a number
        const n: number = ctx.options.table;
        // @ts-expect-error options have no `column`
        void ctx.options.column;
        void n;
        // @ts-expect-error `processed` must be a number
        return { processed: "3", cursor: null };
      },
    });
    // @ts-expect-error `describe` receives Options, whose `limit` is a number
    plugin.describe = (options: { limit: string }) => options.limit;
    expect(plugin.name).toBe("wrong");
  });

  it("a schema that does not match the options type does not compile", () => {
    const bad = {
      type: "object",
      properties: { table: { type: "integer" }, limit: { type: "integer" } },
      required: ["table", "limit"],
      additionalProperties: false,
    } as const;
    // @ts-expect-error the schema says `table` is an integer, the type says string
    const typed: JSONSchemaType<Options> = bad;
    expect(typed).toBeDefined();
  });
});
