/** What `prepare` builds once per run (and once per process for the bin): the client, the bucket's versioning, the uploads table. */
import type { S3Client } from "@aws-sdk/client-s3";
import type { UploadsDeps } from "./uploads.js";
import type { Versioning } from "./s3.js";

export interface BlobState {
  client: S3Client;
  versioning: Versioning;
  /** The uploads table and its statements, when `uploads` is set. */
  uploads: UploadsDeps | null;
}
