import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { adminUnauthorized, badTargetSpec } from './errors.ts';

/** The largest JSON body an admin API reads. */
const MAX_BODY = 64 * 1024;

/**
 * Checks `Authorization: Bearer <token>` in constant time (both sides are hashed first, so their lengths do
 * not leak); throws CLONES_BALANCER_UNAUTHORIZED otherwise. Shared by the balancer's and the fleet's admin APIs.
 *
 * @example
 *   const check = bearerCheck(token);
 *   check(req); // throws when the token is missing or wrong
 */
export function bearerCheck(token: string): (req: IncomingMessage) => void {
  const expected = digest(token);
  return (req) => {
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!timingSafeEqual(digest(given), expected) || given === '') throw adminUnauthorized();
  };
}

/** Answers with a JSON body and its length. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Reads a JSON object body (an empty body is `{}`); too large or not an object is a coded 400. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw badTargetSpec('body', `larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badTargetSpec('body', 'is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badTargetSpec('body', 'must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
