/**
 * A real HTTP revocation endpoint on a random local port. Each request is
 * recorded; `answer` decides the reply per request number (1-based), and a
 * reply may be delayed past the client's timeout, or never come (`hang`: the
 * request stays open until the client gives up, `release()` or `close()`).
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Reply {
  status: number;
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  headers?: Record<string, string>;
  /** Never answer on its own: `release()` sends `status` later. */
  hang?: boolean;
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
  /** Resolves when a request is hanging (a `hang` reply), with its body. */
  hanging(): Promise<RecordedRequest>;
  /** Answer the hanging requests now (with their reply's status). */
  release(): void;
  close(): Promise<void>;
}

export async function startWebhookServer(answer: WebhookServer["answer"] = () => ({ status: 204 })): Promise<WebhookServer> {
  const held: Array<() => void> = [];
  let waiters: Array<(request: RecordedRequest) => void> = [];
  const state: WebhookServer = {
    url: "",
    requests: [],
    answer,
    hanging: () => new Promise((resolve) => waiters.push(resolve)),
    release: () => held.splice(0).forEach((send) => send()),
    close: async () => {},
  };
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
      if (reply.hang) {
        held.push(send);
        const woken = waiters;
        waiters = [];
        woken.forEach((wake) => wake(recorded));
      } else if (reply.delayMs) setTimeout(send, reply.delayMs);
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
