/** `purger schema`: the JSON Schema of the whole purger.yaml (with the plugins' options when a config is found). */
import { purgerJsonSchema, type AnyPlugin } from "@purger/core/host";
import type { Io } from "../context.js";

/**
 * The first-party plugins, imported when needed: every command imports this
 * module, and the blob plugin brings the AWS SDK, which would double the
 * start-up time of commands that never touch S3.
 */
export async function firstPartyPlugins(): Promise<AnyPlugin[]> {
  const [retention, blob, certs] = await Promise.all([
    import("@purger/plugin-retention"),
    import("@purger/plugin-blob"),
    import("@purger/plugin-certs"),
  ]);
  return [retention.default, blob.default, certs.default];
}

export async function schemaCommand(io: Io): Promise<number> {
  io.out(`${JSON.stringify(purgerJsonSchema(await firstPartyPlugins()), null, 2)}\n`);
  return 0;
}
