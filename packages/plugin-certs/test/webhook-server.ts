/**
 * A real HTTP revocation endpoint on a random local port. Each request is
 * recorded; `answer` decides the reply per request number (1-based), and a
 * reply may be delayed past the client's timeout.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Reply {
  status: number;
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  headers?: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface WebhookServer {
  url: string;
  requests: RecordedRequest[];
  answer: (n: number, request: RecordedRequest) => Reply;
  close(): Promise<void>;
}

export async function startWebhookServer(answer: WebhookServer["answer"] = () => ({ status: 204 })): Promise<WebhookServer> {
  const state: WebhookServer = { url: "", requests: [], answer, close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const recorded: RecordedRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: text ? JSON.parse(text) : null,
      };
      if (req.method === "POST") state.requests.push(recorded);
      const reply = req.method === "POST" ? state.answer(state.requests.length, recorded) : { status: 405 };
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { "content-type": "text/plain", ...reply.headers });
        res.end(reply.body ?? "");
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/revocations`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
