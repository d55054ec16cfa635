// The systems under comparison, in the order the tables list them, and where each one's version comes from.
import { readFileSync } from 'node:fs'

export type Workload = 'stream' | 'broadcast' | 'drop'

export interface SystemInfo {
  /** The module under systems/ and the key in the results. */
  key: string
  label: string
  /** A plugin of Fastify (the W3 target compares plugins only). */
  plugin: boolean
  workloads: readonly Workload[]
}

const ALL: readonly Workload[] = ['stream', 'broadcast', 'drop']

/** The installed version (read from node_modules: not every package exports its package.json). */
function version (name: string): string {
  const file = new URL(`../../node_modules/${name}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

export const BASELINE = 'node-http'
export const SUBJECT = 'fastify-sse-stream'

export function catalog (): SystemInfo[] {
  return [
    { key: BASELINE, label: 'hand-written node:http', plugin: false, workloads: ALL },
    { key: SUBJECT, label: 'fastify-sse-stream', plugin: true, workloads: ALL },
    // The same plugin with declared events (fast-json-stringify): measured against its JSON.stringify self in W1.
    { key: `${SUBJECT}-declared`, label: 'fastify-sse-stream, declared events', plugin: false, workloads: ['stream'] },
    { key: 'fastify-sse', label: `@fastify/sse ${version('@fastify/sse')}`, plugin: true, workloads: ALL },
    { key: 'fastify-sse-v2', label: `fastify-sse-v2 ${version('fastify-sse-v2')}`, plugin: true, workloads: ALL },
    { key: 'better-sse', label: `better-sse ${version('better-sse')}`, plugin: true, workloads: ALL }
  ]
}
