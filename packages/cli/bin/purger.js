#!/usr/bin/env node
// The CLI runs its TypeScript through tsx's loader: no build step after `pnpm install`.
import { register } from "tsx/esm/api";

register();
await import("../src/bin.ts");
