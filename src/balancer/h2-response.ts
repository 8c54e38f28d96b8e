import { Http2ServerResponse, type OutgoingHttpHeaders } from 'node:http2';
// Node throws on these in a response, so they are dropped here.
import { CONNECTION_SPECIFIC } from './h2-request.ts';

/**
 * An HTTP/2 response that takes what the HTTP/1.1 proxy path writes: a reason phrase (HTTP/2 has none; Node
 * would warn) and connection-specific fields such as `connection: close` on an error answer are dropped.
 *
 * @example
 *   http2.createSecureServer({ Http2ServerResponse: H2Response, allowHTTP1: true });
 */
export class H2Response extends Http2ServerResponse {
  override writeHead(
    status: number,
    message?: string | OutgoingHttpHeaders | string[],
    headers?: OutgoingHttpHeaders | string[],
  ): this {
    const fields = typeof message === 'string' ? headers : message;
    if (Array.isArray(fields)) {
      let clean = true;
      for (let i = 0; i < fields.length; i += 2)
        if (CONNECTION_SPECIFIC.has(fields[i]!.toLowerCase())) clean = false;
      if (!clean) {
        const kept: string[] = [];
        for (let i = 0; i < fields.length; i += 2)
          if (!CONNECTION_SPECIFIC.has(fields[i]!.toLowerCase())) kept.push(fields[i]!, fields[i + 1]!);
        return super.writeHead(status, kept as unknown as OutgoingHttpHeaders);
      }
      return super.writeHead(status, fields as unknown as OutgoingHttpHeaders);
    }
    if (fields !== undefined) {
      const kept: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(fields))
        if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) kept[name] = value;
      return super.writeHead(status, kept);
    }
    return super.writeHead(status);
  }
}
