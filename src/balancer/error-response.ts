import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ClonesError } from '../errors.ts';

/**
 * Answers with the JSON error body; `close` also ends the connection (framing errors).
 *
 * @example
 *   sendError(res, badRequest('missing Host'), true);
 */
export function sendError(res: ServerResponse, err: ClonesError, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON());
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (close) headers.connection = 'close';
  // Every 503 here is passing (no clone yet, a full queue): tell clients and crawlers when to come back.
  if (err.status === 503) headers['retry-after'] = '1';
  res.shouldKeepAlive = res.shouldKeepAlive && !close;
  res.writeHead(err.status, headers);
  res.end(body);
}

/**
 * The same JSON error, written on a raw socket (parse errors and refused upgrades have no response object).
 *
 * @example
 *   writeRawError(socket, requestTimeout());
 */
export function writeRawError(socket: Socket, err: ClonesError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON());
  socket.end(
    `HTTP/1.1 ${err.status} ${statusText(err.status)}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n` +
      `${err.status === 503 ? 'retry-after: 1\r\n' : ''}connection: close\r\n\r\n${body}`,
  );
}

/** The reason phrase of the statuses the balancer answers with itself. */
function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    408: 'Request Timeout',
    431: 'Request Header Fields Too Large',
    501: 'Not Implemented',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return texts[status] ?? 'Error';
}
