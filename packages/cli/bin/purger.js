#!/usr/bin/env node
// The AWS SDK warns once per process that Node 20 support ends; purger runs on Node 20 on purpose, and the line would garble the TUI.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "1";

// An installed package runs its built JavaScript. A source checkout (the monorepo: src/ is not published) runs the
// TypeScript sources through tsx's loader, so development needs no build step.
import { existsSync } from "node:fs";

const sources = new URL("../src/bin.ts", import.meta.url);
if (existsSync(sources)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(sources.href);
} else {
  await import("../dist/bin.js");
}
