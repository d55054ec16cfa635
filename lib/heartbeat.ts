/** An idle timer: calls `onIdle` after every `intervalMs` without a `touch()`. */
export interface Heartbeat {
  /** Something was written: restart the idle period. */
  touch (): void
  stop (): void
}

const NO_HEARTBEAT: Heartbeat = { touch () {}, stop () {} }

/**
 * The heartbeat never writes: it asks (`onIdle`) and the pump decides, because only the pump
 * knows whether the socket can take bytes right now.
 */
export function startHeartbeat (intervalMs: number | false, onIdle: () => void): Heartbeat {
  if (intervalMs === false) return NO_HEARTBEAT
  const timer = setInterval(onIdle, intervalMs)
  // A heartbeat alone must never keep the process alive; the socket it serves does that.
  timer.unref()
  return {
    touch () { timer.refresh() },
    stop () { clearInterval(timer) }
  }
}
