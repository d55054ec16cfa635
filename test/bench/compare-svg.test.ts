// The comparison's bar charts: bars proportional to the values, labels escaped, gaps said in words.
import t from 'tap'
import { barChart, escapeXml } from '../../bench/compare/svg.js'

const widths = (svg: string): number[] =>
  [...svg.matchAll(/<rect x="200" y="[\d.]+" width="([\d.]+)" height="18"/g)].map(m => Number(m[1]))

t.test('bar widths are proportional to the values, the largest filling the plot', async t => {
  const svg = barChart({ title: 'T', subtitle: 'S', series: ['v'], rows: [{ label: 'a', values: [100] }, { label: 'b', values: [50] }, { label: 'c', values: [25] }] })
  const [a, b, c] = widths(svg) as [number, number, number]
  t.equal(a, 860 - 200 - 110)
  t.equal(b, a / 2)
  t.equal(c, a / 4)
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  t.match(svg, /<\/svg>\n$/)
})

t.test('one bar per series in each row, and a legend when there are several series', async t => {
  const svg = barChart({ title: 'T', subtitle: 'S', series: ['1,000', '5,000'], rows: [{ label: 'a', values: [1, 2] }, { label: 'b', values: [3, 4] }] })
  t.equal(widths(svg).length, 4)
  t.match(svg, />1,000<\/text>/)
  t.match(svg, />5,000<\/text>/)
})

t.test('a missing or non-finite value draws no bar and says "no result"', async t => {
  const svg = barChart({ title: 'T', subtitle: 'S', series: ['v'], rows: [{ label: 'a', values: [undefined] }, { label: 'b', values: [Number.NaN] }, { label: 'c', values: [3] }] })
  t.equal(widths(svg).length, 1)
  t.equal(svg.match(/no result/g)?.length, 2)
})

t.test('labels and titles are escaped', async t => {
  t.equal(escapeXml('<a & "b" \'c\'>'), '&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;')
  const svg = barChart({ title: 'a < b', subtitle: '&', series: ['v'], rows: [{ label: '@x/y <z>', values: [1] }] })
  t.match(svg, /a &lt; b/)
  t.match(svg, /@x\/y &lt;z&gt;/)
  t.notMatch(svg, /<z>/)
})

t.test('a target marker is a dashed line at its value, with its label', async t => {
  const svg = barChart({ title: 'T', subtitle: 'S', series: ['v'], rows: [{ label: 'a', values: [200] }], marker: { value: 100, label: 'target' } })
  t.match(svg, /<line x1="475.0"[^>]*stroke-dasharray/)
  t.match(svg, />target<\/text>/)
})

t.test('values are formatted by the chart\'s format', async t => {
  const svg = barChart({ title: 'T', subtitle: 'S', series: ['v'], rows: [{ label: 'a', values: [12.345] }], format: v => `${v.toFixed(1)} ms` })
  t.match(svg, />12.3 ms<\/text>/)
})
