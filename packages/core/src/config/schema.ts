/**
 * The JSON Schema of purger.yaml: the structure and types of every key
 * (values such as cron strings and timezones are checked further by the
 * resolver). `purgerJsonSchema()` is the document `purger schema` publishes
 * for editors; the same schema, compiled once, validates every file.
 */
import { Ajv, type ValidateFunction } from "ajv";
import formatsModule from "ajv-formats";
import type { AnyPlugin } from "../plugin.js";
import { DURATION_EXPECTED, DURATION_PATTERN, DURATION_SOURCE } from "./durations.js";

/** An entry of `plugins:` as written (JavaScript configuration files may give the plugin object itself as `use`). */
export interface EntryInput {
  /** Unique; names the job, its runs and its bin kinds (`<id>.<handler>`). */
  id: string;
  /** An npm package name, a ./relative path, or (in code) the plugin itself. */
  use: string | AnyPlugin;
  /** @defaultValue true */
  enabled?: boolean;
  /** A 5-field cron expression or `every 30s`; omitted → bin-driven or manual only. */
  schedule?: string;
  /** IANA timezone of a cron schedule. @defaultValue the top-level `timezone` */
  timezone?: string;
  /** Run once when `purger run` starts, then on schedule. @defaultValue false */
  runOnStart?: boolean;
  /** Items older than this are processed: `1h`, `30d`, `P30D`. */
  retention?: string;
  /** A positive integer, `auto` or `auto 250ms`. @defaultValue 1000 */
  batchSize?: number | string;
  /** Length of one slice of a run. @defaultValue "10m" */
  timeout?: string;
  /** Spread of scheduled start times: `10%` or a fraction. @defaultValue 0 */
  jitter?: string | number;
  /** Run when that entry succeeds, instead of a schedule. */
  after?: string;
  guard?: GuardInput;
  /** Validated by the plugin's own JSON Schema. */
  options?: Record<string, unknown>;
}

export interface GuardInput {
  /** Stop when more than this many items qualify. */
  maxRows?: number;
  /** Stop when more than this fraction (`0.05` or `5%`) of the target qualifies. */
  maxFraction?: number | string;
}

/** Keys of `defaults:`, inherited by every entry that does not set them. */
export type DefaultsInput = Pick<EntryInput, "batchSize" | "timeout" | "jitter" | "retention" | "guard" | "runOnStart">;

/** purger.yaml as written. */
export interface PurgerConfigInput {
  /** Editors' schema association (ignored by purger). */
  $schema?: string;
  /** `url` absent → the embedded PostgreSQL. */
  database?: { url?: string };
  worker?: { concurrency?: number; shutdownTimeout?: string; schema?: string };
  runs?: { keep?: string };
  /** @defaultValue "UTC" */
  timezone?: string;
  defaults?: DefaultsInput;
  http?: {
    listen?: string | number;
    token?: string;
    /** Connections the admin endpoint keeps open at once. @defaultValue 32 */
    maxConnections?: number;
    /** `GET /healthz` and `GET /readyz` answer without the token (for Kubernetes probes). @defaultValue false */
    probesWithoutToken?: boolean;
  };
  plugins: EntryInput[];
}

/** The keys of an entry of `plugins:`. */
export const ENTRY_KEYS = [
  "id",
  "use",
  "enabled",
  "schedule",
  "timezone",
  "runOnStart",
  "retention",
  "batchSize",
  "timeout",
  "jitter",
  "after",
  "guard",
  "options",
] as const;

/** The keys `defaults:` accepts (each may be set per entry too). */
export const DEFAULTS_KEYS = ["batchSize", "timeout", "jitter", "retention", "guard", "runOnStart"] as const;

export const ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$";

/** What a value of each named definition looks like, for error messages (see `ajvProblems`). */
export const EXPECTED: Record<string, string> = {
  duration: DURATION_EXPECTED,
  batchSize: 'a positive integer, "auto" or "auto 250ms"',
  jitter: 'a percentage like "10%" or a fraction from 0 to 1',
  fraction: 'a fraction from 0 to 1 or a percentage like "5%"',
  id: 'an id of lowercase letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters',
  databaseUrl: "a PostgreSQL URL (postgres://user:password@host:5432/database)",
  pgSchema: "a lowercase PostgreSQL schema name (letters, digits and _, e.g. purger_worker)",
  listen: "host:port (e.g. 127.0.0.1:9464) or a port number",
  timezone: 'an IANA timezone name (e.g. "UTC", "Europe/Paris")',
  schedule: 'a 5-field cron expression ("17 * * * *") or "every 30s"',
};

const duration = (description: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  $ref: "#/$defs/duration",
  description,
  ...extra,
});

const DEFAULTABLE = {
  batchSize: {
    $ref: "#/$defs/batchSize",
    description:
      "Rows/items per batch: a positive integer, or `auto` / `auto 250ms` to adapt the size so one batch takes about that long (starting at 1000).",
    default: 1000,
  },
  timeout: duration(
    "Length of one slice of a run; a run continues in further slices until nothing qualifies. Less than 4h (graphile-worker's job lock).",
    { default: "10m" },
  ),
  jitter: { $ref: "#/$defs/jitter", description: "Spread of scheduled start times, as a share of the schedule's interval.", default: "0%" },
  retention: duration(
    "Items older than this are processed (cutoff = start of the run − retention). Required by plugins that use one, refused by the others.",
    { examples: ["1h", "7d", "30d", "P30D"] },
  ),
  guard: { $ref: "#/$defs/guard" },
  runOnStart: {
    type: "boolean",
    description: "Run the entry once when `purger run` starts (once cluster-wide), then on schedule.",
    default: false,
  },
} as const;

const SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  title: "purger.yaml",
  description: "Configuration of purger: what to delete, when, and how safely.",
  type: "object",
  additionalProperties: false,
  required: ["plugins"],
  // `x-…` keys hold YAML anchors to reuse (`x-tokens: &tokens { … }`), as in docker-compose files.
  patternProperties: { "^x-": { description: "Ignored by purger: a place for YAML anchors (&name) to reuse with *name or <<: *name." } },
  properties: {
    $schema: { type: "string", description: "The JSON Schema of this file (for editors; ignored by purger)." },
    database: {
      type: "object",
      additionalProperties: false,
      description: "Where purger works. Without `url`, purger starts an embedded PostgreSQL under .purger/.",
      properties: {
        url: { $ref: "#/$defs/databaseUrl", description: "Connection URL; use ${DATABASE_URL}: secrets never live in the file." },
      },
    },
    worker: {
      type: "object",
      additionalProperties: false,
      properties: {
        concurrency: { type: "integer", minimum: 1, default: 4, description: "Parallel tasks in this process." },
        shutdownTimeout: duration("Graceful drain on SIGTERM/SIGINT.", { default: "30s" }),
        schema: {
          $ref: "#/$defs/pgSchema",
          default: "purger_worker",
          description: "graphile-worker's own schema (never a host application's graphile_worker).",
        },
      },
    },
    runs: {
      type: "object",
      additionalProperties: false,
      properties: { keep: duration("purger prunes its own run records older than this.", { default: "30d" }) },
    },
    timezone: { $ref: "#/$defs/timezone", default: "UTC", description: "Timezone of cron schedules; an entry may override it." },
    defaults: { $ref: "#/$defs/defaults" },
    http: {
      type: "object",
      additionalProperties: false,
      description: "The admin endpoint (metrics, status, bin).",
      properties: {
        listen: { $ref: "#/$defs/listen", default: "127.0.0.1:9464" },
        token: {
          type: "string",
          minLength: 1,
          description: "Bearer token every request must carry; use ${PURGER_ADMIN_TOKEN}.",
        },
        maxConnections: {
          type: "integer",
          minimum: 1,
          default: 32,
          description: "Connections the endpoint keeps open at once; further ones are closed on arrival.",
        },
        probesWithoutToken: {
          type: "boolean",
          default: false,
          description:
            "GET /healthz and GET /readyz answer without the token (load balancer and Kubernetes probes); every other path still requires it.",
        },
      },
    },
    plugins: { type: "array", items: { $ref: "#/$defs/entry" }, description: "The cleanup entries." },
  },
  $defs: {
    duration: {
      type: "string",
      pattern: DURATION_PATTERN,
      patternErrorMessage: `Expected ${DURATION_EXPECTED}.`,
    },
    batchSize: {
      anyOf: [
        { type: "integer", minimum: 1 },
        { type: "string", pattern: `^auto(?:\\s+${DURATION_SOURCE})?$` },
      ],
    },
    jitter: {
      anyOf: [
        { type: "number", minimum: 0, maximum: 1 },
        { type: "string", pattern: "^\\d+(?:\\.\\d+)?\\s*%$" },
      ],
    },
    fraction: {
      anyOf: [
        { type: "number", minimum: 0, maximum: 1 },
        { type: "string", pattern: "^\\d+(?:\\.\\d+)?\\s*%$" },
      ],
    },
    id: { type: "string", pattern: ID_PATTERN, maxLength: 63, patternErrorMessage: `Expected ${EXPECTED["id"]}.` },
    databaseUrl: {
      type: "string",
      pattern: "^(?:postgres|postgresql|socket)://",
      patternErrorMessage: `Expected ${EXPECTED["databaseUrl"]}.`,
    },
    pgSchema: { type: "string", pattern: "^[a-z_][a-z0-9_$]*$", maxLength: 63 },
    listen: {
      anyOf: [
        { type: "integer", minimum: 1, maximum: 65535 },
        { type: "string", pattern: "^(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):\\d{1,5}$" },
      ],
    },
    timezone: { type: "string", minLength: 1, examples: ["UTC", "Europe/Paris", "America/New_York"] },
    schedule: {
      type: "string",
      minLength: 1,
      description:
        "A 5-field cron expression (numbers, *, */n, a-b, lists), fired once per tick cluster-wide, or `every <duration>` (1s and up). Omitted: the entry runs from the bin, `after:` or by hand.",
      examples: ["17 * * * *", "every 30s", "every 15m"],
    },
    guard: {
      type: "object",
      additionalProperties: false,
      description: "Safety stop: before its first change a run counts what qualifies; past a guard it changes nothing and ends `guarded`.",
      properties: {
        maxRows: { type: "integer", minimum: 0, description: "Stop when more than this many items qualify." },
        maxFraction: { $ref: "#/$defs/fraction", description: "Stop when more than this share of the target's items qualify." },
      },
    },
    defaults: {
      type: "object",
      additionalProperties: false,
      description: "Inherited by every entry that does not set the key itself (`guard` is merged key by key).",
      properties: DEFAULTABLE,
    },
    entry: {
      type: "object",
      additionalProperties: false,
      required: ["id", "use"],
      properties: {
        id: { $ref: "#/$defs/id", description: "Unique; names the job everywhere. Bin kinds are `<id>.<handler>`." },
        use: {
          type: "string",
          minLength: 1,
          description:
            "npm package name (resolved from this file's directory, the working directory, then purger's own dependencies) or ./relative/path.",
        },
        enabled: { type: "boolean", default: true },
        schedule: { $ref: "#/$defs/schedule" },
        timezone: { $ref: "#/$defs/timezone", description: "Timezone of this entry's cron schedule." },
        after: { $ref: "#/$defs/id", description: "Run when that entry succeeds, instead of a schedule." },
        ...DEFAULTABLE,
        options: { type: "object", description: "Validated by the plugin's own JSON Schema." },
      },
    },
  },
} as const;

/**
 * The JSON Schema of purger.yaml (a fresh copy). Given plugins — by their
 * `use` string, or a list keyed by each plugin's `name` (its package name) —
 * each entry's `options` is described by that plugin's own schema, so editors
 * complete and check them too.
 */
export function purgerJsonSchema(pluginsByUse?: Record<string, AnyPlugin> | AnyPlugin[]): Record<string, unknown> {
  const schema = structuredClone(SCHEMA) as unknown as { $defs: Record<string, Record<string, unknown>> } & Record<string, unknown>;
  const plugins = Array.isArray(pluginsByUse) ? Object.fromEntries(pluginsByUse.map((plugin) => [plugin.name, plugin])) : pluginsByUse;
  if (plugins === undefined || Object.keys(plugins).length === 0) return schema;
  const entry = schema.$defs["entry"] as { properties: Record<string, Record<string, unknown>>; allOf?: unknown[] };
  entry.properties["use"] = { ...entry.properties["use"], examples: Object.keys(plugins) };
  entry.allOf = Object.entries(plugins).map(([use, plugin], index) => {
    const name = `plugin-${index}`;
    const options = structuredClone(plugin.options) as unknown as Record<string, unknown>;
    // Its own $id keeps the plugin schema's internal "#/..." references pointing into itself.
    schema.$defs[name] = { $id: options["$id"] ?? `urn:purger:plugin:${encodeURIComponent(use)}`, ...options };
    return {
      if: { properties: { use: { const: use } }, required: ["use"] },
      then: { properties: { options: { $ref: `#/$defs/${name}`, description: `Options of ${plugin.name}.` } } },
    };
  });
  return schema;
}

let validateShape: ValidateFunction | undefined;

/** The compiled validator of the file's structure (compiled once). */
export function configShapeValidator(): ValidateFunction {
  validateShape ??= createAjv().compile(purgerJsonSchema());
  return validateShape;
}

// ajv-formats is CommonJS: under Node's ESM interop its function is the `default` of module.exports.
const addFormats = formatsModule.default;

/**
 * An ajv instance as purger uses them: strict mode (an unknown keyword or
 * format is an error when the schema compiles, not silently ignored), the
 * formats of ajv-formats, all errors, verbose (for "found …"), silent (core
 * never prints).
 */
export function createAjv(options: { useDefaults?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    verbose: true,
    strict: true,
    // `required` inside if/then or oneOf branches names properties declared beside them, which strictRequired refuses.
    strictRequired: false,
    // `type: ["string", "null"]` is plain JSON Schema.
    allowUnionTypes: true,
    useDefaults: options.useDefaults ?? false,
    logger: false,
  });
  addFormats(ajv);
  // Editors' annotation keywords (VS Code, yaml-language-server).
  for (const keyword of ["patternErrorMessage", "errorMessage", "markdownDescription", "deprecationMessage", "defaultSnippets"]) {
    ajv.addKeyword(keyword);
  }
  // Plugins' options may hold regular expressions; a bad one is a config error at load, naming its option.
  // (Replaces ajv-formats' own, which compiles without the `u` flag the plugins use.)
  ajv.addFormat("regex", (text: string) => {
    try {
      new RegExp(text, "u");
      return true;
    } catch {
      return false;
    }
  });
  return ajv;
}
