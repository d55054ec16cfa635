// Pure: the client's two event-stream readers, both fed chunk by chunk. They only look for `data:`
// lines: enough to count and time events, cheap enough that the client is never the bottleneck.

/**
 * Calls `line` with the value of every complete `data:` line of an event stream, chunk by chunk
 * (one space after the colon is dropped, as the spec says). What follows the last newline waits for
 * the next chunk; it starts with that newline, so a line start is always a '\n' in the text searched.
 */
export function dataLines (line: (data: string) => void): (chunk: string) => void {
  let tail = '\n'
  return chunk => {
    const text = tail + chunk
    let from = 0
    for (;;) {
      const at = text.indexOf('\ndata:', from)
      if (at === -1) break
      const end = text.indexOf('\n', at + 6)
      if (end === -1) break
      const value = at + 6 < end && text.charCodeAt(at + 6) === 32 ? at + 7 : at + 6
      line(text.slice(value, end))
      from = end
    }
    tail = text.slice(text.lastIndexOf('\n'))
  }
}

/**
 * Counts `data:` lines, chunk by chunk, without building them: returns how many each chunk completed
 * the start of. A data line starts after a newline (the body's first line too: the text starts with
 * one); the 5 characters carried over cannot hold a whole '\ndata:', so no line is counted twice.
 */
export function dataLineCounter (): (chunk: string) => number {
  let tail = '\n'
  return chunk => {
    const text = tail + chunk
    let events = 0
    for (let at = text.indexOf('\ndata:'); at !== -1; at = text.indexOf('\ndata:', at + 6)) events++
    tail = text.slice(-5)
    return events
  }
}
