// Waiting on a source that may ignore its signal: the wait ends when the signal aborts, and leaves
// nothing behind on the signal (a generation waits once per value, for minutes).

export const STOPPED = Symbol('stopped')

/** Whether awaiting `promise` was cut short by `signal`; no listener is left behind either way. */
export async function raceAbort<T> (promise: Promise<T>, signal: AbortSignal): Promise<T | typeof STOPPED> {
  if (signal.aborted) {
    // Not waited for: what it rejects with (a source aborted by its signal) is not an error of ours.
    promise.catch(() => {})
    return STOPPED
  }
  let onAbort!: () => void
  const stopped = new Promise<typeof STOPPED>(resolve => { onAbort = () => { resolve(STOPPED) } })
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([promise, stopped])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
