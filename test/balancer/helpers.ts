import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { type Balancer, type BalancerOptions, createBalancer } from '../../src/balancer/index.ts';

export const silent = pino({ level: 'silent' });

export interface Upstream {
  id: string;
  url: string;
  port: number;
  server: Server;
  /** Requests seen, in order. */
  seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[];
  /** TCP connections accepted. */
  connections: number;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** Default clone behaviour: /up 200, /status/N answers N, /slow?ms waits, anything else echoes as JSON. */
export const echo =
  (id: string): Handler =>
  (req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/up') return void res.end('ok');
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) {
      res.writeHead(Number(status[1]), { 'content-type': 'text/plain' });
      return void res.end(id);
    }
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': id });
      res.end(JSON.stringify({ id, method: req.method, url: req.url, headers: req.headers, body }));
    };
    if (url.pathname === '/slow') setTimeout(answer, Number(url.searchParams.get('ms') ?? 100));
    else answer();
  };

/** An in-process clone on 127.0.0.1:0. */
export async function startUpstream(
  id: string,
  handler: Handler = echo(id),
  bufferBody = true,
): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const up = { id, seen, connections: 0 } as Upstream;
  const server = createServer((req, res) => {
    if (!bufferBody) return handler(req, res, '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', () => up.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  up.server = server;
  up.port = (server.address() as AddressInfo).port;
  up.url = `http://127.0.0.1:${up.port}`;
  up.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return up;
}

export interface Running {
  lb: Balancer;
  port: number;
  url: string;
}

/** A balancer on 127.0.0.1:0 with health checks off unless asked for, and quiet logs. */
export async function startBalancer(options: BalancerOptions = {}): Promise<Running> {
  const lb = createBalancer({
    logger: silent,
    ...options,
    healthCheck: { enabled: false, ...options.healthCheck },
  });
  const { port } = await lb.listen(0, '127.0.0.1');
  return { lb, port, url: `http://127.0.0.1:${port}` };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

/** One HTTP request; resolves with status, headers and the whole body. */
export function fetchText(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string | string[]>;
    body?: string | Buffer;
    agent?: Agent | false;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? keepAlive },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes raw bytes on a fresh TCP connection and collects everything until the server closes (or 2 s). */
export async function rawRequest(
  port: number,
  bytes: string | Buffer,
  waitMs = 2000,
): Promise<{ text: string; closed: boolean }> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    }, waitMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
    socket.write(bytes);
  });
}

export interface CloneProcess {
  id: string;
  url: string;
  child: ChildProcess;
  kill(signal?: NodeJS.Signals): void;
}

/** A clone as a real process (fixtures/clone.mjs) on a free port. */
export function startCloneProcess(id: string): Promise<CloneProcess> {
  const script = fileURLToPath(new URL('./fixtures/clone.mjs', import.meta.url));
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: '0', CLONES_CLONE_ID: id },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (line: Buffer) => {
      const port = Number(/ready (\d+)/.exec(line.toString())?.[1]);
      resolve({
        id,
        url: `http://127.0.0.1:${port}`,
        child,
        kill(signal = 'SIGKILL') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      });
    });
  });
}

/** Counts answers by a key over `n` requests run `concurrency` at a time. */
export async function load(
  n: number,
  concurrency: number,
  one: (i: number) => Promise<string>,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const key = await one(i);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 10 ms until it is true or `ms` pass; returns the elapsed time. */
export async function waitFor(check: () => boolean, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - start;
}

/**
 * A WebSocket clone: accepts every upgrade with a correct 101 (RFC 6455 accept key), then hands the raw socket
 * to `onOpen`; the socket ends when the balancer's side ends, as a real server's would.
 */
export async function startWebSocketUpstream(id: string, onOpen: (socket: Duplex) => void = () => {}) {
  const ws = await startUpstream(id);
  ws.server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1')
      .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
    onOpen(socket);
  });
  return ws;
}

/** A client's WebSocket upgrade request for `path`, with the RFC 6455 sample key. */
export const webSocketUpgrade = (path = '/') =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/**
 * Two in-process clones 'a' and 'b' behind a balancer with `options`, all closed when the calling suite ends.
 */
export async function startPair(
  options: BalancerOptions = {},
): Promise<Running & { a: Upstream; b: Upstream }> {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const running = await startBalancer({
    ...options,
    targets: [
      { id: 'a', url: a.url },
      { id: 'b', url: b.url },
    ],
  });
  after(async () => {
    await running.lb.close();
    await a.close();
    await b.close();
  });
  return { ...running, a, b };
}
