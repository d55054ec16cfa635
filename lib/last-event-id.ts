// The `Last-Event-ID` request header, read the way a client meant it. Node hands header bytes over as
// latin1, while browsers send the id a server gave them as UTF-8; and a client controls the header's
// length, so an id past the cap is ignored rather than replayed from, echoed, or logged.

const NON_ASCII = /[^\p{ASCII}]/u
const utf8 = new TextDecoder('utf-8', { fatal: true })

export type LastEventIdReading =
  | { readonly id: string | undefined, readonly tooLong: false }
  | { readonly id: undefined, readonly tooLong: true, readonly bytes: number }

/** `header` as Node gives it (one byte per character) -> the id, or undefined when absent or over `maxBytes`. */
export function readLastEventId (header: string | string[] | undefined, maxBytes: number): LastEventIdReading {
  // Node joins a repeated header into one string; only set-cookie is ever an array.
  const raw = Array.isArray(header) ? header.join(', ') : header
  if (raw === undefined) return { id: undefined, tooLong: false }
  if (raw.length > maxBytes) return { id: undefined, tooLong: true, bytes: raw.length }
  if (!NON_ASCII.test(raw)) return { id: raw, tooLong: false }
  try {
    return { id: utf8.decode(Buffer.from(raw, 'latin1')), tooLong: false }
  } catch {
    // Not UTF-8: latin1 was what the client sent after all.
    return { id: raw, tooLong: false }
  }
}
