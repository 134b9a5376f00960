/**
 * Type tests for the public SDK: what a third-party author writes must
 * type-check, and a schema that disagrees with the options (or payload) type
 * must fail to compile. `pnpm typecheck` checks the `@ts-expect-error` lines
 * (an expected error that does not happen is itself an error); vitest runs the
 * runtime side.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  defineBinHandler,
  definePlugin,
  defineSchema,
  uncheckedSchema,
  type BatchContext,
  type BatchResult,
  type BinContext,
  type BinHandler,
  type EntryInfo,
  type PluginDefinition,
  type RunContext,
  type SchemaType,
  type TypedSchema,
} from "../src/index.js";

interface Options {
  table: string;
  limit: number;
  note?: string;
}

const schema = defineSchema({
  type: "object",
  properties: { table: { type: "string" }, limit: { type: "integer", default: 10 }, note: { type: "string" } },
  required: ["table"],
  additionalProperties: false,
});

describe("defineSchema", () => {
  it("derives the validated value's type from the schema (a default makes the key present)", () => {
    expectTypeOf<SchemaType<typeof schema>>().toEqualTypeOf<{ table: string; limit: number; note?: string }>();
    const declared: TypedSchema<Options> = schema;
    // At run time it is the schema itself: nothing added, nothing copied.
    expect(declared).toBe(schema);
    expect(Object.keys(schema)).toEqual(["type", "properties", "required", "additionalProperties"]);
  });

  it("a schema whose property type disagrees with the declared type does not compile", () => {
    const table = defineSchema({
      type: "object",
      properties: { table: { type: "integer" }, limit: { type: "integer", default: 10 }, note: { type: "string" } },
      required: ["table"],
      additionalProperties: false,
    });
    // @ts-expect-error the schema says `table` is an integer, Options says a string
    const typed: TypedSchema<Options> = table;
    expect(typed).toBe(table);
  });

  it("a schema that does not require a key the type requires does not compile", () => {
    const optional = defineSchema({
      type: "object",
      properties: { table: { type: "string" }, limit: { type: "integer", default: 10 }, note: { type: "string" } },
      additionalProperties: false,
    });
    // @ts-expect-error `table` may be absent by the schema, Options requires it
    const typed: TypedSchema<Options> = optional;
    expect(typed).toBe(optional);
  });

  it("a schema without a key the type declares does not compile (the option could never be set)", () => {
    const short = defineSchema({
      type: "object",
      properties: { table: { type: "string" }, limit: { type: "integer", default: 10 } },
      required: ["table"],
      additionalProperties: false,
    });
    // @ts-expect-error Options has a `note` the schema refuses
    const typed: TypedSchema<Options> = short;
    expect(typed).toBe(short);
  });

  it("a plain object is not a typed schema; uncheckedSchema is the visible way around", () => {
    const plain = { type: "object", properties: { table: { type: "integer" } }, additionalProperties: false } as const;
    // @ts-expect-error a schema must come from defineSchema (checked) or uncheckedSchema (not checked)
    const typed: TypedSchema<Options> = plain;
    const unchecked: TypedSchema<Options> = uncheckedSchema<Options>(plain);
    expect(typed).toBe(plain);
    expect(unchecked).toBe(plain);
  });
});

describe("definePlugin", () => {
  it("flows the options type derived from the schema, and the state type from prepare, into every hook", () => {
    const plugin = definePlugin({
      name: "typed",
      version: "1.0.0",
      options: schema,
      usesRetention: (options) => options.limit > 0,
      async prepare(ctx) {
        expectTypeOf(ctx.options).toEqualTypeOf<{ table: string; limit: number; note?: string }>();
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
      async release(state) {
        // Called only after a prepare that succeeded: the state is there.
        expectTypeOf(state).toEqualTypeOf<{ quoted: string }>();
      },
      describe: (options) => options.table,
    });
    expectTypeOf(plugin).toMatchTypeOf<PluginDefinition<Options, { quoted: string }>>();
    expect(plugin.describe?.({ table: "t", limit: 1 })).toBe("t");
  });

  it("with a declared options type, the schema is checked against it", () => {
    const plugin = definePlugin<Options>({
      name: "declared",
      version: "1.0.0",
      options: schema,
      usesRetention: false,
      async batch() {
        return { processed: 0, cursor: null };
      },
    });
    expect(plugin.options).toBe(schema);

    definePlugin<Options>({
      name: "disagrees",
      version: "1.0.0",
      // @ts-expect-error the schema says `limit` is a string, Options says a number
      options: defineSchema({
        type: "object",
        properties: { table: { type: "string" }, limit: { type: "string" }, note: { type: "string" } },
        required: ["table", "limit"],
        additionalProperties: false,
      }),
      usesRetention: false,
      async batch() {
        return { processed: 0, cursor: null };
      },
    });

    definePlugin<Options>({
      name: "plain",
      version: "1.0.0",
      // @ts-expect-error a plain object literal is not checked against Options, so it is refused
      options: { type: "object", additionalProperties: false },
      usesRetention: false,
      async batch() {
        return { processed: 0, cursor: null };
      },
    });
  });

  it("rejects wrong option and result types at compile time", () => {
    const plugin = definePlugin({
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
    // @ts-expect-error `describe` receives the options, whose `limit` is a number
    plugin.describe = (options: { limit: string }) => options.limit;
    expect(plugin.name).toBe("wrong");
  });

  it("keeps each bin handler's payload type, derived from its schema", () => {
    const plugin = definePlugin({
      name: "bins",
      version: "1.0.0",
      options: schema,
      usesRetention: false,
      bin: {
        file: {
          schema: defineSchema({
            type: "object",
            properties: { name: { type: "string", minLength: 1 }, force: { type: "boolean", default: false } },
            required: ["name"],
            additionalProperties: false,
          }),
          validate: (payload, options) => (payload.name === options.table ? "not the table itself" : null),
          async handle(ctx, payload) {
            expectTypeOf(payload).toEqualTypeOf<{ name: string; force: boolean }>();
            expectTypeOf(ctx.options.limit).toBeNumber();
            return { processed: payload.force ? 1 : 0 };
          },
        },
        tenant: {
          schema: defineSchema({
            type: "object",
            properties: { id: { type: "integer" } },
            required: ["id"],
            additionalProperties: false,
          }),
          async handle(_ctx, payload) {
            expectTypeOf(payload).toEqualTypeOf<{ id: number }>();
            return { processed: payload.id };
          },
        },
      },
    });
    expectTypeOf(plugin.bin!.file).toMatchTypeOf<BinHandler<Options, undefined, { name: string; force: boolean }>>();
    expectTypeOf(plugin.bin!.tenant.handle).parameter(1).toEqualTypeOf<{ id: number }>();
    expect(Object.keys(plugin.bin ?? {})).toEqual(["file", "tenant"]);
  });
});

describe("defineBinHandler", () => {
  const payload = defineSchema({
    type: "object",
    properties: { prefix: { type: "string", minLength: 1 }, exact: { type: "boolean" } },
    required: ["prefix"],
    additionalProperties: false,
  });

  it("infers the payload type from the schema", () => {
    const handler = defineBinHandler({
      schema: payload,
      async handle(_ctx, value) {
        expectTypeOf(value).toEqualTypeOf<{ prefix: string; exact?: boolean }>();
        return { processed: 1 };
      },
    });
    expectTypeOf(handler.handle).parameter(1).toEqualTypeOf<{ prefix: string; exact?: boolean }>();
    expect(handler.schema).toBe(payload);
  });

  it("a payload schema that disagrees with the declared payload type does not compile", () => {
    const handler = defineBinHandler<Options, undefined, { prefix: string; exact: string }>({
      // @ts-expect-error the schema says `exact` is an optional boolean
      schema: payload,
      async handle() {
        return { processed: 0 };
      },
    });
    expect(handler.schema).toBe(payload);
  });
});

describe("the contexts", () => {
  it("have one batch size: the current batch's (RunContext, BatchContext) or the entry's (BinContext), never the entry info's", () => {
    expectTypeOf<EntryInfo>().not.toHaveProperty("batchSize");
    expectTypeOf<RunContext<Options, undefined>["batchSize"]>().toBeNumber();
    expectTypeOf<BatchContext<Options, undefined>["batchSize"]>().toBeNumber();
    expectTypeOf<BinContext<Options, undefined>["batchSize"]>().toBeNumber();
  });
});
