// A tiny dependency-free SVG bar chart: one row per system, one horizontal bar per series, value
// labels at the bar ends. The benchmark draws its charts from its own results with this, so a chart
// can never disagree with the table beside it.

export interface BarRow {
  label: string
  /** One value per series, in the chart's series order; undefined or NaN: no result (said in the row). */
  values: Array<number | undefined>
}

export interface BarChart {
  title: string
  /** What the numbers are, e.g. 'events/s (higher is better)'. */
  subtitle: string
  series: string[]
  rows: BarRow[]
  /** Formats a value for its label; defaults to a rounded, grouped number. */
  format?: (value: number) => string
  /** A vertical reference line (a target), drawn dashed with its label. */
  marker?: { value: number, label: string }
}

const COLORS = ['#3b6fb6', '#e08a2c', '#4a9a5b', '#b04a6f']
const WIDTH = 860
const LABEL_WIDTH = 200
const VALUE_ROOM = 110
const BAR_HEIGHT = 18
const BAR_GAP = 4
const ROW_GAP = 14
const TOP = 64

export function escapeXml (text: string): string {
  return text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

const defaultFormat = (value: number): string =>
  value.toLocaleString('en-US', { maximumFractionDigits: value < 10 ? 2 : value < 100 ? 1 : 0 })

const usable = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value)

export function barChart (chart: BarChart): string {
  const format = chart.format ?? defaultFormat
  const values = chart.rows.flatMap(row => row.values.filter(usable))
  const top = Math.max(0, ...values, chart.marker?.value ?? 0)
  const plot = WIDTH - LABEL_WIDTH - VALUE_ROOM
  const scale = top > 0 ? plot / top : 0
  const rowHeight = chart.series.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
  const legendHeight = chart.series.length > 1 ? 24 : 0
  const markerRoom = chart.marker === undefined ? 0 : 18
  const height = TOP + legendHeight + chart.rows.length * (rowHeight + ROW_GAP) + 16 + markerRoom
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
      'font-family="Helvetica, Arial, sans-serif" font-size="13">',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="26" font-size="17" font-weight="bold">${escapeXml(chart.title)}</text>`,
    `<text x="16" y="46" fill="#555555">${escapeXml(chart.subtitle)}</text>`
  ]
  if (legendHeight > 0) {
    chart.series.forEach((name, i) => {
      const x = LABEL_WIDTH + i * 170
      parts.push(`<rect x="${x}" y="${TOP - 6}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${x + 18}" y="${TOP + 5}">${escapeXml(name)}</text>`)
    })
  }
  let y = TOP + legendHeight
  for (const row of chart.rows) {
    parts.push(`<text x="${LABEL_WIDTH - 10}" y="${y + rowHeight / 2 + 5}" text-anchor="end">${escapeXml(row.label)}</text>`)
    chart.series.forEach((_name, i) => {
      const value = row.values[i]
      const barY = y + i * (BAR_HEIGHT + BAR_GAP)
      if (usable(value)) {
        const width = Math.max(1, value * scale)
        parts.push(`<rect x="${LABEL_WIDTH}" y="${barY}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" ` +
          `fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${(LABEL_WIDTH + width + 6).toFixed(1)}" y="${barY + BAR_HEIGHT - 4}">${escapeXml(format(value))}</text>`)
      } else {
        parts.push(`<text x="${LABEL_WIDTH + 6}" y="${barY + BAR_HEIGHT - 4}" fill="#999999">no result</text>`)
      }
    })
    y += rowHeight + ROW_GAP
  }
  if (chart.marker !== undefined && scale > 0) {
    const x = (LABEL_WIDTH + chart.marker.value * scale).toFixed(1)
    // The target's label goes under the rows, where no bar or legend can hide it.
    parts.push(`<line x1="${x}" y1="${TOP + legendHeight - 6}" x2="${x}" y2="${y - ROW_GAP + 6}" stroke="#c0392b" ` +
      'stroke-width="1.5" stroke-dasharray="5,4"/>',
    `<text x="${x}" y="${y + 8}" fill="#c0392b" text-anchor="middle">${escapeXml(chart.marker.label)}</text>`)
  }
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
