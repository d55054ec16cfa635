// The id of an event on a stream of several channels: where the client stands in each of them, so one
// Last-Event-ID resumes every channel exactly. `name=id` pairs joined by `&`, names percent-encoded
// (a name may hold any character), ids as the channels gave them (`<digits>-<digits>`): never a CR,
// LF or NUL, so it is always a valid `id:` field.

/** Where a client stands in each channel of a stream (channel name to the last id it received). */
export type Cursor = ReadonlyMap<string, string>

/** The id field for `cursor`, channels in the order given. */
export function encodeCursor (names: readonly string[], cursor: Cursor): string {
  let id = ''
  for (const name of names) {
    const at = cursor.get(name)
    if (at === undefined) continue
    if (id !== '') id += '&'
    id += encodeURIComponent(name) + '=' + at
  }
  return id
}

/**
 * The cursor a Last-Event-ID carries, for the channels asked about; anything else in it is ignored
 * (a channel the stream no longer has, a pair that does not parse). A channel's id is not checked
 * here: the channel answers an id it never gave with a gap notice, as for one subscriber.
 */
export function decodeCursor (lastEventId: string | undefined, names: readonly string[]): Map<string, string> {
  const cursor = new Map<string, string>()
  if (lastEventId === undefined || lastEventId === '') return cursor
  const wanted = new Set(names)
  for (const pair of lastEventId.split('&')) {
    const eq = pair.indexOf('=')
    if (eq <= 0 || eq === pair.length - 1) continue
    let name: string
    try {
      name = decodeURIComponent(pair.slice(0, eq))
    } catch {
      continue
    }
    if (wanted.has(name)) cursor.set(name, pair.slice(eq + 1))
  }
  return cursor
}
