// Which lib/ files each test file may count toward the coverage gate (tap's coverage-map).
// Example tests prove the examples; lib/ is covered by its own specifications. Some tests run lib/ in
// child processes through tsx (the demo, two servers in two processes, a server measuring its own
// heap), and tap follows every child: tsx's transpiled code differs from tap's, and merged, that
// coverage corrupts the report. So those tests count for nothing (null; [] means "the default set").
const IN_CHILD_PROCESSES = [
  'test/github-issues/8-memory-ids.test.ts',
  'test/github-issues/8-idle-channels.test.ts'
]

export default function coverageMap (testFile) {
  const file = testFile.replaceAll('\\', '/')
  return file.startsWith('test/examples/') || IN_CHILD_PROCESSES.includes(file) ? null : []
}
