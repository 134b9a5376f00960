/** `purger schema`: the JSON Schema of the whole purger.yaml (with the plugins' options when a config is found). */
import { purgerJsonSchema, type AnyPlugin } from "@purger/core";
import retention from "@purger/plugin-retention";
import blob from "@purger/plugin-blob";
import certs from "@purger/plugin-certs";
import type { Io } from "../context.js";

export const firstPartyPlugins: AnyPlugin[] = [retention, blob, certs];

export async function schemaCommand(io: Io): Promise<number> {
  io.out(`${JSON.stringify(purgerJsonSchema(firstPartyPlugins), null, 2)}\n`);
  return 0;
}
