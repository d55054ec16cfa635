import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'

/**
 * Whether the response is closed: the client left, or the response completed. Also for a response
 * whose `'close'` fired before anyone listened (the client left during an async hook or handler).
 * HTTP/1 marks the response destroyed when its socket closes or once it completed;
 * `Http2ServerResponse` has no `destroyed`, its stream does.
 */
export function clientGone (res: ServerResponse | Http2ServerResponse): boolean {
  const stream = (res as Partial<Http2ServerResponse>).stream
  if (stream !== undefined) return stream.destroyed || stream.closed
  const http1 = res as ServerResponse
  return http1.destroyed || http1.socket?.destroyed === true
}
