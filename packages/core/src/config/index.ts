/**
 * Configuration: what the CLI and library users need to read purger.yaml,
 * describe it (`purger schema`) and show its values.
 */
export { loadConfig, resolveConfig, defineConfig, SEARCH_PLACES } from "./load.js";
export type { LoadConfigOptions } from "./load.js";
export { CONFIG_DEFAULTS } from "./resolve.js";
export { purgerJsonSchema, DEFAULTS_KEYS } from "./schema.js";
export type { PurgerConfigInput, EntryInput, DefaultsInput, GuardInput } from "./schema.js";
export { parseDuration, formatDuration, DURATION_PATTERN } from "./durations.js";
export { parseSchedule, validateTimezone, MIN_EVERY_MS } from "./schedule.js";
export { interpolateString } from "./interpolate.js";
export { loadPlugin, resolvePluginPath, pluginShapeProblems, optionsValidator } from "./resolve-plugin.js";
export type { ResolvePluginOptions } from "./resolve-plugin.js";
export { didYouMean, formatProblem } from "./errors.js";
export type { ConfigProblem } from "./errors.js";
