import { request } from 'node:http';

/** What one readiness check got: `ready` on 200, and `said` in words for a message. */
export interface ProbeResult {
  readonly ready: boolean;
  /** `GET /up answered 503 "db down"`, `GET /up failed: ECONNREFUSED`, `... did not answer within 1000 ms`. */
  readonly said: string;
}

/** Body bytes read for the excerpt; the rest is not waited for. */
const BODY_BYTES = 4096;
/** Characters of the body shown in a message. */
const EXCERPT_CHARS = 80;

/**
 * One readiness check of a clone: GET `path` on a fresh connection (a pooled socket could hide a dead
 * listener); ready on 200. Otherwise `said` records what came back, the status and the start of the body
 * (HTML reduced to its text, so Express's "Cannot GET /up" page reads as that), or the connection error,
 * so that a clone that never gets ready can say why. Never rejects.
 *
 * @example
 *   const check = await probeReady('127.0.0.1', 3001, '/up');
 *   if (!check.ready) console.error(check.said); // GET /up answered 404 "Cannot GET /up"
 */
export function probeReady(host: string, port: number, path: string, timeoutMs = 1000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    // Set once the status line arrived: a body that does not end in time still reports the status.
    let partial: (() => void) | undefined;
    const finish = (ready: boolean, said: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ready, said: `GET ${path} ${said}` });
    };
    const timer = setTimeout(
      () => (partial ? partial() : finish(false, `did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const req = request(
      { host, port, path, agent: false, headers: { connection: 'close', 'user-agent': 'clones-ready' } },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200) return finish(true, 'answered 200');
        const chunks: Buffer[] = [];
        let size = 0;
        partial = () => {
          const text = excerpt(Buffer.concat(chunks).toString('utf8'), String(res.headers['content-type']));
          finish(false, `answered ${status}${text ? ` ${JSON.stringify(text)}` : ''}`);
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= BODY_BYTES) partial?.();
        });
        res.on('end', () => partial?.());
        res.on('error', () => partial?.());
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => finish(false, `failed: ${err.code ?? err.message}`));
    req.end();
  });
}

/** The first characters of a body as one line; an HTML page as its visible text. */
function excerpt(body: string, type: string): string {
  let text = body;
  if (/html/i.test(type) || /^\s*</.test(text)) {
    text = text
      .replace(/<(head|script|style)\b[\s\S]*?(<\/\1>|$)/gi, ' ')
      .replace(/<[^>]*>?/g, ' ')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&');
  }
  // Control characters would break the one-line message (and a terminal); the replacement char stays.
  text = text.replace(/[\p{Cc}\s]+/gu, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text;
}
