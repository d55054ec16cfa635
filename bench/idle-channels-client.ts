// The client process for the idle-channels benchmark, so the clients' allocations stay out of the heap
// the server measures: GETs `<url><n>` for n from FROM to TO - 1 (with a Last-Event-ID, as a client
// that resumes: the channel then has a history too), 100 at a time, each leaving once its response
// starts. Exits when all have left.
import http from 'node:http'

const [url, fromArg, toArg] = process.argv.slice(2)
const from = Number(fromArg)
const to = Number(toArg)
const agent = new http.Agent({ keepAlive: false, maxSockets: 100 })

function visit (n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}${n}`, { agent, headers: { 'last-event-id': '1-1' } }, response => {
      response.once('close', resolve)
      request.destroy()
    })
    request.once('error', reject)
  })
}

for (let batch = from; batch < to; batch += 100) {
  await Promise.all(Array.from({ length: Math.min(100, to - batch) }, (_v, i) => visit(batch + i)))
}
