/** Something that can be asked for a heartbeat, and counts the clock's ticks since it last wrote. */
export interface Beating {
  /** Ticks since the last write; the member resets it to 0 whenever it writes. */
  idleTicks: number
  /** Write a heartbeat now (or decline, e.g. behind a full socket). */
  beat (): void
}

/** Ticks per interval: a beat comes after between 1 and 1.25 intervals of silence. */
const TICKS = 4

interface Group {
  readonly members: Set<Beating>
  readonly timer: NodeJS.Timeout
}

/**
 * One timer per heartbeat interval for any number of streams, instead of a timer per stream: a write
 * only resets an integer (no timer to refresh per write), and an idle stream costs no timer at all.
 * The clock never writes: it asks (`beat()`), because only the pump knows whether the socket can take
 * bytes right now.
 */
export class HeartbeatClock {
  #groups = new Map<number, Group>()

  /** Timers running: one per interval in use. */
  get timers (): number {
    return this.#groups.size
  }

  add (member: Beating, intervalMs: number | false): void {
    if (intervalMs === false) return
    let group = this.#groups.get(intervalMs)
    if (group === undefined) {
      const members = new Set<Beating>()
      const timer = setInterval(tick, intervalMs / TICKS, members)
      // A heartbeat alone must never keep the process alive; the sockets it serves do that.
      timer.unref()
      group = { members, timer }
      this.#groups.set(intervalMs, group)
    }
    member.idleTicks = 0
    group.members.add(member)
  }

  delete (member: Beating, intervalMs: number | false): void {
    if (intervalMs === false) return
    const group = this.#groups.get(intervalMs)
    if (group === undefined || !group.members.delete(member) || group.members.size > 0) return
    clearInterval(group.timer)
    this.#groups.delete(intervalMs)
  }
}

function tick (members: Set<Beating>): void {
  for (const member of members) {
    if (++member.idleTicks > TICKS) member.beat()
  }
}
