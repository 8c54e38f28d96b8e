/** The error codes of RFC 9113 §7, by name. */
export const H2_CODES = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export type H2CodeName = keyof typeof H2_CODES;

/**
 * A breach of the HTTP/2 protocol by the client. It never reaches an HTTP answer: the session turns it into
 * GOAWAY (a connection error) or RST_STREAM (a stream error, when `stream` is set) with `code`.
 */
export class H2ProtocolError extends Error {
  readonly code: number;
  readonly stream: number;

  constructor(name: H2CodeName, reason: string, stream = 0) {
    super(reason);
    this.code = H2_CODES[name];
    this.stream = stream;
  }
}

/**
 * Makes a connection error (or, with `stream`, a stream error) for the session to answer.
 *
 * @example
 *   throw h2Error('FRAME_SIZE_ERROR', 'PING of 7 bytes');
 */
export function h2Error(name: H2CodeName, reason: string, stream = 0): H2ProtocolError {
  return new H2ProtocolError(name, reason, stream);
}
