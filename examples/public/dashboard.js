/* global EventSource */
// The demo page. The sensors, stocks and weather panels share ONE EventSource on /dashboard/events,
// where the server carries their three channels on one stream: each event is named after its channel
// (`sensors`, `stocks.upstream-error`...), and one Last-Event-ID, which the browser sends back by
// itself when it reconnects, resumes all three. This file only draws what arrives and shows the
// connection's state. The LLM panel, at the end, reads a POST with fetch instead (EventSource only
// does GET) and resumes it after a reload.

const POINTS = 60 // readings kept on the chart

/** Open `url` and keep it open; `handlers` maps event types to functions of (parsed data, event). */
function watch (name, url, handlers) {
  const badge = document.querySelector(`.state[data-stream="${name}"]`)
  const setState = state => {
    badge.dataset.state = state
    badge.textContent = state
  }
  const connect = () => {
    setState('connecting')
    const source = new EventSource(url)
    source.onopen = () => setState('connected')
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) {
        setState('reconnecting')
        return
      }
      // CLOSED: the browser gave up (the server answered an error, say while restarting).
      // Give it a moment and start over, like a browser's own retry would.
      setState('reconnecting')
      setTimeout(connect, 2000)
    }
    for (const [type, handle] of Object.entries(handlers)) {
      source.addEventListener(type, event => handle(JSON.parse(event.data), event))
    }
  }
  connect()
}

/** Stamp a panel's "last update". */
function updated (panel) {
  document.querySelector(`.updated-at[data-panel="${panel}"]`).textContent = new Date().toLocaleTimeString()
}

/** One channel's own id, out of the stream's id (`sensors=<id>&stocks=<id>&weather=<id>`). */
function channelId (event, channel) {
  return new URLSearchParams(event.lastEventId).get(channel) ?? ''
}

// Sensors: the two numbers and a chart of the last POINTS readings, each line on its own scale.

const readings = []

function svg (tag, attributes, text) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag)
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value)
  if (text !== undefined) element.textContent = text
  return element
}

function drawChart () {
  const chart = document.getElementById('chart')
  const [width, height, left, right, top, bottom] = [640, 220, 36, 36, 10, 20]
  const plotHeight = height - top - bottom
  const x = i => left + (i / (POINTS - 1)) * (width - left - right)
  const y = (value, min, max) => top + (1 - (value - min) / (max - min)) * plotHeight
  chart.replaceChildren()
  for (let step = 0; step <= 5; step++) {
    const lineY = top + (step / 5) * plotHeight
    chart.append(svg('line', { class: 'grid', x1: left, x2: width - right, y1: lineY, y2: lineY }))
    chart.append(svg('text', { class: 'axis', x: left - 6, y: lineY + 4, 'text-anchor': 'end' }, String(30 - step * 2)))
    chart.append(svg('text', { class: 'axis', x: width - right + 6, y: lineY + 4 }, String(60 - step * 6)))
  }
  chart.append(svg('text', { class: 'axis', x: left, y: height - 4 }, `last ${POINTS} readings`))
  // The newest reading sits at the right edge.
  const offset = POINTS - readings.length
  const line = (key, min, max) => svg('polyline', {
    class: key,
    points: readings.map((reading, i) => `${x(offset + i).toFixed(1)},${y(reading[key], min, max).toFixed(1)}`).join(' ')
  })
  chart.append(line('temperature', 20, 30), line('humidity', 30, 60))
}

// Each panel's handlers, by event name; one stream feeds them all (at the end).
const panels = {}

panels.sensors = {
  sensors (reading) {
    document.getElementById('temperature').textContent = reading.temperature.toFixed(2)
    document.getElementById('humidity').textContent = reading.humidity.toFixed(2)
    readings.push(reading)
    if (readings.length > POINTS) readings.shift()
    drawChart()
    updated('sensors')
  }
}
drawChart()

// Stocks: a row per symbol, the change since the previous round, and the last upstream error.

const previous = {}

panels.stocks = {
  stocks (prices) {
    const rows = Object.entries(prices).map(([symbol, price]) => {
      const change = previous[symbol] === undefined ? 0 : price - previous[symbol]
      previous[symbol] = price
      const row = document.createElement('tr')
      row.dataset.symbol = symbol
      if (change !== 0) row.className = 'flash'
      const direction = change > 0 ? 'up' : change < 0 ? 'down' : ''
      const arrow = change > 0 ? '▲' : change < 0 ? '▼' : ''
      row.innerHTML = '<td class="symbol"></td><td class="price"></td><td class="change"></td>'
      row.cells[0].textContent = symbol
      row.cells[1].textContent = price.toFixed(2)
      row.cells[2].textContent = `${arrow} ${Math.abs(change).toFixed(2)}`
      if (direction !== '') row.cells[2].classList.add(direction)
      return row
    })
    document.getElementById('ticker').replaceChildren(...rows)
    document.getElementById('upstream-error').hidden = true
    updated('stocks')
  },
  'stocks.upstream-error' ({ message }) {
    const notice = document.getElementById('upstream-error')
    notice.textContent = `Upstream error: ${message} (the stream goes on; next round soon)`
    notice.hidden = false
  }
}

// Weather broadcast: the latest update, with its id, and the last few. After a reconnect the channel
// first replays what this page missed, so the list has no hole; `sse-gap` says when it cannot.

const updates = []

panels.weather = {
  weather (weather, event) {
    const id = channelId(event, 'weather')
    document.getElementById('broadcast-temperature').textContent = weather.temperature.toFixed(2)
    document.getElementById('broadcast-humidity').textContent = weather.humidity.toFixed(2)
    document.getElementById('broadcast-id').textContent = id
    updates.unshift(`id ${id}: ${weather.temperature.toFixed(2)} °C, ${weather.humidity.toFixed(2)} %`)
    updates.length = Math.min(updates.length, 5)
    document.getElementById('broadcast-updates').replaceChildren(...updates.map(text => {
      const item = document.createElement('li')
      item.textContent = text
      return item
    }))
    updated('weather')
  },
  'weather.sse-gap' ({ lastEventId }) {
    const notice = document.getElementById('broadcast-gap')
    notice.textContent = `Updates after id ${lastEventId} are gone (the server restarted without Redis, or they left its history); showing what is kept.`
    notice.hidden = false
  }
}

// Sensor readings and prices are live values: one missed while away is not worth a notice.
watch('dashboard', '/dashboard/events', { ...panels.sensors, ...panels.stocks, ...panels.weather })

// LLM-style stream: POST /llm/chat starts a generation and streams it; it runs on the server whatever
// this page does. Its id and the last event id are kept in sessionStorage with the text so far (one
// write per token, so they always agree): after a reload the page asks GET /llm/chat/:id for what
// comes after that id (Last-Event-ID), never for the whole answer again. Read with fetch, because an
// EventSource can neither POST nor be given a Last-Event-ID to start from.

const STORE = 'llm-generation'
const llm = {
  state: document.getElementById('llm-state'),
  answer: document.getElementById('llm-answer'),
  id: document.getElementById('llm-id'),
  lastId: document.getElementById('llm-last-id'),
  send: document.getElementById('llm-send'),
  cancel: document.getElementById('llm-cancel')
}
/** The generation this page follows: { id, lastEventId, text }, or null. */
let generation = null
// A reload cuts the stream being read: the page that comes next resumes it, not this one.
let leaving = false
window.addEventListener('pagehide', () => { leaving = true })

function setGeneration (state) {
  llm.state.dataset.state = state
  llm.state.textContent = state
  const running = state === 'streaming' || state === 'resuming'
  llm.send.disabled = running
  llm.cancel.disabled = !running
}

function remember () {
  if (generation === null) sessionStorage.removeItem(STORE)
  else sessionStorage.setItem(STORE, JSON.stringify(generation))
  llm.id.textContent = generation?.id ?? '–'
  llm.lastId.textContent = generation?.lastEventId ?? '–'
}

/**
 * The events of an event stream's body, as the spec parses them: `{ id, event, data }` each, `id`
 * the last id seen so far (as an EventSource's lastEventId).
 */
async function * events (body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let data = []
  let event = ''
  let id = null
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    buffer += value
    const lines = buffer.split(/\r\n|\r|\n/)
    // The last piece may be a line cut in two (or a CR whose LF is still to come): kept for later.
    buffer = lines.pop()
    for (const line of lines) {
      if (line === '') {
        if (data.length > 0) yield { id, event: event || 'message', data: data.join('\n') }
        data = []
        event = ''
        continue
      }
      const colon = line.indexOf(':')
      if (colon === 0) continue // a comment (a heartbeat)
      const field = colon === -1 ? line : line.slice(0, colon)
      const text = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'data') data.push(text)
      else if (field === 'event') event = text
      else if (field === 'id' && !text.includes('\0')) id = text
    }
  }
}

/** Read a generation's stream into the panel; true once its end arrived. */
async function follow (response) {
  for await (const { id, event, data } of events(response.body)) {
    if (event === 'token') {
      generation.text += JSON.parse(data).text
      generation.lastEventId = id
      llm.answer.textContent = generation.text
      remember()
    } else if (event === 'sse-gap') {
      // Some tokens are gone (past the history the server keeps): the text has a hole, say so.
      generation.text += ' […] '
      generation.lastEventId = id
      llm.answer.textContent = generation.text
      remember()
    } else if (event === 'sse-end') {
      setGeneration(JSON.parse(data).reason)
      generation = null
      remember()
      return true
    } else if (id !== null) {
      generation.lastEventId = id
      remember()
    }
  }
  return false
}

const pause = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Resume the generation kept in sessionStorage, after its last id; again after a cut, until its end. */
async function resume () {
  for (let attempt = 0; ; attempt++) {
    if (leaving) return
    setGeneration('resuming')
    if (attempt > 0) await pause(1000) // the server is away, or restarting: not in a tight loop
    const headers = { accept: 'text/event-stream' }
    if (generation.lastEventId !== null) headers['last-event-id'] = generation.lastEventId
    const response = await fetch(`/llm/chat/${encodeURIComponent(generation.id)}`, { headers }).catch(() => null)
    if (response === null || (!response.ok && response.status !== 404)) continue
    // 204: the end was received already; 404: gone (its record expired, or a server without Redis restarted).
    if (response.status === 204 || response.status === 404) {
      // 204 says the end is behind this page, not which end it was.
      setGeneration(response.status === 204 ? 'over' : 'lost')
      generation = null
      remember()
      return
    }
    setGeneration('streaming')
    // Cut mid-stream (or ended without its end): resume from the last id.
    if (await follow(response).catch(() => false)) return
  }
}

document.getElementById('llm-form').addEventListener('submit', async event => {
  event.preventDefault()
  const prompt = document.getElementById('llm-prompt').value
  setGeneration('streaming')
  llm.answer.textContent = ''
  const response = await fetch('/llm/chat', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ prompt })
  }).catch(() => null)
  const id = response?.headers.get('x-generation-id')
  // Refused (a limit: 429, or a 200 that only says when to come back) or failed: nothing runs.
  if (response === null || !response.ok || id === null || id === undefined) {
    setGeneration(response?.status === 429 || (response?.ok === true && id === null) ? 'busy: try again' : 'error')
    return
  }
  generation = { id, lastEventId: null, text: '' }
  remember()
  if (!await follow(response).catch(() => false) && !leaving) await resume()
})

llm.cancel.addEventListener('click', () => {
  // The stream being read then ends with sse-end, reason cancelled.
  if (generation !== null) fetch(`/llm/chat/${encodeURIComponent(generation.id)}`, { method: 'DELETE' })
})

generation = JSON.parse(sessionStorage.getItem(STORE) ?? 'null')
if (generation !== null) {
  llm.answer.textContent = generation.text
  remember()
  resume()
}
