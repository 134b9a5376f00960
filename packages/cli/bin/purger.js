#!/usr/bin/env node
// The CLI runs its TypeScript through tsx's loader: no build step after `pnpm install`.
import { register } from "tsx/esm/api";

// The AWS SDK warns once per process that Node 20 support ends; purger runs on Node 20 on purpose, and the line would garble the TUI.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "1";
register();
await import("../src/bin.ts");
