/* global EventSource */
// The demo page: one EventSource per panel. The browser parses the stream and reconnects by itself
// (after the server's `retry:` delay, sending Last-Event-ID); this file only draws what arrives and
// shows each connection's state.

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

watch('sensors', '/sensors/events', {
  message (reading) {
    document.getElementById('temperature').textContent = reading.temperature.toFixed(2)
    document.getElementById('humidity').textContent = reading.humidity.toFixed(2)
    readings.push(reading)
    if (readings.length > POINTS) readings.shift()
    drawChart()
  }
})
drawChart()

// Stocks: a row per symbol, the change since the previous round, and the last upstream error.

const previous = {}

watch('stocks', '/stocks/events', {
  message (prices) {
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
    document.getElementById('stocks-updated').textContent = new Date().toLocaleTimeString()
  },
  'upstream-error' ({ message }) {
    const notice = document.getElementById('upstream-error')
    notice.textContent = `Upstream error: ${message} (the stream goes on; next round soon)`
    notice.hidden = false
  }
})

// Weather broadcast: the latest update, with its id, and the last few. After a reconnect the channel
// first replays what this page missed, so the list has no hole; `sse-gap` says when it cannot.

const updates = []

watch('broadcast', '/broadcast/events', {
  message (weather, event) {
    document.getElementById('broadcast-temperature').textContent = weather.temperature.toFixed(2)
    document.getElementById('broadcast-humidity').textContent = weather.humidity.toFixed(2)
    document.getElementById('broadcast-id').textContent = event.lastEventId
    updates.unshift(`id ${event.lastEventId}: ${weather.temperature.toFixed(2)} °C, ${weather.humidity.toFixed(2)} %`)
    updates.length = Math.min(updates.length, 5)
    document.getElementById('broadcast-updates').replaceChildren(...updates.map(text => {
      const item = document.createElement('li')
      item.textContent = text
      return item
    }))
  },
  'sse-gap' ({ lastEventId }) {
    const notice = document.getElementById('broadcast-gap')
    notice.textContent = `Updates after id ${lastEventId} are gone (the server restarted without Redis, or they left its history); showing what is kept.`
    notice.hidden = false
  }
})
