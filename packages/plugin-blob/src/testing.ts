/**
 * `@purger/plugin-blob/testing`: what tests, benchmarks and `purger demo` use
 * and production does not — the in-process S3-compatible server. It needs
 * `s3rver`, an optional peer dependency: install it next to the tests
 * (`npm install -D s3rver`). The plugin itself (`@purger/plugin-blob`) never
 * loads it.
 */
export { startS3Server } from "./s3-server.js";
export type { S3Server, StartS3ServerOptions } from "./s3-server.js";
